// ipconfirm's configuration: the schema as a plain struct, and the TOML loader.
//
// The loader is strict: an unknown key, a value of the wrong type, an address that does not
// parse or a missing required key is an error that names the key and its line, and the server
// does not start. Every key is documented in config/ipconfirm.toml; a key added here must be
// added there too (a unit test loads that file). Defaults are the safe ones.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip_address.hpp"

namespace ipconfirm::config {

// "192.0.2.1:25" or "[2001:db8::1]:25".
struct Endpoint {
  IpAddress address;
  std::uint16_t port = 0;
  std::string to_string() const;
  bool operator==(const Endpoint&) const = default;
};
// Parses the forms above; nullopt on anything else (a host name, a missing port, port 0).
std::optional<Endpoint> parse_endpoint(std::string_view text);

// "192.0.2.0/24", "2001:db8::/32", or one address ("192.0.2.1" = /32, "::1" = /128).
struct Network {
  IpAddress address;
  int prefix = 32;
  bool operator==(const Network&) const = default;
};
// Parses the forms above; nullopt on anything else.
std::optional<Network> parse_network(std::string_view text);

struct Smtp {
  std::vector<Endpoint> listen;
  std::size_t max_message_size = 10 * 1024 * 1024;  // announced in SIZE
  // Message data all sessions hold at once (headers; postmaster mail whole); past it, 451.
  std::size_t max_message_memory = 64 * 1024 * 1024;
  std::size_t max_recipients = 10;
  std::size_t max_errors = 10;
  std::size_t max_commands = 200;
  std::size_t max_connections = 500;
  std::size_t max_connections_per_ip = 20;
  int ipv6_connection_prefix = 64;  // max_connections_per_ip counts IPv6 clients per this prefix
  std::chrono::seconds command_timeout{60};
  std::chrono::seconds connection_deadline{600};
  // TLS (PEM files). Both set: STARTTLS is offered and implicit_tls_listen works.
  std::string tls_cert;
  std::string tls_key;
  std::vector<Endpoint> implicit_tls_listen;    // TLS from the first byte (RFC 8314)
  std::vector<Endpoint> proxy_protocol_listen;  // a PROXY v1/v2 header must come first
  // A PROXY header, then TLS from the next byte (HAProxy's send-proxy in front of port 465).
  std::vector<Endpoint> proxy_protocol_tls_listen;
  std::vector<Network> trusted_proxies;  // who may send that header
  bool operator==(const Smtp&) const = default;
};

struct Dns {
  std::vector<std::string> servers;  // "ip:port"; empty = the system resolver
  std::vector<std::string> dnsbl;
  std::chrono::milliseconds timeout{1500};
  int tries = 2;
  std::chrono::milliseconds report_deadline{5000};
  std::size_t cache_bytes = 16 * 1024 * 1024;  // the answer cache's budget; 0 = no cache
  bool operator==(const Dns&) const = default;
};

enum class DeliveryMode { smarthost, mx, maildir };

enum class SmarthostTls { none, opportunistic, required };

struct Delivery {
  DeliveryMode mode = DeliveryMode::maildir;
  // The smarthost, either by address ("192.0.2.1:587": `smarthost`) or by name
  // ("smtp.example.net:587": `smarthost_host` and `smarthost_port`, resolved at delivery time).
  std::optional<Endpoint> smarthost;
  std::string smarthost_host;
  std::uint16_t smarthost_port = 0;
  std::string maildir = "./outbox";
  SmarthostTls smarthost_tls = SmarthostTls::opportunistic;
  // How the smarthost's certificate is verified: a PEM file of trusted CAs ("" = the system's
  // store), the name to check when the smarthost is given by address, or a pinned SHA-256
  // (of the certificate or of its public key; 64 hex digits, lower case, no colons here).
  std::string smarthost_tls_ca_file;
  std::string smarthost_tls_name;
  std::string smarthost_tls_fingerprint;
  std::string smarthost_user, smarthost_password;  // AUTH when user is set
  std::string smarthost_auth_file;                 // "user:password" on its first line
  // mx mode: may connect to any address (core/special_purpose.hpp says which are refused).
  bool allow_private = false;
  std::uint16_t mx_port = 25;      // mx mode: the port MX hosts are reached on (tests change it)
  std::size_t max_per_domain = 2;  // mx mode: replies in flight to one recipient domain
  std::chrono::seconds attempt_deadline{120};  // mx mode: one delivery attempt, all in
  bool operator==(const Delivery&) const = default;
};

struct Queue {
  std::string dir = "./spool";
  std::size_t max_entries = 10000;
  std::int64_t retry_first = 60;      // seconds after the first failed attempt
  std::int64_t retry_max = 3600;      // longest wait between attempts
  std::int64_t lifetime = 5 * 86400;  // give up this long after the reply was queued
  bool operator==(const Queue&) const = default;
};

enum class ReplyMode { mail, transcript };

struct Reply {
  std::string templates;  // a folder with report.txt.mustache etc.; "" = the built-in ones
  ReplyMode mode = ReplyMode::mail;  // transcript: answer only in the SMTP 250, no reply mail
  std::size_t max_received = 30;     // loop limit: more Received fields, no reply
  // Reply mails per hour (0 = no limit): per recipient, per connecting IP, per /24 or /64.
  std::size_t max_per_recipient_per_hour = 10;
  std::size_t max_per_ip_per_hour = 30;
  std::size_t max_per_network_per_hour = 60;
  std::size_t max_per_domain_per_hour = 100;  // per recipient domain
  std::size_t max_per_site_per_hour = 120;    // per IPv6 /48 of the connecting address
  std::size_t max_total_per_minute = 60;      // all reply mails together
  std::size_t rate_limit_entries = 100000;    // keys remembered per limit
  bool operator==(const Reply&) const = default;
};

// Mail to postmaster@<domain> (RFC 5321 §4.5.1): accepted, never auto-replied, and either
// forwarded to `forward` or written into the Maildir `maildir` (one of them; default: the
// Maildir "./postmaster").
struct Postmaster {
  std::string forward;
  std::string maildir = "./postmaster";
  // Messages per hour (0 = no limit): per connecting IP; per /24, /64 or /48; all together
  // per minute. Over a limit DATA is answered 451 4.7.1.
  std::size_t max_per_ip_per_hour = 10;
  std::size_t max_per_network_per_hour = 30;
  std::size_t max_total_per_minute = 10;
  // What the Maildir may hold (new/ and cur/; 0 = no limit); past it, 452 4.2.2.
  std::size_t max_maildir_messages = 10000;
  std::size_t max_maildir_bytes = 1024 * 1024 * 1024;
};

// Who `serve` runs as (responder/privileges.hpp): "" = not set (refused when started as root).
struct Service {
  std::string user;
  std::string group;  // "" = the user's primary group
};

// What the report treats as the internet. A peer on a loopback, private, CGNAT or link-local
// address is a local test unless it is in one of lab_networks (a lab whose DNS plays the
// internet on such addresses, as the test suite does).
struct Analysis {
  std::vector<Network> lab_networks;
};

// The HTTP listener for /metrics, /healthz and the report pages (responder/http/): off while
// `listen` is empty.
struct Http {
  std::vector<Endpoint> listen;
  std::size_t max_connections = 64;
  std::chrono::seconds request_timeout{10};  // to read one request, and to write one response
  std::size_t max_request_size = 8192;       // request line and header fields, in bytes
  std::size_t max_header_fields = 50;
  // The report pages (GET /r/TOKEN, responder/report_pages.hpp). With `public_url` set (the
  // address the listener is reached at from outside, "https://ipconfirm.example.org", no
  // trailing slash), every report is stored under a private token, and the 250 line and the
  // reply mail give `<public_url>/r/TOKEN`; "" = no reports are stored and no link is given.
  std::string public_url;
  double report_days = 7;           // a stored report is deleted this long after it was written
  std::size_t max_reports = 10000;  // stored reports at most; past it the oldest go first
  // GET /r/... per client (an IPv4 address, an IPv6 /64) per minute; over it 429. 0 = no limit.
  std::size_t max_report_requests_per_ip_per_minute = 60;
  bool operator==(const Http&) const = default;
};

struct Config {
  std::string hostname;
  std::vector<std::string> domains;
  Service service;
  Smtp smtp;
  Dns dns;
  Delivery delivery;
  Queue queue;
  Reply reply;
  Postmaster postmaster;
  Analysis analysis;
  Http http;
};

struct LoadResult {
  std::optional<Config> config;
  std::string error;  // "FILE:LINE: key 'smtp.listen': ..." when config is empty
};

// Parses TOML text; `source` names it in error messages.
LoadResult parse_config(std::string_view toml_text, std::string_view source);
// Reads and parses a file.
LoadResult load_config(const std::string& path);

}  // namespace ipconfirm::config

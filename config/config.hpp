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
  std::size_t max_recipients = 10;
  std::size_t max_errors = 10;
  std::size_t max_commands = 200;
  std::size_t max_connections = 500;
  std::size_t max_connections_per_ip = 20;
  std::chrono::seconds command_timeout{60};
  std::chrono::seconds connection_deadline{600};
  // TLS (PEM files). Both set: STARTTLS is offered and implicit_tls_listen works.
  std::string tls_cert;
  std::string tls_key;
  std::vector<Endpoint> implicit_tls_listen;    // TLS from the first byte (RFC 8314)
  std::vector<Endpoint> proxy_protocol_listen;  // a PROXY v1/v2 header must come first
  std::vector<Network> trusted_proxies;         // who may send that header
  bool operator==(const Smtp&) const = default;
};

struct Dns {
  std::vector<std::string> servers;  // "ip:port"; empty = the system resolver
  std::vector<std::string> dnsbl;
  std::chrono::milliseconds timeout{1500};
  int tries = 2;
  std::chrono::milliseconds report_deadline{5000};
  bool operator==(const Dns&) const = default;
};

enum class DeliveryMode { smarthost, mx, maildir };

enum class SmarthostTls { none, opportunistic, required };

struct Delivery {
  DeliveryMode mode = DeliveryMode::maildir;
  std::optional<Endpoint> smarthost;
  std::string maildir = "./outbox";
  SmarthostTls smarthost_tls = SmarthostTls::opportunistic;
  std::string smarthost_user, smarthost_password;  // AUTH when user is set
  std::string smarthost_auth_file;                 // "user:password" on its first line
  bool allow_private = false;  // mx mode: may connect to loopback/private/link-local addresses
  std::uint16_t mx_port = 25;  // mx mode: the port MX hosts are reached on (tests change it)
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
  std::size_t rate_limit_entries = 100000;  // keys remembered per limit
  bool operator==(const Reply&) const = default;
};

// Mail to postmaster@<domain> (RFC 5321 §4.5.1): accepted, never auto-replied, and either
// forwarded to `forward` or written into the Maildir `maildir` (one of them; default: the
// Maildir "./postmaster").
struct Postmaster {
  std::string forward;
  std::string maildir = "./postmaster";
};

// The HTTP listener for /metrics and /healthz (responder/http/): off while `listen` is empty.
struct Http {
  std::vector<Endpoint> listen;
  std::size_t max_connections = 64;
  std::chrono::seconds request_timeout{10};  // to read one request, and to write one response
  std::size_t max_request_size = 8192;       // request line and header fields, in bytes
  std::size_t max_header_fields = 50;
  bool operator==(const Http&) const = default;
};

struct Config {
  std::string hostname;
  std::vector<std::string> domains;
  Smtp smtp;
  Dns dns;
  Delivery delivery;
  Queue queue;
  Reply reply;
  Postmaster postmaster;
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

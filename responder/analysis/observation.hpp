// What ipconfirm observed about one message, as plain values: the connection, the envelope,
// the message's headers and the results of every DNS lookup. The I/O side fills it in
// (responder/lookups.cpp from the socket and the resolver, or `ipconfirm check` from its
// arguments); the report builder (responder/report.hpp) turns it into the report without any
// I/O, so every judgement can be tested with values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/ip_address.hpp"
#include "mime/incoming.hpp"
#include "responder/analysis/auth_verdicts.hpp"
#include "responder/analysis/dns_log.hpp"
#include "responder/dns/dns_message.hpp"

namespace ipconfirm::responder {

// One lookup's outcome: the resolver's result, and whether it arrived before the report's
// deadline (a lookup that did not is reported as temperror, never as a verdict).
struct Lookup : DnsResult {
  bool done = false;
};

struct ForwardLookup {
  std::string name;  // a valid PTR name, normalised
  Lookup a, aaaa;
};

struct DnsblLookup {
  std::string zone;
  Lookup a, txt;
};

struct Observation {
  // The connection, from the socket (or a trusted PROXY header).
  IpAddress ip;
  std::uint16_t port = 0;
  std::optional<std::string> tls_version, tls_cipher;
  bool proxied = false;      // the address came from a PROXY protocol header
  std::int64_t arrival = 0;  // epoch seconds

  // The envelope.
  std::string helo;
  bool esmtp = false;
  std::string mail_from;
  std::vector<std::string> rcpt_to;
  std::string reply_domain;  // the configured domain the mail was sent to

  // The message.
  mime::IncomingMessage message;
  // Its header block exactly as received (at most the 256 KiB the session keeps), whether it
  // went on beyond that, and whether MAIL FROM carried SMTPUTF8: the providers' rules read
  // them (requirements.hpp: the message's form, List-Unsubscribe).
  std::string raw_header;
  bool header_cut = false;
  bool smtputf8 = false;

  // DNS.
  Lookup ptr;
  std::vector<ForwardLookup> forward;  // one per valid PTR name (at most 10)
  Lookup helo_a, helo_aaaa;            // not done when HELO is no FQDN
  std::vector<DnsblLookup> dnsbl;

  // Sender authentication (responder/analysis/auth_lookups.hpp): SPF, DKIM, ARC, DMARC. A
  // verdict that is absent was not evaluated.
  AuthVerdicts auth;
  // Every DNS query made for the report, in the order it went out (the report's dns_log).
  MergedDnsLog dns_log;
};

}  // namespace ipconfirm::responder

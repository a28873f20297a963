// Reverse-DNS judgements: is a PTR target a usable host name, and does it look like the generic
// name an access or hosting provider gives to every address in a range ("dyn-192-0-2-10.pool
// .isp.example") rather than one an administrator chose for a mail server ("mx1.example.org")?
//
// Pure: no DNS I/O. The resolver hands us the PTR names it received; we only look at text.
// Host name syntax follows RFC 1123 §2.1 (LDH labels, a label may start with a digit) and
// RFC 1035 §2.3.4 (63-byte labels, 255-byte names). The generic-name heuristic is a graded
// score in the spirit of the "generic rDNS" conventions used by blocklist operators; it is a
// hint for the report, never proof that an address is dynamic. It does not check forward
// confirmation (FCrDNS) and does not know any provider's real address plan.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip_address.hpp"

namespace ipconfirm::responder {

// A PTR target is usable only if it is a syntactically valid host name: LDH labels (letters,
// digits, hyphen; no hyphen at either end), 1-63 bytes each, total <= 253 bytes (255 counting
// the root dot and length bytes), no control or non-ASCII bytes, and a top-level label that is
// not all digits (so "192.0.2.1" is refused). One trailing dot is allowed and dropped; a
// single-label name ("localhost") is syntactically valid and accepted. Returns the name
// lower-cased without the trailing dot, or nullopt when invalid (the raw bytes are then never
// copied into a report). Never throws.
std::optional<std::string> normalise_ptr_name(std::string_view raw);

// Score at or above which judge_generic_ptr() calls a name generic.
inline constexpr int kGenericThreshold = 3;

struct GenericVerdict {
  int score = 0;  // graded; >= kGenericThreshold means "looks generic/dynamic"
  bool generic = false;
  std::vector<std::string> signals;          // e.g. "contains the IP address octets", "word 'dyn'"
  std::vector<std::string> counter_signals;  // e.g. "word 'mail'"
  // The name follows a cloud provider's default pattern (EC2, Google Cloud, Linode ...). Such
  // names are generic by construction, but the address behind them is usually static: the
  // report should say "provider default name", never "dynamic address".
  bool cloud = false;
};

// Judges whether `ptr_name` looks like a provider's generic name for `ip`.
//
// Scoring (documented in detail in rdns_heuristics.cpp):
//   +4  all four IPv4 octets in the name, in any order and with any separators, also
//       zero-padded ("192-000-002-010", "192000002010") or as 8 hex digits ("pc000020a");
//       for IPv6 all eight groups, the 32 nibbles forward or reversed, or the compressed text.
//   +2  three consecutive octets of the address (IPv6: the /64 prefix or the interface id).
//   +2  strong access-network words: dyn, dhcp, pool, dsl, ppp, dial, cable, broadband,
//       res(idential), cpe, ... ; +1 weaker ones: client, customer, user, host, ip, fiber, ...
//   +1  a long number (4+ digits) or long hex run, when no part of the address was found.
//   -3  mail-service words outside the registered domain: mail, mx, smtp, relay, out,
//       outbound, mta, ... ; -1 weak ones: static, business, biz, srv, server.
// Each word counts once. Decisions on the ambiguous cases:
//   "mail-192-0-2-10.example.net"      4 - 3 = 1  not generic (both lists are non-empty: the
//                                      report may call it ambiguous);
//   "192-0-2-10.static.isp.example"    4 - 1 = 3  generic: "static" does not make a name
//                                      chosen for mail;
//   "static-ip-192-0-2-10.isp.example" 4 + 1 - 1 = 4 generic;
//   "mx1.example.com"                  -3         not generic.
// `ptr_name` is normalised first; a name that normalise_ptr_name() refuses yields an empty,
// non-generic verdict with score 0.
GenericVerdict judge_generic_ptr(std::string_view ptr_name, const IpAddress& ip);

}  // namespace ipconfirm::responder

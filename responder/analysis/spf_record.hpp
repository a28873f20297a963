// The text of an SPF record: its parser (RFC 7208 §4.5-§6, the ABNF of §12) and the macro
// language of §7 (syntax, expansion, the domain-name rules of §7.3).
//
// Pure and bounded: strings in, values out; no DNS. The evaluator (spf.hpp) fetches records and
// decides; this file only says what a record means and what a macro expands to. A record is
// checked in full before any of it is used (§4.6: a syntax error anywhere is a permerror,
// even after a matching mechanism). Records longer than kMaxSpfRecord bytes or with more than
// kMaxSpfTerms terms are refused, and no expansion grows beyond kMaxMacroExpansion bytes, so a
// hostile record costs linear time and bounded memory.
//
// Decisions where the RFC leaves room (each one is what the OpenSPF RFC 7208 suite expects):
//   - Only printable ASCII and spaces: any other byte in a record is a syntax error (§3.1, §4.6.1).
//   - Names of mechanisms and modifiers compare case-insensitively. A term whose name is
//     followed by '=' is a modifier; "redirect" and "exp" may appear once each; an unknown
//     modifier needs a valid name and a valid macro-string and is otherwise ignored.
//   - A domain-spec must end in a macro or in "." toplabel ["."] (§7.1); "exp=" and
//     "redirect=" with an empty domain-spec are syntax errors (the grammar of §6 requires a
//     domain-spec; §6.2's "if domain-spec is empty" is read as after expansion).
//   - The macro letters c, r and t are only valid in an explanation string (§7.1), never in a
//     domain-spec, not even that of exp=.
//   - A CIDR length has no leading zero ("/032" is an error) and stays within 0-32 / 0-128.
//   - "ip6:" accepts an IPv4-mapped address as an IPv6 network; it never matches an IPv4
//     connection (§5: a mapped connection is IPv4).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip_address.hpp"

namespace ipconfirm::responder {

inline constexpr std::size_t kMaxSpfRecord = 16384;      // bytes of one record
inline constexpr std::size_t kMaxSpfTerms = 1024;        // terms of one record
inline constexpr std::size_t kMaxMacroExpansion = 8192;  // bytes of one expansion

enum class SpfQualifier { pass, fail, softfail, neutral };  // "+" "-" "~" "?"

enum class SpfMechanismKind { all, include, a, mx, ptr, ip4, ip6, exists };

struct SpfMechanism {
  SpfQualifier qualifier = SpfQualifier::pass;
  SpfMechanismKind kind = SpfMechanismKind::all;
  // include, exists: the domain-spec (never empty). a, mx, ptr: the domain-spec, or empty for
  // the current domain. Macros are kept unexpanded.
  std::string domain_spec;
  // ip4, ip6: the network, network byte order (ip4: first four bytes). ip6 keeps an
  // IPv4-mapped network as IPv6 bytes.
  std::array<std::uint8_t, 16> network{};
  int cidr4 = 32;    // a, mx, ip4
  int cidr6 = 128;   // a, mx, ip6
  std::string text;  // the term as written in the record
};

// True for the mechanisms that query the DNS and count against the limit of 10 (§4.6.4).
bool queries_dns(SpfMechanismKind kind);

struct SpfRecord {
  std::vector<SpfMechanism> mechanisms;        // in record order
  std::optional<std::string> redirect;         // domain-spec of redirect=
  std::optional<std::string> exp;              // domain-spec of exp=
  std::string redirect_text, exp_text;         // the modifier terms as written
  std::vector<std::string> unknown_modifiers;  // terms as written, ignored by evaluation
};

struct SpfParse {
  std::optional<SpfRecord> record;  // nullopt: syntax error
  std::string error;                // what is wrong and where ("unknown mechanism 'foo'")
};

// True if `text` is an SPF version 1 record: "v=spf1" (any case) followed by a space or the
// end (§4.5). Records that are not are ignored when a domain's TXT records are selected.
bool is_spf1_record(std::string_view text);

// Parses an SPF record (the whole TXT text, starting with "v=spf1"). Never throws; every
// syntax error (§4.6) gives a record of nullopt and an `error` that names the term.
SpfParse parse_spf_record(std::string_view text);

// Whether a macro-string (§7.1) is well formed. `explanation`: the text of an explanation
// (exp= target's TXT record), where spaces and the letters c, r, t are also allowed.
bool is_valid_macro_string(std::string_view s, bool explanation = false);

// Whether `s` is a valid domain-spec: a macro-string without c, r, t that ends in a macro
// or in "." toplabel ["."] (§7.1).
bool is_valid_domain_spec(std::string_view s);

// True if the macro-string uses the "p" macro (which needs DNS lookups to expand).
bool uses_p_macro(std::string_view s);

// The values the macros expand to (§7.3).
struct SpfMacroContext {
  std::string_view sender;         // s: local-part@domain
  std::string_view local_part;     // l
  std::string_view sender_domain;  // o
  std::string_view domain;         // d: the current domain
  IpAddress ip;                    // i, c, v
  std::string_view validated_ptr;  // p: the validated domain name, or "unknown"
  std::string_view helo;           // h
  std::string_view receiver;       // r (explanations only); "unknown" when empty
  std::int64_t now = 0;            // t (explanations only), seconds since the epoch
};

// Expands a macro-string. Upper-case macro letters are URL-escaped (§7.3). Returns nullopt on
// a syntax error or when the result would exceed kMaxMacroExpansion bytes.
std::optional<std::string> expand_macros(std::string_view s, const SpfMacroContext& ctx,
                                         bool explanation = false);

// A domain-spec expanded into the name to look up (§7.3, §4.3).
struct SpfTarget {
  enum class Status {
    ok,            // `name` can be queried
    syntax_error,  // not a valid domain-spec
    invalid_name,  // expands to something no DNS query can carry: an empty label, a label
                   // over 63 bytes, or nothing at all; `name` holds it for the report
  };
  Status status = Status::ok;
  std::string name;  // without the trailing dot; left labels removed to fit 253 bytes
};
SpfTarget expand_domain_spec(std::string_view spec, const SpfMacroContext& ctx);

// Whether `ip` lies in `network`/`cidr` (the family of `network_v6` decides; an IPv4 address
// never matches an IPv6 network and the other way round).
bool spf_network_contains(const std::array<std::uint8_t, 16>& network, bool network_v6, int cidr,
                          const IpAddress& ip);

}  // namespace ipconfirm::responder

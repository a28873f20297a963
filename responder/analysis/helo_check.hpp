// The HELO/EHLO argument: what kind of name the client gave, and whether it fits the
// connecting address and its reverse DNS.
//
// Pure: no DNS I/O; the caller resolves the name (A/AAAA) and passes the result. Follows
// RFC 5321 §4.1.1.1 (a Domain or an address literal), §4.1.3 (address literals, "IPv6:" tag)
// and RFC 1123 host name syntax. It does not decide what to do with a client (we accept every
// greeting) and does not judge whether a name is generic; see rdns_heuristics.hpp.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip_address.hpp"

namespace ipconfirm::responder {

enum class HeloKind {
  fqdn,             // a syntactically valid host name with two or more labels, public-looking
  address_literal,  // "[192.0.2.1]" or "[IPv6:2001:db8::1]"
  bare_name,        // one label ("localhost", "mybox") or a private-use TLD ("x.localdomain")
  invalid,          // anything else: bad syntax, bare address without brackets, bad literal
  empty,            // nothing (or only blanks) after HELO/EHLO
};

std::string_view to_string(HeloKind kind);  // "fqdn", "address_literal", ...

struct HeloFacts {
  HeloKind kind = HeloKind::empty;
  // fqdn, bare_name: the name lower-cased without a trailing dot. address_literal: the literal
  // in canonical form, "[192.0.2.1]" or "[ipv6:2001:db8::1]". invalid: the argument with every
  // byte outside printable ASCII replaced by '?', lower-cased, at most 255 bytes. empty: "".
  std::string name;
  // The address of an address literal. Also set for an invalid bare address ("192.0.2.1"
  // without brackets), so that the report can still compare it with the connecting address.
  std::optional<IpAddress> literal;
};

// Classifies the HELO/EHLO argument. Leading and trailing blanks are ignored. A single label,
// and names under localhost, localdomain, local, lan, internal or home are bare names: they
// cannot name a host on the internet. An IPv6 literal without the "IPv6:" tag, a literal with
// an unknown tag, and names that break host name syntax (underscores, empty labels, a numeric
// TLD, over-long labels) are invalid. Never throws.
HeloFacts classify_helo(std::string_view helo);

struct HeloJudgement {
  bool literal_mismatch = false;  // an address literal that differs from the connecting IP
  bool matches_ptr = false;       // equals one of the (valid) PTR names, case-insensitive
  std::optional<bool> resolves;   // nullopt if not looked up / lookup temperror
  bool resolves_to_ip = false;    // its A/AAAA contain the connecting IP
};

// Compares the HELO facts with the connection. `ptr_names` are the raw PTR names; those that
// normalise_ptr_name() refuses are skipped. `helo_addresses` are the A and AAAA records of the
// HELO name: nullopt when the lookup was not done or failed temporarily, an empty vector for
// NXDOMAIN or no data. `resolves` and `resolves_to_ip` are only set for fqdn and bare_name
// (for the other kinds there is no name to look up, and the addresses are ignored).
HeloJudgement judge_helo(const HeloFacts& facts, const IpAddress& connecting_ip,
                         const std::vector<std::string>& ptr_names,
                         std::optional<std::vector<IpAddress>> helo_addresses);

}  // namespace ipconfirm::responder

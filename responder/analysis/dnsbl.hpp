// DNS blocklist (DNSBL) answers, read per RFC 5782: the query name, what the A records mean,
// the TXT reason made safe for a report, and the JSON form of one list's result.
//
// Pure: no DNS I/O; the resolver queries <reversed address>.<zone> and hands over the A and TXT
// records it got. Following RFC 5782 §2.1 and §5, a listing is an A record in 127.0.0.0/8;
// 127.0.0.1 is never a listing (§5: lists must not contain it) and, like 127.255.255.0/24,
// is what several large lists answer when they refuse a query (too many queries, or queries
// through a public resolver). Any other answer is treated as a broken or hijacked resolver.
// It does not decide how much weight a listing carries; the report does.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ip_address.hpp"

namespace ipconfirm::responder {

enum class DnsblOutcome {
  not_listed,      // NXDOMAIN or no A record
  listed,          // A records, all in 127.0.0.0/8 (but not a refusal code)
  refused,         // 127.255.255.x or 127.0.0.1: query refused or rate limited, e.g. via a
                   // public resolver
  invalid_answer,  // an A record outside 127/8 (or an IPv6 address): a resolver that rewrites
                   // NXDOMAIN, or a list that was shut down and answers everything
  error,           // the lookup itself failed (SERVFAIL, timeout); set by the caller, never
                   // returned by interpret_dnsbl_answers()
};

// "not_listed", "listed", "refused", "invalid_answer", "error".
std::string_view to_string(DnsblOutcome outcome);

struct DnsblResult {
  std::string zone;
  DnsblOutcome outcome = DnsblOutcome::error;
  std::vector<std::string> answers;  // the A records as text, "127.0.0.2"
  std::string reason;                // from sanitise_dnsbl_reason()
};

// What the A records of <query name> say. An empty vector (NXDOMAIN, no data) is not_listed.
// Precedence when records disagree: invalid_answer over refused over listed, so that one
// stray record never turns into a listing. Never throws.
DnsblOutcome interpret_dnsbl_answers(const std::vector<IpAddress>& a_records);

// Reason text from TXT records: each record's runs of blanks and control bytes become one
// space, other bytes outside printable ASCII become '?', empty and repeated records are
// dropped, the rest are joined with "; ". At most 300 bytes; when cut, the text ends in "...".
std::string sanitise_dnsbl_reason(const std::vector<std::string>& txt);

inline constexpr std::size_t kMaxDnsblReason = 300;

// The name to query: the address reversed (octets for IPv4, nibbles for IPv6) under `zone`,
// e.g. "2.0.0.127.zen.example" (IpAddress::dnsbl_name). `zone` may carry one trailing dot and
// any letter case; the result is lower-case without a trailing dot. Returns an empty string
// when `zone` is not a valid host name or the whole name would exceed 253 bytes.
std::string dnsbl_query_name(const IpAddress& ip, std::string_view zone);

// {"zone", "listed" (bool), "answers", "reason", "status": to_string(outcome)}. Strings are
// passed through the printable-ASCII filter again so that the JSON dump cannot fail on a
// result built by hand.
nlohmann::json to_json(const DnsblResult& result);

}  // namespace ipconfirm::responder

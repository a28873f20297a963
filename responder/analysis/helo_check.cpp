// HELO classification and judgement. See helo_check.hpp.
#include "responder/analysis/helo_check.hpp"

#include <algorithm>
#include <array>

#include "core/ascii.hpp"
#include "responder/analysis/rdns_heuristics.hpp"

namespace ipconfirm::responder {
namespace {

// Top-level names that are never delegated on the public internet (RFC 6761, RFC 6762,
// RFC 8375 home.arpa aside) and that hosts commonly give themselves.
constexpr std::array<std::string_view, 6> kPrivateTlds{"localhost", "localdomain", "local",
                                                       "lan",       "internal",    "home"};

constexpr std::size_t kMaxInvalidName = 255;

using ascii::to_lower;
using ascii::trim;

std::string sanitised(std::string_view s) {
  std::string out;
  const std::size_t n = std::min(s.size(), kMaxInvalidName);
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[i];
    out += (c >= 0x20 && c <= 0x7e) ? to_lower(c) : '?';
  }
  return out;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (to_lower(s[i]) != prefix[i]) return false;
  return true;
}

HeloFacts invalid(std::string_view helo) {
  return {HeloKind::invalid, sanitised(helo), {}};
}

HeloFacts classify_literal(std::string_view helo) {
  const std::string_view inner = helo.substr(1, helo.size() - 2);
  constexpr std::string_view kTag = "ipv6:";
  if (iequals_prefix(inner, kTag)) {
    const std::string_view text = inner.substr(kTag.size());
    // The tag promises IPv6 text; a dotted quad after it is not an IPv6 address.
    if (text.find(':') == std::string_view::npos) return invalid(helo);
    const auto ip = IpAddress::parse(text);
    // IpAddress folds ::ffff:a.b.c.d to IPv4; such a literal names that IPv4 address and is
    // written as one.
    if (!ip) return invalid(helo);
    const std::string tag = ip->is_v4() ? "" : "ipv6:";
    return {HeloKind::address_literal, "[" + tag + ip->to_string() + "]", ip};
  }
  const auto ip = IpAddress::parse(inner);
  // RFC 5321 §4.1.3: without a tag the literal is a dotted quad; an untagged IPv6 address is
  // not a valid literal (but keep it for comparison, like a bare address).
  if (!ip) return invalid(helo);
  if (!ip->is_v4() || inner.find(':') != std::string_view::npos) {
    auto facts = invalid(helo);
    facts.literal = ip;
    return facts;
  }
  return {HeloKind::address_literal, "[" + ip->to_string() + "]", ip};
}

}  // namespace

std::string_view to_string(HeloKind kind) {
  switch (kind) {
    case HeloKind::fqdn:
      return "fqdn";
    case HeloKind::address_literal:
      return "address_literal";
    case HeloKind::bare_name:
      return "bare_name";
    case HeloKind::invalid:
      return "invalid";
    case HeloKind::empty:
      return "empty";
  }
  return "invalid";
}

HeloFacts classify_helo(std::string_view helo) {
  helo = trim(helo);
  if (helo.empty()) return {};
  if (helo.front() == '[') {
    if (helo.size() < 2 || helo.back() != ']') return invalid(helo);
    return classify_literal(helo);
  }
  if (const auto name = normalise_ptr_name(helo)) {
    const auto dot = name->rfind('.');
    const std::string_view tld = dot == std::string::npos ? std::string_view(*name)
                                                          : std::string_view(*name).substr(dot + 1);
    const bool private_tld =
        std::find(kPrivateTlds.begin(), kPrivateTlds.end(), tld) != kPrivateTlds.end();
    const HeloKind kind =
        (dot == std::string::npos || private_tld) ? HeloKind::bare_name : HeloKind::fqdn;
    return {kind, *name, {}};
  }
  auto facts = invalid(helo);
  facts.literal = IpAddress::parse(helo);  // "192.0.2.1" without brackets
  return facts;
}

HeloJudgement judge_helo(const HeloFacts& facts, const IpAddress& connecting_ip,
                         const std::vector<std::string>& ptr_names,
                         std::optional<std::vector<IpAddress>> helo_addresses) {
  HeloJudgement j;
  if (facts.literal) j.literal_mismatch = *facts.literal != connecting_ip;
  if (facts.kind != HeloKind::fqdn && facts.kind != HeloKind::bare_name) return j;

  // facts.name is already normalised; compare it with the normalised PTR names.
  const auto helo_name = normalise_ptr_name(facts.name);
  if (helo_name) {
    j.matches_ptr = std::any_of(ptr_names.begin(), ptr_names.end(), [&](const std::string& p) {
      const auto ptr = normalise_ptr_name(p);
      return ptr && *ptr == *helo_name;
    });
  }
  if (helo_addresses) {
    j.resolves = !helo_addresses->empty();
    j.resolves_to_ip = std::find(helo_addresses->begin(), helo_addresses->end(), connecting_ip) !=
                       helo_addresses->end();
  }
  return j;
}

}  // namespace ipconfirm::responder

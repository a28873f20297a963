#include "core/special_purpose.hpp"

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

namespace ipconfirm {

namespace {

// The registries, transcribed row by row (a row with two blocks is written as two). Columns:
// block, name, RFC, allocation date, forwardable, globally reachable.
constexpr SpecialPurposeBlock kRegistry[] = {
    // IPv4 Special-Purpose Address Registry.
    {"0.0.0.0/8", "\"This network\"", "RFC 791", "1981-09", false, false},
    {"0.0.0.0/32", "\"This host on this network\"", "RFC 1122", "1981-09", false, false},
    {"10.0.0.0/8", "Private-Use", "RFC 1918", "1996-02", true, false},
    {"100.64.0.0/10", "Shared Address Space", "RFC 6598", "2012-04", true, false},
    {"127.0.0.0/8", "Loopback", "RFC 1122", "1981-09", false, false},
    {"169.254.0.0/16", "Link Local", "RFC 3927", "2005-05", false, false},
    {"172.16.0.0/12", "Private-Use", "RFC 1918", "1996-02", true, false},
    {"192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890", "2010-01", false, false},
    {"192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335", "2011-06", true, false},
    {"192.0.0.8/32", "IPv4 dummy address", "RFC 7600", "2015-03", false, false},
    {"192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723", "2015-10", true, true},
    {"192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155", "2017-02", true,
     true},
    {"192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC 8880", "2013-02", false, false},
    {"192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC 8880", "2013-02", false, false},
    {"192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", "2010-01", false, false},
    {"192.31.196.0/24", "AS112-v4", "RFC 7535", "2014-12", true, true},
    {"192.52.193.0/24", "AMT", "RFC 7450", "2014-12", true, true},
    // Terminated 2015-03: its cells are blank.
    {"192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", "2001-06", false, false},
    {"192.88.99.2/32", "6a44-relay anycast address", "RFC 6751", "2012-10", true, false},
    {"192.168.0.0/16", "Private-Use", "RFC 1918", "1996-02", true, false},
    {"192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534", "1996-01", true, true},
    {"198.18.0.0/15", "Benchmarking", "RFC 2544", "1999-03", true, false},
    {"198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", "2010-01", false, false},
    {"203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", "2010-01", false, false},
    {"240.0.0.0/4", "Reserved", "RFC 1112", "1989-08", false, false},
    {"255.255.255.255/32", "Limited Broadcast", "RFC 919", "1984-10", false, false},
    // IPv6 Special-Purpose Address Registry.
    {"::1/128", "Loopback Address", "RFC 4291", "2006-02", false, false},
    {"::/128", "Unspecified Address", "RFC 4291", "2006-02", false, false},
    {"::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291", "2006-02", false, false},
    {"64:ff9b::/96", "IPv4-IPv6 Translat.", "RFC 6052", "2010-10", true, true},
    {"64:ff9b:1::/48", "IPv4-IPv6 Translat.", "RFC 8215", "2017-06", true, false},
    {"100::/64", "Discard-Only Address Block", "RFC 6666", "2012-06", true, false},
    {"100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780", "2025-04", false, false},
    {"2001::/23", "IETF Protocol Assignments", "RFC 2928", "2000-09", false, false},
    // Globally reachable: N/A (the address stands for a host behind a NAT).
    {"2001::/32", "TEREDO", "RFC 4380", "2006-01", true, false},
    {"2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723", "2015-10", true, true},
    {"2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155", "2017-02", true,
     true},
    {"2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC 9665", "2024-04", true,
     true},
    {"2001:2::/48", "Benchmarking", "RFC 5180", "2008-04", true, false},
    {"2001:3::/32", "AMT", "RFC 7450", "2014-12", true, true},
    {"2001:4:112::/48", "AS112-v6", "RFC 7535", "2014-12", true, true},
    // Terminated 2014-03: its cells are blank.
    {"2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843", "2007-03", false, false},
    {"2001:20::/28", "ORCHIDv2", "RFC 7343", "2014-07", true, true},
    {"2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374", "2022-12",
     true, true},
    {"2001:db8::/32", "Documentation", "RFC 3849", "2004-07", false, false},
    // Globally reachable: N/A (the address stands for an IPv4 host).
    {"2002::/16", "6to4", "RFC 3056", "2001-02", true, false},
    {"2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534", "2011-05", true, true},
    {"3fff::/20", "Documentation", "RFC 9637", "2024-07", false, false},
    {"5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", "2024-04", true, false},
    {"fc00::/7", "Unique-Local", "RFC 4193", "2005-10", true, false},
    {"fe80::/10", "Link-Local Unicast", "RFC 4291", "2006-02", false, false},
};

// A block as bytes and a prefix length, for matching without IpAddress' IPv4-mapped folding.
struct Prefix {
  bool v4 = true;
  std::array<std::uint8_t, 16> bytes{};
  int length = 0;
};

Prefix parse_prefix(std::string_view block) {
  const auto slash = block.find('/');
  std::string address(block.substr(0, slash));
  Prefix p;
  p.length = std::stoi(std::string(block.substr(slash + 1)));
  p.v4 = address.find(':') == std::string::npos;
  if (p.v4) {
    in_addr a{};
    inet_pton(AF_INET, address.c_str(), &a);
    std::memcpy(p.bytes.data(), &a, 4);
  } else {
    in6_addr a{};
    inet_pton(AF_INET6, address.c_str(), &a);
    std::memcpy(p.bytes.data(), &a, 16);
  }
  return p;
}

bool contains(const Prefix& p, const IpAddress& ip) {
  if (p.v4 != ip.is_v4()) return false;
  const auto& b = ip.bytes();
  const int full = p.length / 8;
  for (int i = 0; i < full; ++i)
    if (b[static_cast<std::size_t>(i)] != p.bytes[static_cast<std::size_t>(i)]) return false;
  const int rest = p.length % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (b[static_cast<std::size_t>(full)] & mask) ==
         (p.bytes[static_cast<std::size_t>(full)] & mask);
}

const std::vector<Prefix>& parsed_registry() {
  static const std::vector<Prefix> parsed = [] {
    std::vector<Prefix> out;
    for (const auto& row : kRegistry) out.push_back(parse_prefix(row.block));
    return out;
  }();
  return parsed;
}

bool starts_with(const IpAddress& ip, std::initializer_list<std::uint8_t> prefix) {
  std::size_t i = 0;
  for (std::uint8_t byte : prefix)
    if (ip.bytes()[i++] != byte) return false;
  return true;
}

IpAddress v4_from(const IpAddress& ip, std::size_t at, std::uint8_t flip = 0) {
  const auto& b = ip.bytes();
  return IpAddress::from_v4((std::uint32_t{static_cast<std::uint8_t>(b[at] ^ flip)} << 24) |
                            (std::uint32_t{static_cast<std::uint8_t>(b[at + 1] ^ flip)} << 16) |
                            (std::uint32_t{static_cast<std::uint8_t>(b[at + 2] ^ flip)} << 8) |
                            std::uint32_t{static_cast<std::uint8_t>(b[at + 3] ^ flip)});
}

bool zero(const IpAddress& ip, std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to; ++i)
    if (ip.bytes()[i] != 0) return false;
  return true;
}

std::string describe(const SpecialPurposeBlock& row) {
  return std::string(row.name) + " (" + std::string(row.block) + ", " + std::string(row.rfc) + ")";
}

// The Azure platform address: wireserver, instance metadata and DNS for every Azure VM. It is
// not in the registries (Microsoft holds it), but reaching it from a VM is reaching the cloud's
// own control plane.
constexpr std::uint8_t kAzurePlatform[4] = {168, 63, 129, 16};

}  // namespace

std::span<const SpecialPurposeBlock> special_purpose_registry() {
  return kRegistry;
}

const SpecialPurposeBlock* find_special_purpose(const IpAddress& ip) {
  const auto& parsed = parsed_registry();
  const SpecialPurposeBlock* best = nullptr;
  int best_length = -1;
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    if (parsed[i].length > best_length && contains(parsed[i], ip)) {
      best = &kRegistry[i];
      best_length = parsed[i].length;
    }
  }
  return best;
}

std::optional<IpAddress> embedded_ipv4(const IpAddress& ip) {
  if (ip.is_v4()) return std::nullopt;
  // 64:ff9b::/96, the NAT64 well-known prefix: the last 32 bits.
  if (starts_with(ip, {0x00, 0x64, 0xff, 0x9b}) && zero(ip, 4, 12)) return v4_from(ip, 12);
  // 2002::/16, 6to4: the 32 bits after the prefix.
  if (starts_with(ip, {0x20, 0x02})) return v4_from(ip, 2);
  // 2001::/32, Teredo: the client's address, inverted, in the last 32 bits.
  if (starts_with(ip, {0x20, 0x01, 0x00, 0x00})) return v4_from(ip, 12, 0xff);
  // ::ffff:0:0:0/96, IPv4-translated (SIIT).
  if (zero(ip, 0, 8) && ip.bytes()[8] == 0xff && ip.bytes()[9] == 0xff && zero(ip, 10, 12))
    return v4_from(ip, 12);
  // ::/96, IPv4-compatible, except :: and ::1 (and ::0.0.0.x in general, which nobody used).
  if (zero(ip, 0, 12) && !zero(ip, 12, 15)) return v4_from(ip, 12);
  return std::nullopt;
}

std::optional<std::string> why_not_a_destination(const IpAddress& ip) {
  if (ip.is_v4()) {
    const auto& b = ip.bytes();
    if ((b[0] & 0xf0) == 0xe0) return std::string("multicast (224.0.0.0/4, RFC 5771)");
    if (std::memcmp(b.data(), kAzurePlatform, 4) == 0)
      return std::string("the Azure platform address 168.63.129.16 (metadata and DNS)");
    const SpecialPurposeBlock* row = find_special_purpose(ip);
    if (row && !row->globally_reachable) return describe(*row) + ": not globally reachable";
    return std::nullopt;
  }

  const auto embedded = embedded_ipv4(ip);
  if (starts_with(ip, {0x20, 0x02}))
    return "6to4 (2002::/16, RFC 3056) address of " + embedded->to_string() +
           ": not globally reachable";
  if (starts_with(ip, {0x20, 0x01, 0x00, 0x00}))
    return "Teredo (2001::/32, RFC 4380) address of a host behind a NAT (" + embedded->to_string() +
           "): not globally reachable";
  if (starts_with(ip, {0x00, 0x64, 0xff, 0x9b}) && zero(ip, 4, 12)) {
    // What a DNS64 resolver synthesises for an IPv4-only MX on an IPv6-only host: judge the
    // IPv4 address, since the translator would connect there.
    if (auto inner = why_not_a_destination(*embedded))
      return "NAT64 (64:ff9b::/96, RFC 6052) address of " + embedded->to_string() + ", " + *inner;
    return std::nullopt;
  }
  if (embedded)  // ::/96 and ::ffff:0:0:0/96
    return "IPv4-compatible or -translated address (::/96, RFC 4291, deprecated) of " +
           embedded->to_string();
  if (ip.bytes()[0] == 0xff) return std::string("multicast (ff00::/8, RFC 4291)");
  if (const SpecialPurposeBlock* row = find_special_purpose(ip); row && !row->globally_reachable)
    return describe(*row) + ": not globally reachable";
  if (ip.bytes()[0] == 0xfe && (ip.bytes()[1] & 0xc0) == 0xc0)
    return std::string("site-local (fec0::/10, RFC 3879, deprecated)");
  // Everything else outside 2000::/3 is "Reserved by IETF" in the IANA IPv6 Address Space
  // registry: no host on the internet has such an address.
  if ((ip.bytes()[0] & 0xe0) != 0x20)
    return std::string("outside the global unicast space (2000::/3, RFC 4291)");
  return std::nullopt;
}

}  // namespace ipconfirm

// The special-purpose registries and the destination check of direct MX delivery: every row of
// both IANA registries at its first, middle and last address, the embedded IPv4 of NAT64, 6to4,
// Teredo and IPv4-compatible addresses, and the ranges outside the registries.
#include <doctest/doctest.h>

#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "core/special_purpose.hpp"

using ipconfirm::embedded_ipv4;
using ipconfirm::find_special_purpose;
using ipconfirm::IpAddress;
using ipconfirm::special_purpose_registry;
using ipconfirm::why_not_a_destination;

namespace {

IpAddress ip(const char* text) {
  auto a = IpAddress::parse(text);
  REQUIRE_MESSAGE(a, text);
  return *a;
}

bool refused(const char* text) {
  return why_not_a_destination(ip(text)).has_value();
}

// First, middle and last address of a block, as raw bytes turned into IpAddress values.
std::vector<IpAddress> samples(std::string_view block) {
  const auto slash = block.find('/');
  const std::string address(block.substr(0, slash));
  const int length = std::stoi(std::string(block.substr(slash + 1)));
  const bool v4 = address.find(':') == std::string::npos;
  std::array<std::uint8_t, 16> first{};
  inet_pton(v4 ? AF_INET : AF_INET6, address.c_str(), first.data());
  const int bits = v4 ? 32 : 128;
  auto last = first, middle = first;
  for (int bit = length; bit < bits; ++bit) {
    const auto i = static_cast<std::size_t>(bit / 8);
    const auto mask = static_cast<std::uint8_t>(0x80 >> (bit % 8));
    last[i] = static_cast<std::uint8_t>(last[i] | mask);
    if (bit == length) middle[i] = static_cast<std::uint8_t>(middle[i] | mask);
  }
  std::vector<IpAddress> out;
  for (const auto& b : {first, middle, last}) {
    if (v4) {
      out.push_back(IpAddress::from_v4((std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                                       (std::uint32_t{b[2]} << 8) | b[3]));
    } else {
      out.push_back(IpAddress::from_v6(b));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("special purpose: the registries are complete") {
  // Every block IANA lists, with its "Globally Reachable" column (True only where it says
  // True): the expectation, written out independently of the table under test.
  struct Row {
    const char* block;
    bool reachable;
  };
  const Row expected[] = {
      {"0.0.0.0/8", false},      {"0.0.0.0/32", false},         {"10.0.0.0/8", false},
      {"100.64.0.0/10", false},  {"127.0.0.0/8", false},        {"169.254.0.0/16", false},
      {"172.16.0.0/12", false},  {"192.0.0.0/24", false},       {"192.0.0.0/29", false},
      {"192.0.0.8/32", false},   {"192.0.0.9/32", true},        {"192.0.0.10/32", true},
      {"192.0.0.170/32", false}, {"192.0.0.171/32", false},     {"192.0.2.0/24", false},
      {"192.31.196.0/24", true}, {"192.52.193.0/24", true},     {"192.88.99.0/24", false},
      {"192.88.99.2/32", false}, {"192.168.0.0/16", false},     {"192.175.48.0/24", true},
      {"198.18.0.0/15", false},  {"198.51.100.0/24", false},    {"203.0.113.0/24", false},
      {"240.0.0.0/4", false},    {"255.255.255.255/32", false}, {"::1/128", false},
      {"::/128", false},         {"::ffff:0:0/96", false},      {"64:ff9b::/96", true},
      {"64:ff9b:1::/48", false}, {"100::/64", false},           {"100:0:0:1::/64", false},
      {"2001::/23", false},      {"2001::/32", false},          {"2001:1::1/128", true},
      {"2001:1::2/128", true},   {"2001:1::3/128", true},       {"2001:2::/48", false},
      {"2001:3::/32", true},     {"2001:4:112::/48", true},     {"2001:10::/28", false},
      {"2001:20::/28", true},    {"2001:30::/28", true},        {"2001:db8::/32", false},
      {"2002::/16", false},      {"2620:4f:8000::/48", true},   {"3fff::/20", false},
      {"5f00::/16", false},      {"fc00::/7", false},           {"fe80::/10", false},
  };
  const auto registry = special_purpose_registry();
  REQUIRE(registry.size() == std::size(expected));
  for (std::size_t i = 0; i < registry.size(); ++i) {
    CAPTURE(std::string(registry[i].block));
    CHECK(registry[i].block == expected[i].block);
    CHECK(registry[i].globally_reachable == expected[i].reachable);
  }
}

TEST_CASE("special purpose: every row decides for its first, middle and last address") {
  for (const auto& row : special_purpose_registry()) {
    if (row.block == "::ffff:0:0/96") continue;  // folded to IPv4 by IpAddress: see below
    for (const auto& a : samples(row.block)) {
      CAPTURE(std::string(row.block));
      CAPTURE(a.to_string());
      const auto* found = find_special_purpose(a);
      REQUIRE(found != nullptr);
      // The most specific row decides (2001:1::1/128 inside 2001::/23); a sample of a block
      // may fall into a more specific one (the first address of 192.0.0.0/24 is in /29).
      const bool expect_refused =
          !found->globally_reachable || row.block == "2001::/32" || row.block == "2002::/16";
      if (row.block == "64:ff9b::/96") {
        // NAT64 of 0.0.0.0, 128.0.0.0 and 255.255.255.255: judged by the embedded address.
        CHECK(why_not_a_destination(a).has_value() ==
              why_not_a_destination(*embedded_ipv4(a)).has_value());
        continue;
      }
      CHECK(why_not_a_destination(a).has_value() == expect_refused);
    }
  }
}

TEST_CASE("special purpose: the ranges of the issue, and public controls") {
  struct Case {
    const char* ip;
    bool refused;
    const char* reason;  // a part of the reason
  } cases[] = {
      {"64:ff9b::7f00:1", true, "NAT64 (64:ff9b::/96, RFC 6052) address of 127.0.0.1"},
      {"64:ff9b::a00:1", true, "address of 10.0.0.1"},
      {"64:ff9b::808:808", false, ""},  // DNS64 of 8.8.8.8 on an IPv6-only host
      {"64:ff9b:1::1", true, "RFC 8215"},
      {"64:ff9b:1:ffff::808:808", true, "RFC 8215"},
      {"2002:7f00:1::1", true, "6to4 (2002::/16, RFC 3056) address of 127.0.0.1"},
      {"2002:808:808::1", true, "6to4"},
      {"2001:0:4136:e378:8000:63bf:3fff:fdd2", true, "192.0.2.45"},  // RFC 4380's example
      {"::7f00:1", true, "IPv4-compatible"},
      {"::808:808", true, "of 8.8.8.8"},
      {"::ffff:0:a00:1", true, "of 10.0.0.1"},
      {"::", true, "Unspecified"},
      {"::1", true, "Loopback"},
      {"fec0::1", true, "site-local"},
      {"feff:ffff::1", true, "site-local"},
      {"100::1", true, "Discard-Only"},
      {"100:0:0:1::1", true, "Dummy IPv6 Prefix"},
      {"5f00::1", true, "SRv6"},
      {"3fff::1", true, "RFC 9637"},
      {"2001:db8::1", true, "RFC 3849"},
      {"ff02::1", true, "multicast"},
      {"fd00:ec2::254", true, "Unique-Local"},
      {"fe80::1", true, "Link-Local"},
      {"4000::1", true, "outside the global unicast space"},
      {"2001:1::1", false, ""},
      {"2001:4:112::1", false, ""},
      {"198.18.0.1", true, "Benchmarking"},
      {"198.19.255.255", true, "Benchmarking"},
      {"192.0.0.1", true, "IPv4 Service Continuity Prefix"},
      {"192.0.0.200", true, "IETF Protocol Assignments"},
      {"192.0.0.9", false, ""},
      {"192.0.2.1", true, "TEST-NET-1"},
      {"198.51.100.1", true, "TEST-NET-2"},
      {"203.0.113.7", true, "TEST-NET-3"},
      {"168.63.129.16", true, "Azure"},
      {"169.254.169.254", true, "Link Local"},
      {"100.100.100.200", true, "Shared Address Space"},
      {"224.0.0.1", true, "multicast"},
      {"239.255.255.255", true, "multicast"},
      {"240.0.0.1", true, "Reserved"},
      {"255.255.255.255", true, "Limited Broadcast"},
      {"0.1.2.3", true, "This network"},
      {"127.0.0.1", true, "Loopback"},
      {"10.1.2.3", true, "Private-Use"},
      {"192.88.99.1", true, "Deprecated (6to4 Relay Anycast)"},
      {"8.8.8.8", false, ""},
      {"168.63.129.17", false, ""},
      {"198.20.0.1", false, ""},
      {"2a00:1450:4001::1b", false, ""},
      {"2001:4860:4860::8888", false, ""},
      {"::ffff:192.168.1.1", true, "Private-Use"},  // IPv4-mapped: judged as the IPv4
      {"::ffff:8.8.8.8", false, ""},
  };
  for (const auto& c : cases) {
    CAPTURE(std::string(c.ip));
    const auto why = why_not_a_destination(ip(c.ip));
    CHECK(why.has_value() == c.refused);
    if (why) CHECK_MESSAGE(why->find(c.reason) != std::string::npos, *why);
  }
}

TEST_CASE("special purpose: embedded IPv4") {
  CHECK(embedded_ipv4(ip("64:ff9b::c000:221"))->to_string() == "192.0.2.33");
  CHECK(embedded_ipv4(ip("2002:c000:221::1"))->to_string() == "192.0.2.33");
  CHECK(embedded_ipv4(ip("2001:0:4136:e378:8000:63bf:3fff:fdd2"))->to_string() == "192.0.2.45");
  CHECK(embedded_ipv4(ip("::c000:221"))->to_string() == "192.0.2.33");
  CHECK(embedded_ipv4(ip("::ffff:0:c000:221"))->to_string() == "192.0.2.33");
  CHECK_FALSE(embedded_ipv4(ip("::1")));
  CHECK_FALSE(embedded_ipv4(ip("::")));
  CHECK_FALSE(embedded_ipv4(ip("2a00:1450::1")));
  CHECK_FALSE(embedded_ipv4(ip("64:ff9b:1::c000:221")));  // local-use: refused as a whole
  CHECK_FALSE(embedded_ipv4(ip("192.0.2.1")));
  CHECK(refused("64:ff9b::c0a8:101"));
}

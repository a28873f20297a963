// IpAddress: parsing, canonical text, reverse and DNSBL names, scopes.
#include <doctest/doctest.h>

#include "core/ip_address.hpp"

using ipconfirm::IpAddress;

TEST_CASE("ip: parse and print") {
  CHECK(IpAddress::parse("192.0.2.1")->to_string() == "192.0.2.1");
  CHECK(IpAddress::parse("2001:DB8:0:0:0:0:0:1")->to_string() == "2001:db8::1");
  CHECK(IpAddress::parse("::1")->to_string() == "::1");
  // IPv4-mapped IPv6 is folded to IPv4, as a dual-stack listener should report it.
  auto mapped = IpAddress::parse("::ffff:192.0.2.1");
  REQUIRE(mapped);
  CHECK(mapped->is_v4());
  CHECK(mapped->to_string() == "192.0.2.1");
  CHECK(*mapped == *IpAddress::parse("192.0.2.1"));
  for (const char* bad :
       {"", "192.0.2", "192.0.2.256", "192.0.2.1 ", " 192.0.2.1", "[::1]", "fe80::1%eth0",
        "192.0.2.1:25", "0x7f.1", "::g", "1.2.3.4.5", "2001:db8::1::2"})
    CHECK_FALSE(IpAddress::parse(bad));
}

TEST_CASE("ip: reverse and DNSBL names") {
  CHECK(IpAddress::parse("192.0.2.10")->reverse_name() == "10.2.0.192.in-addr.arpa");
  CHECK(IpAddress::parse("192.0.2.10")->dnsbl_name("zen.example") == "10.2.0.192.zen.example");
  CHECK(IpAddress::parse("2001:db8::25")->reverse_name() ==
        "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  CHECK(IpAddress::parse("2001:db8::25")->dnsbl_name("bl.example") ==
        "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example");
}

TEST_CASE("ip: scopes") {
  struct {
    const char* ip;
    const char* scope;
    bool non_public;
  } cases[] = {
      {"127.0.0.2", "loopback", true},  {"::1", "loopback", true},
      {"10.0.0.5", "private", true},    {"172.16.0.1", "private", true},
      {"172.32.0.1", "public", false},  {"192.168.1.1", "private", true},
      {"fd00::1", "private", true},     {"100.64.0.1", "cgnat", true},
      {"100.128.0.1", "public", false}, {"169.254.169.254", "link-local", true},
      {"fe80::1", "link-local", true},  {"0.0.0.0", "reserved", true},
      {"224.0.0.1", "reserved", true},  {"255.255.255.255", "reserved", true},
      {"ff02::1", "reserved", true},    {"203.0.113.7", "public", false},
      {"8.8.8.8", "public", false},     {"2001:db8::1", "public", false},
  };
  for (const auto& c : cases) {
    CAPTURE(std::string(c.ip));
    auto a = IpAddress::parse(c.ip);
    REQUIRE(a);
    CHECK(a->scope() == c.scope);
    CHECK(a->is_non_public() == c.non_public);
  }
  CHECK(IpAddress::parse("203.0.113.7")->is_documentation());
  CHECK(IpAddress::parse("2001:db8::1")->is_documentation());
}

TEST_CASE("ip: same network") {
  auto a = *IpAddress::parse("192.0.2.10");
  CHECK(a.same_network(*IpAddress::parse("192.0.2.200"), 24));
  CHECK_FALSE(a.same_network(*IpAddress::parse("192.0.3.10"), 24));
  CHECK(a.same_network(*IpAddress::parse("192.0.3.10"), 16));
  CHECK(a.same_network(*IpAddress::parse("192.0.2.11"), 31));
  CHECK_FALSE(a.same_network(*IpAddress::parse("192.0.2.12"), 31));
  auto b = *IpAddress::parse("2001:db8:1:2::1");
  CHECK(b.same_network(*IpAddress::parse("2001:db8:1:2:ffff::9"), 64));
  CHECK_FALSE(b.same_network(*IpAddress::parse("2001:db8:1:3::1"), 64));
  CHECK_FALSE(a.same_network(b, 0));  // families differ
}

// HELO classification and its comparison with the connection.
#include "responder/analysis/helo_check.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using ipconfirm::IpAddress;
using namespace ipconfirm::responder;

namespace {

IpAddress ip(const char* text) {
  auto parsed = IpAddress::parse(text);
  REQUIRE(parsed);
  return *parsed;
}

}  // namespace

TEST_CASE("classify_helo: kinds and sanitised names") {
  struct Case {
    std::string helo;
    HeloKind kind;
    std::string name;
    const char* literal;  // nullptr: none
  };
  const std::string l63(63, 'a');
  const std::string l64(64, 'a');
  const std::vector<Case> cases{
      {"", HeloKind::empty, "", nullptr},
      {"   ", HeloKind::empty, "", nullptr},
      {"\t", HeloKind::empty, "", nullptr},
      {"mail.example.com", HeloKind::fqdn, "mail.example.com", nullptr},
      {"Mail.Example.COM", HeloKind::fqdn, "mail.example.com", nullptr},
      {"  mail.example.com  ", HeloKind::fqdn, "mail.example.com", nullptr},
      {"mail.example.com.", HeloKind::fqdn, "mail.example.com", nullptr},
      {"mail.sender.test", HeloKind::fqdn, "mail.sender.test", nullptr},
      {"123.example", HeloKind::fqdn, "123.example", nullptr},
      {l63 + ".example", HeloKind::fqdn, l63 + ".example", nullptr},
      {"localhost", HeloKind::bare_name, "localhost", nullptr},
      {"LOCAL", HeloKind::bare_name, "local", nullptr},
      {"mybox", HeloKind::bare_name, "mybox", nullptr},
      {"localhost.localdomain", HeloKind::bare_name, "localhost.localdomain", nullptr},
      {"printer.lan", HeloKind::bare_name, "printer.lan", nullptr},
      {"nas.home", HeloKind::bare_name, "nas.home", nullptr},
      {"box.local", HeloKind::bare_name, "box.local", nullptr},
      {"[192.0.2.1]", HeloKind::address_literal, "[192.0.2.1]", "192.0.2.1"},
      {"[IPv6:2001:DB8::1]", HeloKind::address_literal, "[ipv6:2001:db8::1]", "2001:db8::1"},
      {"[ipv6:2001:db8:0:0:0:0:0:1]", HeloKind::address_literal, "[ipv6:2001:db8::1]",
       "2001:db8::1"},
      {"[IPv6:::ffff:192.0.2.1]", HeloKind::address_literal, "[192.0.2.1]", "192.0.2.1"},
      {"192.0.2.1", HeloKind::invalid, "192.0.2.1", "192.0.2.1"},
      {"[2001:db8::1]", HeloKind::invalid, "[2001:db8::1]", "2001:db8::1"},
      {"[::ffff:192.0.2.1]", HeloKind::invalid, "[::ffff:192.0.2.1]", "192.0.2.1"},
      {"[192.0.2.256]", HeloKind::invalid, "[192.0.2.256]", nullptr},
      {"[192.0.2.1", HeloKind::invalid, "[192.0.2.1", nullptr},
      {"[", HeloKind::invalid, "[", nullptr},
      {"[]", HeloKind::invalid, "[]", nullptr},
      {"[IPv6:]", HeloKind::invalid, "[ipv6:]", nullptr},
      {"[IPv6:192.0.2.1]", HeloKind::invalid, "[ipv6:192.0.2.1]", nullptr},
      {"[x-tag:whatever]", HeloKind::invalid, "[x-tag:whatever]", nullptr},
      {"[ 192.0.2.1 ]", HeloKind::invalid, "[ 192.0.2.1 ]", nullptr},
      {"my_host.example.com", HeloKind::invalid, "my_host.example.com", nullptr},
      {"mail..example.com", HeloKind::invalid, "mail..example.com", nullptr},
      {"-mail.example.com", HeloKind::invalid, "-mail.example.com", nullptr},
      {"mail.example.123", HeloKind::invalid, "mail.example.123", nullptr},
      {l64 + ".example", HeloKind::invalid, l64 + ".example", nullptr},
      {"two words", HeloKind::invalid, "two words", nullptr},
      {"Caf\xc3\xa9.Example", HeloKind::invalid, "caf??.example", nullptr},
      {std::string("a\0b", 3), HeloKind::invalid, "a?b", nullptr},
      {"bad\x1b[31m", HeloKind::invalid, "bad?[31m", nullptr},
  };
  for (const auto& c : cases) {
    CAPTURE(c.helo);
    const auto f = classify_helo(c.helo);
    CHECK(to_string(f.kind) == to_string(c.kind));
    CHECK(f.name == c.name);
    if (c.literal) {
      REQUIRE(f.literal);
      CHECK(*f.literal == ip(c.literal));
    } else {
      CHECK_FALSE(f.literal);
    }
  }
}

TEST_CASE("classify_helo: an invalid name is cut to 255 printable bytes") {
  const std::string helo = "x_" + std::string(1000, '\x01');
  const auto f = classify_helo(helo);
  CHECK(f.kind == HeloKind::invalid);
  CHECK(f.name.size() == 255);
  CHECK(f.name.substr(0, 3) == "x_?");
  for (char c : f.name) CHECK((c >= 0x20 && c <= 0x7e));
}

TEST_CASE("judge_helo: address literals") {
  const auto conn = ip("192.0.2.10");
  auto j = judge_helo(classify_helo("[192.0.2.10]"), conn, {}, std::nullopt);
  CHECK_FALSE(j.literal_mismatch);
  CHECK_FALSE(j.matches_ptr);
  CHECK_FALSE(j.resolves);
  CHECK_FALSE(j.resolves_to_ip);

  j = judge_helo(classify_helo("[192.0.2.11]"), conn, {}, std::nullopt);
  CHECK(j.literal_mismatch);

  j = judge_helo(classify_helo("[IPv6:2001:db8::a]"), conn, {}, std::nullopt);
  CHECK(j.literal_mismatch);
  j = judge_helo(classify_helo("[IPv6:2001:db8::a]"), ip("2001:db8:0::a"), {}, std::nullopt);
  CHECK_FALSE(j.literal_mismatch);
  j = judge_helo(classify_helo("[IPv6:::ffff:192.0.2.10]"), conn, {}, std::nullopt);
  CHECK_FALSE(j.literal_mismatch);

  // A bare address is invalid but still compared.
  j = judge_helo(classify_helo("192.0.2.99"), conn, {}, std::nullopt);
  CHECK(j.literal_mismatch);
  j = judge_helo(classify_helo("192.0.2.10"), conn, {}, std::nullopt);
  CHECK_FALSE(j.literal_mismatch);

  // Addresses passed for a literal are ignored: there is no name to look up.
  j = judge_helo(classify_helo("[192.0.2.10]"), conn, {}, std::vector<IpAddress>{ip("192.0.2.10")});
  CHECK_FALSE(j.resolves);
  CHECK_FALSE(j.resolves_to_ip);
}

TEST_CASE("judge_helo: PTR match is case-insensitive and skips invalid PTR names") {
  const auto conn = ip("192.0.2.10");
  const auto f = classify_helo("MX1.Example.ORG");
  CHECK(judge_helo(f, conn, {"mx1.example.org."}, std::nullopt).matches_ptr);
  CHECK(judge_helo(f, conn, {"bad name", "MX1.EXAMPLE.ORG"}, std::nullopt).matches_ptr);
  CHECK_FALSE(judge_helo(f, conn, {}, std::nullopt).matches_ptr);
  CHECK_FALSE(judge_helo(f, conn, {"mx2.example.org"}, std::nullopt).matches_ptr);
  CHECK_FALSE(judge_helo(f, conn, {"mx1.example.org.evil"}, std::nullopt).matches_ptr);
  CHECK_FALSE(
      judge_helo(f, conn, {std::string("mx1.example.org\0", 16)}, std::nullopt).matches_ptr);
  CHECK_FALSE(judge_helo(f, conn, {"mx1.example.org.."}, std::nullopt).matches_ptr);
  // An invalid HELO never matches, even a PTR with the same bytes.
  CHECK_FALSE(judge_helo(classify_helo("my_host.example"), conn, {"my_host.example"}, std::nullopt)
                  .matches_ptr);
  // A bare name can match (a PTR of "localhost" is a finding of its own).
  CHECK(judge_helo(classify_helo("localhost"), conn, {"localhost."}, std::nullopt).matches_ptr);
}

TEST_CASE("judge_helo: forward lookup results") {
  const auto conn = ip("192.0.2.10");
  const auto f = classify_helo("mail.example.com");
  struct Case {
    std::optional<std::vector<IpAddress>> addresses;
    std::optional<bool> resolves;
    bool resolves_to_ip;
  };
  const std::vector<Case> cases{
      {std::nullopt, std::nullopt, false},
      {std::vector<IpAddress>{}, false, false},
      {std::vector<IpAddress>{ip("192.0.2.11")}, true, false},
      {std::vector<IpAddress>{ip("192.0.2.11"), ip("192.0.2.10")}, true, true},
      {std::vector<IpAddress>{ip("2001:db8::1"), ip("192.0.2.10")}, true, true},
      {std::vector<IpAddress>{ip("::ffff:192.0.2.10")}, true, true},
      {std::vector<IpAddress>{ip("2001:db8::1")}, true, false},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(i);
    const auto j = judge_helo(f, conn, {}, cases[i].addresses);
    CHECK(j.resolves == cases[i].resolves);
    CHECK(j.resolves_to_ip == cases[i].resolves_to_ip);
    CHECK_FALSE(j.literal_mismatch);
  }
  // IPv6 connection.
  const auto j = judge_helo(f, ip("2001:db8::25"), {},
                            std::vector<IpAddress>{ip("192.0.2.25"), ip("2001:db8::25")});
  CHECK(j.resolves_to_ip);
  // Empty and invalid HELO: nothing to look up.
  for (const char* helo : {"", "my_host.example"}) {
    const auto e =
        judge_helo(classify_helo(helo), conn, {"mail.example.com"}, std::vector<IpAddress>{conn});
    CHECK_FALSE(e.resolves);
    CHECK_FALSE(e.resolves_to_ip);
    CHECK_FALSE(e.matches_ptr);
    CHECK_FALSE(e.literal_mismatch);
  }
}

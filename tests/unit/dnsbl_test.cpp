// DNSBL answer interpretation (RFC 5782), reason sanitising, query names and JSON.
#include "responder/analysis/dnsbl.hpp"

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

std::vector<IpAddress> ips(std::initializer_list<const char*> texts) {
  std::vector<IpAddress> out;
  for (const char* t : texts) out.push_back(ip(t));
  return out;
}

}  // namespace

TEST_CASE("interpret_dnsbl_answers: boundaries of 127/8 and the refusal codes") {
  struct Case {
    std::vector<IpAddress> records;
    DnsblOutcome want;
  };
  const std::vector<Case> cases{
      {{}, DnsblOutcome::not_listed},
      {ips({"127.0.0.2"}), DnsblOutcome::listed},
      {ips({"127.0.0.3"}), DnsblOutcome::listed},
      {ips({"127.0.0.0"}), DnsblOutcome::listed},
      {ips({"127.0.1.2"}), DnsblOutcome::listed},
      {ips({"127.0.0.255"}), DnsblOutcome::listed},
      {ips({"127.255.254.255"}), DnsblOutcome::listed},
      {ips({"127.254.255.1"}), DnsblOutcome::listed},
      {ips({"127.0.0.2", "127.0.0.4", "127.0.0.10"}), DnsblOutcome::listed},
      {ips({"127.0.0.1"}), DnsblOutcome::refused},
      {ips({"127.255.255.252"}), DnsblOutcome::refused},
      {ips({"127.255.255.254"}), DnsblOutcome::refused},
      {ips({"127.255.255.255"}), DnsblOutcome::refused},
      {ips({"127.255.255.0"}), DnsblOutcome::refused},
      {ips({"127.0.0.2", "127.255.255.254"}), DnsblOutcome::refused},
      {ips({"127.0.0.2", "127.0.0.1"}), DnsblOutcome::refused},
      {ips({"126.255.255.255"}), DnsblOutcome::invalid_answer},
      {ips({"128.0.0.0"}), DnsblOutcome::invalid_answer},
      {ips({"0.0.0.0"}), DnsblOutcome::invalid_answer},
      {ips({"192.0.2.1"}), DnsblOutcome::invalid_answer},
      {ips({"255.255.255.255"}), DnsblOutcome::invalid_answer},
      {ips({"::1"}), DnsblOutcome::invalid_answer},
      {ips({"::ffff:127.0.0.2"}), DnsblOutcome::listed},  // folded to IPv4 by IpAddress
      {ips({"2001:db8::2"}), DnsblOutcome::invalid_answer},
      {ips({"127.0.0.2", "192.0.2.1"}), DnsblOutcome::invalid_answer},
      {ips({"127.255.255.254", "203.0.113.5"}), DnsblOutcome::invalid_answer},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(i);
    CHECK(to_string(interpret_dnsbl_answers(cases[i].records)) == to_string(cases[i].want));
  }
}

TEST_CASE("sanitise_dnsbl_reason") {
  struct Case {
    std::vector<std::string> txt;
    std::string want;
  };
  const std::vector<Case> cases{
      {{}, ""},
      {{""}, ""},
      {{"   "}, ""},
      {{"Listed by example"}, "Listed by example"},
      {{"  Listed \t by\r\nexample  "}, "Listed by example"},
      {{"a", "b"}, "a; b"},
      {{"a", "", "b"}, "a; b"},
      {{"a", "a", "b", "a"}, "a; b"},
      {{"caf\xc3\xa9"}, "caf??"},
      {{std::string("a\0b", 3)}, "a b"},
      {{"\x1b[31mred"}, "[31mred"},
      {{"x\x7fy"}, "x y"},
      {{"https://example.test/lookup?ip=192.0.2.1"}, "https://example.test/lookup?ip=192.0.2.1"},
      {{"~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./"}, "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(i);
    CHECK(sanitise_dnsbl_reason(cases[i].txt) == cases[i].want);
  }
}

TEST_CASE("sanitise_dnsbl_reason: the 300-byte limit") {
  const std::string exact(kMaxDnsblReason, 'x');
  CHECK(sanitise_dnsbl_reason({exact}) == exact);

  const std::string over(kMaxDnsblReason + 1, 'x');
  auto got = sanitise_dnsbl_reason({over});
  CHECK(got.size() == kMaxDnsblReason);
  CHECK(got == std::string(kMaxDnsblReason - 3, 'x') + "...");

  got = sanitise_dnsbl_reason({std::string(100000, '\xff')});
  CHECK(got.size() == kMaxDnsblReason);

  // The limit applies to the joined text.
  got = sanitise_dnsbl_reason({std::string(200, 'a'), std::string(200, 'b')});
  CHECK(got.size() == kMaxDnsblReason);
  CHECK(got.substr(0, 202) == std::string(200, 'a') + "; ");
  CHECK(got.substr(got.size() - 3) == "...");

  // 149 + 2 + 149 = 300 exactly: not cut.
  got = sanitise_dnsbl_reason({std::string(149, 'a'), std::string(149, 'b')});
  CHECK(got.size() == 300);
  CHECK(got.find("...") == std::string::npos);

  // Many small records.
  got = sanitise_dnsbl_reason(std::vector<std::string>(1000, "r"));
  CHECK(got == "r");
  std::vector<std::string> distinct;
  for (int i = 0; i < 1000; ++i) distinct.push_back(std::to_string(i));
  got = sanitise_dnsbl_reason(distinct);
  CHECK(got.size() == kMaxDnsblReason);
  for (char c : got) CHECK((c >= 0x20 && c <= 0x7e));
}

TEST_CASE("dnsbl_query_name") {
  struct Case {
    const char* ip;
    std::string zone;
    std::string want;
  };
  const std::string v6_prefix = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.";
  const std::string label(63, 'z');
  const std::string zone189 = label + "." + label + "." + std::string(61, 'z');  // 189 bytes
  const std::string zone190 = label + "." + label + "." + std::string(62, 'z');
  const std::vector<Case> cases{
      {"192.0.2.1", "zen.example", "1.2.0.192.zen.example"},
      {"192.0.2.1", "ZEN.Example.", "1.2.0.192.zen.example"},
      {"127.0.0.2", "bl.example.test", "2.0.0.127.bl.example.test"},
      {"2001:db8::1", "bl.example", v6_prefix + "bl.example"},
      {"2001:db8::1", zone189, v6_prefix + zone189},
      {"2001:db8::1", zone190, ""},
      {"192.0.2.1", "", ""},
      {"192.0.2.1", ".", ""},
      {"192.0.2.1", ".zen.example", ""},
      {"192.0.2.1", "zen..example", ""},
      {"192.0.2.1", "zen.example\n", ""},
      {"192.0.2.1", "zen example", ""},
      {"192.0.2.1", "192.0.2.2", ""},
  };
  for (const auto& c : cases) {
    CAPTURE(c.ip);
    CAPTURE(c.zone);
    CHECK(dnsbl_query_name(ip(c.ip), c.zone) == c.want);
  }
}

TEST_CASE("to_json") {
  DnsblResult r{"zen.example", DnsblOutcome::listed, {"127.0.0.2", "127.0.0.4"}, "Listed"};
  auto j = to_json(r);
  CHECK(j == nlohmann::json::parse(R"({"zone":"zen.example","listed":true,
      "answers":["127.0.0.2","127.0.0.4"],"reason":"Listed","status":"listed"})"));

  for (auto outcome : {DnsblOutcome::not_listed, DnsblOutcome::refused,
                       DnsblOutcome::invalid_answer, DnsblOutcome::error}) {
    r.outcome = outcome;
    j = to_json(r);
    CHECK(j["listed"] == false);
    CHECK(j["status"] == std::string(to_string(outcome)));
  }
  CHECK(to_string(DnsblOutcome::not_listed) == "not_listed");
  CHECK(to_string(DnsblOutcome::refused) == "refused");
  CHECK(to_string(DnsblOutcome::invalid_answer) == "invalid_answer");
  CHECK(to_string(DnsblOutcome::error) == "error");

  // Empty answers are an empty array, not null; bytes that are not printable ASCII cannot
  // make the dump fail.
  DnsblResult bad{"z\xff.example", DnsblOutcome::not_listed, {}, "bad \xc3("};
  j = to_json(bad);
  CHECK(j["answers"].is_array());
  CHECK(j["answers"].empty());
  CHECK(j["zone"] == "z?.example");
  CHECK(j["reason"] == "bad ?(");
  CHECK_NOTHROW((void)j.dump());
}

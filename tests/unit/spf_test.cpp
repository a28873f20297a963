// SPF evaluation (RFC 7208) against answers from a table: every mechanism, the limits, the
// results, the rounds of questions, the JSON and the hints.
#include "responder/analysis/spf.hpp"

#include <doctest/doctest.h>

#include "dns_test_support.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;
using ipconfirm::responder::test::DriveLog;
using ipconfirm::responder::test::TestZone;

namespace {

SpfInput input(const char* ip, const char* mail_from = "alice@example.org",
               const char* helo = "mail.example.org") {
  SpfInput in;
  in.ip = *IpAddress::parse(ip);
  in.mail_from = mail_from;
  in.helo = helo;
  in.receiver = "mx.example.test";
  in.now = 1700000000;
  return in;
}

SpfVerdict run(const TestZone& zone, const SpfInput& in,
               SpfIdentity identity = SpfIdentity::mail_from, DriveLog* log = nullptr) {
  return test::drive(
      zone, [&](const DnsSource& dns) { return check_spf(in, identity, dns); }, log);
}

SpfResult result(const TestZone& zone, const char* ip, const char* from = "alice@example.org") {
  return run(zone, input(ip, from)).result;
}

bool has_hint(const std::vector<Hint>& hints, const std::string& code,
              const std::string& text_part = "") {
  for (const auto& h : hints)
    if (h.code == code && h.text.find(text_part) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("spf: qualifiers give pass, fail, softfail, neutral; no match is neutral") {
  TestZone z;
  z.txt("pass.example", "v=spf1 +ip4:192.0.2.1 -all")
      .txt("fail.example", "v=spf1 ip4:192.0.2.99 -all")
      .txt("soft.example", "v=spf1 ~all")
      .txt("neutral.example", "v=spf1 ?all")
      .txt("default.example", "v=spf1 ip4:198.51.100.0/24");
  CHECK(result(z, "192.0.2.1", "a@pass.example") == SpfResult::pass);
  CHECK(result(z, "192.0.2.1", "a@fail.example") == SpfResult::fail);
  CHECK(result(z, "192.0.2.1", "a@soft.example") == SpfResult::softfail);
  CHECK(result(z, "192.0.2.1", "a@neutral.example") == SpfResult::neutral);
  const auto d = run(z, input("192.0.2.1", "a@default.example"));
  CHECK(d.result == SpfResult::neutral);
  CHECK(d.mechanism.empty());
}

TEST_CASE("spf: none when there is no record, the domain does not exist, or is not a domain") {
  TestZone z;
  z.txt("example.org", "google-site-verification=abc").a("nxd.example", "192.0.2.9");
  auto v = run(z, input("192.0.2.1"));
  CHECK(v.result == SpfResult::none);
  CHECK(v.problem.find("publishes no SPF record") != std::string::npos);
  v = run(z, input("192.0.2.1", "a@missing.example"));
  CHECK(v.result == SpfResult::none);
  CHECK(v.problem.find("NXDOMAIN") != std::string::npos);
  CHECK(run(z, input("192.0.2.1", "a@[192.0.2.1]")).result == SpfResult::none);
  CHECK(run(z, input("192.0.2.1", "a@singlelabel")).result == SpfResult::none);
  const std::string long_label = "a@" + std::string(64, 'x') + ".example";
  CHECK(run(z, input("192.0.2.1", long_label.c_str())).result == SpfResult::none);
  CHECK(has_hint(spf_hints(v), "spf-none", "Publish a TXT record at missing.example"));
}

TEST_CASE("spf: two SPF records are a permerror; other TXT records do not count") {
  TestZone z;
  z.txt("example.org", "v=spf1 -all").txt("example.org", "V=SPF1 +all").txt("example.org", "x");
  const auto v = run(z, input("192.0.2.1"));
  CHECK(v.result == SpfResult::permerror);
  CHECK(v.spf_records == 2);
  CHECK(has_hint(spf_hints(v), "spf-permerror", "There are 2 SPF records at example.org"));
}

TEST_CASE("spf: a, with and without a domain and CIDR lengths, by address family") {
  TestZone z;
  z.txt("example.org", "v=spf1 a -all")
      .a("example.org", "192.0.2.10")
      .a("example.org", "2001:db8::10")
      .txt("net.example", "v=spf1 a:hosts.example/24//64 -all")
      .a("hosts.example", "198.51.100.7")
      .a("hosts.example", "2001:db8:1:2::7");
  CHECK(result(z, "192.0.2.10") == SpfResult::pass);
  CHECK(result(z, "2001:db8::10") == SpfResult::pass);
  CHECK(result(z, "192.0.2.11") == SpfResult::fail);
  CHECK(result(z, "198.51.100.200", "a@net.example") == SpfResult::pass);
  CHECK(result(z, "198.51.101.1", "a@net.example") == SpfResult::fail);
  CHECK(result(z, "2001:db8:1:2:ffff::1", "a@net.example") == SpfResult::pass);
  CHECK(result(z, "2001:db8:1:3::1", "a@net.example") == SpfResult::fail);
  // An IPv4 connection asks only for A records.
  DriveLog log;
  run(z, input("192.0.2.10"), SpfIdentity::mail_from, &log);
  CHECK(log.asked("example.org", RrType::a));
  CHECK_FALSE(log.asked("example.org", RrType::aaaa));
}

TEST_CASE("spf: mx asks every exchange's address at once, in preference order") {
  TestZone z;
  z.txt("example.org", "v=spf1 mx -all")
      .mx("example.org", 20, "mx2.example.org")
      .mx("example.org", 10, "mx1.example.org")
      .mx("example.org", 30, ".")  // a null MX entry is skipped
      .a("mx1.example.org", "192.0.2.1")
      .a("mx2.example.org", "192.0.2.2");
  DriveLog log;
  const auto v = run(z, input("192.0.2.2"), SpfIdentity::mail_from, &log);
  CHECK(v.result == SpfResult::pass);
  CHECK(v.mechanism == "mx");
  REQUIRE(log.rounds.size() == 3);  // TXT; MX; both A lookups together
  CHECK(log.rounds[2].size() == 2);
  CHECK(result(z, "192.0.2.3") == SpfResult::fail);
}

TEST_CASE("spf: mx with more than 10 hosts is a permerror; a host that times out, temperror") {
  TestZone z;
  z.txt("many.example", "v=spf1 mx -all");
  for (int i = 0; i < 11; ++i)
    z.mx("many.example", static_cast<std::uint16_t>(i), "mx" + std::to_string(i) + ".many.example");
  auto v = run(z, input("192.0.2.1", "a@many.example"));
  CHECK(v.result == SpfResult::permerror);
  CHECK(v.problem.find("lists 11 hosts") != std::string::npos);

  z.txt("slow.example", "v=spf1 mx -all")
      .mx("slow.example", 10, "mx1.slow.example")
      .mx("slow.example", 20, "mx2.slow.example")
      .timeout("mx1.slow.example", RrType::a)
      .a("mx2.slow.example", "192.0.2.2");
  CHECK(result(z, "192.0.2.2", "a@slow.example") == SpfResult::pass);  // a match is a match
  v = run(z, input("192.0.2.3", "a@slow.example"));
  CHECK(v.result == SpfResult::temperror);
  CHECK(v.problem.find("mx1.slow.example") != std::string::npos);
  CHECK(has_hint(spf_hints(v), "spf-temperror"));
}

TEST_CASE("spf: ptr matches validated names under the target only") {
  const auto ip = *IpAddress::parse("192.0.2.5");
  TestZone z;
  z.txt("example.org", "v=spf1 ptr -all")
      .txt("other.example", "v=spf1 ptr:example.org -all")
      .ptr(ip, "mail.example.org.")
      .ptr(ip, "forged.example.org")
      .a("mail.example.org", "192.0.2.5")
      .a("forged.example.org", "198.51.100.1");
  CHECK(result(z, "192.0.2.5") == SpfResult::pass);
  CHECK(result(z, "192.0.2.5", "a@other.example") == SpfResult::pass);
  CHECK(result(z, "192.0.2.6") == SpfResult::fail);  // no PTR record at all

  // A PTR name that does not point back is not validated.
  const auto ip7 = *IpAddress::parse("192.0.2.7");
  z.ptr(ip7, "forged.example.org");
  CHECK(result(z, "192.0.2.7") == SpfResult::fail);

  TestZone t;
  t.txt("example.org", "v=spf1 ptr ?all").timeout(ip.reverse_name(), RrType::ptr);
  CHECK(result(t, "192.0.2.5") == SpfResult::neutral);  // a PTR error makes ptr not match
}

TEST_CASE("spf: exists asks for A even for an IPv6 connection") {
  TestZone z;
  z.txt("example.org", "v=spf1 exists:%{ir}.%{v}.allow.example.org -all")
      .a("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.allow.example.org",
         "127.0.0.2")
      .a("1.2.0.192.in-addr.allow.example.org", "127.0.0.2");
  CHECK(result(z, "2001:db8::1") == SpfResult::pass);
  CHECK(result(z, "192.0.2.1") == SpfResult::pass);
  CHECK(result(z, "192.0.2.2") == SpfResult::fail);
}

TEST_CASE("spf: include maps the included result, none to permerror") {
  TestZone z;
  z.txt("example.org", "v=spf1 include:_spf.provider.example -all")
      .txt("_spf.provider.example", "v=spf1 ip4:192.0.2.0/24 ~all")
      .txt("noinc.example", "v=spf1 include:nothing.example -all")
      .txt("tmp.example", "v=spf1 include:slow.example -all")
      .timeout("slow.example", RrType::txt);
  auto v = run(z, input("192.0.2.8"));
  CHECK(v.result == SpfResult::pass);
  CHECK(v.mechanism == "include:_spf.provider.example");
  CHECK(v.matched_domain == "_spf.provider.example");
  CHECK(v.matched_term == "ip4:192.0.2.0/24");
  REQUIRE(v.chain.size() == 2);
  CHECK(v.chain[1].via == "include:_spf.provider.example");
  CHECK(v.chain[1].depth == 1);
  CHECK(result(z, "198.51.100.1") == SpfResult::fail);  // included softfail: no match
  v = run(z, input("192.0.2.8", "a@noinc.example"));
  CHECK(v.result == SpfResult::permerror);
  CHECK(v.problem.find("nothing.example publishes no SPF record") != std::string::npos);
  CHECK(result(z, "192.0.2.8", "a@tmp.example") == SpfResult::temperror);
}

TEST_CASE("spf: redirect applies only when nothing matched, and its target's exp") {
  TestZone z;
  z.txt("example.org", "v=spf1 ip4:198.51.100.1 exp=top.example.org redirect=_spf.example.org")
      .txt("_spf.example.org", "v=spf1 ip4:192.0.2.0/24 -all exp=why.example.org")
      .txt("why.example.org", "%{i} is not one of %{d}'s servers")
      .txt("top.example.org", "never used")
      .txt("broken.example", "v=spf1 redirect=none.example");
  auto v = run(z, input("198.51.100.1"));
  CHECK(v.result == SpfResult::pass);
  CHECK(v.mechanism == "ip4:198.51.100.1");
  v = run(z, input("192.0.2.7"));
  CHECK(v.result == SpfResult::pass);
  CHECK(v.mechanism == "redirect=_spf.example.org");
  v = run(z, input("203.0.113.9"));
  CHECK(v.result == SpfResult::fail);
  CHECK(v.explanation == "203.0.113.9 is not one of _spf.example.org's servers");
  CHECK(v.matched_domain == "_spf.example.org");
  CHECK(has_hint(spf_hints(v), "spf-fail",
                 "Add `ip4:203.0.113.9` to the SPF record of _spf.example.org"));
  v = run(z, input("192.0.2.7", "a@broken.example"));
  CHECK(v.result == SpfResult::permerror);
  CHECK(v.problem.find("none.example publishes no SPF record") != std::string::npos);
}

TEST_CASE("spf: exp is expanded with c, r, t and ignored when unusable") {
  TestZone z;
  z.txt("example.org", "v=spf1 -all exp=exp.example.org")
      .txt("exp.example.org", "%{c} refused by %{r} at %{t} for %{l}@%{o}")
      .txt("two.example", "v=spf1 -all exp=twoexp.example")
      .txt("twoexp.example", "one")
      .txt("twoexp.example", "two")
      .txt("bad.example", "v=spf1 -all exp=badexp.example")
      .txt("badexp.example", "The %{x}-files.")
      .txt("slow.example", "v=spf1 -all exp=slowexp.example")
      .timeout("slowexp.example", RrType::txt)
      .txt("soft.example", "v=spf1 ~all exp=exp.example.org");
  CHECK(run(z, input("2001:db8::1")).explanation ==
        "2001:db8::1 refused by mx.example.test at 1700000000 for alice@example.org");
  for (const char* from : {"a@two.example", "a@bad.example", "a@slow.example"}) {
    const auto v = run(z, input("192.0.2.1", from));
    CHECK(v.result == SpfResult::fail);
    CHECK(v.explanation.empty());
  }
  DriveLog log;
  const auto soft = run(z, input("192.0.2.1", "a@soft.example"), SpfIdentity::mail_from, &log);
  CHECK(soft.result == SpfResult::softfail);
  CHECK(soft.explanation.empty());
  CHECK_FALSE(log.asked("exp.example.org", RrType::txt));  // only a fail looks exp up
}

TEST_CASE("spf: the %{p} macro uses a validated PTR name, preferring the domain's own") {
  const auto ip = *IpAddress::parse("192.0.2.42");
  TestZone z;
  z.txt("example.org", "v=spf1 exists:%{p}.ok.example.net -all")
      .ptr(ip, "host.other.example")
      .ptr(ip, "mx.example.org")
      .a("host.other.example", "192.0.2.42")
      .a("mx.example.org", "192.0.2.42")
      .a("mx.example.org.ok.example.net", "127.0.0.2");
  CHECK(result(z, "192.0.2.42") == SpfResult::pass);
  CHECK(result(z, "192.0.2.43") == SpfResult::fail);  // "unknown.ok.example.net"
}

TEST_CASE("spf: the limit of 10 DNS terms, counted through includes") {
  TestZone z;
  z.txt("ten.example", "v=spf1 a mx a mx a mx a mx a include:inc.example ip4:192.0.2.1 -all")
      .a("ten.example", "198.51.100.1")
      .mx("ten.example", 10, "mx.ten.example")
      .a("mx.ten.example", "198.51.100.2")
      .txt("inc.example", "v=spf1 -all")
      .txt("eleven.example",
           "v=spf1 include:big.example include:small.example a ip4:192.0.2.1 -all")
      .txt("big.example", "v=spf1 a a a a a a include:small.example")
      .a("big.example", "198.51.100.3")
      .txt("small.example", "v=spf1 a")
      .a("small.example", "198.51.100.4");
  auto v = run(z, input("192.0.2.1", "a@ten.example"));
  CHECK(v.result == SpfResult::pass);
  CHECK(v.dns_lookups == 10);
  v = run(z, input("192.0.2.1", "a@eleven.example"));
  CHECK(v.result == SpfResult::permerror);
  CHECK(v.lookup_limit_exceeded);
  CHECK(v.dns_lookups == 11);
  CHECK(v.problem.find("passed at 'a' in the SPF record of small.example") != std::string::npos);
  REQUIRE(v.term_costs.size() == 2);
  CHECK(v.term_costs[0].term == "include:big.example");
  CHECK(v.term_costs[0].lookups == 9);
  CHECK(v.term_costs[1].term == "include:small.example");
  CHECK(v.term_costs[1].lookups == 2);
  CHECK(has_hint(spf_hints(v), "spf-permerror", "`include:big.example` 9"));
}

TEST_CASE("spf: more than two void lookups is a permerror; exp= does not count") {
  TestZone z;
  z.txt("two.example", "v=spf1 a:nx1.example mx:nx2.example exp=nx3.example -all")
      .txt("three.example", "v=spf1 a:nx1.example mx:nx2.example exists:nx3.example ?all");
  auto v = run(z, input("192.0.2.1", "a@two.example"));
  CHECK(v.result == SpfResult::fail);
  CHECK(v.void_lookups == 2);
  v = run(z, input("192.0.2.1", "a@three.example"));
  CHECK(v.result == SpfResult::permerror);
  CHECK(v.void_limit_exceeded);
  CHECK(has_hint(spf_hints(v), "spf-permerror", "More than 2 such lookups"));
}

TEST_CASE("spf: DNS failures of the record lookup are temperror") {
  TestZone z;
  z.timeout("example.org", RrType::txt);
  const auto v = run(z, input("192.0.2.1"));
  CHECK(v.result == SpfResult::temperror);
  CHECK(v.problem == "TXT lookup of example.org: timeout");
}

TEST_CASE("spf: independent lookups of a record are asked in one round, within the limit") {
  TestZone z;
  z.txt("example.org", "v=spf1 include:a.example include:b.example include:c.example mx -all")
      .txt("a.example", "v=spf1 ip4:198.51.100.1")
      .txt("b.example", "v=spf1 ip4:198.51.100.2")
      .txt("c.example", "v=spf1 ip4:192.0.2.1");
  DriveLog log;
  const auto v = run(z, input("192.0.2.1"), SpfIdentity::mail_from, &log);
  CHECK(v.result == SpfResult::pass);
  CHECK(v.mechanism == "include:c.example");
  REQUIRE(log.rounds.size() == 2);
  CHECK(log.rounds[1].size() == 4);  // three TXT and the MX, together
}

TEST_CASE("spf: identities: HELO, the null path, a missing local part, U-labels") {
  TestZone z;
  z.txt("mail.example.org", "v=spf1 a -all")
      .a("mail.example.org", "192.0.2.1")
      .txt("example.org", "v=spf1 -all exp=e.example.org")
      .txt("e.example.org", "%{l}")
      .txt("xn--bcher-kva.example", "v=spf1 ip4:192.0.2.1 -all");
  auto v = run(z, input("192.0.2.1"), SpfIdentity::helo);
  CHECK(v.result == SpfResult::pass);
  CHECK(v.domain == "mail.example.org");
  CHECK(v.sender == "postmaster@mail.example.org");
  v = run(z, input("192.0.2.1", ""));
  CHECK(v.result == SpfResult::pass);
  CHECK(v.domain == "mail.example.org");
  CHECK(run(z, input("192.0.2.1", "@example.org")).explanation == "postmaster");
  v = run(z, input("192.0.2.1",
                   "anna@b\xc3\xbc"
                   "cher.example"));
  CHECK(v.result == SpfResult::pass);
  CHECK(v.domain == "xn--bcher-kva.example");
  CHECK(run(z, input("192.0.2.1", "x@y", "[192.0.2.1]"), SpfIdentity::helo).result ==
        SpfResult::none);
}

TEST_CASE("spf: names no query can carry are not asked; a, mx, exists do not match") {
  TestZone z;
  z.txt("example.org", "v=spf1 a:mail.example...org exists:%{l}.example.org ?all");
  DriveLog log;
  const auto v = run(z, input("192.0.2.1", "x@example.org"), SpfIdentity::mail_from, &log);
  CHECK(v.result == SpfResult::neutral);
  CHECK_FALSE(v.notes.empty());
  for (const auto& round : log.rounds)
    for (const auto& q : round) CHECK(q.name.find("..") == std::string::npos);
}

TEST_CASE("spf: JSON carries the contract's fields, record bytes made printable") {
  TestZone z;
  z.txt("example.org", "v=spf1 include:_spf.example.org -all")
      .txt("_spf.example.org", "v=spf1 ip4:192.0.2.0/24");
  const auto v = run(z, input("192.0.2.1"));
  const auto j = to_json(v);
  CHECK(j["result"] == "pass");
  CHECK(j["domain"] == "example.org");
  CHECK(j["record"] == "v=spf1 include:_spf.example.org -all");
  CHECK(j["mechanism"] == "include:_spf.example.org");
  CHECK(j["dns_lookups"] == 1);
  CHECK(j["void_lookups"] == 0);
  CHECK(j["explanation"] == "");
  CHECK(j["identity"] == "mail_from");
  CHECK(j["matched"]["term"] == "ip4:192.0.2.0/24");
  CHECK(j["chain"].size() == 2);
  const std::vector<std::string> keys = {"result",      "domain",       "record",     "mechanism",
                                         "dns_lookups", "void_lookups", "explanation"};
  auto it = j.begin();
  for (const auto& k : keys) CHECK((it++).key() == k);

  TestZone bad;
  bad.txt("example.org", "v=spf1 a:\x96.example.org -all");
  const auto b = run(bad, input("192.0.2.1"));
  CHECK(b.result == SpfResult::permerror);
  CHECK(to_json(b).dump().find("\\u") == std::string::npos);
  CHECK(to_json(b)["record"] == "v=spf1 a:?.example.org -all");
}

TEST_CASE("spf hints: what to add where, per result and identity") {
  TestZone z;
  z.txt("example.org", "v=spf1 ip4:198.51.100.1 ~all")
      .txt("open.example", "v=spf1 +all")
      .txt("mail.example.org", "v=spf1 -all");
  auto v = run(z, input("2001:db8::7"));
  CHECK(has_hint(spf_hints(v), "spf-softfail",
                 "Add `ip6:2001:db8::7` to the SPF record of example.org"));
  v = run(z, input("192.0.2.1", "a@open.example"));
  CHECK(v.result == SpfResult::pass);
  CHECK(has_hint(spf_hints(v), "spf-pass-all"));
  v = run(z, input("192.0.2.1"), SpfIdentity::helo);
  CHECK(v.result == SpfResult::fail);
  const auto hints = spf_hints(v);
  REQUIRE(hints.size() == 1);
  CHECK(hints[0].code == "spf-helo-fail");
  CHECK(hints[0].severity == "warning");
  SpfVerdict incomplete;
  CHECK(spf_hints(incomplete).empty());
}

TEST_CASE("spf: ip6 matches IPv6 connections only; an IPv4-mapped peer is IPv4") {
  TestZone z;
  z.txt("example.org", "v=spf1 ip6:2001:db8:1::/48 ip4:192.0.2.0/24 -all");
  CHECK(result(z, "2001:db8:1:ffff::9") == SpfResult::pass);
  CHECK(result(z, "2001:db8:2::9") == SpfResult::fail);
  CHECK(result(z, "::ffff:192.0.2.9") == SpfResult::pass);  // matched by ip4:
  const auto v = run(z, input("::ffff:192.0.2.9"));
  CHECK(v.mechanism == "ip4:192.0.2.0/24");
}

TEST_CASE("spf: ptr looks at the first 10 PTR names only") {
  const auto ip = *IpAddress::parse("192.0.2.5");
  TestZone z;
  z.txt("example.org", "v=spf1 ptr ?all");
  for (int i = 0; i < 10; ++i) z.ptr(ip, "h" + std::to_string(i) + ".other.example");
  z.ptr(ip, "mail.example.org").a("mail.example.org", "192.0.2.5");
  DriveLog log;
  const auto v = run(z, input("192.0.2.5"), SpfIdentity::mail_from, &log);
  CHECK(v.result == SpfResult::neutral);
  CHECK_FALSE(log.asked("mail.example.org", RrType::a));
}

TEST_CASE("spf: include and redirect loops end at the lookup limit") {
  TestZone z;
  z.txt("example.org", "v=spf1 include:loop.example -all")
      .txt("loop.example", "v=spf1 include:example.org")
      .txt("self.example", "v=spf1 redirect=self.example");
  auto v = run(z, input("192.0.2.1"));
  CHECK(v.result == SpfResult::permerror);
  CHECK(v.lookup_limit_exceeded);
  CHECK(v.chain.size() == 11);
  v = run(z, input("192.0.2.1", "a@self.example"));
  CHECK(v.result == SpfResult::permerror);
  CHECK(v.lookup_limit_exceeded);
}

TEST_CASE("spf: a provider's nested includes take one round per level") {
  // The shape of a large mail provider's record: an include whose record includes three more.
  TestZone z;
  z.txt("example.com", "v=spf1 include:_spf.provider.example ~all")
      .txt("_spf.provider.example",
           "v=spf1 include:_nb1.provider.example include:_nb2.provider.example "
           "include:_nb3.provider.example ~all")
      .txt("_nb1.provider.example", "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8:1::/48 ~all")
      .txt("_nb2.provider.example", "v=spf1 ip4:203.0.113.0/24 ~all")
      .txt("_nb3.provider.example", "v=spf1 ip4:192.0.2.0/24 ~all");
  DriveLog log;
  const auto v = run(z, input("192.0.2.33", "a@example.com"), SpfIdentity::mail_from, &log);
  CHECK(v.result == SpfResult::pass);
  CHECK(v.dns_lookups == 4);
  CHECK(log.rounds.size() == 3);  // example.com; _spf; the three netblocks together
  CHECK(log.questions() == 5);
}

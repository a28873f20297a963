// DMARC (RFC 9989): the record's tags, the DNS Tree Walk for the policy and the
// Organizational Domain, alignment, results, the policy that applies, JSON and hints.
#include "responder/analysis/dmarc.hpp"

#include <doctest/doctest.h>

#include "dns_test_support.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;
using ipconfirm::responder::test::DriveLog;
using ipconfirm::responder::test::TestZone;

namespace {

DmarcInput input(const std::string& from, bool spf_pass = false, const std::string& spf = "",
                 std::vector<DmarcDkimInput> dkim = {}) {
  DmarcInput in;
  in.from_fields = {from};
  in.spf_pass = spf_pass;
  in.spf_domain = spf;
  in.dkim = std::move(dkim);
  return in;
}

DmarcVerdict run(const TestZone& zone, const DmarcInput& in, DriveLog* log = nullptr) {
  return test::drive(
      zone, [&](const DnsSource& dns) { return check_dmarc(in, dns); }, log);
}

bool has_hint(const std::vector<Hint>& hints, const std::string& code,
              const std::string& text_part = "") {
  for (const auto& h : hints)
    if (h.code == code && h.text.find(text_part) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("dmarc record: tags, defaults and what is ignored") {
  auto r = parse_dmarc_record(
      "v=DMARC1; p=reject; sp=quarantine; np=reject; adkim=s; aspf=r; psd=n; t=y; "
      "rua=mailto:d@example.org,mailto:e@example.net!10m; ruf=mailto:f@example.org; fo=1");
  REQUIRE(r);
  CHECK(r->p == DmarcPolicy::reject);
  CHECK(r->sp == DmarcPolicy::quarantine);
  CHECK(r->np == DmarcPolicy::reject);
  CHECK(r->adkim_strict);
  CHECK_FALSE(r->aspf_strict);
  CHECK(r->psd == 'n');
  CHECK(r->testing);
  CHECK(r->rua_valid);
  CHECK(r->rua.size() == 2);
  CHECK(r->problems.empty());

  r = parse_dmarc_record("v=DMARC1");
  REQUIRE(r);
  CHECK_FALSE(r->p);
  CHECK_FALSE(r->adkim_strict);
  CHECK(r->psd == 'u');
  CHECK_FALSE(r->testing);

  r = parse_dmarc_record("v = DMARC1 ;P=Reject ; pct=50; ri=3600; rf=afrf; foo=bar;;");
  REQUIRE(r);
  CHECK(r->p == DmarcPolicy::reject);
  CHECK(r->removed_tags == std::vector<std::string>{"pct", "ri", "rf"});

  r = parse_dmarc_record("v=DMARC1; p=bogus; adkim=x; psd=maybe; t=1; rua=not a uri; p=none");
  REQUIRE(r);
  CHECK_FALSE(r->p);
  CHECK(r->p_invalid);
  CHECK_FALSE(r->adkim_strict);
  CHECK(r->psd == 'u');
  CHECK_FALSE(r->testing);
  CHECK_FALSE(r->rua_valid);
  CHECK(r->problems.size() == 6);  // p, adkim, psd, t, rua, the second p

  // Not DMARC records: discarded.
  CHECK_FALSE(parse_dmarc_record("v=dmarc1; p=none"));  // "DMARC1" is case-sensitive
  CHECK_FALSE(parse_dmarc_record("p=none; v=DMARC1"));  // v= must come first
  CHECK_FALSE(parse_dmarc_record("v=DMARC1 p=none"));   // ';' needed after the version
  CHECK_FALSE(parse_dmarc_record("v=DMARC10"));
  CHECK_FALSE(parse_dmarc_record(" v=DMARC1"));
  CHECK_FALSE(parse_dmarc_record("v=spf1 -all"));
  CHECK(parse_dmarc_record("V=DMARC1;"));
}

TEST_CASE("dmarc: a record at the From domain, aligned SPF and DKIM") {
  TestZone z;
  z.txt("_dmarc.example.org", "v=DMARC1; p=reject").a("example.org", "192.0.2.1");
  auto v = run(z, input("Alice <alice@Example.org>", true, "example.org"));
  CHECK(v.result == DmarcResult::pass);
  CHECK(v.from_domain == "example.org");
  CHECK(v.policy_domain == "example.org");
  CHECK(v.org_domain == "example.org");
  CHECK(v.policy == DmarcPolicy::reject);
  CHECK(v.policy_tag == "p");
  CHECK(v.spf_aligned);
  CHECK_FALSE(v.dkim_aligned);
  CHECK(v.disposition == DmarcPolicy::none);

  v = run(z,
          input("alice@example.org", false, "", {{false, "example.org"}, {true, "example.org"}}));
  CHECK(v.result == DmarcResult::pass);
  CHECK(v.dkim_aligned);
  CHECK(v.aligned_dkim_domain == "example.org");

  v = run(z, input("alice@example.org", true, "other.example", {{false, "example.org"}}));
  CHECK(v.result == DmarcResult::fail);
  CHECK(v.disposition == DmarcPolicy::reject);
  CHECK(has_hint(dmarc_hints(v), "dmarc-fail", "SPF passed for other.example"));
  CHECK(has_hint(dmarc_hints(v), "dmarc-fail", "Receivers will reject it"));
}

TEST_CASE("dmarc: the walk finds the Organizational Domain's record; sp and np for subdomains") {
  TestZone z;
  z.txt("_dmarc.example.org", "v=DMARC1; p=reject; sp=quarantine; np=reject")
      .a("news.example.org", "192.0.2.1");
  DriveLog log;
  auto v = run(z, input("news@news.example.org"), &log);
  CHECK(v.result == DmarcResult::fail);
  CHECK(v.policy_domain == "example.org");
  CHECK(v.org_domain == "example.org");
  CHECK(v.policy_tag == "sp");
  CHECK(v.policy == DmarcPolicy::quarantine);
  CHECK(v.from_exists == true);
  REQUIRE(v.walk.size() == 3);
  CHECK(v.walk[0].name == "_dmarc.news.example.org");
  CHECK(v.walk[0].outcome == "no record (NXDOMAIN)");
  CHECK(v.walk[1].outcome == "record");
  CHECK(v.walk[2].name == "_dmarc.org");
  // One round: the whole walk and the existence question together.
  REQUIRE(log.rounds.size() == 1);
  CHECK(log.rounds[0].size() == 4);

  v = run(z, input("x@nowhere.example.org"));  // does not exist: np
  CHECK(v.from_exists == false);
  CHECK(v.policy_tag == "np");
  CHECK(v.policy == DmarcPolicy::reject);

  TestZone p;  // no sp, no np: p applies to subdomains
  p.txt("_dmarc.example.org", "v=DMARC1; p=quarantine");
  v = run(p, input("x@nowhere.example.org"));
  CHECK(v.policy_tag == "p");
  CHECK(v.policy == DmarcPolicy::quarantine);
}

TEST_CASE("dmarc: the shortest record wins without psd=; psd=n stops the walk") {
  TestZone z;
  z.txt("_dmarc.mail.example.com", "v=DMARC1; p=none")
      .txt("_dmarc.example.com", "v=DMARC1; p=reject");
  auto v = run(z, input("a@a.mail.example.com"));
  CHECK(v.org_domain == "example.com");  // RFC 9989 §4.10.2, first example
  CHECK(v.policy_domain == "example.com");
  CHECK(v.policy == DmarcPolicy::reject);

  z.txt("_dmarc.b.example.net", "v=DMARC1; p=none; psd=n")
      .txt("_dmarc.example.net", "v=DMARC1; p=reject");
  v = run(z, input("a@a.b.example.net"));
  CHECK(v.org_domain == "b.example.net");  // second example
  CHECK(v.policy == DmarcPolicy::none);
  REQUIRE(v.walk.size() == 2);  // stopped at psd=n
  CHECK(v.walk[1].outcome == "record (psd=n)");
}

TEST_CASE("dmarc: psd=y makes the name below it the Organizational Domain") {
  TestZone z;
  z.txt("_dmarc.com", "v=DMARC1; p=reject; psd=y");
  auto v = run(z, input("a@a.mail.example.com"));
  CHECK(v.org_domain == "example.com");  // third example of §4.10.2
  CHECK(v.policy_domain == "com");       // the PSD's record applies
  CHECK(v.policy == DmarcPolicy::reject);

  z.txt("_dmarc.example.com", "v=DMARC1; p=none");
  v = run(z, input("a@a.mail.example.com"));
  CHECK(v.org_domain == "example.com");
  CHECK(v.policy_domain == "example.com");  // the organization's own record wins
  CHECK(v.policy == DmarcPolicy::none);

  // psd=y at the start of the walk is the start's own record and Organizational Domain.
  TestZone s;
  s.txt("_dmarc.example", "v=DMARC1; p=reject; psd=y");
  v = run(s, input("a@example"));
  CHECK(v.policy_domain == "example");
  CHECK(v.org_domain == "example");
}

TEST_CASE("dmarc: a long From domain jumps to seven labels; at most eight queries") {
  TestZone z;
  z.txt("_dmarc.example.com", "v=DMARC1; p=quarantine");
  DriveLog log;
  const auto v = run(z, input("x@a.b.c.d.e.f.g.h.i.j.mail.example.com"), &log);
  CHECK(v.policy_domain == "example.com");
  const std::vector<std::string> expected = {"_dmarc.a.b.c.d.e.f.g.h.i.j.mail.example.com",
                                             "_dmarc.g.h.i.j.mail.example.com",
                                             "_dmarc.h.i.j.mail.example.com",
                                             "_dmarc.i.j.mail.example.com",
                                             "_dmarc.j.mail.example.com",
                                             "_dmarc.mail.example.com",
                                             "_dmarc.example.com",
                                             "_dmarc.com"};
  REQUIRE(v.walk.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) CHECK(v.walk[i].name == expected[i]);
  std::size_t txt = 0;
  for (const auto& r : log.rounds)
    for (const auto& q : r) txt += q.type == RrType::txt;
  CHECK(txt == 8);
}

TEST_CASE("dmarc: no record is none; two records at a name are ignored") {
  TestZone z;
  z.txt("_dmarc.example.org", "v=spf1 -all");
  auto v = run(z, input("a@example.org"));
  CHECK(v.result == DmarcResult::none);
  CHECK(v.policy_domain.empty());
  CHECK_FALSE(v.policy);
  CHECK(has_hint(dmarc_hints(v), "dmarc-none", "Publish a TXT record at _dmarc.example.org"));

  z.txt("_dmarc.two.example", "v=DMARC1; p=reject").txt("_dmarc.two.example", "v=DMARC1; p=none");
  v = run(z, input("a@two.example"));
  CHECK(v.result == DmarcResult::none);
  CHECK(v.walk[0].outcome.starts_with("2 records"));
  CHECK(has_hint(dmarc_hints(v), "dmarc-multiple-records", "_dmarc.two.example"));

  z.txt("_dmarc.sub.three.example", "v=DMARC1; p=none")
      .txt("_dmarc.sub.three.example", "v=DMARC1; p=none")
      .txt("_dmarc.three.example", "v=DMARC1; p=reject");
  v = run(z, input("a@sub.three.example"));  // the walk goes on past the ignored pair
  CHECK(v.policy_domain == "three.example");

  z.txt("_dmarc.near.example", "v=DMARC1 p=reject");
  v = run(z, input("a@near.example"));
  CHECK(v.result == DmarcResult::none);
  CHECK(v.walk[0].outcome.find("is not a DMARC record") != std::string::npos);
}

TEST_CASE("dmarc: invalid p= is none unless rua= is valid; an absent p= is none") {
  TestZone z;
  z.txt("_dmarc.bad.example", "v=DMARC1; p=block")
      .txt("_dmarc.rua.example", "v=DMARC1; p=block; rua=mailto:d@rua.example")
      .txt("_dmarc.nop.example", "v=DMARC1; rua=mailto:d@nop.example");
  auto v = run(z, input("a@bad.example"));
  CHECK(v.result == DmarcResult::none);
  CHECK(v.record == "v=DMARC1; p=block");
  CHECK(has_hint(dmarc_hints(v), "dmarc-invalid-record"));
  v = run(z, input("a@rua.example"));
  CHECK(v.result == DmarcResult::fail);
  CHECK(v.policy == DmarcPolicy::none);
  v = run(z, input("a@nop.example"));
  CHECK(v.result == DmarcResult::fail);
  CHECK(v.policy == DmarcPolicy::none);
  CHECK(has_hint(dmarc_hints(v), "dmarc-policy-none"));
}

TEST_CASE("dmarc: relaxed and strict alignment") {
  TestZone z;
  z.txt("_dmarc.example.org", "v=DMARC1; p=reject")
      .txt("_dmarc.strict.example", "v=DMARC1; p=reject; aspf=s; adkim=s")
      .txt("_dmarc.esp.example", "v=DMARC1; p=none; psd=n")
      .txt("_dmarc.a.psd.example", "v=DMARC1; p=none; psd=n")
      .txt("_dmarc.b.psd.example", "v=DMARC1; p=none; psd=n");
  struct Row {
    const char* from;
    const char* id;
    bool aligned;
  };
  const Row rows[] = {
      {"a@example.org", "example.org", true},              // identical
      {"a@news.example.org", "bounce.example.org", true},  // same Organizational Domain
      {"a@example.org", "mail.example.org", true},
      {"a@example.org", "example.net", false},  // different organization
      {"a@example.org", "org", false},          // a parent is not the org
      {"a@strict.example", "strict.example", true},
      {"a@strict.example", "mail.strict.example", false},  // strict: exact only
      {"a@a.esp.example", "b.esp.example", true},          // psd=n: one org for both
      {"a@a.psd.example", "b.psd.example", false},         // each its own org (psd=n)
  };
  for (const auto& r : rows) {
    const auto spf = run(z, input(r.from, true, r.id));
    CHECK_MESSAGE(spf.spf_aligned == r.aligned, r.from << " / " << r.id);
    const auto dkim = run(z, input(r.from, false, "", {{true, r.id}}));
    CHECK_MESSAGE(dkim.dkim_aligned == r.aligned, r.from << " / " << r.id);
    CHECK((spf.result == DmarcResult::pass) == r.aligned);
  }
  // An identifier that did not pass never aligns.
  CHECK(run(z, input("a@example.org", false, "example.org", {{false, "example.org"}})).result ==
        DmarcResult::fail);
}

TEST_CASE("dmarc: t=y lowers the disposition one step") {
  TestZone z;
  z.txt("_dmarc.r.example", "v=DMARC1; p=reject; t=y")
      .txt("_dmarc.q.example", "v=DMARC1; p=quarantine; t=y");
  auto v = run(z, input("a@r.example"));
  CHECK(v.testing);
  CHECK(v.policy == DmarcPolicy::reject);
  CHECK(v.disposition == DmarcPolicy::quarantine);
  CHECK(has_hint(dmarc_hints(v), "dmarc-testing"));
  v = run(z, input("a@q.example"));
  CHECK(v.disposition == DmarcPolicy::none);
}

TEST_CASE("dmarc: DNS failures are temperror where the result depends on them") {
  TestZone z;
  z.timeout("_dmarc.example.org", RrType::txt);
  auto v = run(z, input("a@example.org", true, "example.org"));
  CHECK(v.result == DmarcResult::temperror);
  CHECK(v.problem == "TXT lookup of _dmarc.example.org: timeout");
  CHECK(has_hint(dmarc_hints(v), "dmarc-temperror"));

  TestZone parent;  // the record is at the From domain; the walk above it fails
  parent.txt("_dmarc.mail.example.org", "v=DMARC1; p=reject")
      .timeout("_dmarc.example.org", RrType::txt);
  v = run(parent, input("a@mail.example.org", true, "mail.example.org"));
  CHECK(v.result == DmarcResult::pass);       // identical names align without a walk
  CHECK(v.org_domain == "mail.example.org");  // §4.10.2: the common domain is its own org
  v = run(parent, input("a@mail.example.org", false, "", {{true, "other.example"}}));
  CHECK(v.result == DmarcResult::fail);  // other.example cannot share an org (other TLD)
  CHECK(v.org_domain.empty());           // the walk above mail.example.org failed
  v = run(parent, input("a@mail.example.org", true, "bounce.example.org"));
  CHECK(v.result == DmarcResult::temperror);  // relaxed alignment needs the org domains

  TestZone exist;  // the existence lookup fails: sp, with a doubt noted
  exist.txt("_dmarc.example.org", "v=DMARC1; p=reject; sp=none; np=reject")
      .timeout("sub.example.org", RrType::a);
  v = run(exist, input("a@sub.example.org"));
  CHECK(v.result == DmarcResult::fail);
  CHECK(v.policy_tag == "sp");
  CHECK(v.problem.find("could not tell whether sub.example.org exists") != std::string::npos);
}

TEST_CASE("dmarc: no single Author Domain is a permerror") {
  TestZone z;
  DmarcInput none;
  CHECK(run(z, none).result == DmarcResult::permerror);
  DmarcInput two;
  two.from_fields = {"a@example.org", "b@example.org"};
  CHECK(run(z, two).problem.find("2 From: fields") != std::string::npos);
  auto v = run(z, input("a@example.org, b@example.net"));
  CHECK(v.result == DmarcResult::permerror);
  CHECK(v.problem.find("2 domains (example.org, example.net)") != std::string::npos);
  CHECK(has_hint(dmarc_hints(v), "dmarc-permerror"));
  CHECK(run(z, input("Alice <alice@example.org")).result == DmarcResult::permerror);
  CHECK(run(z, input("undisclosed-recipients:;")).result == DmarcResult::permerror);
  CHECK(run(z, input("a@[192.0.2.1]")).result == DmarcResult::permerror);
  // Two addresses in one domain are one Author Domain.
  z.txt("_dmarc.example.org", "v=DMARC1; p=none");
  CHECK(run(z, input("a@example.org, B <b@EXAMPLE.org>", true, "example.org")).result ==
        DmarcResult::pass);
  // A U-label domain is looked up as A-labels.
  z.txt("_dmarc.xn--bcher-kva.example", "v=DMARC1; p=none");
  v = run(z, input("a@b\xc3\xbc"
                   "cher.example"));
  CHECK(v.from_domain == "xn--bcher-kva.example");
  CHECK(v.policy_domain == "xn--bcher-kva.example");
}

TEST_CASE("dmarc: JSON carries the contract's fields") {
  TestZone z;
  z.txt("_dmarc.example.org", "v=DMARC1; p=quarantine; pct=20");
  const auto v = run(z, input("a@news.example.org", false, "", {{true, "example.org"}}));
  const auto j = to_json(v);
  const std::vector<std::string> keys = {"result", "from_domain", "policy_domain", "org_domain",
                                         "policy", "spf_aligned", "dkim_aligned",  "record"};
  auto it = j.begin();
  for (const auto& k : keys) CHECK((it++).key() == k);
  CHECK(j["result"] == "pass");
  CHECK(j["from_domain"] == "news.example.org");
  CHECK(j["policy_domain"] == "example.org");
  CHECK(j["org_domain"] == "example.org");
  CHECK(j["policy"] == "quarantine");
  CHECK(j["dkim_aligned"] == true);
  CHECK(j["record"] == "v=DMARC1; p=quarantine; pct=20");
  CHECK(j["disposition"] == "none");
  CHECK(j["walk"].size() == 3);
  CHECK(j["from_exists"] == false);
  CHECK(has_hint(dmarc_hints(v), "dmarc-removed-tag", "pct="));
  DmarcInput nothing;
  CHECK(to_json(run(z, nothing))["policy"].is_null());
  CHECK(dmarc_hints(DmarcVerdict{}).empty());
}

// The providers' rules: the shipped table loads (and broken tables are refused with the line),
// every check passes, fails and is unknown on a DNS temperror, the verdicts combine as
// documented, bulk-looking mail, the JSON contract, the hints and the short table's wording,
// and a message checked end to end by the real SPF, DKIM and DMARC code.
#include "responder/analysis/requirements.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "core/embedded_files.hpp"
#include "dns_test_support.hpp"
#include "tests/unit/dkim_test_support.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;
using ipconfirm::responder::test::TestZone;

namespace {

const RequirementsTable& builtin() {
  const RequirementsTableLoad& load = builtin_requirements_table();
  REQUIRE_MESSAGE(load.table, load.error);
  return *load.table;
}

const std::string kHeader =
    "From: Alice <alice@example.org>\r\n"
    "To: ipconfirm@example.test\r\n"
    "Subject: test\r\n"
    "Date: Tue, 1 Dec 2026 10:00:00 +0000\r\n"
    "Message-ID: <1.2@example.org>\r\n"
    "\r\n";

const std::string kUnsubscribe =
    "List-Unsubscribe: <https://example.org/u/opaque>\r\n"
    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";

// A fully authenticated message over TLS from an address with forward-confirmed rDNS. Tests
// change one value at a time. Not copyable: the input points at the members.
struct Fixture {
  SpfVerdict spf;
  DkimResults dkim;
  DmarcVerdict dmarc;
  ArcResult arc;
  std::string header = kHeader;
  RequirementsInput in;

  Fixture() {
    spf.complete = true;
    spf.result = SpfResult::pass;
    spf.domain = "example.org";
    spf.mechanism = "ip4:192.0.2.7";
    DkimSignatureResult s;
    s.result = DkimResultCode::pass;
    s.domain = "example.org";
    s.selector = "s1";
    s.algorithm = "rsa-sha256";
    s.key_bits = 2048;
    s.signed_headers = {"from", "to", "subject", "date", "message-id"};
    dkim.signatures = {s};
    dmarc.complete = true;
    dmarc.result = DmarcResult::pass;
    dmarc.from_domain = "example.org";
    dmarc.policy_domain = "example.org";
    dmarc.org_domain = "example.org";
    dmarc.record = "v=DMARC1; p=none";
    dmarc.policy = DmarcPolicy::none;
    dmarc.policy_tag = "p";
    dmarc.spf_aligned = true;
    dmarc.dkim_aligned = true;
    dmarc.aligned_dkim_domain = "example.org";
    dmarc.spf_pass = true;
    dmarc.spf_domain = "example.org";
    dmarc.dkim_pass_domains = {"example.org"};
    in.iprev = IprevResult::pass;
    in.ptr_names = {"mail.example.org"};
    in.ip = "192.0.2.7";
    in.tls_version = "TLSv1.3";
    in.dnsbl_zones = {"zen.example.test"};
    in.dnsbl = {{"zen.example.test", DnsblOutcome::not_listed, {}, ""}};
  }
  Fixture(const Fixture&) = delete;

  // The message does not pass DKIM: no signature, DMARC aligned through SPF only.
  void no_dkim() {
    dkim.signatures.clear();
    dmarc.dkim_aligned = false;
    dmarc.aligned_dkim_domain.clear();
    dmarc.dkim_pass_domains.clear();
  }
  // A signature that covers the unsubscribe fields, and the fields.
  void bulk_with_one_click() {
    header = kUnsubscribe + kHeader;
    dkim.signatures[0].signed_headers.push_back("list-unsubscribe");
    dkim.signatures[0].signed_headers.push_back("list-unsubscribe-post");
  }

  RequirementsResult run(const RequirementsTable& table = builtin()) {
    in.spf = &spf;
    in.dkim = &dkim;
    in.dmarc = &dmarc;
    in.arc = &arc;
    in.raw_header = header;
    return evaluate_requirements(table, in);
  }
};

const RequirementResult& rule(const RequirementsResult& r, std::string_view provider,
                              std::string_view id, SenderClass c = SenderClass::all) {
  for (const auto& x : r.rules)
    if (to_string(x.rule->provider) == provider && x.rule->id == id && x.rule->applies_to == c)
      return x;
  FAIL("no rule " << provider << "/" << id);
  return r.rules.front();
}

// The outcome of a check (the same for every rule that uses it).
const RequirementOutcome& check(const RequirementsResult& r, RequirementCheck c) {
  for (const auto& x : r.rules)
    if (x.rule->check == c) return x.outcome;
  FAIL("no rule uses " << to_string(c));
  return r.rules.front().outcome;
}

const ProviderVerdict& verdict(const RequirementsResult& r, MailboxProvider p) {
  return r.verdicts[static_cast<std::size_t>(p)];
}

std::string summary(const RequirementsResult& r, MailboxProvider p) {
  return requirements_summary(r)[static_cast<std::size_t>(p)].text;
}

bool has_hint(const std::vector<Hint>& hints, const std::string& code,
              const std::string& severity = "", const std::string& part = "") {
  for (const auto& h : hints)
    if (h.code == code && (severity.empty() || h.severity == severity) &&
        h.text.find(part) != std::string::npos)
      return true;
  return false;
}

RequirementsTableLoad parse(const std::string& text) {
  return parse_requirements_table(text, "t.toml");
}

const std::string kSource =
    "[[source]]\nid = \"s\"\nurl = \"https://example.test/page\"\ntitle = \"A page\"\n"
    "read = 2026-12-06\n";

std::string rule_toml(const std::string& provider, const std::string& id,
                      const std::string& applies_to, const std::string& check,
                      const std::string& severity, const std::string& extra = "") {
  return "[[rule]]\nprovider = \"" + provider + "\"\nid = \"" + id + "\"\napplies_to = \"" +
         applies_to + "\"\ncheck = \"" + check + "\"\nseverity = \"" + severity +
         "\"\nname = \"A rule\"\nsays = \"What happens.\"\nsource = \"s\"\n" + extra;
}

// One rule per provider, so that a table is complete.
const std::string kMinimalRules = rule_toml("gmail", "a", "all", "tls", "reject") +
                                  rule_toml("yahoo", "a", "all", "tls", "reject") +
                                  rule_toml("microsoft", "a", "all", "tls", "reject");

}  // namespace

// --- The table ------------------------------------------------------------------------------

TEST_CASE("requirements table: the shipped table is compiled in and loads") {
  std::ifstream in(std::string(IPCONFIRM_TEST_DATA) +
                   "/../../responder/analysis/requirements.toml");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str() == embedded_files().at("requirements.toml"));

  const RequirementsTable& t = builtin();
  CHECK(t.rules.size() >= 30);
  for (const auto& s : t.sources) {
    CAPTURE(s.id);
    CHECK(s.url.rfind("https://", 0) == 0);
    CHECK(s.read == "2026-12-06");
    CHECK(s.copy.size() == 10);
  }
  // The rules the issue lists, per provider as each states them.
  auto has = [&](MailboxProvider p, SenderClass c, RequirementCheck check, RuleSeverity sev) {
    for (const auto& r : t.rules)
      if (r.provider == p && r.applies_to == c && r.check == check && r.severity == sev)
        return true;
    return false;
  };
  using C = RequirementCheck;
  using P = MailboxProvider;
  const auto all = SenderClass::all, bulk = SenderClass::bulk;
  const auto rej = RuleSeverity::reject, risk = RuleSeverity::at_risk;
  for (P p : {P::gmail, P::yahoo}) {
    CAPTURE(to_string(p));
    CHECK(has(p, all, C::spf_or_dkim_pass, rej));
    CHECK(has(p, all, C::fcrdns, p == P::gmail ? rej : risk));
    CHECK(has(p, all, C::rfc5322_format, rej));
    CHECK(has(p, all, C::complaint_rate, risk));
    CHECK(has(p, all, C::dnsbl_not_listed, p == P::gmail ? risk : rej));
    CHECK(has(p, bulk, C::dmarc_record, rej));
    CHECK(has(p, bulk, C::dmarc_aligned, rej));
  }
  for (P p : {P::gmail, P::yahoo, P::microsoft}) {
    CAPTURE(to_string(p));
    CHECK(has(p, all, C::dmarc_policy_reject, rej));
    CHECK(has(p, all, C::dmarc_policy_quarantine, risk));
    CHECK(has(p, bulk, C::spf_pass, rej));
    CHECK(has(p, bulk, C::dkim_pass, rej));
  }
  CHECK(has(P::gmail, all, C::tls, risk));
  CHECK(has(P::gmail, bulk, C::tls, rej));
  CHECK(has(P::gmail, bulk, C::one_click_unsubscribe, risk));
  CHECK(has(P::gmail, all, C::message_id, rej));
  CHECK(has(P::yahoo, bulk, C::list_unsubscribe, risk));
  CHECK(has(P::microsoft, all, C::reverse_dns, rej));
  CHECK(has(P::microsoft, bulk, C::dmarc_record, rej));
  CHECK(has(P::microsoft, bulk, C::unsubscribe_link, risk));
  // Yahoo and Microsoft ask no TLS; Microsoft asks small senders for no authentication.
  CHECK_FALSE(has(P::yahoo, all, C::tls, risk));
  CHECK_FALSE(has(P::microsoft, all, C::spf_or_dkim_pass, rej));
}

TEST_CASE("requirements table: docs/requirements.md lists every rule and source") {
  std::ifstream in(std::string(IPCONFIRM_TEST_DATA) + "/../../docs/requirements.md");
  REQUIRE(in);
  std::stringstream doc;
  doc << in.rdbuf();
  const RequirementsTable& t = builtin();
  for (const auto& r : t.rules) {
    const std::string row = "| " + std::string(to_string(r.provider)) + "/" + r.id + " | " +
                            std::string(to_string(r.applies_to)) + " | " +
                            std::string(to_string(r.severity)) + " |";
    CHECK_MESSAGE(doc.str().find(row) != std::string::npos, row);
  }
  for (const auto& s : t.sources) {
    CHECK_MESSAGE(
        doc.str().find("| " + s.id + " | [" + s.title + "](" + s.url + ")") != std::string::npos,
        s.id);
    CHECK_MESSAGE(doc.str().find(s.copy + " | " + s.read + " |") != std::string::npos, s.id);
  }
}

TEST_CASE("requirements table: a minimal table loads, with its lines and dates") {
  const RequirementsTableLoad load = parse(kSource + "copy = 2026-03-11\n" + kMinimalRules);
  REQUIRE_MESSAGE(load.table, load.error);
  REQUIRE(load.table->rules.size() == 3);
  CHECK(load.table->rules[0].line == 7);
  CHECK(load.table->rules[0].check == RequirementCheck::tls);
  CHECK(load.table->sources[0].read == "2026-12-06");
  CHECK(load.table->sources[0].copy == "2026-03-11");
  CHECK(parse_requirement_check("spf-or-dkim-pass") == RequirementCheck::spf_or_dkim_pass);
  CHECK_FALSE(parse_requirement_check("spf-or-dkim"));
  for (std::size_t i = 0; i < kRequirementCheckCount; ++i) {
    const auto c = static_cast<RequirementCheck>(i);
    CHECK(parse_requirement_check(to_string(c)) == c);
  }
}

TEST_CASE("requirements table: broken tables are refused with a clear error and the line") {
  struct Case {
    std::string text;
    std::string error;
  };
  const Case cases[] = {
      {kSource + kMinimalRules + "[[rule]]\nprovider = \"gmail\"\n", "t.toml:"},
      {kSource + "[[rule]\n", "t.toml:6:"},  // TOML syntax
      {kSource + kMinimalRules + "colour = \"blue\"\n", "unknown key"},
      {kSource + rule_toml("gmail", "b", "all", "spf-pas", "reject") + kMinimalRules,
       "t.toml:10: rule gmail/b: unknown check 'spf-pas' (the code implements: spf-or-dkim-pass"},
      {kSource + rule_toml("aol", "b", "all", "tls", "reject") + kMinimalRules,
       "unknown provider 'aol'"},
      {kSource + rule_toml("gmail", "b", "most", "tls", "reject") + kMinimalRules,
       "'applies_to' must be \"all\" or \"bulk\""},
      {kSource + rule_toml("gmail", "b", "all", "dkim-pass", "junk") + kMinimalRules,
       "'severity' must be \"reject\" or \"at-risk\""},
      {kSource + rule_toml("gmail", "b", "all", "dkim-pass", "reject", "colour = 1\n") +
           kMinimalRules,
       "t.toml:15: rule gmail/b: unknown key 'colour'"},
      {kSource + rule_toml("gmail", "a", "all", "dkim-pass", "reject") + kMinimalRules,
       "rule gmail/a: listed twice for the same sender class (line 6)"},
      {kSource + rule_toml("gmail", "b", "all", "tls", "reject") + kMinimalRules,
       "check 'tls' is already used by rule b"},
      {kSource + rule_toml("gmail", "a", "all", "tls", "reject") +
           rule_toml("yahoo", "a", "all", "tls", "reject"),
       "provider microsoft: has no rules"},
      {kSource + kMinimalRules + "[[rule]]\nprovider = \"gmail\"\nid = \"c\"\n",
       "rule gmail/c: missing 'applies_to'"},
      {kSource +
           rule_toml("gmail", "b", "all", "dkim-pass", "reject")
               .replace(
                   rule_toml("gmail", "b", "all", "dkim-pass", "reject").find("source = \"s\""), 12,
                   "source = \"nowhere\"") +
           kMinimalRules,
       "source 'nowhere' is not listed as a [[source]] above"},
      {"[[source]]\nid = \"s\"\nurl = \"http://example.test/\"\ntitle = \"t\"\nread = "
       "2026-12-06\n" +
           kMinimalRules,
       "'url' must start with https://"},
      {"[[source]]\nid = \"s\"\nurl = \"https://example.test/\"\ntitle = \"t\"\nread = "
       "\"yesterday\"\n" +
           kMinimalRules,
       "t.toml:5: source 's': 'read' must be a date"},
      {"[[source]]\nid = \"s\"\nurl = \"https://example.test/\"\ntitle = \"t\"\n" + kMinimalRules,
       "source 's': missing 'read'"},
      {kSource + kSource + kMinimalRules, "source 's': listed twice"},
      {kSource + "[[source]]\nid = \"Bad Id\"\n" + kMinimalRules, "may hold only a-z, 0-9 and '-'"},
      {kSource +
           rule_toml("gmail", "b", "all", "dkim-pass", "reject")
               .replace(rule_toml("gmail", "b", "all", "dkim-pass", "reject").find("A rule"), 6,
                        "A\\u0007rule") +
           kMinimalRules,
       "'name' must be printable ASCII"},
      {"rule = 1\n" + kSource, "t.toml:1: [[rule]]: must be an array of tables"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    const RequirementsTableLoad load = parse(c.text);
    CHECK_FALSE(load.table);
    CHECK_MESSAGE(load.error.find(c.error) != std::string::npos, load.error);
  }
}

// --- Each check ---------------------------------------------------------------------------

TEST_CASE("requirements: the fully authenticated message passes every rule it can show") {
  Fixture f;
  const RequirementsResult r = f.run();
  for (const auto& x : r.rules) {
    CAPTURE(x.rule->id);
    CAPTURE(x.outcome.evidence);
    CHECK(x.outcome.status != RuleStatus::fail);
    if (x.outcome.status == RuleStatus::unknown) CHECK(x.outcome.inherent);
  }
  for (const auto& pv : r.verdicts) {
    CHECK(pv.all.verdict == Acceptance::accept);
    CHECK(pv.bulk.verdict == Acceptance::accept);
    CHECK(pv.all.failing.empty());
    CHECK(pv.bulk.unknown.empty());
  }
  CHECK(check(r, RequirementCheck::complaint_rate).status == RuleStatus::unknown);
  CHECK(check(r, RequirementCheck::complaint_rate).evidence.find("One message cannot show") !=
        std::string::npos);
  CHECK(check(r, RequirementCheck::one_click_unsubscribe).status == RuleStatus::not_applicable);
  CHECK(check(r, RequirementCheck::arc_valid).status == RuleStatus::not_applicable);
  CHECK(check(r, RequirementCheck::not_impersonating_gmail).status == RuleStatus::not_applicable);
  CHECK(check(r, RequirementCheck::spf_or_dkim_pass).evidence ==
        "SPF pass for example.org (ip4:192.0.2.7); DKIM pass for d=example.org (s=s1, "
        "rsa-sha256, 2048 bits).");
  CHECK(check(r, RequirementCheck::fcrdns).evidence ==
        "The PTR name mail.example.org of 192.0.2.7 resolves back to it.");
  CHECK(check(r, RequirementCheck::tls).evidence == "The message came over TLS (TLSv1.3).");
  CHECK(check(r, RequirementCheck::dnsbl_not_listed).evidence ==
        "192.0.2.7 is not listed on zen.example.test.");
  CHECK(check(r, RequirementCheck::dmarc_record).evidence ==
        "_dmarc.example.org publishes \"v=DMARC1; p=none\" (p=none applies to example.org).");
  CHECK_FALSE(r.unsubscribe.bulk_looking);
}

TEST_CASE("requirements: SPF or DKIM, SPF, DKIM") {
  using C = RequirementCheck;
  {
    Fixture f;  // SPF passes, no DKIM: enough for every sender, not for bulk
    f.no_dkim();
    const auto r = f.run();
    CHECK(check(r, C::spf_or_dkim_pass).status == RuleStatus::pass);
    CHECK(check(r, C::spf_pass).status == RuleStatus::pass);
    CHECK(check(r, C::dkim_pass).status == RuleStatus::fail);
    CHECK(check(r, C::dkim_pass).brief == "missing DKIM");
    CHECK(check(r, C::dkim_pass).evidence == "The message has no DKIM-Signature.");
  }
  {
    Fixture f;  // SPF softfail, DKIM passes
    f.spf.result = SpfResult::softfail;
    f.spf.mechanism = "~all";
    const auto r = f.run();
    CHECK(check(r, C::spf_or_dkim_pass).status == RuleStatus::pass);
    CHECK(check(r, C::spf_pass).status == RuleStatus::fail);
    CHECK(check(r, C::spf_pass).brief == "SPF softfail");
    CHECK(check(r, C::spf_pass).evidence ==
          "SPF softfail for example.org: its record does not allow 192.0.2.7 (~all).");
    CHECK(check(r, C::spf_pass).fix.find("192.0.2.7") != std::string::npos);
  }
  {
    Fixture f;  // neither
    f.spf.result = SpfResult::fail;
    f.no_dkim();
    const auto r = f.run();
    CHECK(check(r, C::spf_or_dkim_pass).status == RuleStatus::fail);
    CHECK(check(r, C::spf_or_dkim_pass).brief == "neither SPF nor DKIM passes");
  }
  {
    Fixture f;  // no SPF record
    f.spf.result = SpfResult::none;
    const auto r = f.run();
    CHECK(check(r, C::spf_pass).status == RuleStatus::fail);
    CHECK(check(r, C::spf_pass).brief == "missing SPF");
  }
  {
    Fixture f;  // a failing DKIM signature, and a weak key (RFC 8301: policy)
    f.dkim.signatures[0].result = DkimResultCode::fail;
    f.dkim.signatures[0].error = "the body hash does not match";
    auto r = f.run();
    CHECK(check(r, C::dkim_pass).status == RuleStatus::fail);
    CHECK(check(r, C::dkim_pass).brief == "DKIM fails");
    CHECK(check(r, C::dkim_pass).evidence.find("the body hash does not match") !=
          std::string::npos);
    f.dkim.signatures[0].result = DkimResultCode::policy;
    r = f.run();
    CHECK(check(r, C::dkim_pass).status == RuleStatus::fail);
  }
  {
    Fixture f;  // DNS temperror: unknown, never a verdict
    f.spf.result = SpfResult::temperror;
    f.spf.problem = "timeout";
    f.dkim.signatures[0].result = DkimResultCode::temperror;
    const auto r = f.run();
    CHECK(check(r, C::spf_pass).status == RuleStatus::unknown);
    CHECK(check(r, C::spf_pass).brief == "SPF (DNS error)");
    CHECK(check(r, C::dkim_pass).status == RuleStatus::unknown);
    CHECK(check(r, C::spf_or_dkim_pass).status == RuleStatus::unknown);
  }
  {
    Fixture f;  // SPF fails; DKIM is unknown: SPF-or-DKIM cannot be decided
    f.spf.result = SpfResult::fail;
    f.dkim.signatures[0].result = DkimResultCode::temperror;
    CHECK(check(f.run(), C::spf_or_dkim_pass).status == RuleStatus::unknown);
  }
  {
    Fixture f;  // not checked, or not finished
    f.spf.complete = false;
    f.dkim.complete = false;
    auto r = f.run();
    CHECK(check(r, C::spf_pass).status == RuleStatus::unknown);
    CHECK(check(r, C::dkim_pass).status == RuleStatus::unknown);
    f.in.spf = nullptr;
    r = evaluate_requirements(builtin(), RequirementsInput{});
    CHECK(check(r, C::spf_or_dkim_pass).status == RuleStatus::unknown);
    CHECK(check(r, C::spf_or_dkim_pass).brief == "SPF/DKIM (not checked)");
  }
}

TEST_CASE("requirements: DMARC record, alignment and the domain's own policy") {
  using C = RequirementCheck;
  {
    Fixture f;  // no DMARC record, SPF aligned by relaxed alignment
    f.dmarc.result = DmarcResult::none;
    f.dmarc.problem = "no DMARC record at _dmarc.mail.example.org or any of its parents";
    f.dmarc.from_domain = "mail.example.org";
    f.dmarc.record.clear();
    f.dmarc.policy.reset();
    f.dmarc.spf_domain = "bounce.example.org";
    const auto r = f.run();
    CHECK(check(r, C::dmarc_record).status == RuleStatus::fail);
    CHECK(check(r, C::dmarc_record).brief == "no DMARC record");
    CHECK(check(r, C::dmarc_record).fix.find("_dmarc.example.org") != std::string::npos);
    CHECK(check(r, C::dmarc_aligned).status == RuleStatus::pass);
    CHECK(check(r, C::dmarc_aligned).evidence.find("relaxed alignment") != std::string::npos);
    CHECK(check(r, C::dmarc_policy_reject).status == RuleStatus::not_applicable);
    CHECK(check(r, C::dmarc_policy_quarantine).status == RuleStatus::not_applicable);
  }
  {
    Fixture f;  // no DMARC record, and nothing aligned
    f.dmarc.result = DmarcResult::none;
    f.dmarc.spf_domain = "esp.example.net";
    f.dmarc.dkim_pass_domains = {"esp.example.net"};
    CHECK(check(f.run(), C::dmarc_aligned).status == RuleStatus::fail);
    // Without an Organizational Domain, a name within the other aligns.
    f.dmarc.org_domain.clear();
    f.dmarc.from_domain = "news.example.org";
    f.dmarc.spf_domain = "example.org";
    CHECK(check(f.run(), C::dmarc_aligned).status == RuleStatus::pass);
  }
  {
    Fixture f;  // DMARC fails under p=reject
    f.dmarc.result = DmarcResult::fail;
    f.dmarc.policy = DmarcPolicy::reject;
    f.dmarc.disposition = DmarcPolicy::reject;
    f.dmarc.spf_aligned = f.dmarc.dkim_aligned = false;
    f.dmarc.spf_domain = "esp.example.net";
    const auto r = f.run();
    CHECK(check(r, C::dmarc_record).status == RuleStatus::pass);
    CHECK(check(r, C::dmarc_aligned).status == RuleStatus::fail);
    CHECK(check(r, C::dmarc_aligned).evidence ==
          "From domain example.org is aligned with no passing domain: SPF passed for "
          "esp.example.net; DKIM passed for d=example.org.");
    CHECK(check(r, C::dmarc_policy_reject).status == RuleStatus::fail);
    CHECK(check(r, C::dmarc_policy_reject).brief == "DMARC fails under p=reject");
    CHECK(check(r, C::dmarc_policy_quarantine).status == RuleStatus::not_applicable);
    for (const auto& pv : r.verdicts) CHECK(pv.all.verdict == Acceptance::reject);
  }
  {
    Fixture f;  // DMARC fails under p=quarantine (or p=reject with t=y)
    f.dmarc.result = DmarcResult::fail;
    f.dmarc.policy = DmarcPolicy::reject;
    f.dmarc.testing = true;
    f.dmarc.disposition = DmarcPolicy::quarantine;
    const auto r = f.run();
    CHECK(check(r, C::dmarc_policy_reject).status == RuleStatus::not_applicable);
    CHECK(check(r, C::dmarc_policy_quarantine).status == RuleStatus::fail);
    CHECK(check(r, C::dmarc_policy_quarantine).evidence.find("t=y") != std::string::npos);
    CHECK(verdict(r, MailboxProvider::yahoo).all.verdict == Acceptance::at_risk);
  }
  {
    Fixture f;  // DMARC fails under p=none: the policy asks nothing
    f.dmarc.result = DmarcResult::fail;
    f.dmarc.disposition = DmarcPolicy::none;
    const auto r = f.run();
    CHECK(check(r, C::dmarc_policy_reject).status == RuleStatus::pass);
    CHECK(check(r, C::dmarc_policy_quarantine).status == RuleStatus::pass);
  }
  {
    Fixture f;  // temperror: unknown everywhere
    f.dmarc.result = DmarcResult::temperror;
    f.dmarc.record.clear();
    f.dmarc.problem = "_dmarc.example.org: timeout";
    const auto r = f.run();
    for (C c :
         {C::dmarc_record, C::dmarc_aligned, C::dmarc_policy_reject, C::dmarc_policy_quarantine}) {
      CAPTURE(to_string(c));
      CHECK(check(r, c).status == RuleStatus::unknown);
      CHECK(check(r, c).brief == "DMARC (DNS error)");
    }
  }
  {
    Fixture f;  // permerror: no single From domain
    f.dmarc.result = DmarcResult::permerror;
    f.dmarc.problem = "the message has 2 From: fields (RFC 5322 allows one)";
    const auto r = f.run();
    CHECK(check(r, C::dmarc_record).status == RuleStatus::fail);
    CHECK(check(r, C::dmarc_aligned).status == RuleStatus::fail);
    CHECK(check(r, C::dmarc_policy_reject).status == RuleStatus::not_applicable);
  }
  {
    Fixture f;  // gmail.com From not sent by Gmail
    f.dmarc.from_domain = "gmail.com";
    f.dmarc.result = DmarcResult::fail;
    auto r = f.run();
    CHECK(check(r, C::not_impersonating_gmail).status == RuleStatus::fail);
    CHECK(rule(r, "gmail", "no-gmail-impersonation").rule->severity == RuleSeverity::at_risk);
    f.dmarc.result = DmarcResult::pass;
    CHECK(check(f.run(), C::not_impersonating_gmail).status == RuleStatus::pass);
    f.dmarc.result = DmarcResult::temperror;
    CHECK(check(f.run(), C::not_impersonating_gmail).status == RuleStatus::unknown);
  }
}

TEST_CASE("requirements: reverse DNS, TLS and blocklists") {
  using C = RequirementCheck;
  Fixture f;
  f.in.iprev = IprevResult::fail;
  auto r = f.run();
  CHECK(check(r, C::fcrdns).status == RuleStatus::fail);
  CHECK(check(r, C::fcrdns).evidence ==
        "The PTR name mail.example.org of 192.0.2.7 does not resolve back to it.");
  CHECK(check(r, C::reverse_dns).status == RuleStatus::pass);  // Microsoft asks a PTR only
  f.in.iprev = IprevResult::none;
  r = f.run();
  CHECK(check(r, C::fcrdns).status == RuleStatus::fail);
  CHECK(check(r, C::fcrdns).brief == "no PTR record");
  CHECK(check(r, C::reverse_dns).status == RuleStatus::fail);
  f.in.iprev = IprevResult::permerror;
  CHECK(check(f.run(), C::reverse_dns).status == RuleStatus::fail);
  f.in.iprev = IprevResult::temperror;
  r = f.run();
  CHECK(check(r, C::fcrdns).status == RuleStatus::unknown);
  CHECK(check(r, C::reverse_dns).status == RuleStatus::unknown);
  f.in.iprev.reset();
  CHECK(check(f.run(), C::fcrdns).status == RuleStatus::unknown);
  CHECK(parse_iprev("temperror") == IprevResult::temperror);
  CHECK_FALSE(parse_iprev("maybe"));

  Fixture t;
  t.in.tls_version.reset();
  r = t.run();
  CHECK(check(r, C::tls).status == RuleStatus::fail);
  CHECK(check(r, C::tls).brief == "no TLS");

  Fixture b;
  b.in.dnsbl_zones = {"zen.example.test", "bl.example.test"};
  b.in.dnsbl = {{"zen.example.test", DnsblOutcome::not_listed, {}, ""},
                {"bl.example.test.", DnsblOutcome::listed, {"127.0.0.2"}, "see example"}};
  r = b.run();
  CHECK(check(r, C::dnsbl_not_listed).status == RuleStatus::fail);
  CHECK(check(r, C::dnsbl_not_listed).evidence ==
        "192.0.2.7 is listed on bl.example.test (127.0.0.2): see example.");
  CHECK(check(r, C::dnsbl_not_listed).brief == "listed on bl.example.test");
  CHECK(verdict(r, MailboxProvider::gmail).all.verdict == Acceptance::at_risk);
  CHECK(verdict(r, MailboxProvider::yahoo).all.verdict == Acceptance::reject);
  CHECK(verdict(r, MailboxProvider::microsoft).all.verdict == Acceptance::reject);
  for (DnsblOutcome o :
       {DnsblOutcome::error, DnsblOutcome::refused, DnsblOutcome::invalid_answer}) {
    b.in.dnsbl[1].outcome = o;
    r = b.run();
    CHECK(check(r, C::dnsbl_not_listed).status == RuleStatus::unknown);
    CHECK_FALSE(check(r, C::dnsbl_not_listed).inherent);
  }
  b.in.dnsbl.pop_back();  // a configured zone with no result
  CHECK(check(b.run(), C::dnsbl_not_listed).status == RuleStatus::unknown);
  b.in.dnsbl_zones.clear();  // no lists configured: nothing one message could show here
  r = b.run();
  CHECK(check(r, C::dnsbl_not_listed).status == RuleStatus::unknown);
  CHECK(check(r, C::dnsbl_not_listed).inherent);
}

TEST_CASE("requirements: the message's form") {
  using C = RequirementCheck;
  Fixture f;
  f.header = "Subject: again\r\n" + kHeader;
  auto r = f.run();
  CHECK(check(r, C::rfc5322_format).status == RuleStatus::fail);
  CHECK(check(r, C::rfc5322_format).brief == "duplicate Subject");
  CHECK(check(r, C::message_id).status == RuleStatus::pass);
  CHECK(verdict(r, MailboxProvider::gmail).all.verdict == Acceptance::reject);
  CHECK(verdict(r, MailboxProvider::microsoft).all.verdict == Acceptance::at_risk);

  f.header = "From: a@example.org\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\r\n";
  r = f.run();
  CHECK(check(r, C::rfc5322_format).status == RuleStatus::pass);  // Message-ID is a SHOULD
  CHECK(check(r, C::rfc5322_format).evidence.find("missing-message-id") != std::string::npos);
  CHECK(check(r, C::message_id).status == RuleStatus::fail);
  CHECK(check(r, C::message_id).brief == "no Message-ID");
  CHECK(verdict(r, MailboxProvider::gmail).all.verdict == Acceptance::reject);
  CHECK(verdict(r, MailboxProvider::yahoo).all.verdict == Acceptance::accept);

  f.header = "Message-ID: <2@example.org>\r\n" + kHeader;
  CHECK(check(f.run(), C::message_id).brief == "several Message-IDs");
  f.header = "Message-ID: not-an-id\r\n" + kHeader.substr(0, kHeader.find("Message-ID")) + "\r\n";
  CHECK(check(f.run(), C::message_id).brief == "malformed Message-ID");

  f.header = kHeader;
  f.header.replace(0, f.header.find("\r\n"), "From: alice@example.org, bob@example.org");
  f.header = "Sender: alice@example.org\r\n" + f.header;
  r = f.run();
  CHECK(check(r, C::rfc5322_format).status == RuleStatus::pass);  // RFC 5322 allows it
  CHECK(check(r, C::single_from_address).status == RuleStatus::fail);
  CHECK(check(r, C::single_from_address).brief == "several From addresses");
  f.header = "From: bob@example.org\r\n" + kHeader;
  CHECK(check(f.run(), C::single_from_address).brief == "several From fields");
  f.header = "From: <bob@\r\n";
  CHECK(check(f.run(), C::single_from_address).brief == "malformed From");

  f.header =
      "X-Note: Gr\xc3\xbc\xc3\x9f"
      "e\r\n" +
      kHeader;
  CHECK(check(f.run(), C::rfc5322_format).brief == "8-bit header without SMTPUTF8");
  f.in.smtputf8 = true;
  CHECK(check(f.run(), C::rfc5322_format).status == RuleStatus::pass);

  // A header cut by the server before From and Message-ID: not known, not missing.
  f.in.smtputf8 = false;
  f.header = "Subject: a\r\nTo: b@example.org\r\n";
  f.in.header_cut = true;
  r = f.run();
  CHECK(check(r, C::message_id).status == RuleStatus::unknown);
  CHECK(check(r, C::single_from_address).status == RuleStatus::unknown);
  CHECK(check(r, C::rfc5322_format).status == RuleStatus::pass);
  f.in.header_cut = false;

  f.header.clear();
  r = f.run();
  CHECK(check(r, C::rfc5322_format).status == RuleStatus::unknown);
  CHECK(check(r, C::message_id).status == RuleStatus::unknown);
  CHECK_FALSE(has_hint(requirements_hints(r), "format-error"));  // no header, no findings
  CHECK(to_json(r)["format"].is_null());
}

TEST_CASE("requirements: one-click unsubscribe, List-Unsubscribe and bulk-looking mail") {
  using C = RequirementCheck;
  {
    Fixture f;  // RFC 8058 done right
    f.bulk_with_one_click();
    const auto r = f.run();
    CHECK(r.unsubscribe.bulk_looking);
    CHECK(r.one_click_dkim_covered);
    CHECK(check(r, C::one_click_unsubscribe).status == RuleStatus::pass);
    CHECK(check(r, C::one_click_unsubscribe).evidence ==
          "List-Unsubscribe <https://example.org/u/opaque> with List-Unsubscribe-Post: "
          "List-Unsubscribe=One-Click, both signed by d=example.org.");
    CHECK(check(r, C::list_unsubscribe).status == RuleStatus::pass);
    CHECK(check(r, C::unsubscribe_link).status == RuleStatus::unknown);
    CHECK(check(r, C::unsubscribe_link).inherent);
    for (const auto& pv : r.verdicts) CHECK(pv.bulk.verdict == Acceptance::accept);
  }
  {
    Fixture f;  // the signature does not cover the fields (RFC 8058 §4)
    f.header = kUnsubscribe + kHeader;
    const auto r = f.run();
    CHECK(check(r, C::one_click_unsubscribe).status == RuleStatus::fail);
    CHECK(check(r, C::one_click_unsubscribe).evidence.find("RFC 8058 §4") != std::string::npos);
    CHECK(check(r, C::list_unsubscribe).status == RuleStatus::pass);  // Yahoo asks less
    CHECK(verdict(r, MailboxProvider::gmail).bulk.verdict == Acceptance::at_risk);
    CHECK(verdict(r, MailboxProvider::gmail).all.verdict == Acceptance::accept);
  }
  {
    Fixture f;  // no Post field, and a key that could not be fetched
    f.bulk_with_one_click();
    f.header = "List-Unsubscribe: <https://example.org/u>\r\n" + kHeader;
    auto r = f.run();
    CHECK(check(r, C::one_click_unsubscribe).status == RuleStatus::fail);
    CHECK(check(r, C::one_click_unsubscribe).evidence.find("no List-Unsubscribe-Post") !=
          std::string::npos);
    CHECK(check(r, C::list_unsubscribe).status == RuleStatus::fail);  // https without POST
    f.bulk_with_one_click();
    f.dkim.signatures[0].result = DkimResultCode::temperror;
    r = f.run();
    CHECK(check(r, C::one_click_unsubscribe).status == RuleStatus::unknown);
  }
  {
    Fixture f;  // mailto only: enough for Yahoo, not one-click
    f.header = "List-Unsubscribe: <mailto:u@example.org>\r\n" + kHeader;
    const auto r = f.run();
    CHECK(check(r, C::one_click_unsubscribe).status == RuleStatus::fail);
    CHECK(check(r, C::list_unsubscribe).status == RuleStatus::pass);
  }
  {
    Fixture f;  // Precedence: bulk without any List-Unsubscribe
    f.header = "Precedence: bulk\r\n" + kHeader;
    const auto r = f.run();
    CHECK(r.unsubscribe.bulk_looking);
    CHECK(check(r, C::one_click_unsubscribe).status == RuleStatus::fail);
    CHECK(check(r, C::list_unsubscribe).status == RuleStatus::fail);
    CHECK(check(r, C::list_unsubscribe).brief == "no List-Unsubscribe");
  }
  {
    Fixture f;  // not bulk-looking: the unsubscribe rules do not apply
    const auto r = f.run();
    for (C c : {C::one_click_unsubscribe, C::list_unsubscribe, C::unsubscribe_link})
      CHECK(check(r, c).status == RuleStatus::not_applicable);
  }
}

TEST_CASE("requirements: ARC and the complaint rate") {
  using C = RequirementCheck;
  Fixture f;
  f.arc.result = "pass";
  f.arc.instances = 2;
  CHECK(check(f.run(), C::arc_valid).evidence == "ARC pass (2 instances).");
  f.arc.result = "fail";
  f.arc.failed_instance = 2;
  f.arc.reason = "the seal does not verify";
  auto r = f.run();
  CHECK(check(r, C::arc_valid).status == RuleStatus::fail);
  CHECK(check(r, C::arc_valid).evidence ==
        "The ARC chain does not validate at instance 2: the seal does not verify.");
  CHECK(verdict(r, MailboxProvider::yahoo).all.verdict == Acceptance::at_risk);
  CHECK(verdict(r, MailboxProvider::gmail).all.verdict == Acceptance::accept);  // no ARC rule
  f.arc.result = "temperror";
  CHECK(check(f.run(), C::arc_valid).status == RuleStatus::unknown);
  f.in.arc = nullptr;
  RequirementsInput none;
  CHECK(check(evaluate_requirements(builtin(), none), C::arc_valid).status == RuleStatus::unknown);
  CHECK(check(evaluate_requirements(builtin(), none), C::complaint_rate).status ==
        RuleStatus::unknown);
}

// --- Verdicts -----------------------------------------------------------------------------

TEST_CASE("verdicts: severities combine; bulk rules replace the same check; unknown counts not") {
  const std::string table =
      kSource + rule_toml("gmail", "tls", "all", "tls", "at-risk") +
      rule_toml("gmail", "tls", "bulk", "tls", "reject") +
      rule_toml("gmail", "dkim", "bulk", "dkim-pass", "reject") +
      rule_toml("gmail", "rate", "all", "complaint-rate", "reject") +
      rule_toml("yahoo", "dkim", "all", "dkim-pass", "at-risk") +
      rule_toml("yahoo", "fcrdns", "all", "fcrdns", "reject") +
      rule_toml("microsoft", "one-click", "bulk", "one-click-unsubscribe", "reject");
  const RequirementsTableLoad load = parse(table);
  REQUIRE_MESSAGE(load.table, load.error);
  const RequirementsTable& t = *load.table;

  Fixture good;
  auto r = good.run(t);
  for (const auto& pv : r.verdicts) {
    CHECK(pv.all.verdict == Acceptance::accept);   // the unknown complaint rate counts not
    CHECK(pv.bulk.verdict == Acceptance::accept);  // nor does the not-applicable one-click
  }

  Fixture plain;
  plain.in.tls_version.reset();
  r = plain.run(t);
  const ProviderVerdict& g = verdict(r, MailboxProvider::gmail);
  CHECK(g.all.verdict == Acceptance::at_risk);
  CHECK(g.bulk.verdict == Acceptance::reject);
  REQUIRE(g.all.failing.size() == 1);
  REQUIRE(g.bulk.failing.size() == 1);  // the bulk TLS rule replaced the one for all senders
  CHECK(r.rules[g.bulk.failing[0]].rule->applies_to == SenderClass::bulk);

  Fixture unsigned_;
  unsigned_.no_dkim();
  unsigned_.in.iprev = IprevResult::temperror;
  r = unsigned_.run(t);
  CHECK(verdict(r, MailboxProvider::gmail).all.verdict == Acceptance::accept);
  CHECK(verdict(r, MailboxProvider::gmail).bulk.verdict == Acceptance::reject);
  CHECK(verdict(r, MailboxProvider::yahoo).all.verdict == Acceptance::at_risk);
  // The rDNS temperror is unknown: no verdict of its own, but listed as not known.
  CHECK(verdict(r, MailboxProvider::yahoo).all.unknown.size() == 1);
  CHECK(verdict(r, MailboxProvider::yahoo).bulk.unknown.size() == 1);

  Fixture bulk;
  bulk.header = "Precedence: list\r\n" + kHeader;
  CHECK(verdict(bulk.run(t), MailboxProvider::microsoft).bulk.verdict == Acceptance::reject);
  CHECK(verdict(bulk.run(t), MailboxProvider::microsoft).all.verdict == Acceptance::accept);
}

// --- JSON, hints, the short table ---------------------------------------------------------

TEST_CASE("requirements JSON: the contract's names and values") {
  Fixture f;
  f.no_dkim();
  const auto j = to_json(f.run());
  REQUIRE(j["requirements"].is_array());
  CHECK(j["requirements"].size() == builtin().rules.size());
  for (const auto& r : j["requirements"]) {
    for (const char* key :
         {"provider", "rule", "applies_to", "status", "evidence", "source", "name", "severity"})
      CHECK_MESSAGE(r.contains(key), key);
    const std::string status = r["status"];
    CHECK((status == "pass" || status == "fail" || status == "unknown" ||
           status == "not-applicable"));
    CHECK(std::string(r["source"]).rfind("https://", 0) == 0);
  }
  for (const char* p : {"gmail", "yahoo", "microsoft"}) {
    CAPTURE(p);
    CHECK(j["verdicts"][p]["all"] == "accept");
    CHECK(j["verdicts"][p]["bulk"] == "reject");
    REQUIRE(j["verdicts_failing"][p]["bulk"].size() == 1);
    CHECK(j["verdicts_failing"][p]["bulk"][0]["rule"] == "dkim");
    CHECK(j["verdicts_failing"][p]["all"].empty());
  }
  REQUIRE(j["requirements_sources"].size() == builtin().sources.size());
  CHECK(j["requirements_sources"][0]["url"] == "https://support.google.com/a/answer/81126");
  CHECK(j["requirements_sources"][0]["read"] == "2026-12-06");
  CHECK(j["bulk_looking"] == false);
  CHECK(j["bulk_looking_reason"] == "");
  CHECK(j["format"]["errors"] == 0);
  CHECK(j["unsubscribe"]["one_click_post"] == false);
  REQUIRE(j["requirements_summary"].size() == 3);
  CHECK(j["requirements_summary"][0]["name"] == "Gmail");
  CHECK(j["requirements_summary"][0]["text"] ==
        "would accept as a small sender; bulk: would reject (missing DKIM)");
  CHECK_NOTHROW((void)j.dump());
}

TEST_CASE("requirements hints: which rule, and what to change") {
  {
    Fixture f;
    CHECK(requirements_hints(f.run()).empty());
  }
  {
    Fixture f;  // no DKIM: refused from bulk senders only; a warning, as the mail is not bulk
    f.no_dkim();
    const auto hints = requirements_hints(f.run());
    CHECK(has_hint(hints, "provider-reject", "warning",
                   "Gmail would refuse this message if it comes from a bulk sender. [DKIM passes] "
                   "The message has no DKIM-Signature. Gmail rate-limits (4.7.30) or blocks "
                   "(5.7.30) bulk mail that does not pass DKIM. What to change: Sign every"));
    CHECK(has_hint(hints, "provider-reject", "warning", "Microsoft Outlook.com would refuse"));
    CHECK_FALSE(has_hint(hints, "provider-at-risk"));
  }
  {
    Fixture f;  // the same, on mail that looks like bulk mail: an error
    f.no_dkim();
    f.header = "Precedence: bulk\r\n" + kHeader;
    const auto hints = requirements_hints(f.run());
    CHECK(has_hint(hints, "provider-reject", "error", "Yahoo would refuse"));
    CHECK(has_hint(hints, "no-one-click-unsubscribe", "warning",
                   "The message looks like bulk mail (Precedence: bulk), but there is no "
                   "List-Unsubscribe field"));
    CHECK(has_hint(hints, "provider-at-risk", "warning",
                   "Gmail may put this message in the spam folder or slow it down if it comes "
                   "from a bulk sender. [Marketing mail supports one-click unsubscribe (RFC "
                   "8058)]"));
  }
  {
    Fixture f;  // refused whatever the volume; at risk for missing TLS
    f.spf.result = SpfResult::fail;
    f.no_dkim();
    f.in.tls_version.reset();
    const auto hints = requirements_hints(f.run());
    CHECK(has_hint(hints, "provider-reject", "error",
                   "Gmail would refuse this message, whatever the sender's volume. [SPF or DKIM "
                   "passes] SPF fail for example.org"));
    CHECK(has_hint(hints, "provider-reject", "error",
                   "If it comes from a bulk sender, also: [SPF passes]"));
    // TLS fails as a reject rule for bulk senders: not repeated as a risk for Gmail.
    CHECK_FALSE(has_hint(hints, "provider-at-risk", "", "Gmail"));
    CHECK(has_hint(hints, "provider-reject", "error", "[The message is sent over TLS]"));
  }
  {
    Fixture f;  // the header's form
    f.header = "Subject: again\r\n" + kHeader;
    const auto hints = requirements_hints(f.run());
    CHECK(has_hint(hints, "format-error", "error",
                   "The message header breaks RFC 5322 (1 error): The Subject field appears 2 "
                   "times (lines 1 and 4)"));
  }
}

TEST_CASE("requirements summary: the short table's wording") {
  using P = MailboxProvider;
  {
    Fixture f;
    const auto r = f.run();
    for (P p : {P::gmail, P::yahoo, P::microsoft})
      CHECK(summary(r, p) == "would accept, from small and bulk senders");
    const auto rows = requirements_summary(r);
    CHECK(rows[0].provider == "gmail");
    CHECK(rows[0].name == "Gmail");
    CHECK(rows[2].name == "Microsoft Outlook.com");
  }
  {
    Fixture f;  // the example
    f.no_dkim();
    const auto r = f.run();
    for (P p : {P::gmail, P::yahoo, P::microsoft})
      CHECK(summary(r, p) == "would accept as a small sender; bulk: would reject (missing DKIM)");
  }
  {
    Fixture f;  // no TLS: Gmail only, at risk for small senders, refused from bulk senders
    f.in.tls_version.reset();
    const auto r = f.run();
    CHECK(summary(r, P::gmail) ==
          "at risk as a small sender (no TLS); bulk: would reject (no TLS)");
    CHECK(summary(r, P::yahoo) == "would accept, from small and bulk senders");
  }
  {
    Fixture f;  // nothing authenticates
    f.spf.result = SpfResult::fail;
    f.no_dkim();
    f.dmarc.result = DmarcResult::fail;
    f.dmarc.spf_aligned = false;
    f.dmarc.spf_pass = false;
    const auto r = f.run();
    CHECK(summary(r, P::gmail) ==
          "would reject (neither SPF nor DKIM passes); bulk: would reject (also SPF fail, "
          "missing DKIM, From not aligned)");
    CHECK(summary(r, P::microsoft) ==
          "would accept as a small sender; bulk: would reject (SPF fail, missing DKIM, From not "
          "aligned)");
  }
  {
    Fixture f;  // the same failures for every sender
    f.header = "Subject: again\r\n" + kHeader;
    CHECK(summary(f.run(), P::yahoo) == "would reject (duplicate Subject)");
    f.header = kHeader;
    f.in.dnsbl[0].outcome = DnsblOutcome::listed;
    CHECK(summary(f.run(), P::gmail) ==
          "at risk, from small and bulk senders (listed on zen.example.test)");
  }
  {
    Fixture f;  // a DNS error is no verdict, but the row says what is not known
    f.in.iprev = IprevResult::temperror;
    f.dkim.signatures[0].result = DkimResultCode::temperror;
    const auto r = f.run();
    CHECK(summary(r, P::gmail) ==
          "would accept, from small and bulk senders; not known: rDNS (DNS error), DKIM (DNS "
          "error)");
  }
  {
    Fixture f;  // more than three failures are counted
    f.spf.result = SpfResult::fail;
    f.no_dkim();
    f.dmarc.result = DmarcResult::none;
    f.dmarc.spf_pass = false;
    f.in.tls_version.reset();
    const auto r = f.run();
    CHECK(summary(r, P::gmail) ==
          "would reject (neither SPF nor DKIM passes, no TLS); bulk: would reject (also SPF "
          "fail, missing DKIM, no DMARC record, 1 more)");
  }
}

// --- End to end on the real checks --------------------------------------------------------

namespace {

struct Authenticated {
  SpfVerdict spf;
  DkimResults dkim;
  ArcResult arc;
  DmarcVerdict dmarc;
};

// Runs SPF, DKIM, ARC and DMARC on `message` as the server does, against `zone`.
Authenticated authenticate(const std::string& message, const TestZone& zone) {
  Authenticated a;
  SpfInput si;
  si.ip = *IpAddress::parse("192.0.2.7");
  si.mail_from = "alice@example.org";
  si.helo = "mail.example.org";
  si.receiver = "mx.example.test";
  a.spf = test::drive(
      zone, [&](const DnsSource& dns) { return check_spf(si, SpfIdentity::mail_from, dns); });
  const DkimCheck dkim = check_message(message);
  a.dkim = test::drive(zone, [&](const DnsSource& dns) { return dkim.verify(dns, 1'800'000'000); });
  a.arc = test::drive(zone, [&](const DnsSource& dns) { return dkim.verify_arc(dns); });
  DmarcInput di;
  for (const auto& f : split_raw_header(split_message(message).header).fields)
    if (ascii::iequals(f.name, "From")) di.from_fields.push_back(std::string(f.value));
  di.spf_pass = a.spf.result == SpfResult::pass;
  di.spf_domain = a.spf.domain;
  for (const auto& s : a.dkim.signatures)
    di.dkim.push_back({s.result == DkimResultCode::pass, s.domain});
  a.dmarc = test::drive(zone, [&](const DnsSource& dns) { return check_dmarc(di, dns); });
  return a;
}

TestZone make_zone(const dkim_test::TestKey& key, const std::string& spf) {
  TestZone zone;
  zone.txt("example.org", spf)
      .txt("_dmarc.example.org", "v=DMARC1; p=reject")
      .txt("s1._domainkey.example.org", dkim_test::key_record(key))
      .a("example.org", "192.0.2.80");
  return zone;
}

RequirementsResult evaluate(const std::string& message, const Authenticated& a) {
  RequirementsInput in;
  in.spf = &a.spf;
  in.dkim = &a.dkim;
  in.dmarc = &a.dmarc;
  in.arc = &a.arc;
  in.iprev = IprevResult::pass;
  in.ptr_names = {"mail.example.org"};
  in.ip = "192.0.2.7";
  in.tls_version = "TLSv1.3";
  in.raw_header = message;
  return evaluate_requirements(builtin(), in);
}

}  // namespace

TEST_CASE("requirements end to end: signed and unsigned messages through SPF, DKIM and DMARC") {
  const dkim_test::TestKey key = dkim_test::make_rsa_key(2048);
  const TestZone zone = make_zone(key, "v=spf1 ip4:192.0.2.7 -all");
  const std::string message = kHeader + "Hello.\r\n.a line that starts with a dot\r\n";

  // Signed: accepted by all three, from small and bulk senders.
  const std::string signed_message =
      dkim_test::sign(message, key, {.h = "from:to:subject:date:message-id"});
  Authenticated a = authenticate(signed_message, zone);
  REQUIRE(a.spf.result == SpfResult::pass);
  REQUIRE(a.dkim.overall() == DkimResultCode::pass);
  REQUIRE(a.dmarc.result == DmarcResult::pass);
  RequirementsResult r = evaluate(signed_message, a);
  for (const auto& pv : r.verdicts) {
    CAPTURE(to_string(pv.provider));
    CHECK(pv.all.verdict == Acceptance::accept);
    CHECK(pv.bulk.verdict == Acceptance::accept);
  }

  // Unsigned: SPF still carries every sender, the bulk verdicts name the missing DKIM.
  a = authenticate(message, zone);
  REQUIRE(a.dkim.signatures.empty());
  r = evaluate(message, a);
  for (const auto& pv : r.verdicts) {
    CAPTURE(to_string(pv.provider));
    CHECK(pv.all.verdict == Acceptance::accept);
    CHECK(pv.bulk.verdict == Acceptance::reject);
    REQUIRE(pv.bulk.failing.size() == 1);
    CHECK(r.rules[pv.bulk.failing[0]].rule->check == RequirementCheck::dkim_pass);
  }
  CHECK(summary(r, MailboxProvider::gmail) ==
        "would accept as a small sender; bulk: would reject (missing DKIM)");

  // Marketing mail with RFC 8058 one-click, both fields signed.
  const std::string marketing = dkim_test::sign(
      kUnsubscribe + message, key,
      {.h = "from:to:subject:date:message-id:list-unsubscribe:list-unsubscribe-post"});
  a = authenticate(marketing, zone);
  r = evaluate(marketing, a);
  CHECK(r.unsubscribe.bulk_looking);
  CHECK(check(r, RequirementCheck::one_click_unsubscribe).status == RuleStatus::pass);
  for (const auto& pv : r.verdicts) CHECK(pv.bulk.verdict == Acceptance::accept);

  // Mail from another server that cannot pass DMARC under p=reject: refused by everyone.
  a = authenticate(message, make_zone(key, "v=spf1 ip4:198.51.100.1 -all"));
  REQUIRE(a.dmarc.result == DmarcResult::fail);
  r = evaluate(message, a);
  for (const auto& pv : r.verdicts) CHECK(pv.all.verdict == Acceptance::reject);
  CHECK(check(r, RequirementCheck::dmarc_policy_reject).status == RuleStatus::fail);
}

// The authentication part of the report (auth_report.hpp, auth_verdicts.hpp) on verdicts that
// the real checks reached against a zone of test records: the Authentication-Results value
// (RFC 8601 syntax, values quoted where they must be), the JSON contract, the hints (a local
// test's SPF advice), the words in the 250 line, DMARC's input, and the rendered sections.
#include <doctest/doctest.h>

#include <string>

#include "dkim_test_support.hpp"
#include "dns_test_support.hpp"
#include "responder/analysis/auth_report.hpp"
#include "responder/analysis/report.hpp"
#include "responder/reply/render.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;
using ipconfirm::responder::test::TestZone;

namespace {

const char* const kMessage =
    "From: Alice <alice@example.org>\r\n"
    "To: ipconfirm@example.test\r\n"
    "Subject: auth\r\n"
    "Date: Mon, 23 Nov 2026 13:59:00 +0000\r\n"
    "Message-ID: <auth.1@example.org>\r\n"
    "\r\n"
    "Hello.\r\n"
    ".a line that starts with a dot\r\n";

struct Signed {
  dkim_test::TestKey key = dkim_test::make_rsa_key(2048);
  std::string message;
  TestZone zone;
};

// example.org: SPF allows 203.0.113.7, a DKIM key at s1, DMARC p=reject.
Signed signed_message(const std::string& message = kMessage) {
  Signed s;
  s.message = dkim_test::sign(message, s.key, {});
  s.zone.txt("example.org", "v=spf1 ip4:203.0.113.7 -all")
      .txt("s1._domainkey.example.org", dkim_test::key_record(s.key))
      .txt("_dmarc.example.org", "v=DMARC1; p=reject")
      .a("example.org", "203.0.113.80")
      .a("mail.example.org", "203.0.113.7");
  return s;
}

SpfInput spf_input(const std::string& mail_from = "alice@example.org") {
  SpfInput in;
  in.ip = *IpAddress::parse("203.0.113.7");
  in.mail_from = mail_from;
  in.helo = "mail.example.org";
  in.receiver = "mx.example.test";
  in.now = 1795442340;
  return in;
}

// Every check run as the driver runs them, the body fed in small pieces.
AuthVerdicts evaluate(const Signed& s, const std::string& body_override = "",
                      const std::string& mail_from = "alice@example.org") {
  AuthVerdicts v;
  const SpfInput in = spf_input(mail_from);
  v.spf = test::drive(s.zone,
                      [&](const DnsSource& d) { return check_spf(in, SpfIdentity::mail_from, d); });
  v.spf_helo =
      test::drive(s.zone, [&](const DnsSource& d) { return check_spf(in, SpfIdentity::helo, d); });
  const MessageParts parts = split_message(s.message);
  DkimCheck check(parts.header);
  const std::string body = body_override.empty() ? std::string(parts.body) : body_override;
  for (std::size_t at = 0; at < body.size(); at += 3) check.body().feed(body.substr(at, 3));
  check.end_body();
  v.dkim = test::drive(s.zone, [&](const DnsSource& d) { return check.verify(d, in.now); });
  v.arc = check.verify_arc(DnsAnswers{});
  const DmarcInput dmarc = dmarc_input(from_field_values(parts.header), &*v.spf, &*v.dkim);
  v.dmarc = test::drive(s.zone, [&](const DnsSource& d) { return check_dmarc(dmarc, d); });
  return v;
}

AuthResultsContext context(std::string iprev = "pass",
                           std::string mail_from = "alice@example.org") {
  return AuthResultsContext{"mx.example.test", "203.0.113.7", std::move(iprev),
                            std::move(mail_from)};
}

bool has(const std::vector<Hint>& hints, const std::string& code) {
  for (const auto& h : hints)
    if (h.code == code) return true;
  return false;
}

}  // namespace

TEST_CASE("auth: a signed message from an allowed address passes all three") {
  const Signed s = signed_message();
  const AuthVerdicts v = evaluate(s);
  REQUIRE(v.spf->result == SpfResult::pass);
  REQUIRE(v.dkim->overall() == DkimResultCode::pass);
  REQUIRE(v.dmarc->result == DmarcResult::pass);
  CHECK(v.arc->result == "none");
  CHECK(authentication_results(v, context()) ==
        "mx.example.test; spf=pass smtp.mailfrom=example.org; dkim=pass header.d=example.org "
        "header.s=s1; dmarc=pass header.from=example.org; arc=none; iprev=pass "
        "policy.iprev=203.0.113.7");
  CHECK(auth_summary(v) == "spf=pass dkim=pass dmarc=pass");
  const auto j = auth_to_json(v, "x");
  CHECK(j["spf"]["result"] == "pass");
  CHECK(j["spf"]["record"] == "v=spf1 ip4:203.0.113.7 -all");
  CHECK(j["spf_helo"]["result"] == "none");
  CHECK(j["dkim"][0]["result"] == "pass");
  CHECK(j["dkim"][0]["key_bits"] == 2048);
  CHECK(j["dmarc"]["result"] == "pass");
  CHECK(j["dmarc"]["policy"] == "reject");
  CHECK(j["arc"]["result"] == "none");
  CHECK(j["authentication_results"] == "x");
  const auto hints = auth_hints(v, false, "203.0.113.7");
  CHECK(hints.empty());
}

TEST_CASE("auth: a body changed after signing fails DKIM with both hashes, DMARC rests on SPF") {
  const Signed s = signed_message();
  const AuthVerdicts v =
      evaluate(s, "Hello.\r\n.a line that starts with a dot\r\n--\r\nfooter\r\n");
  REQUIRE(v.dkim->signatures.size() == 1);
  const auto& sig = v.dkim->signatures[0];
  CHECK(sig.result == DkimResultCode::fail);
  CHECK_FALSE(sig.body_hash_computed.empty());
  CHECK(sig.body_hash_computed != sig.body_hash_expected);
  CHECK(sig.header_signature_ok);
  CHECK(v.dmarc->result == DmarcResult::pass);  // SPF is aligned
  CHECK(
      authentication_results(v, context())
          .find("dkim=fail reason=\"body hash did not verify\" header.d=example.org header.s=s1") !=
      std::string::npos);
  const auto hints = auth_hints(v, false, "203.0.113.7");
  REQUIRE(has(hints, "dkim-fail"));
  for (const auto& h : hints)
    if (h.code == "dkim-fail") {
      CHECK(h.text.find(sig.body_hash_computed) != std::string::npos);
      CHECK(h.text.find(sig.body_hash_expected) != std::string::npos);
    }
  CHECK(auth_summary(v) == "spf=pass dkim=fail dmarc=pass");
}

TEST_CASE("auth: the null sender is checked as the HELO name and named smtp.helo") {
  Signed s = signed_message();
  s.zone.txt("mail.example.org", "v=spf1 a -all");
  const AuthVerdicts v = evaluate(s, "", "");
  CHECK(v.spf->result == SpfResult::pass);
  CHECK(v.spf->domain == "mail.example.org");
  const std::string ar = authentication_results(v, context("pass", ""));
  CHECK(ar.find("spf=pass smtp.helo=mail.example.org;") != std::string::npos);
  CHECK(ar.find("smtp.mailfrom") == std::string::npos);
}

TEST_CASE("auth: Authentication-Results quotes what is not a token, and knows no verdict") {
  AuthVerdicts v;
  DkimResults d;
  DkimSignatureResult sig;
  sig.result = DkimResultCode::permerror;
  sig.domain = "ex ample;\"org\\";
  sig.selector = "s=1\xc3\xa9";
  d.signatures.push_back(sig);
  DkimSignatureResult unchecked;
  unchecked.checked = false;
  unchecked.result = DkimResultCode::policy;
  d.signatures.push_back(unchecked);
  v.dkim = d;
  CHECK(authentication_results(v, context("none")) ==
        "mx.example.test; dkim=permerror header.d=\"ex ample;\\\"org\\\\\" header.s=\"s=1??\"; "
        "iprev=fail policy.iprev=203.0.113.7");
  // Nothing evaluated at all.
  CHECK(authentication_results(AuthVerdicts{}, AuthResultsContext{"mx.example.test", "", "", ""}) ==
        "mx.example.test; none");
  // An unsigned message.
  AuthVerdicts unsigned_message;
  unsigned_message.dkim = DkimResults{};
  CHECK(authentication_results(unsigned_message, context("")) == "mx.example.test; dkim=none");
  // ARC temperror has no RFC 8617 result: left out.
  AuthVerdicts arc;
  arc.arc = ArcResult{};
  arc.arc->result = "temperror";
  CHECK(authentication_results(arc, context("temperror")) ==
        "mx.example.test; iprev=temperror policy.iprev=203.0.113.7");
}

TEST_CASE("auth: a DNS failure is temperror everywhere, never a verdict") {
  Signed s = signed_message();
  s.zone.timeout("example.org", RrType::txt)
      .timeout("s1._domainkey.example.org", RrType::txt)
      .timeout("_dmarc.example.org", RrType::txt);
  const AuthVerdicts v = evaluate(s);
  CHECK(v.spf->result == SpfResult::temperror);
  CHECK(v.dkim->overall() == DkimResultCode::temperror);
  CHECK(v.dmarc->result == DmarcResult::temperror);
  const auto hints = auth_hints(v, false, "203.0.113.7");
  CHECK(has(hints, "spf-temperror"));
  CHECK(has(hints, "dkim-temperror"));
  CHECK(has(hints, "dmarc-temperror"));
  CHECK_FALSE(has(hints, "spf-none"));
  CHECK_FALSE(has(hints, "dmarc-fail"));
  CHECK(auth_summary(v) == "spf=temperror dkim=temperror dmarc=temperror");
}

TEST_CASE("auth: a local test says what SPF means for its address instead of what to add") {
  Signed s = signed_message();
  TestZone none;  // nothing published at all
  s.zone = none;
  const AuthVerdicts v = evaluate(s);
  REQUIRE(v.spf->result == SpfResult::none);
  const auto internet = auth_hints(v, false, "203.0.113.7");
  CHECK(has(internet, "spf-none"));
  const auto local = auth_hints(v, true, "127.0.0.1");
  CHECK_FALSE(has(local, "spf-none"));
  REQUIRE(has(local, "spf-local-test"));
  for (const auto& h : local) {
    CHECK(h.text.find("ip4:127.0.0.1") == std::string::npos);
    if (h.code == "spf-local-test") {
      CHECK(h.severity == "warning");
      CHECK(h.text.find("publishes no SPF record") != std::string::npos);
    }
  }
  // DKIM and DMARC do not depend on the address: their advice stays.
  CHECK(has(local, "dkim-no-key"));
  CHECK(has(local, "dmarc-none"));
}

TEST_CASE("auth: DMARC's input, and the prefetch input that asks everything it may need") {
  CHECK(from_field_values("From: a@x.example\r\nTo: b@y\r\nfrom:\r\n c@z.example\r\n\r\n") ==
        std::vector<std::string>{" a@x.example", "\r\n c@z.example"});
  SpfVerdict spf;
  spf.complete = true;
  spf.result = SpfResult::pass;
  spf.domain = "bounce.example.org";
  DkimResults dkim;
  DkimSignatureResult a, b, c;
  a.result = DkimResultCode::pass;
  a.domain = "example.org";
  b.result = DkimResultCode::fail;
  b.domain = "esp.example";
  c.checked = false;
  c.domain = "later.example";
  dkim.signatures = {a, b, c};
  const DmarcInput in = dmarc_input({"x@example.org"}, &spf, &dkim);
  CHECK(in.spf_pass);
  CHECK(in.spf_domain == "bounce.example.org");
  REQUIRE(in.dkim.size() == 2);
  CHECK(in.dkim[0].pass);
  CHECK_FALSE(in.dkim[1].pass);
  const DmarcInput pre =
      dmarc_prefetch_input({"x@mail.example.org"}, "bounce.example.org", {"esp.example.org"});
  CHECK(pre.spf_pass);
  REQUIRE(pre.dkim.size() == 1);
  CHECK(pre.dkim[0].pass);
  // The prefetch run asks every walk the real run can need: the real run, whatever passes,
  // then asks nothing new.
  TestZone zone;
  zone.txt("_dmarc.example.org", "v=DMARC1; p=none");
  test::DriveLog pre_log;
  (void)test::drive(
      zone, [&](const DnsSource& d) { return check_dmarc(pre, d); }, &pre_log);
  DnsAnswers answers;
  for (const auto& round : pre_log.rounds)
    for (const auto& q : round) answers.put(q.name, q.type, zone.answer(q.name, q.type));
  for (bool spf_pass : {false, true})
    for (bool dkim_pass : {false, true}) {
      DmarcInput real = pre;
      real.spf_pass = spf_pass;
      real.dkim[0].pass = dkim_pass;
      const DmarcVerdict verdict = check_dmarc(real, answers);
      CHECK(verdict.complete);
    }
}

TEST_CASE("auth: the report carries the verdicts, the hints and the words for the 250 line") {
  const Signed s = signed_message();
  Observation o;
  o.ip = *IpAddress::parse("203.0.113.7");
  o.arrival = 1795442400;
  o.helo = "mail.example.org";
  o.mail_from = "alice@example.org";
  o.rcpt_to = {"ipconfirm@example.test"};
  o.auth = evaluate(s, "Hello.\r\nchanged\r\n");
  o.ptr.done = true;
  o.ptr.status = DnsStatus::nxdomain;
  DnsLog log;
  auto t = log.start("example.org", RrType::txt, DnsLog::Clock::now());
  REQUIRE(t);
  log.finish(*t, DnsResult{DnsStatus::nxdomain, {}, "NXDOMAIN"}, DnsLog::Clock::now());
  o.dns_log = merge_dns_logs({&log}, DnsLog::Clock::now());
  const Report r = build_report(o, ReportOptions{"mx.example.test"});
  CHECK(r.json["auth"]["spf"]["result"] == "pass");
  CHECK(r.json["auth"]["dkim"][0]["result"] == "fail");
  CHECK(r.json["auth"]["dmarc"]["result"] == "pass");
  CHECK(r.json["auth"]["authentication_results"].get<std::string>().rfind(
            "mx.example.test; spf=pass smtp.mailfrom=example.org; dkim=fail", 0) == 0);
  CHECK(r.json["auth"]["authentication_results"].get<std::string>().find(
            "iprev=fail policy.iprev=203.0.113.7") != std::string::npos);
  CHECK(r.json["dns_log"][0]["name"] == "example.org");
  CHECK(r.json["dns_log"][0]["rcode"] == "NXDOMAIN");
  CHECK(r.json["dns_log_omitted"] == 0);
  CHECK(r.summary == "rDNS none; spf=pass dkim=fail dmarc=pass");
  bool dkim_fail = false;
  for (const auto& h : r.hints) dkim_fail = dkim_fail || h.code == "dkim-fail";
  CHECK(dkim_fail);

  // Rendered: a section per protocol, with the record, both body hashes, the policy and what a
  // receiver does; the DNS log; every line of the text within 76 columns.
  std::string error;
  auto templates = load_templates("", error);
  REQUIRE_MESSAGE(templates, error);
  const Rendered out = render_report(*templates, r.json);
  const auto& sig = o.auth.dkim->signatures[0];
  for (const std::string& needle :
       {std::string("SPF for the MAIL FROM domain example.org"),
        std::string("v=spf1 ip4:203.0.113.7 -all"), std::string("DKIM signature 1 of 1"),
        sig.body_hash_expected, sig.body_hash_computed,
        std::string("DIFFERENT: the body was changed after signing"),
        std::string("DMARC for the From domain example.org"), std::string("p=reject"),
        std::string("deliver it: DMARC passes"), std::string("ARC (RFC 8617)"),
        std::string("DNS lookups made for this report (1)")}) {
    CAPTURE(needle);
    CHECK(out.text.find(needle) != std::string::npos);
    CHECK(out.html.find(needle) != std::string::npos);
  }
  CHECK(out.text.find("TXT example.org: NXDOMAIN") != std::string::npos);
  {  // One row of the DNS log table: type, name, result (the cells carry inline styles).
    const std::size_t row = out.html.find(">TXT</td><td ");
    REQUIRE(row != std::string::npos);
    const std::string tr = out.html.substr(row, out.html.find("</tr>", row) - row);
    CHECK(tr.find(">example.org</td>") != std::string::npos);
    CHECK(tr.find(">NXDOMAIN</td>") != std::string::npos);
  }
  std::size_t start = 0;
  while (start < out.text.size()) {
    std::size_t end = out.text.find('\n', start);
    if (end == std::string::npos) end = out.text.size();
    CHECK_MESSAGE(end - start <= 76, out.text.substr(start, end - start));
    start = end + 1;
  }
}

namespace {

// A sender that does everything right on the connection: TLS, a PTR name that resolves back,
// not listed; the message and its verdicts from `s`.
Observation connected(const Signed& s, const AuthVerdicts& v) {
  Observation o;
  o.ip = *IpAddress::parse("203.0.113.7");
  o.arrival = 1795442400;
  o.tls_version = "TLSv1.3";
  o.tls_cipher = "TLS_AES_256_GCM_SHA384";
  o.helo = "mail.example.org";
  o.esmtp = true;
  o.mail_from = "alice@example.org";
  o.rcpt_to = {"ipconfirm@example.test"};
  o.reply_domain = "example.test";
  auto record = [](RrType type, const char* text) {
    DnsRecord r;
    r.type = type;
    if (type == RrType::ptr)
      r.text = text;
    else
      r.address = *IpAddress::parse(text);
    return r;
  };
  o.ptr.done = true;
  o.ptr.status = DnsStatus::ok;
  o.ptr.records = {record(RrType::ptr, "mail.example.org")};
  ForwardLookup f;
  f.name = "mail.example.org";
  f.a.done = true;
  f.a.status = DnsStatus::ok;
  f.a.records = {record(RrType::a, "203.0.113.7")};
  o.forward.push_back(f);
  o.helo_a = f.a;
  o.helo_aaaa.done = true;
  o.helo_aaaa.status = DnsStatus::nodata;
  DnsblLookup bl;
  bl.zone = "bl.example.test";
  bl.a.done = bl.txt.done = true;
  bl.a.status = bl.txt.status = DnsStatus::nxdomain;
  o.dnsbl.push_back(bl);
  const MessageParts parts = split_message(s.message);
  o.raw_header = std::string(parts.header);
  o.message = mime::read_incoming(o.raw_header);
  o.auth = v;
  return o;
}

}  // namespace

TEST_CASE("requirements: the report judges the providers' rules on the auth verdicts") {
  const Signed s = signed_message();
  const Observation good = connected(s, evaluate(s));
  const Report r = build_report(good, ReportOptions{"mx.example.test"});
  for (const char* p : {"gmail", "yahoo", "microsoft"}) {
    CAPTURE(p);
    CHECK(r.json["verdicts"][p]["all"] == "accept");
    CHECK(r.json["verdicts"][p]["bulk"] == "accept");
  }
  REQUIRE(r.json["requirements"].is_array());
  for (const auto& q : r.json["requirements"]) {
    CAPTURE(q.dump());
    CHECK(q["status"] != "fail");
    for (const char* key : {"provider", "rule", "applies_to", "status", "evidence", "source"})
      CHECK(q.contains(key));
  }
  CHECK(r.json["requirements_summary"][0]["text"] == "would accept, from small and bulk senders");
  CHECK(r.json["format"].is_object());
  CHECK_FALSE(has(r.hints, "provider-reject"));
  CHECK_FALSE(has(r.hints, "provider-at-risk"));
  CHECK_FALSE(has(r.hints, "format-error"));

  // The same message unsigned: SPF alone passes for small senders; the bulk rules miss DKIM.
  Signed unsigned_message = signed_message();
  unsigned_message.message = kMessage;
  const Observation plain = connected(unsigned_message, evaluate(unsigned_message));
  REQUIRE(plain.auth.dkim->signatures.empty());
  const Report u = build_report(plain, ReportOptions{"mx.example.test"});
  for (const char* p : {"gmail", "yahoo", "microsoft"}) {
    CAPTURE(p);
    CHECK(u.json["verdicts"][p]["all"] == "accept");
    CHECK(u.json["verdicts"][p]["bulk"] != "accept");
    bool names_dkim = false;
    for (const auto& f : u.json["verdicts_failing"][p]["bulk"])
      names_dkim = names_dkim || f["rule"] == "dkim";
    CHECK(names_dkim);
  }
  CHECK(has(u.hints, "dkim-none"));
  CHECK((has(u.hints, "provider-reject") || has(u.hints, "provider-at-risk")));

  // Rendered: the short table at the top of the text and the HTML, the rules below.
  std::string error;
  auto templates = load_templates("", error);
  REQUIRE_MESSAGE(templates, error);
  const Rendered out = render_report(*templates, u.json);
  const std::string gmail = u.json["requirements_summary"][0]["text"].get<std::string>();
  CHECK(gmail.find("DKIM") != std::string::npos);
  const auto flat = [](const std::string& t) {
    std::string o;
    for (char c : t) {
      if (c == '\n' || c == ' ') {
        if (!o.empty() && o.back() != ' ') o += ' ';
      } else {
        o += c;
      }
    }
    return o;
  };
  const std::string text = flat(out.text);
  CHECK(out.text.find("Would Gmail, Yahoo and Microsoft accept it?") <
        out.text.find("\nWHAT TO DO\n"));
  CHECK(text.find("Gmail: " + gmail) != std::string::npos);
  CHECK(text.find("The mailbox providers' rules that fail or cannot be told") != std::string::npos);
  CHECK(out.html.find("Would Gmail, Yahoo and Microsoft accept it?") != std::string::npos);
  {  // The providers' table: Gmail's row says accept (the cells carry inline styles).
    const std::size_t row = out.html.find(">Gmail</td><td ");
    REQUIRE(row != std::string::npos);
    const std::string tr = out.html.substr(row, out.html.find("</tr>", row) - row);
    CHECK(tr.find(">accept</td>") != std::string::npos);
  }

  // A local test cannot show the reverse DNS or blocklist rules of its address: unknown there.
  Observation local = connected(s, evaluate(s));
  local.ip = *IpAddress::parse("127.0.0.1");
  local.tls_version.reset();
  const Report l = build_report(local, ReportOptions{"mx.example.test"});
  int connection_rules = 0;
  for (const auto& q : l.json["requirements"])
    if (q["rule"] == "fcrdns" || q["rule"] == "tls" || q["rule"] == "reverse-dns") {
      CAPTURE(q.dump());
      ++connection_rules;
      CHECK(q["status"] == "unknown");
      CHECK(q["evidence"].get<std::string>().find("local test") != std::string::npos);
    }
  CHECK(connection_rules >= 3);
  CHECK(l.json["verdicts"]["gmail"]["all"] == "accept");
}

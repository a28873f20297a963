// The report builder on plain values: every verdict and every hint code is produced where it
// must be and absent where it must not.
#include <doctest/doctest.h>

#include <algorithm>

#include "mime/date.hpp"
#include "responder/analysis/report.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;

namespace {

IpAddress ip(const char* s) {
  return *IpAddress::parse(s);
}

Lookup done(DnsStatus st) {
  Lookup l;
  l.status = st;
  l.done = true;
  return l;
}

Lookup ptr(std::initializer_list<const char*> names) {
  Lookup l = done(DnsStatus::ok);
  for (const char* n : names) {
    DnsRecord r;
    r.type = RrType::ptr;
    r.text = n;
    l.records.push_back(r);
  }
  return l;
}

Lookup addrs(RrType type, std::initializer_list<const char*> list) {
  Lookup l = done(list.size() ? DnsStatus::ok : DnsStatus::nodata);
  for (const char* a : list) {
    DnsRecord r;
    r.type = type;
    r.address = ip(a);
    l.records.push_back(r);
  }
  return l;
}

// A sender that does everything right: public IP, confirmed PTR, HELO = PTR, TLS, not listed.
Observation clean() {
  Observation o;
  o.ip = ip("203.0.113.7");
  o.port = 40000;
  o.tls_version = "TLSv1.3";
  o.tls_cipher = "TLS_AES_256_GCM_SHA384";
  o.arrival = 1795442103;
  o.helo = "mail.example.org";
  o.esmtp = true;
  o.mail_from = "alice@example.org";
  o.rcpt_to = {"ipconfirm@example.test"};
  o.reply_domain = "example.test";
  o.ptr = ptr({"mail.example.org"});
  ForwardLookup f;
  f.name = "mail.example.org";
  f.a = addrs(RrType::a, {"203.0.113.7"});
  o.forward.push_back(f);
  o.helo_a = addrs(RrType::a, {"203.0.113.7"});
  o.helo_aaaa = addrs(RrType::aaaa, {});
  DnsblLookup bl;
  bl.zone = "bl.example.test";
  bl.a = done(DnsStatus::nxdomain);
  bl.txt = done(DnsStatus::nxdomain);
  o.dnsbl.push_back(bl);
  return o;
}

Report build(const Observation& o) {
  return build_report(o, ReportOptions{"mx.example.test"});
}

std::vector<std::string> codes(const Report& r) {
  std::vector<std::string> out;
  for (const auto& h : r.hints) out.push_back(h.code);
  return out;
}

bool has(const Report& r, const std::string& code) {
  auto c = codes(r);
  return std::find(c.begin(), c.end(), code) != c.end();
}

const char* kAllCodes[] = {"no-ptr",        "ptr-not-confirmed", "generic-ptr",
                           "helo-not-fqdn", "helo-mismatch",     "helo-literal-mismatch",
                           "dnsbl-listed",  "behind-nat",        "dns-temperror",
                           "no-tls",        "non-public-ip",     "ptr-invalid",
                           "dnsbl-refused", "clock-skew",        "delivery-delay"};

void only(const Report& r, std::initializer_list<const char*> expected) {
  for (const char* code : kAllCodes) {
    bool want = std::find_if(expected.begin(), expected.end(), [&](const char* e) {
                  return std::string(e) == code;
                }) != expected.end();
    std::string name = code;
    CAPTURE(name);
    CHECK(has(r, name) == want);
  }
}

}  // namespace

TEST_CASE("report: a clean sender gets pass and no hint at all") {
  Report r = build(clean());
  only(r, {});
  const auto& j = r.json;
  CHECK(j["connection"]["ip"] == "203.0.113.7");
  CHECK(j["connection"]["port"] == 40000);
  CHECK(j["connection"]["tls"]["version"] == "TLSv1.3");
  CHECK(j["connection"]["tls"]["cipher"] == "TLS_AES_256_GCM_SHA384");
  CHECK(j["helo"]["name"] == "mail.example.org");
  CHECK(j["helo"]["resolves"] == true);
  CHECK(j["helo"]["matches_ptr"] == true);
  CHECK(j["rdns"]["status"] == "pass");
  CHECK(j["rdns"]["ptr"] == nlohmann::ordered_json::array({"mail.example.org"}));
  CHECK(j["rdns"]["forward_confirmed"] == true);
  CHECK(j["rdns"]["generic"] == false);
  CHECK(j["envelope"]["mail_from"] == "alice@example.org");
  CHECK(j["envelope"]["rcpt_to"][0] == "ipconfirm@example.test");
  CHECK(j["dnsbl"][0]["zone"] == "bl.example.test");
  CHECK(j["dnsbl"][0]["listed"] == false);
  CHECK(j["received"].is_array());
  CHECK(j["path"]["gateway_ip"] == "203.0.113.7");
  CHECK(j["hints"].is_array());
  CHECK(r.summary == "PTR mail.example.org, forward-confirmed");
}

TEST_CASE("report: no PTR is iprev none and no-ptr") {
  Observation o = clean();
  o.ptr = done(DnsStatus::nxdomain);
  o.forward.clear();
  Report r = build(o);
  CHECK(r.json["rdns"]["status"] == "none");
  CHECK(r.json["rdns"]["ptr"].empty());
  CHECK(r.json["rdns"]["forward_confirmed"] == false);
  only(r, {"no-ptr"});  // the HELO still resolves to the IP: it fits
  o.ptr = done(DnsStatus::nodata);
  CHECK(build(o).json["rdns"]["status"] == "none");
}

TEST_CASE("report: a PTR that does not resolve back is fail and ptr-not-confirmed") {
  Observation o = clean();
  o.forward[0].a = addrs(RrType::a, {"198.51.100.1"});
  Report r = build(o);
  CHECK(r.json["rdns"]["status"] == "fail");
  CHECK(r.json["rdns"]["forward_confirmed"] == false);
  only(r, {"ptr-not-confirmed"});
  o.forward[0].a = done(DnsStatus::nxdomain);
  CHECK(build(o).json["rdns"]["status"] == "fail");
}

TEST_CASE("report: one confirmed name among several PTRs is a pass") {
  Observation o = clean();
  o.ptr = ptr({"other.example.org", "mail.example.org"});
  ForwardLookup f;
  f.name = "other.example.org";
  f.a = addrs(RrType::a, {"198.51.100.1"});
  o.forward.insert(o.forward.begin(), f);
  Report r = build(o);
  CHECK(r.json["rdns"]["status"] == "pass");
  CHECK(r.json["rdns"]["ptr"].size() == 2);
  only(r, {});
}

TEST_CASE("report: a hostile PTR is never copied and is permerror") {
  Observation o = clean();
  o.ptr = ptr({"evil\r\nBcc: x@example.net", std::string(300, 'a').c_str()});
  o.forward.clear();
  Report r = build(o);
  CHECK(r.json["rdns"]["status"] == "permerror");
  CHECK(r.json["rdns"]["ptr"].empty());
  CHECK(r.json["rdns"]["invalid_ptr_count"] == 2);
  CHECK(r.json.dump().find("Bcc") == std::string::npos);
  only(r, {"ptr-invalid"});
}

TEST_CASE("report: a DNS failure is temperror, never a verdict") {
  Observation o = clean();
  o.ptr = done(DnsStatus::temperror);
  o.forward.clear();
  Report r = build(o);
  CHECK(r.json["rdns"]["status"] == "temperror");
  only(r, {"dns-temperror"});
  // A lookup that did not finish before the deadline counts the same.
  Observation late = clean();
  late.ptr = Lookup{};
  late.forward.clear();
  Report r2 = build(late);
  CHECK(r2.json["rdns"]["status"] == "temperror");
  CHECK(has(r2, "dns-temperror"));
  CHECK_FALSE(has(r2, "no-ptr"));
  // A forward lookup that failed temporarily is no "fail" either.
  Observation fwd = clean();
  fwd.forward[0].a = done(DnsStatus::temperror);
  Report r3 = build(fwd);
  CHECK(r3.json["rdns"]["status"] == "temperror");
  CHECK_FALSE(has(r3, "ptr-not-confirmed"));
  CHECK(has(r3, "dns-temperror"));
}

TEST_CASE("report: generic rDNS is a hint, graded by name") {
  Observation o = clean();
  o.ptr = ptr({"203-0-113-7.dynamic.isp.example"});
  o.forward[0].name = "203-0-113-7.dynamic.isp.example";
  o.helo = "203-0-113-7.dynamic.isp.example";
  Report r = build(o);
  CHECK(r.json["rdns"]["generic"] == true);
  CHECK(r.json["rdns"]["status"] == "pass");
  only(r, {"generic-ptr"});
  CHECK_FALSE(r.json["rdns"]["generic_signals"].empty());
}

TEST_CASE("report: HELO judgements") {
  SUBCASE("not a FQDN") {
    Observation o = clean();
    o.helo = "localhost";
    o.helo_a = Lookup{};
    o.helo_aaaa = Lookup{};
    Report r = build(o);
    CHECK(r.json["helo"]["kind"] == "bare_name");
    only(r, {"helo-not-fqdn"});
  }
  SUBCASE("a FQDN that points elsewhere and is not the PTR") {
    Observation o = clean();
    o.helo = "other.example.net";
    o.helo_a = addrs(RrType::a, {"198.51.100.9"});
    Report r = build(o);
    CHECK(r.json["helo"]["matches_ptr"] == false);
    CHECK(r.json["helo"]["resolves"] == true);
    only(r, {"helo-mismatch"});
  }
  SUBCASE("a FQDN that does not resolve") {
    Observation o = clean();
    o.helo = "nowhere.example.net";
    o.helo_a = done(DnsStatus::nxdomain);
    o.helo_aaaa = done(DnsStatus::nxdomain);
    Report r = build(o);
    CHECK(r.json["helo"]["resolves"] == false);
    only(r, {"helo-mismatch"});
  }
  SUBCASE("a HELO lookup that failed temporarily is no mismatch") {
    Observation o = clean();
    o.helo = "other.example.net";
    o.helo_a = done(DnsStatus::temperror);
    Report r = build(o);
    only(r, {"dns-temperror"});
  }
  SUBCASE("an address literal of another address: NAT") {
    Observation o = clean();
    o.helo = "[192.168.1.10]";
    Report r = build(o);
    CHECK(r.json["helo"]["kind"] == "address_literal");
    CHECK(r.json["helo"]["literal_mismatch"] == true);
    CHECK(has(r, "helo-literal-mismatch"));
    CHECK(has(r, "behind-nat"));
    CHECK(r.json["path"]["sender_believed_ip"] == "192.168.1.10");
  }
  SUBCASE("the right address literal is fine") {
    Observation o = clean();
    o.helo = "[203.0.113.7]";
    Report r = build(o);
    CHECK_FALSE(has(r, "helo-literal-mismatch"));
    CHECK_FALSE(has(r, "behind-nat"));
    CHECK_FALSE(has(r, "helo-not-fqdn"));
  }
}

TEST_CASE("report: DNSBL listed, refused, failed") {
  Observation o = clean();
  o.dnsbl[0].a = addrs(RrType::a, {"127.0.0.2"});
  Lookup txt = done(DnsStatus::ok);
  DnsRecord t;
  t.type = RrType::txt;
  t.text = "Listed: see https://bl.example.test/lookup?ip=203.0.113.7";
  txt.records.push_back(t);
  o.dnsbl[0].txt = txt;
  Report r = build(o);
  CHECK(r.json["dnsbl"][0]["listed"] == true);
  CHECK(r.json["dnsbl"][0]["answers"][0] == "127.0.0.2");
  CHECK(r.json["dnsbl"][0]["reason"].get<std::string>().find("bl.example.test/lookup") !=
        std::string::npos);
  only(r, {"dnsbl-listed"});

  Observation refused = clean();
  refused.dnsbl[0].a = addrs(RrType::a, {"127.255.255.254"});
  Report rr = build(refused);
  CHECK(rr.json["dnsbl"][0]["listed"] == false);
  only(rr, {"dnsbl-refused"});

  Observation failed = clean();
  failed.dnsbl[0].a = done(DnsStatus::temperror);
  Report rf = build(failed);
  CHECK(rf.json["dnsbl"][0]["listed"] == false);
  only(rf, {"dns-temperror"});
}

TEST_CASE("report: the Received chain shows internal hops and the gateway") {
  Observation o = clean();
  o.message.received = {
      "from internal.example.org (internal.example.org [10.0.0.5]) by mail.example.org "
      "(Postfix) with ESMTP id 4AB2C; Mon, 23 Nov 2026 10:00:00 +0000"};
  o.message.received_count = 1;
  Report r = build(o);
  CHECK(r.json["received"].size() == 1);
  CHECK(r.json["received"][0]["from_ip"] == "10.0.0.5");
  CHECK(r.json["received"][0]["from_ip_scope"] == "private");
  CHECK(r.json["path"]["internal_hops"][0] == "10.0.0.5");
  CHECK(r.json["path"]["gateway_ip"] == "203.0.113.7");
  bool mentions = false;
  for (const auto& n : r.json["path"]["notes"])
    mentions = mentions || n.get<std::string>().find("10.0.0.5") != std::string::npos;
  CHECK(mentions);
}

TEST_CASE("report: a sender whose own MTA names another address is behind NAT") {
  Observation o = clean();
  o.message.received = {
      "from ws1.example.org ([10.0.0.9]) by mail.example.org ([10.0.0.5]) with ESMTP id 1; "
      "Mon, 23 Nov 2026 10:00:00 +0000"};
  o.message.received_count = 1;
  Report r = build(o);
  CHECK(has(r, "behind-nat"));
  CHECK(r.json["path"]["behind_nat"] == true);
  CHECK(r.json["path"]["sender_believed_ip"] == "10.0.0.5");
}

TEST_CASE("report: no TLS, clock skew, non-public address") {
  Observation o = clean();
  o.tls_version.reset();
  o.tls_cipher.reset();
  CHECK(has(build(o), "no-tls"));
  CHECK(build(o).json["connection"]["tls"].is_null());

  Observation skew = clean();
  skew.message.date_epoch = skew.arrival - 7200;
  Report rs = build(skew);
  only(rs, {"clock-skew"});
  CHECK(rs.json["message"]["clock_skew_seconds"] == -7200);
  skew.message.date_epoch = skew.arrival - 60;
  CHECK_FALSE(has(build(skew), "clock-skew"));

  Observation lan = clean();
  lan.ip = ip("10.1.2.3");
  lan.forward[0].a = addrs(RrType::a, {"10.1.2.3"});
  lan.helo_a = addrs(RrType::a, {"10.1.2.3"});
  Report rl = build(lan);
  CHECK(rl.json["connection"]["scope"] == "private");
  only(rl, {"non-public-ip"});
}

TEST_CASE("report: IPv6 peers are confirmed with AAAA") {
  Observation o = clean();
  o.ip = ip("2001:db8::25");
  o.forward[0].a = Lookup{};
  o.forward[0].aaaa = addrs(RrType::aaaa, {"2001:db8::25"});
  o.helo_a = addrs(RrType::a, {});
  o.helo_aaaa = addrs(RrType::aaaa, {"2001:db8::25"});
  Report r = build(o);
  CHECK(r.json["connection"]["ip"] == "2001:db8::25");
  CHECK(r.json["rdns"]["status"] == "pass");
  CHECK(r.json["rdns"]["query"].get<std::string>().size() == 72);  // 32 nibbles + ip6.arpa
  only(r, {});
}

TEST_CASE("report: thousands of PTR names are cut to ten, and the count says how many") {
  Observation o = clean();
  o.ptr = ptr({});
  for (int i = 0; i < 100; ++i) {
    DnsRecord r;
    r.type = RrType::ptr;
    r.text = "h" + std::to_string(i) + ".evil.test";
    o.ptr.records.push_back(r);
  }
  o.ptr.omitted = 3500;
  o.forward.clear();
  Report rep = build_report(o, {"mx.example.test"});
  const auto& rdns = rep.json["rdns"];
  CHECK(rdns["ptr"].size() == 10);
  CHECK(rdns["ptr"][0] == "h0.evil.test");
  CHECK(rdns["ptr_count"] == 3600);
  CHECK(rdns["ptr_truncated"] == true);
  for (const auto& h : rep.hints) CHECK(h.text.find("h10.evil.test") == std::string::npos);

  Observation few = clean();
  few.ptr = ptr({"a.example.org", "b.example.org", "a.example.org"});
  Report small = build_report(few, {"mx.example.test"});
  CHECK(small.json["rdns"]["ptr_count"] == 3);
  CHECK(small.json["rdns"]["ptr_truncated"] == false);
  CHECK(small.json["rdns"]["ptr"].size() == 2);
}

// Issue 13: a local test gets advice that fits a local test.
TEST_CASE("report: a loopback or private peer gets local-test advice, not internet advice") {
  for (const char* peer : {"127.0.0.1", "::1", "10.1.2.3", "192.168.1.20"}) {
    INFO(peer);
    Observation o = clean();
    o.ip = ip(peer);
    o.helo = "laptop";  // a bare name, as swaks sends from a workstation
    o.ptr = done(DnsStatus::nxdomain);
    o.forward.clear();
    o.helo_a = Lookup{};
    o.helo_aaaa = Lookup{};
    o.tls_version.reset();
    o.tls_cipher.reset();
    o.message.received = {
        "from ws ([192.168.1.77]) by gw.example.org ([192.168.1.1]) with ESMTP "
        "id 1; Mon, 23 Nov 2026 10:00:00 +0000"};
    Report r = build(o);
    only(r, {"non-public-ip"});
    const std::string text = r.hints.front().text;
    CHECK(text.find("This was a local test") != std::string::npos);
    CHECK(text.find("would check") != std::string::npos);
    for (const auto& h : r.hints) {
      CHECK(h.text.find("ISP") == std::string::npos);
      CHECK(h.text.find("A record") == std::string::npos);
    }
    // The facts stay in the JSON.
    CHECK(r.json["rdns"]["status"] == "none");
    CHECK(r.json["connection"]["scope"] != "public");
  }
}

// Issue 13: the Date is compared with the earliest Received timestamp too.
TEST_CASE("report: clock-skew says which clock, delivery delay is not a clock problem") {
  Observation o = clean();
  const std::int64_t t = o.arrival;
  auto received_at = [](std::int64_t when) {
    return "from ws.example.org (ws.example.org [192.0.2.5]) by mail.example.org (Postfix) with "
           "ESMTP id 1; " +
           mime::format_rfc5322_date(when);
  };

  SUBCASE("the Date matches the first server, the message took two hours to reach us") {
    o.message.date_epoch = t - 7200;
    o.message.received = {received_at(t - 7190)};
    Report r = build(o);
    CHECK_FALSE(has(r, "clock-skew"));
    CHECK(has(r, "delivery-delay"));
    CHECK(r.json["message"]["clock_skew_seconds"] == -7200);
    CHECK(r.json["message"]["first_received_skew_seconds"] == -10);
  }
  SUBCASE("the Date is two hours behind both our clock and the first server's") {
    o.message.date_epoch = t - 7200;
    o.message.received = {received_at(t - 5)};
    Report r = build(o);
    CHECK(has(r, "clock-skew"));
    CHECK_FALSE(has(r, "delivery-delay"));
    std::string text;
    for (const auto& h : r.hints)
      if (h.code == "clock-skew") text = h.text;
    CHECK(text.find("7200 seconds behind our clock") != std::string::npos);
    CHECK(text.find("7195 seconds behind the earliest Received header (written by "
                    "mail.example.org)") != std::string::npos);
  }
  SUBCASE("the Date and the first server are both ahead of us") {
    o.message.date_epoch = t + 7200;
    o.message.received = {received_at(t + 7190)};
    Report r = build(o);
    CHECK(has(r, "clock-skew"));
    CHECK_FALSE(has(r, "delivery-delay"));
    for (const auto& h : r.hints)
      if (h.code == "clock-skew")
        CHECK(h.text.find("agrees with the earliest Received header") != std::string::npos);
  }
  SUBCASE("no Received header to compare with") {
    o.message.date_epoch = t - 7200;
    Report r = build(o);
    CHECK(has(r, "clock-skew"));
    CHECK(r.json["message"]["first_received_skew_seconds"].is_null());
    for (const auto& h : r.hints)
      if (h.code == "clock-skew")
        CHECK(h.text.find("no Received header with a date") != std::string::npos);
  }
  SUBCASE("the earliest of several Received headers is the one compared") {
    o.message.date_epoch = t - 7200;
    o.message.received = {received_at(t - 3), received_at(t - 7195)};
    CHECK(has(build(o), "delivery-delay"));
  }
}

TEST_CASE("report: a lab network's peers get the full internet report") {
  Observation o = clean();
  o.ip = ip("127.0.0.3");
  o.ptr = done(DnsStatus::nxdomain);
  o.forward.clear();
  ReportOptions lab{.reporter = "mx.example.test",
                    .lab_networks = {config::Network{ip("127.0.0.0"), 8}}};
  Report r = build_report(o, lab);
  CHECK(has(r, "no-ptr"));
  CHECK_FALSE(has(r, "non-public-ip"));
  // Outside the lab networks, the same peer is a local test.
  lab.lab_networks = {config::Network{ip("10.0.0.0"), 8}};
  Report local = build_report(o, lab);
  CHECK_FALSE(has(local, "no-ptr"));
  CHECK(has(local, "non-public-ip"));
}

// The pure side of the authentication checks' DNS driver (auth_dns.hpp) and the DNS log
// (dns_log.hpp): each question sent once, names the resolver refuses never sent, a timeout
// that is an answer, late answers dropped, and a log that stays bounded whatever a zone does.
#include <doctest/doctest.h>

#include <string>

#include "responder/analysis/auth_dns.hpp"
#include "responder/analysis/dns_log.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;

namespace {

using Clock = DnsLog::Clock;

DnsNeeds needs(std::initializer_list<std::pair<const char*, RrType>> list) {
  DnsNeeds n;
  for (const auto& [name, type] : list) n.add(name, type);
  return n;
}

DnsResult txt(std::initializer_list<std::string> texts) {
  DnsResult r;
  r.status = DnsStatus::ok;
  for (const auto& t : texts) {
    DnsRecord rec;
    rec.type = RrType::txt;
    rec.text = t;
    r.records.push_back(rec);
  }
  return r;
}

DnsResult status(DnsStatus s, std::string detail = "") {
  return DnsResult{s, {}, std::move(detail)};
}

const Clock::time_point t0 = Clock::time_point{} + std::chrono::hours(1);

}  // namespace

TEST_CASE("auth dns: each question is sent once, whoever needs it") {
  AuthDns dns;
  auto first =
      dns.take_new(needs({{"example.org", RrType::txt}, {"_dmarc.example.org", RrType::txt}}), t0);
  REQUIRE(first.size() == 2);
  CHECK(dns.in_flight() == 2);
  // Another check needs one of them and a new one: only the new one goes out.
  auto second =
      dns.take_new(needs({{"EXAMPLE.org.", RrType::txt}, {"example.org", RrType::a}}), t0);
  REQUIRE(second.size() == 1);
  CHECK(second[0].name == "example.org");
  CHECK(second[0].type == RrType::a);
  CHECK_FALSE(dns.has_all(needs({{"example.org", RrType::txt}})));
  dns.answer(first[0], txt({"v=spf1 -all"}), t0 + std::chrono::milliseconds(7));
  CHECK(dns.has_all(needs({{"example.org", RrType::txt}})));
  CHECK(dns.answers().find("Example.Org", RrType::txt)->records[0].text == "v=spf1 -all");
  // Answered: never sent again.
  CHECK(dns.take_new(needs({{"example.org", RrType::txt}}), t0).empty());
  CHECK(dns.in_flight() == 2);
  REQUIRE(dns.log().entries().size() == 3);
  CHECK(dns.log().entries()[0].entry.rcode == "NOERROR");
  CHECK(dns.log().entries()[0].entry.ms == 7);
  CHECK(dns.log().entries()[0].entry.answers == std::vector<std::string>{"v=spf1 -all"});
  CHECK(dns.log().entries()[1].open);
}

TEST_CASE("auth dns: a name the resolver would refuse is not sent, and reads as NXDOMAIN") {
  AuthDns dns;
  // An SPF macro such as exists:%{l}.example.org with MAIL FROM first+last@...
  auto sent = dns.take_new(
      needs({{"first+last.example.org", RrType::a}, {"ok.example.org", RrType::a}}), t0);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].name == "ok.example.org");
  const DnsResult* r = dns.answers().find("first+last.example.org", RrType::a);
  REQUIRE(r);
  CHECK(r->status == DnsStatus::nxdomain);
  CHECK(r->detail.find("not sent") != std::string::npos);
  REQUIRE(dns.log().entries().size() == 2);
  CHECK(dns.log().entries()[0].entry.name == "first+last.example.org");
  CHECK(dns.log().entries()[0].entry.rcode == "not sent");
  CHECK_FALSE(dns.log().entries()[0].open);
}

TEST_CASE("auth dns: a timeout is an answer, and a late answer does not replace it") {
  AuthDns dns;
  const DnsNeeds n = needs({{"slow.example", RrType::txt}, {"never.example", RrType::txt}});
  auto sent = dns.take_new(needs({{"slow.example", RrType::txt}}), t0);
  REQUIRE(sent.size() == 1);
  dns.time_out(n, "timeout", t0 + std::chrono::seconds(5));
  CHECK(dns.has_all(n));
  CHECK(dns.in_flight() == 0);
  const DnsResult* r = dns.answers().find("slow.example", RrType::txt);
  REQUIRE(r);
  CHECK(r->status == DnsStatus::temperror);
  CHECK(r->detail == "timeout");
  // The answer comes after all: dropped, the checks keep reading the timeout.
  dns.answer(sent[0], txt({"v=spf1 +all"}), t0 + std::chrono::seconds(6));
  CHECK(dns.answers().find("slow.example", RrType::txt)->status == DnsStatus::temperror);
  // Both are in the log: the one sent, as a timeout after 5 s; the one never sent, too.
  REQUIRE(dns.log().entries().size() == 2);
  CHECK(dns.log().entries()[0].entry.rcode == "timeout");
  CHECK(dns.log().entries()[0].entry.ms == 5000);
  CHECK(dns.log().entries()[1].entry.name == "never.example");
  CHECK(dns.log().entries()[1].entry.rcode == "timeout");
}

TEST_CASE("auth dns: time_out_all ends everything in flight") {
  AuthDns dns;
  auto sent = dns.take_new(needs({{"a.example", RrType::a}, {"b.example", RrType::mx}}), t0);
  REQUIRE(sent.size() == 2);
  dns.time_out_all("timeout", t0);
  CHECK(dns.in_flight() == 0);
  CHECK(dns.answers().size() == 2);
  CHECK(dns.answers().find("b.example", RrType::mx)->status == DnsStatus::temperror);
}

TEST_CASE("dns log: response codes and answers as text") {
  CHECK(dns_rcode_text(txt({"x"})) == "NOERROR");
  CHECK(dns_rcode_text(status(DnsStatus::nodata, "no TXT records")) == "NOERROR");
  CHECK(dns_rcode_text(status(DnsStatus::nxdomain, "NXDOMAIN")) == "NXDOMAIN");
  CHECK(dns_rcode_text(status(DnsStatus::temperror, "SERVFAIL")) == "SERVFAIL");
  CHECK(dns_rcode_text(status(DnsStatus::temperror, "timeout")) == "timeout");
  CHECK(dns_rcode_text(status(DnsStatus::permerror)) == "permerror");
  DnsResult mx;
  mx.status = DnsStatus::ok;
  DnsRecord m;
  m.type = RrType::mx;
  m.preference = 10;
  m.text = "mx.example.org";
  mx.records.push_back(m);
  DnsRecord a;
  a.type = RrType::a;
  a.address = IpAddress::parse("192.0.2.1");
  mx.records.push_back(a);
  CHECK(dns_answer_texts(mx) == std::vector<std::string>{"10 mx.example.org", "192.0.2.1"});
}

TEST_CASE("dns log: bounded in entries, answers and text, and every text is clean") {
  DnsLog log;
  for (std::size_t i = 0; i < kMaxDnsLogEntries + 7; ++i) {
    auto ticket = log.start("n" + std::to_string(i) + ".example", RrType::txt, t0);
    if (i < kMaxDnsLogEntries)
      CHECK(ticket.has_value());
    else
      CHECK_FALSE(ticket.has_value());
  }
  CHECK(log.entries().size() == kMaxDnsLogEntries);
  CHECK(log.omitted() == 7);

  // A hostile zone: 40 answers of 2000 bytes with control characters and invalid UTF-8.
  DnsLog hostile;
  std::string bad(2000, 'x');
  bad[3] = '\n';
  bad[4] = '\x1b';
  bad[5] = '\xff';
  DnsResult many;
  many.status = DnsStatus::ok;
  for (int i = 0; i < 40; ++i) {
    DnsRecord r;
    r.type = RrType::txt;
    r.text = bad;
    many.records.push_back(r);
  }
  many.omitted = 3;
  auto ticket = hostile.start(std::string("evil\r\nname.example"), RrType::txt, t0);
  REQUIRE(ticket);
  hostile.finish(*ticket, many, t0);
  const DnsLog::Timed e = hostile.entries()[0];  // a copy: more entries come below
  CHECK(e.entry.name == "evil??name.example");
  CHECK(e.entry.answers.size() == kMaxDnsLogAnswers);
  CHECK(e.answers_omitted == 40 - kMaxDnsLogAnswers + 3);
  for (const auto& text : e.entry.answers) {
    CHECK(text.size() <= kMaxDnsLogAnswerBytes);
    CHECK(text.find('\n') == std::string::npos);
    CHECK(text.find('\x1b') == std::string::npos);
    CHECK(text.find("\xef\xbf\xbd") != std::string::npos);  // U+FFFD for the bad byte
  }
  // The whole log's answer text is bounded too.
  std::size_t total = 0;
  for (int i = 0; i < 50; ++i) {
    auto t = hostile.start("more.example", RrType::txt, t0);
    REQUIRE(t);
    hostile.finish(*t, many, t0);
  }
  for (const auto& en : hostile.entries())
    for (const auto& text : en.entry.answers) total += text.size();
  CHECK(total <= kMaxDnsLogTextBytes);
  // The JSON is valid and says what was left out.
  const auto j = to_json({e.entry}, {e.answers_omitted});
  CHECK(j[0]["answers_omitted"] == 33);
  CHECK_NOTHROW((void)j.dump());
}

TEST_CASE("dns log: logs merge in the order their queries went out; open ones are timeouts") {
  DnsLog connection, auth;
  auto ptr = connection.start("7.113.0.203.in-addr.arpa", RrType::ptr, t0);
  auto spf = auth.start("example.org", RrType::txt, t0 + std::chrono::milliseconds(1));
  auto a = connection.start("mail.example.org", RrType::a, t0 + std::chrono::milliseconds(2));
  REQUIRE((ptr && spf && a));
  connection.finish(*ptr, status(DnsStatus::nxdomain, "NXDOMAIN"), t0);
  auth.finish(*spf, txt({"v=spf1 -all"}), t0 + std::chrono::milliseconds(4));
  const MergedDnsLog m =
      merge_dns_logs({&connection, &auth, nullptr}, t0 + std::chrono::milliseconds(30));
  REQUIRE(m.entries.size() == 3);
  CHECK(m.entries[0].type == RrType::ptr);
  CHECK(m.entries[1].name == "example.org");
  CHECK(m.entries[1].ms == 3);
  CHECK(m.entries[2].name == "mail.example.org");
  CHECK(m.entries[2].rcode == "timeout");
  CHECK(m.entries[2].ms == 28);
  CHECK(m.omitted == 0);
  const auto j = to_json(m.entries, m.answers_omitted);
  CHECK(j[1]["type"] == "TXT");
  CHECK(j[1]["answers"][0] == "v=spf1 -all");
  CHECK_FALSE(j[1].contains("answers_omitted"));
}

#include "responder/dns/dns_message.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

using namespace ipconfirm;
using namespace ipconfirm::responder;

namespace {

// Builds DNS messages byte by byte for the tests.
struct Msg {
  std::vector<std::uint8_t> b;

  Msg& u8(unsigned v) {
    b.push_back(static_cast<std::uint8_t>(v));
    return *this;
  }
  Msg& u16(unsigned v) { return u8(v >> 8).u8(v & 0xFF); }
  Msg& u32(std::uint32_t v) { return u16(v >> 16).u16(v & 0xFFFF); }
  Msg& raw(const std::string& s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  // Uncompressed name, labels split at '.', root terminated.
  Msg& name(const std::string& n) {
    std::size_t start = 0;
    while (start < n.size()) {
      auto dot = n.find('.', start);
      if (dot == std::string::npos) dot = n.size();
      u8(static_cast<unsigned>(dot - start)).raw(n.substr(start, dot - start));
      start = dot + 1;
    }
    return u8(0);
  }
  Msg& label(const std::string& l) { return u8(static_cast<unsigned>(l.size())).raw(l); }
  Msg& pointer(std::size_t offset) { return u16(0xC000 | static_cast<unsigned>(offset)); }
  // Record header: the caller has written the owner name.
  Msg& rr(unsigned type, std::uint32_t ttl, unsigned rdlength, unsigned klass = 1) {
    return u16(type).u16(klass).u32(ttl).u16(rdlength);
  }
  std::size_t size() const { return b.size(); }
  ParsedAnswer parse() const { return parse_dns_answer(b.data(), b.size()); }
};

// A response header with a question for `qname`/`qtype`; the question name sits at offset 12.
Msg response(const std::string& qname, unsigned qtype, unsigned ancount, unsigned nscount = 0,
             unsigned rcode = 0, unsigned extra_flags = 0) {
  Msg m;
  m.u16(0x1234).u16(0x8180 | rcode | extra_flags).u16(1).u16(ancount).u16(nscount).u16(0);
  m.name(qname).u16(qtype).u16(1);
  return m;
}

unsigned name_wire_size(const std::string& n) {
  return static_cast<unsigned>(n.size() + 2);
}

}  // namespace

TEST_CASE("dns_message: A and AAAA records with their TTLs") {
  auto m = response("mail.sender.test", 1, 2);
  m.pointer(12).rr(1, 300, 4).u8(192).u8(0).u8(2).u8(10);
  m.pointer(12).rr(1, 0x80000001u, 4).u8(192).u8(0).u8(2).u8(11);
  const auto p = m.parse();
  REQUIRE(p.ok);
  CHECK(p.rcode == DnsRcode::noerror);
  CHECK_FALSE(p.truncated);
  REQUIRE(p.answers.size() == 2);
  CHECK(p.answers[0].type == RrType::a);
  CHECK(p.answers[0].name == "mail.sender.test");
  CHECK(p.answers[0].ttl == 300);
  CHECK(p.answers[0].address->to_string() == "192.0.2.10");
  CHECK(p.answers[1].ttl == 0);  // top bit set reads as 0 (RFC 2181 §8)

  auto m6 = response("v6.sender.test", 28, 1);
  m6.pointer(12).rr(28, 60, 16).u16(0x2001).u16(0x0db8);
  for (int i = 0; i < 5; ++i) m6.u16(0);
  m6.u16(1);
  const auto p6 = m6.parse();
  REQUIRE(p6.ok);
  REQUIRE(p6.answers.size() == 1);
  CHECK(p6.answers[0].type == RrType::aaaa);
  CHECK(p6.answers[0].address->to_string() == "2001:db8::1");
}

TEST_CASE("dns_message: several PTR names, compressed against each other") {
  auto m = response("3.2.0.192.in-addr.arpa", 12, 2);
  const std::size_t first_target = m.size() + 2 + 10;
  m.pointer(12).rr(12, 3600, name_wire_size("mx1.example.test")).name("mx1.example.test");
  // "mx2" + pointer to "example.test" inside the first target.
  m.pointer(12).rr(12, 1800, 1 + 3 + 2).label("mx2").pointer(first_target + 4);
  const auto p = m.parse();
  REQUIRE(p.ok);
  REQUIRE(p.answers.size() == 2);
  CHECK(p.answers[0].type == RrType::ptr);
  CHECK(p.answers[0].name == "3.2.0.192.in-addr.arpa");
  CHECK(p.answers[0].text == "mx1.example.test");
  CHECK(p.answers[1].text == "mx2.example.test");
  CHECK(p.answers[1].ttl == 1800);
}

TEST_CASE("dns_message: MX, TXT, NS and CNAME RDATA") {
  auto m = response("example.test", 15, 5);
  m.pointer(12).rr(15, 100, 2 + 3 + 2).u16(10).label("mx").pointer(12);
  m.pointer(12).rr(15, 100, 2 + 1).u16(0).u8(0);  // null MX (RFC 7505): exchange "."
  m.pointer(12)
      .rr(16, 100, 1 + 5 + 1 + 9)
      .label("v=ok,")
      .label(
          " \"q\" \x01"
          "end");
  m.pointer(12).rr(2, 100, 3 + 2).label("ns").pointer(12);
  m.pointer(12).rr(5, 100, 2).pointer(12);
  const auto p = m.parse();
  REQUIRE(p.ok);
  REQUIRE(p.answers.size() == 5);
  CHECK(p.answers[0].preference == 10);
  CHECK(p.answers[0].text == "mx.example.test");
  CHECK(p.answers[1].text == ".");
  CHECK(p.answers[2].type == RrType::txt);
  CHECK(p.answers[2].text ==
        "v=ok, \"q\" \x01"
        "end");
  CHECK(p.answers[3].text == "ns.example.test");
  CHECK(p.answers[4].type == RrType::cname);
  CHECK(p.answers[4].text == "example.test");
}

TEST_CASE("dns_message: empty TXT RDATA and empty strings are kept as empty text") {
  auto m = response("t.test", 16, 2);
  m.pointer(12).rr(16, 5, 0);
  m.pointer(12).rr(16, 5, 2).u8(0).u8(0);
  const auto p = m.parse();
  REQUIRE(p.ok);
  REQUIRE(p.answers.size() == 2);
  CHECK(p.answers[0].text.empty());
  CHECK(p.answers[1].text.empty());
}

TEST_CASE("dns_message: hostile PTR names are returned, not rejected") {
  SUBCASE("CR and LF inside a label") {
    auto m = response("4.2.0.192.in-addr.arpa", 12, 1);
    const std::string evil = "host\r\nX-Injected: yes";
    m.pointer(12).rr(12, 60, 1 + static_cast<unsigned>(evil.size()) + 6).label(evil).name("test");
    const auto p = m.parse();
    REQUIRE(p.ok);
    REQUIRE(p.answers.size() == 1);
    CHECK(p.answers[0].text == evil + ".test");
  }
  SUBCASE("over 255 bytes") {
    auto m = response("4.2.0.192.in-addr.arpa", 12, 1);
    const std::string l63(63, 'a');
    m.pointer(12).rr(12, 60, 5 * 64 + 1);
    for (int i = 0; i < 5; ++i) m.label(l63);
    m.u8(0);
    const auto p = m.parse();
    REQUIRE(p.ok);
    REQUIRE(p.answers.size() == 1);
    CHECK(p.answers[0].text.size() == 5 * 63 + 4);
  }
  SUBCASE("a name longer than kMaxNameText is cut there") {
    auto m = response("4.2.0.192.in-addr.arpa", 12, 1);
    const std::string l63(63, 'b');
    m.pointer(12).rr(12, 60, 40 * 64 + 1);
    for (int i = 0; i < 40; ++i) m.label(l63);
    m.u8(0);
    const auto p = m.parse();
    REQUIRE(p.ok);
    CHECK(p.answers[0].text.size() == kMaxNameText);
  }
  SUBCASE("NUL and high bytes") {
    auto m = response("4.2.0.192.in-addr.arpa", 12, 1);
    const std::string odd("a\0\xff", 3);
    m.pointer(12).rr(12, 60, 1 + 3 + 1).label(odd).u8(0);
    const auto p = m.parse();
    REQUIRE(p.ok);
    CHECK(p.answers[0].text == odd);
  }
}

TEST_CASE("dns_message: header flags, rcode and the SOA negative TTL") {
  SUBCASE("NXDOMAIN with SOA: min(SOA TTL, MINIMUM)") {
    auto m = response("nope.example.test", 1, 0, 1, 3);
    m.pointer(12 + 5).rr(6, 900, 0);
    const std::size_t rdlength_at = m.size() - 2;
    const std::size_t rdata_start = m.size();
    m.name("ns.example.test").name("hostmaster.example.test");
    m.u32(1).u32(7200).u32(3600).u32(1209600).u32(300);
    const auto rdlength = m.size() - rdata_start;
    m.b[rdlength_at] = 0;
    m.b[rdlength_at + 1] = static_cast<std::uint8_t>(rdlength);
    const auto p = m.parse();
    REQUIRE(p.ok);
    CHECK(p.rcode == DnsRcode::nxdomain);
    CHECK(p.answers.empty());
    REQUIRE(p.negative_ttl.has_value());
    CHECK(*p.negative_ttl == 300);
  }
  SUBCASE("SOA TTL lower than MINIMUM") {
    auto m = response("x.test", 1, 0, 1, 0);
    m.pointer(12 + 2).rr(6, 20, 1 + 1 + 20).u8(0).u8(0);
    m.u32(1).u32(2).u32(3).u32(4).u32(3600);
    const auto p = m.parse();
    REQUIRE(p.ok);
    CHECK(*p.negative_ttl == 20);
  }
  SUBCASE("TC bit") {
    auto m = response("big.test", 16, 0, 0, 0, 0x0200);
    const auto p = m.parse();
    REQUIRE(p.ok);
    CHECK(p.truncated);
  }
  SUBCASE("unknown rcode is kept as its number") {
    auto m = response("x.test", 1, 0, 0, 9);
    const auto p = m.parse();
    REQUIRE(p.ok);
    CHECK(static_cast<int>(p.rcode) == 9);
  }
}

TEST_CASE("dns_message: unknown types and other classes are skipped") {
  auto m = response("x.test", 1, 3);
  m.pointer(12).rr(99, 60, 3).u8(1).u8(2).u8(3);           // unknown type
  m.pointer(12).rr(1, 60, 4, 3).u8(10).u8(0).u8(0).u8(1);  // class CH
  m.pointer(12).rr(1, 60, 4).u8(10).u8(0).u8(0).u8(2);     // the one we want
  const auto p = m.parse();
  REQUIRE(p.ok);
  REQUIRE(p.answers.size() == 1);
  CHECK(p.answers[0].address->to_string() == "10.0.0.2");
}

TEST_CASE("dns_message: malformed messages are reported, never read out of bounds") {
  SUBCASE("too short, null, not a response") {
    const std::uint8_t short_msg[5] = {0, 1, 0x81, 0x80, 0};
    CHECK_FALSE(parse_dns_answer(short_msg, sizeof short_msg).ok);
    CHECK_FALSE(parse_dns_answer(nullptr, 0).ok);
    Msg q;
    q.u16(1).u16(0x0100).u16(1).u16(0).u16(0).u16(0).name("x.test").u16(1).u16(1);
    const auto p = q.parse();
    CHECK_FALSE(p.ok);
    CHECK(p.error == "not a response");
  }
  SUBCASE("a pointer to itself") {
    auto m = response("x.test", 12, 1);
    const auto at = m.size();
    m.pointer(at).rr(12, 60, 2).pointer(12);
    const auto p = m.parse();
    CHECK_FALSE(p.ok);
    CHECK(p.error.find("backwards") != std::string::npos);
  }
  SUBCASE("two pointers that point at each other") {
    auto m = response("x.test", 12, 1);
    const auto at = m.size();
    m.pointer(at + 2 + 10);  // owner: forward to the RDATA pointer
    m.rr(12, 60, 2).pointer(at);
    CHECK_FALSE(m.parse().ok);
  }
  SUBCASE("a loop through a label: the pointer targets its own name's start") {
    auto m = response("x.test", 12, 1);
    m.pointer(12).rr(12, 60, 4);
    const auto rdata = m.size();
    m.label("a").pointer(rdata);
    CHECK_FALSE(m.parse().ok);
  }
  SUBCASE("chained pointers: a few are fine, too many are refused") {
    // The chain lives in the RDATA of a skipped record: the name "x", then pointers that each
    // point to the one before. The second record's owner enters the chain at its far end.
    auto chain = [](int links) {
      Msg m;
      m.u16(1).u16(0x8180).u16(0).u16(2).u16(0).u16(0);
      m.u8(0).rr(99, 60, 3 + 2 * static_cast<unsigned>(links));
      std::size_t previous = m.size();
      m.name("x");
      for (int i = 0; i < links; ++i) {
        const auto here = m.size();
        m.pointer(previous);
        previous = here;
      }
      m.pointer(previous).rr(1, 60, 4).u32(0x0A000001);
      return m.parse();
    };
    const auto few = chain(10);
    REQUIRE(few.ok);
    REQUIRE(few.answers.size() == 1);
    CHECK(few.answers[0].name == "x");
    const auto many = chain(70);
    CHECK_FALSE(many.ok);
    CHECK(many.error.find("too many") != std::string::npos);
  }
  SUBCASE("reserved label types 0x40 and 0x80") {
    auto m = response("x.test", 12, 1);
    m.pointer(12).rr(12, 60, 2).u8(0x41).u8(0);
    CHECK(m.parse().error.find("label type") != std::string::npos);
    auto m2 = response("x.test", 12, 1);
    m2.pointer(12).rr(12, 60, 2).u8(0x81).u8(0);
    CHECK_FALSE(m2.parse().ok);
  }
  SUBCASE("RDATA lengths that do not match") {
    auto a5 = response("x.test", 1, 1);
    a5.pointer(12).rr(1, 60, 5).u32(0x0A000001).u8(0);
    CHECK_FALSE(a5.parse().ok);
    auto aaaa4 = response("x.test", 28, 1);
    aaaa4.pointer(12).rr(28, 60, 4).u32(1);
    CHECK_FALSE(aaaa4.parse().ok);
    auto ptr_short = response("x.test", 12, 1);
    ptr_short.pointer(12).rr(12, 60, 5).pointer(12).u8(0).u8(0).u8(0);
    CHECK_FALSE(ptr_short.parse().ok);
    auto txt_over = response("x.test", 16, 1);
    txt_over.pointer(12).rr(16, 60, 3).u8(5).raw("ab");
    CHECK_FALSE(txt_over.parse().ok);
    auto mx_short = response("x.test", 15, 1);
    mx_short.pointer(12).rr(15, 60, 1).u8(0);
    CHECK_FALSE(mx_short.parse().ok);
  }
  SUBCASE("RDATA past the end of the message") {
    auto m = response("x.test", 1, 1);
    m.pointer(12).rr(1, 60, 400).u32(0x0A000001);
    CHECK(m.parse().error.find("past the end") != std::string::npos);
  }
  SUBCASE("counts that promise more records than there are") {
    auto m = response("x.test", 1, 3);
    m.pointer(12).rr(1, 60, 4).u32(0x0A000001);
    CHECK_FALSE(m.parse().ok);
    auto huge = response("x.test", 1, 65535, 65535);
    CHECK_FALSE(huge.parse().ok);
  }
}

TEST_CASE("dns_message: every truncation of a valid answer is malformed, never a crash") {
  auto m = response("3.2.0.192.in-addr.arpa", 12, 3, 1, 0);
  m.pointer(12).rr(12, 60, name_wire_size("a.example.test")).name("a.example.test");
  m.pointer(12).rr(16, 60, 4).label("txt");
  m.pointer(12).rr(15, 60, 4).u16(5).pointer(12);
  m.pointer(12).rr(6, 60, 2 + 20).u8(0).u8(0).u32(1).u32(2).u32(3).u32(4).u32(5);
  REQUIRE(m.parse().ok);
  for (std::size_t cut = 0; cut < m.size(); ++cut) {
    CAPTURE(cut);
    // Copy into an exactly sized heap buffer so that the sanitizers see any overread.
    std::vector<std::uint8_t> prefix(m.b.begin(), m.b.begin() + static_cast<long>(cut));
    const auto p = parse_dns_answer(prefix.data(), prefix.size());
    CHECK_FALSE(p.ok);
    CHECK(p.answers.empty());
    CHECK_FALSE(p.error.empty());
  }
}

TEST_CASE("dns_message: interpret_answer follows CNAMEs and maps rcodes") {
  SUBCASE("CNAME chain, case-insensitive, TTL bounded by the chain") {
    auto m = response("Alias.Example.TEST", 1, 4);
    const std::size_t target = m.size() + 2 + 10;
    m.pointer(12).rr(5, 30, name_wire_size("real.example.test")).name("real.example.test");
    m.pointer(target).rr(1, 300, 4).u32(0xC0000201);
    m.pointer(target).rr(1, 10, 4).u32(0xC0000202);
    m.label("other").u8(0).rr(1, 300, 4).u32(0xC0000203);  // not on the chain
    const auto p = m.parse();
    REQUIRE(p.ok);
    const auto r = interpret_answer(p, "alias.example.test", RrType::a);
    CHECK(r.status == DnsStatus::ok);
    REQUIRE(r.records.size() == 2);
    CHECK(r.records[0].address->to_string() == "192.0.2.1");
    CHECK(r.records[0].ttl == 30);
    CHECK(r.records[1].ttl == 10);
    const auto c = interpret_answer(p, "alias.example.test", RrType::cname);
    REQUIRE(c.records.size() == 1);
    CHECK(c.records[0].text == "real.example.test");
  }
  SUBCASE("a CNAME loop ends as NODATA") {
    auto m = response("a.test", 1, 2);
    const std::size_t b_name = m.size() + 2 + 10;
    m.pointer(12).rr(5, 30, name_wire_size("b.test")).name("b.test");
    m.pointer(b_name).rr(5, 30, 2).pointer(12);
    const auto r = interpret_answer(m.parse(), "a.test", RrType::a);
    CHECK(r.status == DnsStatus::nodata);
  }
  SUBCASE("status mapping") {
    auto rcode = [](unsigned code) {
      return interpret_answer(response("x.test", 1, 0, 0, code).parse(), "x.test", RrType::a);
    };
    CHECK(rcode(0).status == DnsStatus::nodata);
    CHECK(rcode(1).status == DnsStatus::permerror);
    CHECK(rcode(2).status == DnsStatus::temperror);
    CHECK(rcode(3).status == DnsStatus::nxdomain);
    CHECK(rcode(3).detail == "NXDOMAIN");
    CHECK(rcode(4).status == DnsStatus::permerror);
    CHECK(rcode(5).status == DnsStatus::temperror);
    CHECK(rcode(9).status == DnsStatus::temperror);
    const auto tc = response("x.test", 1, 0, 0, 0, 0x0200).parse();
    CHECK(interpret_answer(tc, "x.test", RrType::a).status == DnsStatus::temperror);
    ParsedAnswer bad;
    bad.error = "label runs past the end";
    const auto r = interpret_answer(bad, "x.test", RrType::a);
    CHECK(r.status == DnsStatus::permerror);
    CHECK(r.detail.find("label runs past the end") != std::string::npos);
  }
  SUBCASE("records of another type or owner make NODATA") {
    auto m = response("x.test", 1, 1);
    m.pointer(12).rr(28, 60, 16).u32(0).u32(0).u32(0).u32(1);
    CHECK(interpret_answer(m.parse(), "x.test", RrType::a).status == DnsStatus::nodata);
    CHECK(interpret_answer(m.parse(), "y.test", RrType::aaaa).status == DnsStatus::nodata);
    CHECK(interpret_answer(m.parse(), "X.TEST", RrType::aaaa).status == DnsStatus::ok);
  }
}

TEST_CASE("dns_message: cache_ttl") {
  DnsResult ok{DnsStatus::ok, {}, ""};
  DnsRecord r1, r2;
  r1.ttl = 300;
  r2.ttl = 120;
  ok.records = {r1, r2};
  CHECK(cache_ttl(ok, std::nullopt, 3600) == 120);
  CHECK(cache_ttl(ok, std::nullopt, 100) == 100);
  ok.records[1].ttl = 0;
  CHECK(cache_ttl(ok, std::nullopt, 3600) == 0);
  CHECK(cache_ttl(DnsResult{DnsStatus::nxdomain, {}, ""}, std::nullopt, 3600) == 60);
  CHECK(cache_ttl(DnsResult{DnsStatus::nodata, {}, ""}, 5u, 3600) == 5);
  CHECK(cache_ttl(DnsResult{DnsStatus::nodata, {}, ""}, 9000u, 3600) == 3600);
  CHECK(cache_ttl(DnsResult{DnsStatus::temperror, {}, ""}, 60u, 3600) == 0);
  CHECK(cache_ttl(DnsResult{DnsStatus::permerror, {}, ""}, 60u, 3600) == 0);
}

TEST_CASE("dns_message: normalise_query_name") {
  CHECK(normalise_query_name("Mail.Sender.TEST.") == "mail.sender.test");
  CHECK(normalise_query_name("_dmarc.example.test") == "_dmarc.example.test");
  CHECK(normalise_query_name("3.2.0.192.in-addr.arpa") == "3.2.0.192.in-addr.arpa");
  CHECK_FALSE(normalise_query_name(""));
  CHECK_FALSE(normalise_query_name("."));
  CHECK_FALSE(normalise_query_name("a..b"));
  CHECK_FALSE(normalise_query_name(".a"));
  CHECK_FALSE(normalise_query_name("a b.test"));
  CHECK_FALSE(normalise_query_name("a\\.b.test"));
  CHECK_FALSE(normalise_query_name("a\r\n.test"));
  CHECK_FALSE(normalise_query_name(std::string("a\0b.test", 8)));
  CHECK(normalise_query_name(std::string(63, 'x') + ".test"));
  CHECK_FALSE(normalise_query_name(std::string(64, 'x') + ".test"));
  std::string long_name;
  while (long_name.size() < 260) long_name += "abcdefghi.";
  long_name.resize(253);
  if (long_name.back() == '.') long_name.back() = 'z';
  CHECK(normalise_query_name(long_name));
  CHECK_FALSE(normalise_query_name(long_name + "z"));
}

TEST_CASE("dns_message: to_string") {
  CHECK(to_string(RrType::ptr) == "PTR");
  CHECK(to_string(RrType::aaaa) == "AAAA");
  CHECK(to_string(static_cast<RrType>(99)) == "TYPE99");
  CHECK(to_string(DnsStatus::nxdomain) == "nxdomain");
  CHECK(to_string(DnsStatus::permerror) == "permerror");
}

TEST_CASE("dns_message: at most kMaxAnswerRecords records are kept, the rest are counted") {
  // 3,600 PTR names in one answer, as a hostile reverse zone sends them over TCP.
  constexpr unsigned kNames = 3600;
  auto m = response("2.0.0.127.in-addr.arpa", 12, kNames + 1);
  for (unsigned i = 0; i < kNames; ++i)
    m.pointer(12)
        .rr(12, 300, 6)
        .label(std::string("h") + char('a' + i % 26) + char('a' + i / 26 % 26))
        .pointer(12);
  m.pointer(12).rr(1, 300, 4).u8(192).u8(0).u8(2).u8(1);  // an A record among them
  const auto p = m.parse();
  REQUIRE(p.ok);
  CHECK(p.answers.size() == kMaxAnswerRecords);
  REQUIRE(p.omitted.size() == 2);
  CHECK(p.omitted[0] == std::pair{RrType::ptr, std::size_t{kNames - kMaxAnswerRecords}});
  CHECK(p.omitted[1] == std::pair{RrType::a, std::size_t{1}});
  const auto r = interpret_answer(p, "2.0.0.127.in-addr.arpa", RrType::ptr);
  CHECK(r.status == DnsStatus::ok);
  CHECK(r.records.size() == kMaxAnswerRecords);
  CHECK(r.records.size() + r.omitted == kNames);
}

TEST_CASE("dns_message: 0x20 helpers") {
  const std::uint8_t bits[] = {0b10110101, 0xFF};
  // Letters take the bits in order (low bit first); digits, '-' and dots take none.
  CHECK(mix_case("abc-1.def", bits) == "AbC-1.dEF");
  CHECK(mix_case("ABCD", std::span<const std::uint8_t>{}) == "ABCD");
  const std::uint8_t zeros[] = {0};
  CHECK(mix_case("MiXeD.TeSt", zeros) == "mixed.test");

  auto query = response("MaIl.ExAmPlE.test", 1, 0);
  query.b[2] = 0x01;  // a query: QR clear
  query.b[3] = 0x00;
  auto answer = response("MaIl.ExAmPlE.test", 1, 1);
  answer.pointer(12).rr(1, 60, 4).u8(192).u8(0).u8(2).u8(1);
  CHECK(answers_query(query.b, answer.b));
  CHECK(question_is(answer.b, "MaIl.ExAmPlE.test", RrType::a));
  CHECK_FALSE(question_is(answer.b, "mail.example.test", RrType::a));
  CHECK_FALSE(question_is(answer.b, "MaIl.ExAmPlE.test", RrType::aaaa));
  CHECK_FALSE(question_is(answer.b, "MaIl.ExAmPlE", RrType::a));

  auto lowered = response("mail.example.test", 1, 1);
  lowered.pointer(12).rr(1, 60, 4).u8(192).u8(0).u8(2).u8(1);
  CHECK_FALSE(answers_query(query.b, lowered.b));  // the case was not repeated
  auto other_id = answer;
  other_id.b[1] ^= 1;
  CHECK_FALSE(answers_query(query.b, other_id.b));
  CHECK_FALSE(answers_query(query.b, query.b));  // not a response
  for (std::size_t cut = 0; cut < answer.b.size(); ++cut) {
    const std::vector<std::uint8_t> part(answer.b.begin(), answer.b.begin() + cut);
    CHECK((cut >= 12 + 19 + 4 ? answers_query(query.b, part) : !answers_query(query.b, part)));
    CHECK_FALSE(
        question_is(std::span<const std::uint8_t>(part).first(std::min(cut, std::size_t{30})),
                    "MaIl.ExAmPlE.test", RrType::a));
  }

  // After lower_question_name, a name compressed against the question reads in lower case.
  auto cname = response("WwW.ExAmPlE.test", 5, 1);
  cname.pointer(12).rr(5, 60, 2 + 2).label("x").pointer(16);
  CHECK(parse_dns_answer(cname.b.data(), cname.b.size()).answers[0].text == "x.ExAmPlE.test");
  CHECK(lower_question_name(cname.b));
  CHECK(parse_dns_answer(cname.b.data(), cname.b.size()).answers[0].text == "x.example.test");
  std::vector<std::uint8_t> garbage = {1, 2, 3};
  CHECK_FALSE(lower_question_name(garbage));
}

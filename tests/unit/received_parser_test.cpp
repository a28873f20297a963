// Received-header parser: the golden corpus in tests/data/received/ (every MTA form we know,
// folded as it arrives) and the bounds on hostile input.
#include "responder/analysis/received_parser.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using ipconfirm::responder::parse_received;
using ipconfirm::responder::ReceivedHop;
using ipconfirm::responder::sanitise_header_text;
using ipconfirm::responder::to_json;

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string lf_to_crlf(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

// Every output string obeys the sanitising promise of the header.
void check_sanitised(const ReceivedHop& hop) {
  for (const std::string* s : {&hop.from_helo, &hop.from_name, &hop.by, &hop.with, &hop.id,
                               &hop.for_addr, &hop.date, &hop.tls}) {
    CHECK(s->size() <= 255);
    for (char c : *s) {
      auto u = static_cast<unsigned char>(c);
      CHECK_FALSE((u < 0x20 || u == 0x7f));
    }
  }
  CHECK_NOTHROW((void)to_json(hop).dump());  // dump() throws on invalid UTF-8
}

double seconds_for(const std::string& input) {
  auto start = std::chrono::steady_clock::now();
  ReceivedHop hop = parse_received(input);
  auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  check_sanitised(hop);
  return took;
}

}  // namespace

TEST_CASE("received: golden corpus") {
  const std::filesystem::path dir = std::filesystem::path(IPCONFIRM_TEST_DATA) / "received";
  std::vector<std::filesystem::path> inputs;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 4 && name.ends_with(".txt")) inputs.push_back(e.path());
    if (name.ends_with(".json")) {
      // Every expectation has its input.
      std::string stem = name.substr(0, name.size() - std::string(".expected.json").size());
      CHECK_MESSAGE(std::filesystem::exists(dir / (stem + ".txt")), name);
    }
  }
  std::sort(inputs.begin(), inputs.end());
  REQUIRE(inputs.size() >= 40);

  std::size_t parsed = 0;
  for (const auto& input : inputs) {
    std::filesystem::path expected_path = input;
    expected_path.replace_extension(".expected.json");
    INFO(input.filename().string());
    REQUIRE(std::filesystem::exists(expected_path));
    const auto expected = nlohmann::json::parse(read_file(expected_path));

    std::string text = read_file(input);
    if (!text.empty() && text.back() == '\n') text.pop_back();  // the file's own line end

    // As stored (folded with LF) and as it arrives on the wire (folded with CRLF).
    for (const std::string& variant : {text, lf_to_crlf(text)}) {
      ReceivedHop hop = parse_received(variant);
      CHECK(to_json(hop) == expected);
      check_sanitised(hop);
      if (!hop.parsed) {
        CHECK(hop.from_helo.empty());
        CHECK(hop.by.empty());
        CHECK(hop.date.empty());
        CHECK_FALSE(hop.from_ip);
      }
    }
    if (expected["parsed"] == true) ++parsed;
  }
  CHECK(parsed >= 30);
}

TEST_CASE("received: the golden corpus covers every MTA named in the parser") {
  const std::filesystem::path dir = std::filesystem::path(IPCONFIRM_TEST_DATA) / "received";
  for (std::string mta : {"postfix", "exim", "sendmail", "qmail", "exchange", "office365", "gmail",
                          "ironport", "zmailer", "hostile"}) {
    int count = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir))
      if (e.path().filename().string().find("-" + mta + "-") != std::string::npos &&
          e.path().extension() == ".txt")
        ++count;
    INFO(mta);
    CHECK(count >= 2);
  }
}

TEST_CASE("received: the fields of a Postfix line") {
  ReceivedHop hop = parse_received(
      "from mail.example.org (rdns.example.net [192.0.2.1])\r\n\tby mx.example.com (Postfix) "
      "with ESMTPS id ABC\r\n\tfor <a@example.com>; Thu, 21 Nov 2024 10:00:00 +0000");
  REQUIRE(hop.parsed);
  CHECK(hop.from_helo == "mail.example.org");
  CHECK(hop.from_name == "rdns.example.net");
  REQUIRE(hop.from_ip);
  CHECK(hop.from_ip->to_string() == "192.0.2.1");
  CHECK(hop.by == "mx.example.com");
  CHECK(hop.with == "ESMTPS");
  CHECK(hop.id == "ABC");
  CHECK(hop.for_addr == "a@example.com");
  CHECK(hop.date == "Thu, 21 Nov 2024 10:00:00 +0000");
  CHECK(hop.tls.empty());
}

TEST_CASE("received: address forms") {
  auto ip_of = [](const char* text) {
    ReceivedHop hop = parse_received(text);
    return hop.from_ip ? hop.from_ip->to_string() : std::string("none");
  };
  CHECK(ip_of("from a (b [IPv6:2001:db8::1]) by c") == "2001:db8::1");
  CHECK(ip_of("from a (b [ipv6:2001:DB8::1]) by c") == "2001:db8::1");
  CHECK(ip_of("from a (b [2001:db8::1]) by c") == "2001:db8::1");
  CHECK(ip_of("from a ([fe80::1%eth0]) by c") == "fe80::1");
  CHECK(ip_of("from a ([192.0.2.1]:25123) by c") == "192.0.2.1");
  CHECK(ip_of("from a ([::ffff:192.0.2.1]) by c") == "192.0.2.1");
  CHECK(ip_of("from a (b [192.0.2.1]:99999999) by c") == "none");  // not a port
  CHECK(ip_of("from a (b [192.0.2.256]) by c") == "none");
  CHECK(ip_of("from a (b [192.0.2.1) by c") == "none");
  CHECK(ip_of("from a (b 192.0.2.1.25123) by c") == "none");  // no MTA writes this
  // With no comment, an address after "from" is what the server saw (Yahoo, MessageLabs, old
  // Sendmail), not a HELO; an address literal HELO with the seen address beside it stays a HELO.
  CHECK(ip_of("from [192.0.2.9] by c") == "192.0.2.9");
  CHECK(ip_of("from [192.0.2.9] (b [198.51.100.1]) by c") == "198.51.100.1");
  CHECK(parse_received("from [192.0.2.9] (b [198.51.100.1]) by c").from_helo == "[192.0.2.9]");
  // Ecelerity writes the port inside the brackets; in IPv6 a colon is no port.
  CHECK(ip_of("from ([192.0.2.1:50387]) by c") == "192.0.2.1");
  CHECK(ip_of("from ([2001:db8::1]) by c") == "2001:db8::1");
  // Some MTAs glue the name to the address.
  CHECK(ip_of("from a(localhost[127.0.0.1]) (2517 bytes) by c") == "127.0.0.1");
}

// Issue 13: forms that lost the address or the whole header. Each one is also a golden file
// (50-67 in tests/data/received/), which pins every field; here is what each must give.
TEST_CASE("received: real-world forms that used to lose the address") {
  struct Case {
    const char* text;
    const char* ip;
    const char* helo;
    const char* rdns;
    const char* by;
  };
  const Case cases[] = {
      // Nothing between "from" and the comment.
      {"from (127.0.0.1) by mail90.example.net id 4B1C; date", "127.0.0.1", "", "",
       "mail90.example.net"},
      {"from (unknown [192.0.2.4]) by mx.example.net (Postfix) with ESMTP id 4Q; date", "192.0.2.4",
       "", "", "mx.example.net"},
      {"from ([127.0.0.1]) with MailEnable ESMTP; date", "127.0.0.1", "", "", ""},
      {"from ([192.168.1.205:50387] helo=dev1.example.org) by m12.example.com (ecelerity 2.1) "
       "with ESMTP id 52/92; date",
       "192.168.1.205", "dev1.example.org", "", "m12.example.com"},
      // An address literal and no comment.
      {"from [203.0.113.9] by host.example.net with SMTP id 1; date", "203.0.113.9", "", "",
       "host.example.net"},
      // The address outside the parentheses.
      {"from murphy.debian.org [65.125.64.134] by master.debian.org with esmtp (Exim 3.12 1 "
       "(Debian)) id 13A; date",
       "65.125.64.134", "murphy.debian.org", "murphy.debian.org", "master.debian.org"},
      {"from localhost (helo.example.nl) [127.0.0.1] by stereo.example.org with esmtp (Exim "
       "2.05 #1 (Debian)) id 11S; date",
       "127.0.0.1", "helo.example.nl", "localhost", "stereo.example.org"},
      {"from dslb.pools.example.net (EHLO home) [95.112.248.163] by mail.gmx.net (mp032) with "
       "SMTP; date",
       "95.112.248.163", "home", "dslb.pools.example.net", "mail.gmx.net"},
      // Webmail: a bare address after "from" is the client's; there was no HELO.
      {"from 144.137.3.98 (SquirrelMail authenticated user x) by host.example.org with HTTP; "
       "date",
       "144.137.3.98", "", "", "host.example.org"},
      {"from 24.8.231.233 by by1fd.bay1.hotmail.msn.com with HTTP; date", "24.8.231.233", "", "",
       "by1fd.bay1.hotmail.msn.com"},
      // An empty HELO: the reverse-DNS placeholder is not the HELO.
      {"from unknown (HELO ) (192.0.2.77) by mail.example.com with SMTP; date", "192.0.2.77", "",
       "", "mail.example.com"},
      {"from unknown (EHLO ) ([198.51.100.3]) by esa1.example.com with ESMTP; date", "198.51.100.3",
       "", "", "esa1.example.com"},
      // Courier: the first word is the HELO, its placeholders are no names.
      {"from a1200 ([24.83.2.4]) (AUTH: LOGIN user@example.org) by mail.example.org with esmtp; "
       "date",
       "24.83.2.4", "a1200", "", "mail.example.org"},
      {"from mail.example.org (softdnserr [::ffff:192.0.2.44]) by mx.example.net with ESMTP; "
       "date",
       "192.0.2.44", "mail.example.org", "", "mx.example.net"},
      // "by" with no host, a ';' inside, a UTF-8 reverse name.
      {"from c.example.org (c.example.org [192.0.2.15]) by (Postfix) with esmtpa id 4Q; date",
       "192.0.2.15", "c.example.org", "c.example.org", ""},
      {"from h.example.org ([192.0.2.16]) by mx5.example.com; (5.65/1.37) id AA1; date",
       "192.0.2.16", "h.example.org", "", "mx5.example.com"},
      {"from m.b\u00fccher.example (m.b\u00fccher.example [192.0.2.80]) by mx.example.net "
       "(Postfix) with UTF8SMTPS id 4Q; date",
       "192.0.2.80", "m.b\u00fccher.example", "m.b\u00fccher.example", "mx.example.net"},
      // A second clause with an address: an annotation of the first (Exim's client certificate,
      // "by authid", an envelope sender after the id).
      {"from ticharich.debian.org ([2001:db8::21:23]) from C=NA,CN=ticharich.debian.org "
       "(verified) by muffat.debian.org with esmtps (TLS1.2:ECDHE_RSA_AES_256_GCM_SHA384:256) "
       "(Exim 4.92); date",
       "2001:db8::21:23", "ticharich.debian.org", "ticharich.debian.org", "muffat.debian.org"},
      {"from p5b.dip.example.net ([91.3.74.246] helo=excalibur) by sirius.example.de with "
       "esmtpsa (Exim 4.63 #1) id 1NC by authid <s@example.de> with cram_md5; date",
       "91.3.74.246", "excalibur", "p5b.dip.example.net", "sirius.example.de"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    ReceivedHop hop = parse_received(c.text);
    REQUIRE(hop.parsed);
    REQUIRE(hop.from_ip);
    CHECK(hop.from_ip->to_string() == c.ip);
    CHECK(hop.from_helo == c.helo);
    CHECK(hop.from_name == c.rdns);
    CHECK(hop.by == c.by);
  }

  // A second "from" or "by" and no address: a companion line that names no hop, like qmail's
  // "(qmail N invoked ...)"; it is read (parsed) and its date kept, never "not understood".
  for (const char* companion :
       {"from sender by mail.example.com by uid 89 with qmail-scanner-1.22 (clamscan: 0.65. "
        "Clear:RC:0(192.0.2.7):. Processed in 0.6 secs); 14 Jan 2004 11:20:31 -0000",
        "from a.example.org from b.example.org by mx.example.com; Thu, 21 Nov 2024 10:00:00 "
        "+0000"}) {
    INFO(companion);
    ReceivedHop hop = parse_received(companion);
    CHECK(hop.parsed);
    CHECK_FALSE(hop.from_ip);
    CHECK(hop.by.empty());
    CHECK(hop.from_helo.empty());
    CHECK_FALSE(hop.date.empty());
  }

  // Courier's queue id after the date is the id, not part of the date.
  ReceivedHop courier = parse_received(
      "from a ([192.0.2.1]) by b with esmtp; Fri, 10 Oct 2008 12:00:00 -0700 id 0012AB.CD");
  CHECK(courier.date == "Fri, 10 Oct 2008 12:00:00 -0700");
  CHECK(courier.id == "0012AB.CD");
}

TEST_CASE("received: TLS as each MTA states it") {
  auto tls_of = [](const char* text) { return parse_received(text).tls; };
  CHECK(tls_of("from a (b [192.0.2.1]) (using TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 "
               "(128/128 bits)) by c") == "TLSv1.3 TLS_AES_128_GCM_SHA256");
  CHECK(tls_of("from a by c with ESMTPS id x (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 "
               "bits=256/256)") == "TLS1_3 TLS_AES_256_GCM_SHA384");
  CHECK(tls_of("from a by c with Microsoft SMTP Server (version=TLS1_2, "
               "cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.1.2") ==
        "TLS1_2 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
  CHECK(tls_of("from a by c with esmtps (TLS1.3) tls TLS_AES_256_GCM_SHA384 (Exim 4.96)") ==
        "TLS1.3 TLS_AES_256_GCM_SHA384");
  CHECK(tls_of("from a by c with esmtps (TLS1.3) (Exim 4.96)") == "TLS1.3");
  CHECK(tls_of("from a by c with esmtps (TLSv1.2:ECDHE-RSA-AES256-GCM-SHA384:256)") ==
        "TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384");
  CHECK(tls_of("from a by c with ESMTP/TLS/ECDHE-RSA-AES256-GCM-SHA384") ==
        "ECDHE-RSA-AES256-GCM-SHA384");
  CHECK(tls_of("from a by c with ESMTP id x") == "");
  CHECK(to_json(parse_received("from a by c with ESMTP id x"))["tls"].is_null());
}

TEST_CASE("received: which name is the HELO and which the reverse DNS") {
  // RFC 5321 / Postfix: "from HELO (RDNS [IP])".
  auto postfix = parse_received("from helo.example (rdns.example [192.0.2.1]) by c");
  CHECK(postfix.from_helo == "helo.example");
  CHECK(postfix.from_name == "rdns.example");
  // Exim: "from RDNS ([IP] helo=HELO)".
  auto exim = parse_received("from rdns.example ([192.0.2.1] helo=helo.example) by c");
  CHECK(exim.from_helo == "helo.example");
  CHECK(exim.from_name == "rdns.example");
  // qmail: "from RDNS (HELO helo) (IP)".
  auto qmail = parse_received("from rdns.example (HELO helo.example) (192.0.2.1) by c");
  CHECK(qmail.from_helo == "helo.example");
  CHECK(qmail.from_name == "rdns.example");
  // Exchange writes the HELO name and no reverse name.
  auto exchange = parse_received(
      "from helo.example (192.0.2.1) by c (198.51.100.1) with Microsoft SMTP Server id 15.1");
  CHECK(exchange.from_helo == "helo.example");
  CHECK(exchange.from_name.empty());
  REQUIRE(exchange.by_ip);
  CHECK(exchange.by_ip->to_string() == "198.51.100.1");
  // Sendmail version comments are not addresses.
  auto sendmail = parse_received("from a (b [192.0.2.1]) by c (8.16.0.42/8.16.0.42) with ESMTP");
  CHECK_FALSE(sendmail.by_ip);
}

TEST_CASE("received: hostile input stays bounded and linear") {
  // Time limits are generous for sanitizer builds on a loaded machine; the linear parser
  // needs a few milliseconds for all of these.
  SUBCASE("a 1 MB field") {
    std::string big = "from " + std::string(1 << 20, 'a') + " by b; date";
    CHECK(seconds_for(big) < 2.0);
    CHECK_FALSE(parse_received(big).parsed);
  }
  SUBCASE("100,000 nested parentheses") {
    std::string nested = "from a " + std::string(100000, '(') + std::string(100000, ')') + " by b";
    CHECK(seconds_for(nested) < 2.0);
    CHECK_FALSE(parse_received(nested).parsed);
    // Deep nesting that fits in the size bound is refused by the depth bound.
    std::string deep = "from a " + std::string(5000, '(') + std::string(5000, ')') + " by b";
    CHECK(seconds_for(deep) < 2.0);
    CHECK_FALSE(parse_received(deep).parsed);
    std::string unclosed = "from a by b " + std::string(10000, '(');
    CHECK_FALSE(parse_received(unclosed).parsed);
  }
  SUBCASE("thousands of clauses") {
    std::string many = "from a by b";
    for (int i = 0; i < 3000; ++i) many += " id x";
    CHECK(seconds_for(many) < 2.0);
    CHECK_FALSE(parse_received(many).parsed);
    std::string comments = "from a";
    for (int i = 0; i < 3000; ++i) comments += " (c)";
    CHECK_FALSE(parse_received(comments + " by b").parsed);
  }
  SUBCASE("a field just under the size bound with many quotes and escapes") {
    std::string s = "from a by b for ";
    while (s.size() < 16000) s += "\"\\\"(\" ";
    CHECK(seconds_for(s) < 2.0);
  }
  SUBCASE("real nesting of a few levels is fine") {
    auto hop = parse_received("from a (b [192.0.2.1] (x (y (z)))) by c; date");
    CHECK(hop.parsed);
    CHECK(hop.from_name == "b");
  }
}

TEST_CASE("received: every prefix of a real header is handled") {
  // Truncated headers (a cut-off message) must never crash or leak control characters.
  const std::string full =
      "from mail.example.org (mail.example.org [203.0.113.25])\r\n\t(using TLSv1.3 with cipher "
      "TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n\tby mx.example.net (Postfix) with ESMTPS id "
      "4Qx1\r\n\tfor <a@example.net>; Tue, 14 May 2024 09:12:44 +0000 (UTC)";
  for (std::size_t n = 0; n <= full.size(); ++n) check_sanitised(parse_received(full.substr(0, n)));
}

TEST_CASE("received: sanitise_header_text") {
  CHECK(sanitise_header_text(std::string("a\r\n\tb\0c", 7)) == "a b c");
  CHECK(sanitise_header_text("  lead and trail  ") == "lead and trail");
  CHECK(sanitise_header_text("x\x7fy") == "x y");
  CHECK(sanitise_header_text("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(sanitise_header_text("bad\xff\xfe") == "bad??");
  CHECK(sanitise_header_text("c1\xc2\x85x") == "c1 x");             // NEL is a control
  CHECK(sanitise_header_text("over\xc0\xaflong") == "over??long");  // overlong '/'
  CHECK(sanitise_header_text("sur\xed\xa0\x80x") == "sur???x");     // UTF-16 surrogate
  CHECK(sanitise_header_text(std::string(300, 'a')).size() == 255);
  // Truncation never splits a character.
  std::string e_acute;
  for (int i = 0; i < 200; ++i) e_acute += "\xc3\xa9";
  std::string cut = sanitise_header_text(e_acute);
  CHECK(cut.size() == 254);
  CHECK_NOTHROW((void)nlohmann::json(cut).dump());
  CHECK(sanitise_header_text("abcdef", 3) == "abc");
}

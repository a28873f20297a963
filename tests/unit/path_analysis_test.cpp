// Path analysis: what the Received headers and the HELO say about the sender's gateway,
// internal servers and NAT, built from parsed header text as the report will see it.
#include "responder/analysis/path_analysis.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

using ipconfirm::IpAddress;
using ipconfirm::responder::analyse_path;
using ipconfirm::responder::parse_received;
using ipconfirm::responder::PathAnalysis;
using ipconfirm::responder::ReceivedHop;
using ipconfirm::responder::to_json;

namespace {

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

std::vector<ReceivedHop> hops_of(std::initializer_list<const char*> fields) {
  std::vector<ReceivedHop> out;
  for (const char* f : fields) out.push_back(parse_received(f));
  return out;
}

bool any_note_contains(const PathAnalysis& a, const std::string& needle) {
  for (const auto& n : a.notes)
    if (n.find(needle) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("path: no Received header means the connecting host sent it directly") {
  PathAnalysis a = analyse_path({}, ip("203.0.113.7"), "mail.example.org");
  REQUIRE(a.gateway_ip);
  CHECK(a.gateway_ip->to_string() == "203.0.113.7");
  CHECK(a.internal_hops.empty());
  CHECK_FALSE(a.sender_believed_ip);
  CHECK_FALSE(a.behind_nat);
  CHECK(any_note_contains(a, "no Received header from your side"));
  CHECK(to_json(a) == nlohmann::json::parse(R"({"gateway_ip":"203.0.113.7","internal_hops":[],
        "sender_believed_ip":null,"behind_nat":false})"));
}

TEST_CASE("path: an internal server hands mail to the gateway") {
  auto hops = hops_of({
      "from app1.corp.example (app1.corp.example [10.0.0.5]) by mx.example.org (Postfix) with "
      "ESMTP id A1; Thu, 21 Nov 2024 10:00:01 +0000",
      "from [172.16.4.20] (unknown [172.16.4.20]) by app1.corp.example (Postfix) with ESMTPSA id "
      "B2; Thu, 21 Nov 2024 10:00:00 +0000",
  });
  PathAnalysis a = analyse_path(hops, ip("203.0.113.7"), "mx.example.org");
  REQUIRE(a.internal_hops.size() == 2);
  CHECK(a.internal_hops[0].to_string() == "10.0.0.5");
  CHECK(a.internal_hops[1].to_string() == "172.16.4.20");
  CHECK_FALSE(a.behind_nat);
  CHECK(any_note_contains(a,
                          "Your internal server app1.corp.example [10.0.0.5] hands mail to "
                          "your mail server mx.example.org, your gateway, which connected to "
                          "us from 203.0.113.7."));
  CHECK(any_note_contains(a, "further back in the path: 172.16.4.20."));
  CHECK(to_json(a)["internal_hops"] == nlohmann::json::parse(R"(["10.0.0.5","172.16.4.20"])"));
}

TEST_CASE("path: an address-literal HELO that is not the connecting address means NAT") {
  PathAnalysis a = analyse_path({}, ip("203.0.113.7"), "[192.168.1.10]");
  REQUIRE(a.sender_believed_ip);
  CHECK(a.sender_believed_ip->to_string() == "192.168.1.10");
  CHECK(a.behind_nat);
  CHECK(any_note_contains(a, "introduced itself as [192.168.1.10]"));
  CHECK(any_note_contains(a, "behind NAT"));
  CHECK(to_json(a)["sender_believed_ip"] == "192.168.1.10");
  CHECK(to_json(a)["behind_nat"] == true);

  SUBCASE("the same address is no evidence") {
    PathAnalysis same = analyse_path({}, ip("203.0.113.7"), "[203.0.113.7]");
    CHECK_FALSE(same.behind_nat);
    CHECK_FALSE(same.sender_believed_ip);
  }
  SUBCASE("IPv6 literal with its tag") {
    PathAnalysis v6 = analyse_path({}, ip("2001:db8::7"), "[IPv6:2001:db8::99]");
    REQUIRE(v6.sender_believed_ip);
    CHECK(v6.sender_believed_ip->to_string() == "2001:db8::99");
    CHECK(any_note_contains(v6, "another address"));
  }
  SUBCASE("another family is a dual-stack host, not NAT") {
    PathAnalysis dual = analyse_path({}, ip("203.0.113.7"), "[IPv6:2001:db8::99]");
    CHECK_FALSE(dual.behind_nat);
  }
  SUBCASE("a host name is no evidence") {
    CHECK_FALSE(analyse_path({}, ip("203.0.113.7"), "mail.example.org").behind_nat);
    CHECK_FALSE(analyse_path({}, ip("203.0.113.7"), "[not an address]").behind_nat);
  }
}

TEST_CASE("path: the top hop's by-address that is not the connecting address means NAT") {
  auto hops = hops_of({
      "from EXCH01.corp.example (10.10.85.143) by EXCH04.corp.example (10.10.85.152) with "
      "Microsoft SMTP Server (version=TLS1_2, cipher=TLS_AES_256_GCM_SHA384) id 15.1.2507.12; "
      "Fri, 19 Aug 2022 06:20:11 -0700",
  });
  PathAnalysis a = analyse_path(hops, ip("198.51.100.20"), "EXCH04.corp.example");
  REQUIRE(a.sender_believed_ip);
  CHECK(a.sender_believed_ip->to_string() == "10.10.85.152");
  CHECK(a.behind_nat);
  REQUIRE(a.internal_hops.size() == 1);
  CHECK(a.internal_hops[0].to_string() == "10.10.85.143");
  CHECK(any_note_contains(a, "says it runs at 10.10.85.152"));

  SUBCASE("the HELO literal is stronger evidence than the by clause") {
    PathAnalysis b = analyse_path(hops, ip("198.51.100.20"), "[192.168.7.7]");
    REQUIRE(b.sender_believed_ip);
    CHECK(b.sender_believed_ip->to_string() == "192.168.7.7");
  }
  SUBCASE("a by-address equal to the connecting one is no evidence") {
    PathAnalysis c = analyse_path(hops, ip("10.10.85.152"), "EXCH04.corp.example");
    CHECK_FALSE(c.behind_nat);
    CHECK(any_note_contains(c, "not a public address"));
  }
  SUBCASE("a deeper hop's by-address is not the last MTA's") {
    std::vector<ReceivedHop> deeper =
        hops_of({"from a.example (a.example [198.51.100.20]) by "
                 "b.example with ESMTP; date"});
    deeper.push_back(hops[0]);
    CHECK_FALSE(analyse_path(deeper, ip("198.51.100.20"), "b.example").behind_nat);
  }
}

TEST_CASE("path: qmail's companion line is skipped, an unreadable top stops the analysis") {
  auto qmail = hops_of({
      "(qmail 12345 invoked from network); 21 May 2024 07:59:31 -0000",
      "from unknown (HELO [192.168.0.9]) (192.168.0.9) by mail.example.com with SMTP; 21 May "
      "2024 07:59:31 -0000",
  });
  PathAnalysis a = analyse_path(qmail, ip("203.0.113.9"), "mail.example.com");
  REQUIRE(a.internal_hops.size() == 1);
  CHECK(any_note_contains(a, "Your internal server [192.168.0.9]"));

  auto broken = hops_of({
      "from a.example (b [192.0.2.1] by c; date",  // unbalanced
      "from x.example (x.example [10.1.1.1]) by y.example (192.168.50.1) with SMTP; date",
  });
  PathAnalysis b = analyse_path(broken, ip("203.0.113.9"), "y.example");
  CHECK(any_note_contains(b, "topmost Received header could not be read"));
  CHECK(any_note_contains(b, "1 Received header was not understood"));
  CHECK_FALSE(b.behind_nat);             // the by clause of a deeper hop is not the last MTA's
  REQUIRE(b.internal_hops.size() == 1);  // but its claimed internal address is still listed
  CHECK(b.internal_hops[0].to_string() == "10.1.1.1");
}

TEST_CASE("path: loopback hand-overs and public relays") {
  auto filter = hops_of({
      "from localhost (localhost [127.0.0.1]) by mx.example.org (Postfix) with ESMTP id C; date",
      "from mx.example.org (mx.example.org [203.0.113.7]) by mx.example.org with ESMTP; date",
  });
  PathAnalysis a = analyse_path(filter, ip("203.0.113.7"), "mx.example.org");
  CHECK(a.internal_hops.empty());
  CHECK(any_note_contains(a, "a program on the same host (127.0.0.1)"));

  auto relay =
      hops_of({"from web.example.net (web.example.net [198.51.100.80]) by "
               "smarthost.example.org with ESMTPS id D; date"});
  PathAnalysis b = analyse_path(relay, ip("203.0.113.7"), "smarthost.example.org");
  CHECK(b.internal_hops.empty());
  CHECK_FALSE(b.behind_nat);
  CHECK(any_note_contains(b,
                          "received this message from web.example.net [198.51.100.80] and "
                          "passed it to us from 203.0.113.7."));

  auto local = hops_of({"by mail.example.com (Postfix, from userid 1000) id E; date"});
  CHECK(any_note_contains(analyse_path(local, ip("203.0.113.7"), "mail.example.com"),
                          "recorded no address"));
}

TEST_CASE("path: bounded and safe on hostile input") {
  std::vector<ReceivedHop> many;
  for (int i = 0; i < 5000; ++i) {
    ReceivedHop h;
    h.parsed = true;
    h.by = "b";
    h.from_ip = IpAddress::from_v4(0x0a000000u + static_cast<std::uint32_t>(i));
    many.push_back(h);
  }
  many.push_back(many.front());
  PathAnalysis a = analyse_path(many, ip("203.0.113.7"), "x");
  CHECK(a.internal_hops.size() == 32);  // capped, and no repeats
  for (std::size_t i = 1; i < a.internal_hops.size(); ++i)
    CHECK_FALSE(a.internal_hops[i] == a.internal_hops[0]);

  // A claimed name with control characters and a huge HELO never reach a note raw.
  ReceivedHop evil;
  evil.parsed = true;
  evil.by = "evil\r\nX-Injected: yes";
  evil.from_ip = ip("10.9.9.9");
  std::string helo = "[192.168.1.1]";
  PathAnalysis b = analyse_path({evil}, ip("203.0.113.7"), helo);
  PathAnalysis c = analyse_path({evil}, ip("203.0.113.7"), std::string(100000, '\n'));
  for (const PathAnalysis* p : {&b, &c})
    for (const auto& n : p->notes) {
      CHECK(n.size() < 1000);
      CHECK(n.find('\r') == std::string::npos);
      CHECK(n.find('\n') == std::string::npos);
    }
}

// Issue 13: sentences that were false. Each case is a header set that used to give one.
TEST_CASE("path: a top header that was read is never called unreadable or addressless") {
  for (const char* top : {
           "from (127.0.0.1) by mail90.example.net id 4B1C; Thu, 21 Nov 2024 10:00:00 +0000",
           "from (unknown [192.0.2.4]) by mx.example.net (Postfix) with ESMTP id 4Q; date",
           "from [192.0.2.9] by server-5.bemta-3.messagelabs.com id 51/8F; date",
           "from murphy.example.org [192.0.2.34] by master.example.org with esmtp (Exim 3.12) "
           "id 13A; date",
           "from 192.0.2.98 (SquirrelMail authenticated user x) by mail.example.org with HTTP; "
           "date",
           "from c.example.org (c.example.org [192.0.2.15]) by (Postfix) with esmtpa id 4Q; date",
       }) {
    INFO(top);
    PathAnalysis a = analyse_path(hops_of({top}), ip("203.0.113.7"), "mail.example.org");
    CHECK_FALSE(any_note_contains(a, "could not be read"));
    CHECK_FALSE(any_note_contains(a, "recorded no address"));
    CHECK_FALSE(any_note_contains(a, "not understood"));
  }
  // A companion line with two "by" clauses above the real top is passed over.
  auto scanner = hops_of({
      "from sender by mail.example.com by uid 89 with qmail-scanner-1.22 (clamscan: 0.65. "
      "Processed in 0.6 secs); 14 Jan 2004 11:20:31 -0000",
      "from ws.corp.example (ws.corp.example [10.0.0.7]) by mail.example.com with ESMTP; date",
  });
  PathAnalysis s = analyse_path(scanner, ip("203.0.113.7"), "mail.example.com");
  CHECK_FALSE(any_note_contains(s, "could not be read"));
  CHECK(any_note_contains(s, "Your internal server ws.corp.example [10.0.0.7]"));
}

TEST_CASE("path: an unreadable header below companion lines is named by its number") {
  auto hops = hops_of({
      "(qmail 12345 invoked from network); 21 May 2024 07:59:31 -0000",
      "from a.example (b [192.0.2.1] by c; date",  // unbalanced
  });
  PathAnalysis a = analyse_path(hops, ip("203.0.113.9"), "c.example");
  CHECK_FALSE(any_note_contains(a, "topmost Received header could not be read"));
  CHECK(any_note_contains(a, "Received header 2 from the top could not be read"));
}

TEST_CASE("path: the internal server and the gateway are never the same address") {
  auto hops =
      hops_of({"from app.corp.example (app.corp.example [10.0.0.5]) by "
               "gw.corp.example (Postfix) with ESMTP id 1; date"});
  PathAnalysis a = analyse_path(hops, ip("10.0.0.5"), "gw.corp.example");
  CHECK_FALSE(any_note_contains(a, "Your internal server"));
  CHECK(any_note_contains(a, "already records 10.0.0.5"));
}

TEST_CASE("path: a top header written by a relay after the gateway is no NAT evidence") {
  // The top header records the connecting address as its client: a relay between the sender
  // and us wrote it, so its own "by" address says nothing about the sender.
  auto hops =
      hops_of({"from out.example.org (out.example.org [203.0.113.7]) by "
               "relay.example.net (10.20.30.40) with ESMTP id 1; date"});
  PathAnalysis a = analyse_path(hops, ip("203.0.113.7"), "out.example.org");
  CHECK(any_note_contains(a, "probably written by a relay"));
  CHECK_FALSE(a.behind_nat);
  CHECK_FALSE(a.sender_believed_ip);
  CHECK_FALSE(any_note_contains(a, "says it runs at"));
}

TEST_CASE("path: a loopback peer is a local test") {
  PathAnalysis a = analyse_path({}, ip("127.0.0.1"), "laptop");
  CHECK(any_note_contains(a, "this machine's own (loopback): this was a local test"));
  CHECK_FALSE(any_note_contains(a, "over a private network or through a proxy"));
  // A loopback or private address is not where the sender's mail leaves from.
  CHECK(any_note_contains(a, "wrote and sent it directly."));
  CHECK_FALSE(any_note_contains(a, "the address your mail leaves from"));
  CHECK_FALSE(any_note_contains(analyse_path({}, ip("10.0.0.5"), "x"),
                                "the address your mail leaves from"));
}

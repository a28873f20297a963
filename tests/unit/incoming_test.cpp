// Tests for mime/incoming: reading the received message's header, bounded and sanitised.
#include "mime/incoming.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

using ipconfirm::mime::decode_rfc2047;
using ipconfirm::mime::IncomingLimits;
using ipconfirm::mime::IncomingMessage;
using ipconfirm::mime::is_msg_id;
using ipconfirm::mime::read_incoming;
using ipconfirm::mime::to_valid_utf8;

namespace {

// True if `s` is valid UTF-8 with no control characters.
bool is_clean(const std::string& s) {
  if (to_valid_utf8(s) != s) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return false;
  }
  return true;
}

void check_clean(const IncomingMessage& m) {
  CHECK(is_clean(m.message_id));
  CHECK(is_clean(m.subject));
  CHECK(is_clean(m.from));
  CHECK(is_clean(m.date));
  CHECK(is_clean(m.auto_submitted));
  CHECK(is_clean(m.precedence));
  CHECK(is_clean(m.references));
  for (const auto& r : m.received) CHECK(is_clean(r));
  CHECK(m.subject.size() <= 998);
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("incoming: a plain message") {
  const std::string msg =
      "Received: from mail.sender.test (mail.sender.test [192.0.2.25])\r\n"
      "\tby mx.example.test (Postfix) with ESMTPS id 4XyZ\r\n"
      "\tfor <ipconfirm@example.test>; Tue, 1 Jul 2003 10:52:37 +0200\r\n"
      "Received: from [10.0.0.5] (helo=laptop)\r\n"
      " by mail.sender.test; Tue, 1 Jul 2003 10:52:30 +0200\r\n"
      "Message-ID: <abc.123@sender.test>\r\n"
      "From: Alice <alice@sender.test>\r\n"
      "To: ipconfirm@example.test\r\n"
      "Subject: Check my\r\n  server please\r\n"
      "Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
      "References: <a@b> <c@d>\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      "\r\n"
      "Subject: not a header, this is the body\r\n"
      "Received: neither is this\r\n";
  const IncomingMessage m = read_incoming(msg);
  CHECK(m.message_id == "<abc.123@sender.test>");
  CHECK(m.subject == "Check my  server please");
  CHECK(m.from == "Alice <alice@sender.test>");
  CHECK(m.date == "Tue, 1 Jul 2003 10:52:37 +0200");
  CHECK(m.date_epoch == 1057049557);
  REQUIRE(m.received.size() == 2);
  CHECK(m.received[0] ==
        "from mail.sender.test (mail.sender.test [192.0.2.25]) by mx.example.test (Postfix) with "
        "ESMTPS id 4XyZ for <ipconfirm@example.test>; Tue, 1 Jul 2003 10:52:37 +0200");
  CHECK(m.received[1] ==
        "from [10.0.0.5] (helo=laptop) by mail.sender.test; Tue, 1 Jul 2003 "
        "10:52:30 +0200");
  CHECK(m.received_count == 2);
  CHECK(m.references == "<a@b> <c@d>");
  CHECK(m.auto_submitted.empty());
  CHECK(m.precedence.empty());
  CHECK_FALSE(m.has_list_headers);
  CHECK_FALSE(m.is_delivery_report);
  CHECK_FALSE(m.header_truncated);
  CHECK(m.header_fields == 9);
  check_clean(m);
}

TEST_CASE("incoming: LF-only input reads like CRLF input") {
  const std::string lf =
      "Received: from a\n by b; Tue, 1 Jul 2003 10:52:37 +0200\nSubject: hi\n there\n"
      "Message-ID: <x@y>\n\nbody\n";
  const IncomingMessage m = read_incoming(lf);
  CHECK(m.subject == "hi there");
  CHECK(m.message_id == "<x@y>");
  REQUIRE(m.received.size() == 1);
  CHECK(m.received[0] == "from a by b; Tue, 1 Jul 2003 10:52:37 +0200");
  CHECK(m.header_fields == 3);
}

TEST_CASE("incoming: a missing header/body separator") {
  SUBCASE("a body line right after the header") {
    const IncomingMessage m =
        read_incoming("Subject: hi\r\nThis is the body: it has a colon\r\nFrom: x\r\n");
    CHECK(m.subject == "hi");
    CHECK(m.from.empty());
    CHECK(m.header_fields == 1);
    CHECK_FALSE(m.header_truncated);
  }
  SUBCASE("no body at all, no final line break") {
    const IncomingMessage m = read_incoming("Subject: hi\r\nFrom: a@b");
    CHECK(m.subject == "hi");
    CHECK(m.from == "a@b");
    CHECK(m.header_fields == 2);
  }
  SUBCASE("empty and degenerate input") {
    for (const char* in : {"", "\r\n", "\n", "\r\n\r\n", ":", ": x\r\n", " folded\r\n", "\r"}) {
      const IncomingMessage m = read_incoming(in);
      CHECK(m.header_fields == 0);
      CHECK(m.subject.empty());
      CHECK_FALSE(m.header_truncated);
    }
  }
  SUBCASE("an mbox From_ line first") {
    const IncomingMessage m =
        read_incoming("From alice@sender.test Tue Jul  1 10:52:37 2003\r\nSubject: hi\r\n\r\n");
    CHECK(m.subject == "hi");
    CHECK(m.header_fields == 1);
  }
  SUBCASE("obsolete white space before the colon") {
    const IncomingMessage m = read_incoming("Subject : hi\r\nMessage-ID\t: <a@b>\r\n\r\n");
    CHECK(m.subject == "hi");
    CHECK(m.message_id == "<a@b>");
  }
}

TEST_CASE("incoming: many Received fields") {
  std::string msg;
  for (int i = 0; i < 5000; ++i) {
    msg += "Received: from hop" + std::to_string(i) + ".test\r\n by next.test; Tue, 1 Jul 2003\r\n";
  }
  msg += "Subject: deep\r\n\r\nbody\r\n";
  SUBCASE("default limits stop early and say so") {
    const IncomingMessage m = read_incoming(msg);
    CHECK(m.header_truncated);
    CHECK(m.received.size() == 100);
    CHECK(m.received.front() == "from hop0.test by next.test; Tue, 1 Jul 2003");
    CHECK(m.received.back() == "from hop99.test by next.test; Tue, 1 Jul 2003");
    CHECK(m.received_count >= 100);
    CHECK(m.received_count < 5000);
    CHECK(m.header_fields == m.received_count);
    CHECK(m.subject.empty());
  }
  SUBCASE("the field limit") {
    IncomingLimits limits;
    limits.max_header_bytes = 10 * 1024 * 1024;
    const IncomingMessage m = read_incoming(msg, limits);
    CHECK(m.header_truncated);
    CHECK(m.header_fields == 2000);
    CHECK(m.received_count == 2000);
    CHECK(m.received.size() == 100);
  }
  SUBCASE("generous limits count them all") {
    IncomingLimits limits;
    limits.max_header_bytes = 10 * 1024 * 1024;
    limits.max_header_fields = 10000;
    limits.max_received = 5000;
    const IncomingMessage m = read_incoming(msg, limits);
    CHECK_FALSE(m.header_truncated);
    CHECK(m.received_count == 5000);
    CHECK(m.received.size() == 5000);
    CHECK(m.received[4999] == "from hop4999.test by next.test; Tue, 1 Jul 2003");
    CHECK(m.subject == "deep");
  }
}

TEST_CASE("incoming: a 1 MB header line") {
  std::string msg = "Subject: before\r\nMessage-ID: <a@b>\r\nX-Long: ";
  msg += std::string(1024 * 1024, 'a');
  msg += "\r\nFrom: after@sender.test\r\n\r\nbody";
  SUBCASE("beyond the byte limit") {
    const IncomingMessage m = read_incoming(msg);
    CHECK(m.header_truncated);
    CHECK(m.subject == "before");
    CHECK(m.message_id == "<a@b>");
    CHECK(m.from.empty());
    CHECK(m.header_fields == 2);
  }
  SUBCASE("within a larger byte limit, values are capped") {
    IncomingLimits limits;
    limits.max_header_bytes = 4 * 1024 * 1024;
    std::string long_subject = "Subject: " + std::string(1024 * 1024, 'b') + "\r\n\r\n";
    const IncomingMessage m = read_incoming(long_subject, limits);
    CHECK_FALSE(m.header_truncated);
    CHECK(m.subject == std::string(998, 'b'));
    const IncomingMessage m2 = read_incoming(msg, limits);
    CHECK(m2.from == "after@sender.test");
  }
  SUBCASE("a long folded Received field is capped at 16 KiB") {
    std::string r = "Received: from x";
    for (int i = 0; i < 5000; ++i) r += "\r\n\tby hop" + std::to_string(i);
    const IncomingMessage m = read_incoming(r + "\r\n\r\n");
    REQUIRE(m.received.size() == 1);
    CHECK(m.received[0].size() <= 16 * 1024);
    CHECK(m.received[0].rfind("from x by hop0 by hop1 ", 0) == 0);
  }
  SUBCASE("a field cut by the byte limit is dropped") {
    IncomingLimits limits;
    limits.max_header_bytes = 40;
    const IncomingMessage m =
        read_incoming("Subject: one\r\nReceived: from a\r\n by b c d e f g h\r\n\r\n", limits);
    CHECK(m.header_truncated);
    CHECK(m.subject == "one");
    CHECK(m.received.empty());
    CHECK(m.received_count == 0);
  }
}

TEST_CASE("incoming: RFC 2047 subjects") {
  auto subject = [](const std::string& raw) {
    return read_incoming("Subject: " + raw + "\r\n\r\n").subject;
  };
  CHECK(subject("=?UTF-8?B?w6RiYw==?=") ==
        "\xC3\xA4"
        "bc");
  CHECK(subject("=?utf-8?q?caf=C3=A9_cr=C3=A8me?=") == "caf\xC3\xA9 cr\xC3\xA8me");
  CHECK(subject("=?ISO-8859-1?Q?caf=E9?=") == "caf\xC3\xA9");
  CHECK(subject("=?windows-1252?Q?=80_5?=") == "\xE2\x82\xAC 5");
  CHECK(subject("=?us-ascii*en?Q?plain?=") == "plain");
  // White space between adjacent encoded-words disappears, other white space stays.
  CHECK(subject("=?UTF-8?Q?a?= =?UTF-8?Q?b?=") == "ab");
  CHECK(subject("=?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?= c =?UTF-8?Q?d?=") == "ab c d");
  CHECK(subject("x =?UTF-8?Q?a?=") == "x a");
  // Unknown charsets and bad syntax stay as they are.
  CHECK(subject("=?x-unknown?Q?abc?=") == "=?x-unknown?Q?abc?=");
  CHECK(subject("=?UTF-8?X?abc?=") == "=?UTF-8?X?abc?=");
  CHECK(subject("=?UTF-8?B?***?=") == "=?UTF-8?B?***?=");
  CHECK(subject("=?UTF-8?Q?=ZZ?=") == "=?UTF-8?Q?=ZZ?=");
  CHECK(subject("=?UTF-8?Q?open") == "=?UTF-8?Q?open");
  CHECK(subject("=?=?=?") == "=?=?=?");
  // Decoded control characters are removed, decoded invalid UTF-8 is replaced.
  CHECK(subject("=?UTF-8?Q?a=0D=0ABcc:_x=00y?=") == "aBcc: xy");
  CHECK(subject("=?UTF-8?B?/w==?=") == "\xEF\xBF\xBD");
  CHECK(decode_rfc2047("=?UTF-8?Q?a?=\t=?UTF-8?Q?b?=") == "ab");
}

TEST_CASE("incoming: sanitising") {
  const std::string msg = std::string("Subject: a\x01") + "b\x7F" + "c\td\r\n" +
                          "From: \xFF\xFEx <x@y>\r\n" + std::string("Date: \0oops\r\n", 13) +
                          "\r\n";
  const IncomingMessage m = read_incoming(msg);
  CHECK(m.subject == "abc d");
  CHECK(m.from == "\xEF\xBF\xBD\xEF\xBF\xBDx <x@y>");
  CHECK(m.date == "oops");
  CHECK_FALSE(m.date_epoch.has_value());
  check_clean(m);
  // A bare CR inside a line does not start a new field.
  const IncomingMessage m2 = read_incoming("Subject: a\rBcc: evil\r\n\r\n");
  CHECK(m2.subject == "aBcc: evil");
  CHECK(m2.header_fields == 1);
  // The subject is cut at 998 bytes without splitting a character.
  std::string euros;
  for (int i = 0; i < 400; ++i) euros += "\xE2\x82\xAC";
  const IncomingMessage m3 = read_incoming("Subject: " + euros + "\r\n\r\n");
  CHECK(m3.subject.size() == 996);
  check_clean(m3);
}

TEST_CASE("incoming: UTF-8 validation") {
  CHECK(to_valid_utf8("plain") == "plain");
  CHECK(to_valid_utf8("\xC3\xA4\xE2\x82\xAC\xF0\x9F\x8E\x89") ==
        "\xC3\xA4\xE2\x82\xAC\xF0\x9F\x8E\x89");
  const std::string r = "\xEF\xBF\xBD";
  CHECK(to_valid_utf8("\xC0\xAF") == r + r);                  // overlong
  CHECK(to_valid_utf8("\xE0\x80\xAF") == r + r + r);          // overlong
  CHECK(to_valid_utf8("\xED\xA0\x80") == r + r + r);          // surrogate
  CHECK(to_valid_utf8("\xF4\x90\x80\x80") == r + r + r + r);  // above U+10FFFF
  CHECK(to_valid_utf8("a\xE2\x82") == "a" + r + r);           // truncated
  CHECK(to_valid_utf8("\x80z") == r + "z");
}

TEST_CASE("incoming: Message-ID") {
  auto id = [](const std::string& raw) {
    return read_incoming("Message-ID: " + raw + "\r\n\r\n").message_id;
  };
  CHECK(id("<abc@example.test>") == "<abc@example.test>");
  CHECK(id("  <a.b-c+d@[192.0.2.1]>  ") == "<a.b-c+d@[192.0.2.1]>");
  CHECK(id("<abc@example.test> (comment)") == "<abc@example.test>");
  CHECK(id("\r\n <abc@example.test>") == "<abc@example.test>");
  CHECK(id("abc@example.test").empty());
  CHECK(id("<abc>").empty());
  CHECK(id("<a b@c>").empty());
  CHECK(id("<a@b> <c@d>").empty());
  CHECK(id("<a..b@c>").empty());
  CHECK(id("<" + std::string(300, 'a') + "@b>").empty());
  CHECK(is_msg_id("<x@y>"));
  CHECK_FALSE(is_msg_id("<x@y>\r\nBcc: z"));
  CHECK_FALSE(is_msg_id("<@y>"));
  CHECK_FALSE(is_msg_id("<x@>"));
  CHECK_FALSE(is_msg_id("<x@[a]b>"));
  // The first Message-ID wins over a later one.
  CHECK(read_incoming("Message-ID: <1@a>\r\nMessage-ID: <2@a>\r\n\r\n").message_id == "<1@a>");
}

TEST_CASE("incoming: auto-reply and list markers") {
  const IncomingMessage m = read_incoming(
      "Auto-Submitted: Auto-Replied (vacation)\r\nPrecedence:  BULK \r\nList-Id: "
      "<l.example>\r\n\r\n");
  CHECK(m.auto_submitted == "auto-replied (vacation)");
  CHECK(m.precedence == "bulk");
  CHECK(m.has_list_headers);
  for (const char* f : {"list-unsubscribe", "List-Post", "LIST-HELP", "List-Archive",
                        "List-Subscribe", "List-Owner", "List-Unsubscribe-Post"}) {
    INFO(f);
    CHECK(read_incoming(std::string(f) + ": <mailto:x@y>\r\n\r\n").has_list_headers);
  }
  CHECK_FALSE(read_incoming("X-List: y\r\nListId: z\r\n\r\n").has_list_headers);
}

TEST_CASE("incoming: delivery reports") {
  auto report = [](const std::string& ct) {
    return read_incoming("Content-Type: " + ct + "\r\n\r\n").is_delivery_report;
  };
  CHECK(report("multipart/report; report-type=delivery-status; boundary=\"x\""));
  CHECK(report("Multipart/Report;\r\n\tboundary=\"a;b\";\r\n\treport-type=\"Delivery-Status\""));
  CHECK(report("multipart/report (dsn); report-type=disposition-notification"));
  CHECK(report("message/delivery-status"));
  CHECK(report("message/disposition-notification"));
  CHECK(report("multipart/report; report-type=feedback-report"));  // abuse reports too
  CHECK(report("multipart/report"));                               // whatever its report-type
  CHECK_FALSE(report("multipart/mixed; report-type=delivery-status"));
  CHECK_FALSE(report("text/plain; charset=\"report-type=delivery-status\""));
  CHECK(report("multipart/report; boundary=\"report-type=delivery-status\""));
}

TEST_CASE("incoming: golden messages in tests/data/mime") {
  const std::filesystem::path dir = std::filesystem::path(IPCONFIRM_TEST_DATA) / "mime";
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".eml") continue;
    auto expected_path = entry.path();
    expected_path.replace_extension(".expected.json");
    INFO(entry.path().filename().string());
    REQUIRE(std::filesystem::exists(expected_path));
    const auto expected = nlohmann::json::parse(read_file(expected_path));
    const IncomingMessage m = read_incoming(read_file(entry.path()));
    CHECK(m.message_id == expected.at("message_id").get<std::string>());
    CHECK(m.subject == expected.at("subject").get<std::string>());
    CHECK(m.from == expected.at("from").get<std::string>());
    CHECK(m.received_count == expected.at("received_count").get<std::size_t>());
    CHECK(m.received == expected.at("received").get<std::vector<std::string>>());
    CHECK(m.auto_submitted == expected.at("auto_submitted").get<std::string>());
    CHECK(m.precedence == expected.at("precedence").get<std::string>());
    CHECK(m.has_list_headers == expected.at("has_list_headers").get<bool>());
    CHECK(m.is_delivery_report == expected.at("is_delivery_report").get<bool>());
    if (expected.at("date_epoch").is_null()) {
      CHECK_FALSE(m.date_epoch.has_value());
    } else {
      CHECK(m.date_epoch == expected.at("date_epoch").get<std::int64_t>());
    }
    check_clean(m);
    ++checked;
  }
  CHECK(checked >= 3);
}

TEST_CASE("incoming: a repeated Auto-Submitted or Precedence cannot hide an automatic one") {
  auto m = read_incoming(
      "Auto-Submitted: no\r\nAuto-Submitted: auto-generated\r\nPrecedence: normal\r\n"
      "Precedence: bulk\r\n\r\nbody\r\n");
  CHECK(m.auto_submitted == "auto-generated");
  CHECK(m.precedence == "bulk");
  auto n = read_incoming("Auto-Submitted: auto-replied\r\nAuto-Submitted: no\r\n\r\n");
  CHECK(n.auto_submitted == "auto-replied");
  auto o = read_incoming("Auto-Submitted: no\r\n\r\n");
  CHECK(o.auto_submitted == "no");
}

// Tests for mime/date: RFC 5322 §3.3 dates, current and obsolete forms, and formatting.
#include "mime/date.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <string>

using ipconfirm::mime::format_rfc5322_date;
using ipconfirm::mime::parse_rfc5322_date;

namespace {
constexpr std::int64_t k2003 = 1057049557;  // 2003-07-01T08:52:37Z
}

TEST_CASE("date: the current syntax") {
  CHECK(parse_rfc5322_date("Tue, 1 Jul 2003 10:52:37 +0200") == k2003);
  CHECK(parse_rfc5322_date("Tue, 01 Jul 2003 08:52:37 +0000") == k2003);
  CHECK(parse_rfc5322_date("Tue, 01 Jul 2003 03:52:37 -0500") == k2003);
  CHECK(parse_rfc5322_date("Thu, 01 Jan 1970 00:00:00 +0000") == 0);
  CHECK(parse_rfc5322_date("Sat, 29 Feb 2020 12:00:00 +0000") == 1582977600);
  CHECK(parse_rfc5322_date("Fri, 31 Dec 9999 23:59:59 +0000") == 253402300799);
  CHECK(parse_rfc5322_date("Mon, 31 Dec 1900 00:00:00 +0000") == -2177539200);
  // Half-hour zones and a leap second.
  CHECK(parse_rfc5322_date("Tue, 1 Jul 2003 14:22:37 +0530") == k2003);
  CHECK(parse_rfc5322_date("Wed, 31 Dec 2008 23:59:60 +0000") == 1230768000);
}

TEST_CASE("date: obsolete forms of RFC 5322 §4.3") {
  // No day of week, no seconds, white space and comments anywhere.
  CHECK(parse_rfc5322_date("1 Jul 2003 10:52:37 +0200") == k2003);
  CHECK(parse_rfc5322_date("1 Jul 2003 08:52 +0000") == k2003 - 37);
  CHECK(parse_rfc5322_date("  Tue ,  1  Jul  2003  10 : 52 : 37  +0200  ") == k2003);
  CHECK(parse_rfc5322_date("Tue, 1 Jul 2003 10:52:37 +0200 (CEST)") == k2003);
  CHECK(parse_rfc5322_date("(sent) Tue, 1 (a (nested) comment) Jul 2003 10:52:37 +0200") == k2003);
  CHECK(parse_rfc5322_date("Tue, 1 Jul 2003\r\n 10:52:37 +0200") == k2003);
  // Two- and three-digit years.
  CHECK(parse_rfc5322_date("Tue, 1 Jul 03 08:52:37 +0000") == k2003);
  CHECK(parse_rfc5322_date("Tue, 1 Jul 103 08:52:37 +0000") == k2003);
  CHECK(parse_rfc5322_date("Thu, 1 Jan 70 00:00:00 +0000") == 0);
  CHECK(parse_rfc5322_date("Sat, 1 Jan 49 00:00:00 +0000") == 2493072000);
  // Named zones; military and unknown zones count as -0000 (UTC).
  CHECK(parse_rfc5322_date("Tue, 1 Jul 2003 08:52:37 GMT") == k2003);
  CHECK(parse_rfc5322_date("Tue, 1 Jul 2003 08:52:37 UT") == k2003);
  CHECK(parse_rfc5322_date("Tue, 1 Jul 2003 04:52:37 EDT") == k2003);
  CHECK(parse_rfc5322_date("Tue, 1 Jul 2003 03:52:37 est") == k2003);
  CHECK(parse_rfc5322_date("Tue, 1 Jul 2003 01:52:37 PDT") == k2003);
  CHECK(parse_rfc5322_date("Tue, 1 Jul 2003 00:52:37 PST") == k2003);
  CHECK(parse_rfc5322_date("Tue, 1 Jul 2003 02:52:37 CST") == k2003);
  CHECK(parse_rfc5322_date("Tue, 1 Jul 2003 02:52:37 MDT") == k2003);
  CHECK(parse_rfc5322_date("Tue, 1 Jul 2003 08:52:37 Z") == k2003);
  CHECK(parse_rfc5322_date("Tue, 1 Jul 2003 08:52:37 CEST") == k2003);
  // Case of names does not matter; a wrong day of week is not checked.
  CHECK(parse_rfc5322_date("tue, 1 JUL 2003 08:52:37 +0000") == k2003);
  CHECK(parse_rfc5322_date("Sun, 1 Jul 2003 08:52:37 +0000") == k2003);
}

TEST_CASE("date: rejected input") {
  const char* bad[] = {
      "",
      "   ",
      "(only a comment)",
      "Tue, 1 Jul 2003",                   // no time
      "Tue, 1 Jul 2003 10:52:37",          // no zone
      "Tue, 32 Jul 2003 10:52:37 +0000",   // day
      "Tue, 31 Jun 2003 10:52:37 +0000",   // 30-day month
      "Tue, 29 Feb 2019 10:52:37 +0000",   // not a leap year
      "Tue, 29 Feb 1900 10:52:37 +0000",   // not a leap year either
      "Tue, 1 Jux 2003 10:52:37 +0000",    // month
      "Tue, 1 Jul 2003 24:00:00 +0000",    // hour
      "Tue, 1 Jul 2003 10:60:00 +0000",    // minute
      "Tue, 1 Jul 2003 10:52:61 +0000",    // second
      "Tue, 1 Jul 2003 10:52:37 +0260",    // zone minutes
      "Tue, 1 Jul 2003 10:52:37 +02",      // short zone
      "Tue, 1 Jul 1899 10:52:37 +0000",    // before 1900
      "Tue, 1 Jul 12003 10:52:37 +0000",   // five-digit year
      "Tue, 1 Jul 2003 10:52:37 +0000 x",  // trailing junk
      "Tue, 1 Jul 2003 10:52:37 +0000 (",  // unclosed comment
      "Xyz, 1 Jul 2003 10:52:37 +0000",    // day name
      "Tue, 1 Jul 2003 10.52.37 +0000",    // separator
      "2003-07-01T08:52:37Z",              // ISO 8601 is not RFC 5322
      "Tue, 1 Jul 2003 10:52:37 ABCDEFG",  // zone name too long
      "Tue, 123 Jul 2003 10:52:37 +0000",
  };
  for (const char* b : bad) {
    INFO(b);
    CHECK_FALSE(parse_rfc5322_date(b).has_value());
  }
}

TEST_CASE("date: formatting") {
  CHECK(format_rfc5322_date(0) == "Thu, 01 Jan 1970 00:00:00 +0000");
  CHECK(format_rfc5322_date(k2003) == "Tue, 01 Jul 2003 08:52:37 +0000");
  CHECK(format_rfc5322_date(1582977600) == "Sat, 29 Feb 2020 12:00:00 +0000");
  CHECK(format_rfc5322_date(1700000000) == "Tue, 14 Nov 2023 22:13:20 +0000");
  // Clamped to what four-digit years can say.
  CHECK(format_rfc5322_date(-5) == "Thu, 01 Jan 1970 00:00:00 +0000");
  CHECK(format_rfc5322_date(INT64_MAX) == "Fri, 31 Dec 9999 23:59:59 +0000");
}

TEST_CASE("date: format and parse round trip") {
  // Every day for 60 years at varied times of day, and a few far dates.
  for (std::int64_t t = 0; t < 60LL * 366 * 86400; t += 86400 + 3607) {
    const std::string text = format_rfc5322_date(t);
    REQUIRE(text.size() == 31);
    REQUIRE(parse_rfc5322_date(text) == t);
  }
  for (std::int64_t t : {951782400LL, 4102444800LL, 253402300799LL, 68256000000LL}) {
    CHECK(parse_rfc5322_date(format_rfc5322_date(t)) == t);
  }
}

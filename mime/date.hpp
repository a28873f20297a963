// Parsing and formatting of the RFC 5322 §3.3 date-time ("Tue, 1 Jul 2003 10:52:37 +0200").
//
// Pure: no clock, no locale, no time-zone database. Parsing accepts the current syntax and the
// obsolete forms of RFC 5322 §4.3 — two- and three-digit years, named zones (UT, GMT, EST..PDT,
// military letters and unknown alphabetic zones, which count as "-0000" as §4.3 asks), a missing
// day of week, comments anywhere CFWS is allowed, and a missing seconds field. It does not check
// that the day of week matches the date (many senders get it wrong and it tells us nothing).
// Formatting always writes UTC ("+0000") with English day and month names.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ipconfirm::mime {

// Seconds since 1970-01-01T00:00:00Z for an RFC 5322 date-time, or nullopt when the text is not
// one (bad syntax, day 31 in a 30-day month, hour 24, a year before 1900 or after 9999...).
// Leading and trailing white space and comments are ignored; a leap second (":60") is accepted.
std::optional<std::int64_t> parse_rfc5322_date(std::string_view text);

// "Mon, 02 Jan 2006 15:04:05 +0000" for `epoch`. Values before 1970 or after 9999-12-31
// 23:59:59 are clamped to that range, so the result is always a valid four-digit-year date.
std::string format_rfc5322_date(std::int64_t epoch);

}  // namespace ipconfirm::mime

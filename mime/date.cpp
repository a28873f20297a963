#include "mime/date.hpp"
#include "core/ascii.hpp"

#include <array>
#include <cstddef>
#include <string>
#include <vector>

namespace ipconfirm::mime {
namespace {

constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

using ascii::iequals;
using ascii::is_alpha;
using ascii::is_digit;
using ascii::to_lower;

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct Civil {
  std::int64_t year;
  unsigned month;
  unsigned day;
};

Civil civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2 ? 1 : 0), m, d};
}

bool is_leap(std::int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(std::int64_t y, unsigned m) {
  constexpr std::array<unsigned, 12> kLen = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kLen[m - 1];
}

// Splits the date into tokens: runs of digits, runs of letters, and the single characters
// ',', ':', '+', '-'. Comments (nested, with quoted-pairs) and white space separate tokens.
// Returns false on any other character or an unclosed comment.
bool tokenize(std::string_view s, std::vector<std::string_view>& out) {
  std::size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      ++i;
    } else if (c == '(') {
      int depth = 0;
      while (i < s.size()) {
        if (s[i] == '\\') {
          i += 2;
          continue;
        }
        if (s[i] == '(') ++depth;
        if (s[i] == ')' && --depth == 0) break;
        ++i;
      }
      if (i >= s.size()) return false;
      ++i;
    } else if (is_digit(c) || is_alpha(c)) {
      const bool digits = is_digit(c);
      const std::size_t start = i;
      while (i < s.size() && (digits ? is_digit(s[i]) : is_alpha(s[i]))) ++i;
      out.push_back(s.substr(start, i - start));
    } else if (c == ',' || c == ':' || c == '+' || c == '-') {
      out.push_back(s.substr(i, 1));
      ++i;
    } else {
      return false;
    }
    if (out.size() > 32) return false;
  }
  return true;
}

std::optional<unsigned> number(std::string_view t, std::size_t min_len, std::size_t max_len) {
  if (t.size() < min_len || t.size() > max_len || !is_digit(t[0])) return std::nullopt;
  unsigned v = 0;
  for (char c : t) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v;
}

// The offset east of UTC in minutes for an obsolete alphabetic zone (RFC 5322 §4.3).
std::optional<int> named_zone(std::string_view z) {
  struct Named {
    std::string_view name;
    int minutes;
  };
  constexpr std::array<Named, 10> kZones = {{{"UT", 0},
                                             {"GMT", 0},
                                             {"EST", -300},
                                             {"EDT", -240},
                                             {"CST", -360},
                                             {"CDT", -300},
                                             {"MST", -420},
                                             {"MDT", -360},
                                             {"PST", -480},
                                             {"PDT", -420}}};
  for (const auto& n : kZones) {
    if (iequals(z, n.name)) return n.minutes;
  }
  if (z.size() >= 1 && z.size() <= 5) return 0;  // military and unknown zones mean "-0000"
  return std::nullopt;
}

}  // namespace

std::optional<std::int64_t> parse_rfc5322_date(std::string_view text) {
  std::vector<std::string_view> tok;
  if (!tokenize(text, tok)) return std::nullopt;
  std::size_t i = 0;
  auto next = [&]() -> std::string_view { return i < tok.size() ? tok[i++] : std::string_view{}; };
  auto peek = [&]() -> std::string_view { return i < tok.size() ? tok[i] : std::string_view{}; };

  // [day-of-week ","]; the comma is optional here because senders drop it.
  if (!peek().empty() && is_alpha(peek()[0])) {
    bool known = false;
    for (auto d : kDays) known = known || iequals(peek(), d);
    if (!known) return std::nullopt;
    ++i;
    if (peek() == ",") ++i;
  }
  const auto day = number(next(), 1, 2);
  const std::string_view month_name = next();
  unsigned month = 0;
  for (unsigned m = 0; m < kMonths.size(); ++m) {
    if (iequals(month_name, kMonths[m])) month = m + 1;
  }
  const std::string_view year_text = next();
  auto year = number(year_text, 2, 4);
  if (!day || month == 0 || !year) return std::nullopt;
  if (year_text.size() == 2) {
    *year += *year < 50 ? 2000 : 1900;
  } else if (year_text.size() == 3) {
    *year += 1900;
  }
  if (*year < 1900) return std::nullopt;

  const auto hour = number(next(), 1, 2);
  if (next() != ":") return std::nullopt;
  const auto minute = number(next(), 1, 2);
  std::optional<unsigned> second = 0;
  if (peek() == ":") {
    ++i;
    second = number(next(), 1, 2);
  }
  if (!hour || !minute || !second) return std::nullopt;
  if (*day < 1 || *day > days_in_month(*year, month) || *hour > 23 || *minute > 59 ||
      *second > 60) {
    return std::nullopt;
  }

  int offset = 0;  // minutes east of UTC
  const std::string_view zone = next();
  if (zone == "+" || zone == "-") {
    const auto hhmm = number(next(), 4, 4);
    if (!hhmm || *hhmm % 100 > 59) return std::nullopt;
    offset = static_cast<int>(*hhmm / 100 * 60 + *hhmm % 100);
    if (zone == "-") offset = -offset;
  } else if (!zone.empty() && is_alpha(zone[0])) {
    const auto named = named_zone(zone);
    if (!named) return std::nullopt;
    offset = *named;
  } else {
    return std::nullopt;  // the zone is required, even in the obsolete syntax
  }
  if (i != tok.size()) return std::nullopt;

  const std::int64_t days = days_from_civil(*year, month, *day);
  return days * 86400 + *hour * 3600 + *minute * 60 + *second -
         static_cast<std::int64_t>(offset) * 60;
}

std::string format_rfc5322_date(std::int64_t epoch) {
  constexpr std::int64_t kMax = 253402300799;  // 9999-12-31T23:59:59Z
  if (epoch < 0) epoch = 0;
  if (epoch > kMax) epoch = kMax;
  const std::int64_t days = epoch / 86400;
  const std::int64_t secs = epoch % 86400;
  const Civil c = civil_from_days(days);
  const auto weekday = static_cast<std::size_t>((days + 4) % 7);  // 1970-01-01 was a Thursday

  auto two = [](std::int64_t v) {
    return std::string{static_cast<char>('0' + v / 10), static_cast<char>('0' + v % 10)};
  };
  std::string out;
  out.reserve(31);
  out.append(kDays[weekday]).append(", ");
  out.append(two(c.day)).append(" ");
  out.append(kMonths[c.month - 1]).append(" ");
  out.append(std::to_string(c.year)).append(" ");
  out.append(two(secs / 3600)).append(":");
  out.append(two(secs / 60 % 60)).append(":");
  out.append(two(secs % 60)).append(" +0000");
  return out;
}

}  // namespace ipconfirm::mime

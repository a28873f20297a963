// ASCII character and string helpers shared by the protocol and header code. Mail syntax is
// ASCII (RFC 5321, RFC 5322), so these never consult the C locale, unlike std::tolower and
// std::isdigit, and never treat bytes above 0x7f as letters. Pure, header-only.
#pragma once

#include <cstring>
#include <string>
#include <string_view>

namespace ipconfirm::ascii {

inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
inline bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
inline bool is_alnum(char c) {
  return is_alpha(c) || is_digit(c);
}
inline bool is_wsp(char c) {
  return c == ' ' || c == '\t';
}  // RFC 5234 WSP
// RFC 5322 atext (ASCII only; RFC 6532 adds the 8-bit bytes where a caller allows them).
inline bool is_atext(char c) {
  if (is_alnum(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '/':
    case '=':
    case '?':
    case '^':
    case '_':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~':
      return true;
    default:
      return false;
  }
}

// The position of the first CR or LF at or after `pos`, or npos. (The standard find_first_of
// calls memchr on its set once per byte of the text; a byte loop was the largest cost of dot
// stuffing a reply. Mail lines end in CRLF, so: memchr for the LF, then for a CR before it.)
inline std::size_t find_line_break(std::string_view s, std::size_t pos = 0) {
  if (pos >= s.size()) return std::string_view::npos;
  const char* begin = s.data() + pos;
  const std::size_t left = s.size() - pos;
  const void* lf = std::memchr(begin, '\n', left);
  const std::size_t upto =
      lf ? static_cast<std::size_t>(static_cast<const char*>(lf) - begin) : left;
  if (const void* cr = std::memchr(begin, '\r', upto))
    return pos + static_cast<std::size_t>(static_cast<const char*>(cr) - begin);
  return lf ? pos + upto : std::string_view::npos;
}

inline char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_lower(c);
  return out;
}

// Case-insensitive equality of ASCII letters; other bytes compare exactly.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  return true;
}

// Drops leading and trailing spaces and tabs.
inline std::string_view trim(std::string_view s) {
  while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace ipconfirm::ascii

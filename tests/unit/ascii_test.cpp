// The ASCII helpers: find_line_break against a plain byte loop on every short text over the
// bytes that matter to it.
#include "core/ascii.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

using namespace ipconfirm;

namespace {

std::size_t reference_line_break(std::string_view s, std::size_t pos) {
  for (; pos < s.size(); ++pos)
    if (s[pos] == '\r' || s[pos] == '\n') return pos;
  return std::string_view::npos;
}

}  // namespace

TEST_CASE("ascii: find_line_break finds the first CR or LF at or after pos") {
  const char alphabet[] = {'a', '\r', '\n', '\0'};
  // Every text of up to 6 bytes over the alphabet, from every start position (and past it).
  for (std::size_t len = 0; len <= 6; ++len) {
    std::size_t combos = 1;
    for (std::size_t i = 0; i < len; ++i) combos *= 4;
    for (std::size_t c = 0; c < combos; ++c) {
      std::string s;
      for (std::size_t i = 0, v = c; i < len; ++i, v /= 4) s.push_back(alphabet[v % 4]);
      for (std::size_t pos = 0; pos <= len + 1; ++pos) {
        INFO("len " << len << " combo " << c << " pos " << pos);
        CHECK(ascii::find_line_break(s, pos) == reference_line_break(s, pos));
      }
    }
  }
  const std::string long_line = std::string(5000, 'x') + "\r\n" + std::string(70, 'y') + "\n";
  CHECK(ascii::find_line_break(long_line) == 5000);
  CHECK(ascii::find_line_break(long_line, 5001) == 5001);
  CHECK(ascii::find_line_break(long_line, 5002) == 5072);
  CHECK(ascii::find_line_break(std::string_view(long_line).substr(0, 5000)) ==
        std::string_view::npos);
}

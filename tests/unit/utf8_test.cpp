// core/utf8.hpp: strict decoding of one UTF-8 sequence (RFC 3629).
#include "core/utf8.hpp"

#include <doctest/doctest.h>

using ipconfirm::utf8::decode;

TEST_CASE("utf8: well-formed sequences of two, three and four bytes") {
  CHECK(decode("\xC3\xA9", 0).code_point == 0xE9);
  CHECK(decode("\xC3\xA9", 0).length == 2);
  CHECK(decode("x\xE2\x82\xAC", 1).code_point == 0x20AC);
  CHECK(decode("x\xE2\x82\xAC", 1).length == 3);
  CHECK(decode("\xF0\x9F\x98\x80", 0).code_point == 0x1F600);
  CHECK(decode("\xF4\x8F\xBF\xBF", 0).code_point == 0x10FFFF);
}

TEST_CASE("utf8: what is not one well-formed sequence has length 0") {
  CHECK(decode("a", 0).length == 0);                 // ASCII
  CHECK(decode("\x80", 0).length == 0);              // a stray continuation byte
  CHECK(decode("\xC0\xAF", 0).length == 0);          // overlong (C0, C1 never start one)
  CHECK(decode("\xE0\x80\xAF", 0).length == 0);      // overlong three-byte form
  CHECK(decode("\xF0\x8F\xBF\xBF", 0).length == 0);  // overlong four-byte form
  CHECK(decode("\xED\xA0\x80", 0).length == 0);      // a surrogate (U+D800)
  CHECK(decode("\xF4\x90\x80\x80", 0).length == 0);  // above U+10FFFF
  CHECK(decode("\xE2\x82", 0).length == 0);          // cut by the end of the string
  CHECK(decode("\xE2\x28\xAC", 0).length == 0);      // a continuation byte missing
}

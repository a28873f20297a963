// The log's printable rule (core/log.hpp): what a hostile value can and cannot put into a log
// line or onto a terminal.
#include "core/log.hpp"

#include <doctest/doctest.h>

#include <string>

using ipconfirm::format_log_fields;
using ipconfirm::log_escape;

TEST_CASE("log: values are quoted when they hold spaces, and quotes are escaped") {
  CHECK(format_log_fields("helo", {{"helo", "mail.example"}}) == "helo helo=mail.example");
  CHECK(format_log_fields("e", {{"k", "a b"}}) == "e k=\"a b\"");
  CHECK(format_log_fields("e", {{"k", "x\" y=\"z"}}) == "e k=\"x\\\" y=\\\"z\"");
  CHECK(format_log_fields("e", {{"k", ""}}) == "e k=\"\"");
  CHECK(log_escape("back\\slash") == "back\\\\slash");
}

TEST_CASE("log: C0 controls, DEL and bytes that are not UTF-8 are shown as \\xNN") {
  CHECK(log_escape("a\r\nb") == "a\\x0d\\x0ab");
  CHECK(log_escape(std::string("nul\0x", 5)) == "nul\\x00x");
  CHECK(log_escape("del\x7f") == "del\\x7f");
  CHECK(log_escape("esc\x1b[31m") == "esc\\x1b[31m");
  CHECK(log_escape("lone \x9b byte") == "lone \\x9b byte");         // 8-bit CSI, not UTF-8
  CHECK(log_escape("overlong \xc0\xaf") == "overlong \\xc0\\xaf");  // "/" in two bytes
  CHECK(log_escape("surrogate \xed\xa0\x80") == "surrogate \\xed\\xa0\\x80");
  CHECK(log_escape("cut \xe2\x80") == "cut \\xe2\\x80");
}

TEST_CASE("log: C1 controls, line separators and bidi controls are shown as \\uNNNN") {
  CHECK(log_escape("a\xc2\x85"
                   "b") == "a\\u0085b");  // NEL
  CHECK(log_escape("a\xc2\x9b"
                   "31m") == "a\\u009b31m");  // CSI
  CHECK(log_escape("a\xc2\x80\xc2\x9f") == "a\\u0080\\u009f");
  CHECK(log_escape("a\xe2\x80\xa8"
                   "b") == "a\\u2028b");  // LINE SEPARATOR
  CHECK(log_escape("a\xe2\x80\xa9"
                   "b") == "a\\u2029b");  // PARAGRAPH SEPARATOR
  CHECK(log_escape("\xe2\x80\xae"
                   "gpj.exe") == "\\u202egpj.exe");  // RIGHT-TO-LEFT OVERRIDE
  CHECK(log_escape("\xe2\x81\xa6"
                   "x\xe2\x81\xa9") == "\\u2066x\\u2069");
  CHECK(log_escape("\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c") == "\\u200e\\u200f\\u061c");
}

TEST_CASE("log: other UTF-8 is kept as it is") {
  CHECK(log_escape("j\xc3\xb6rg@b\xc3\xbc"
                   "cher.example") ==
        "j\xc3\xb6rg@b\xc3\xbc"
        "cher.example");
  CHECK(log_escape("\xe2\x82\xac \xf0\x9f\x93\xa7 \xc2\xa0") ==
        "\xe2\x82\xac \xf0\x9f\x93\xa7 \xc2\xa0");
  CHECK(log_escape("\xe2\x80\x94") == "\xe2\x80\x94");  // EM DASH, a neighbour of U+2028
}

TEST_CASE("log: a long value is cut after 400 bytes, never inside a UTF-8 sequence") {
  const std::string line = format_log_fields("e", {{"k", std::string(399, 'a') + "\xc3\xa9xyz"}});
  CHECK(line == "e k=" + std::string(399, 'a') + "\xc3\xa9...");
  const std::string exact = format_log_fields("e", {{"k", std::string(400, 'a')}});
  CHECK(exact == "e k=" + std::string(400, 'a'));
}

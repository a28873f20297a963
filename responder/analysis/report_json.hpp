// The report's JSON as text: the bytes nlohmann's dump(2, ' ', false, replace) writes (two
// spaces per level, UTF-8 kept, invalid UTF-8 replaced by U+FFFD), written in one pass into a
// string sized once. A reply's JSON attachment and a stored report are each some tens of KiB,
// and the library's serializer decodes every byte of every string through its UTF-8 state
// machine and a small buffer; here a string that needs no escape is appended whole, and only
// what this does not handle itself (invalid UTF-8, floating-point numbers, binary values) goes
// to the library's serializer, value by value. Pure.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace ipconfirm::responder {

// `j` pretty-printed with two spaces, each line break written as `newline` ("\n", or "\r\n"
// for a mail part: a JSON text holds no other line break, its strings escape theirs).
std::string report_json_text(const nlohmann::ordered_json& j, std::string_view newline = "\n");

// `lf_text` with every LF made CRLF, and a CRLF at the end: the JSON text of a stored report
// (LF) as a mail part, in one copy.
std::string with_crlf(std::string_view lf_text);

}  // namespace ipconfirm::responder

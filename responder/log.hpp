// One line per event on stderr: "2026-11-23T13:45:01Z ipconfirm[123]: connect session=S1
// ip=192.0.2.1". Values are made printable and quoted when they contain spaces, so a hostile
// HELO cannot forge a log line. Lines are written with one write(2) each, so concurrent writers
// do not interleave.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace ipconfirm {

using LogField = std::pair<std::string_view, std::string_view>;

void log_event(std::string_view event, std::initializer_list<LogField> fields);

// Used by tests: formats the line without writing it (no timestamp/pid prefix).
std::string format_log_fields(std::string_view event, std::initializer_list<LogField> fields);

}  // namespace ipconfirm

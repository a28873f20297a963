// One line per event on stderr: "2026-11-23T13:45:01Z ipconfirm[123]: connect session=S1
// ip=192.0.2.1". Values are escaped (log_escape below), cut after 400 bytes ("...") and quoted
// when they contain spaces, so a hostile HELO or address cannot forge a log line or play
// tricks on a terminal. Lines are written whole by one write(2), so concurrent writers do not
// interleave.
//
// By default each line is written at once. A server under load logs several lines per message,
// so the service defers them (set_log_deferral): lines from every thread are gathered, in
// order, and written together by one write at the end of the event loop's current round of
// work, a fraction of a millisecond later. A kill -9 may lose that fraction; log_flush() writes
// what is gathered (at shutdown).
#pragma once

#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace ipconfirm {

using LogField = std::pair<std::string_view, std::string_view>;

void log_event(std::string_view event, std::initializer_list<LogField> fields);
// The same, for a list of fields assembled at run time.
void log_event(std::string_view event, std::span<const LogField> fields);

// `post` runs a function later on the event loop (thread-safe). With it set, lines are
// gathered and written by one call of log_flush() that `post` runs; set it to nullptr to write
// each line at once again (what is gathered is written first).
using LogPoster = std::function<void(std::function<void()>)>;
void set_log_deferral(LogPoster post);
// Writes every gathered line now.
void log_flush();

// The log's printable rule, for every value that reaches a log line or a terminal (`ipconfirm
// queue list` uses it too): '"' and '\' get a backslash; C0 controls, DEL and bytes that are
// not well-formed UTF-8 become "\xNN"; C1 controls (NEL U+0085, CSI U+009B, ...), the line and
// paragraph separators U+2028/U+2029 and the bidirectional formatting characters (U+061C,
// U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) become "\uNNNN"; all other UTF-8 is kept.
std::string log_escape(std::string_view value);

// Used by tests: formats the line without writing it (no timestamp/pid prefix).
std::string format_log_fields(std::string_view event, std::initializer_list<LogField> fields);
std::string format_log_fields(std::string_view event, std::span<const LogField> fields);

}  // namespace ipconfirm

// Reading the header of the message we received: the few fields the analysis and the reply
// policy need (Message-ID, Subject, From, Date, Received, Auto-Submitted, Precedence, List-*,
// Content-Type, References), bounded and sanitised.
//
// The header block is parsed here by hand rather than with mimetic: we need every Received
// field in order (mimetic's field() returns only the first), mimetic is quadratic on long lines
// and unsafe on deep nesting, and RFC 5322 §2.2 header syntax is a simple line-oriented grammar
// that one linear pass with hard limits reads safely. The body is never parsed: whether the
// message is a delivery report is decided from the top-level Content-Type alone.
//
// Input is the message after SMTP dot-unstuffing; CRLF line endings are expected, bare LF is
// accepted. The header ends at the first empty line, at the first line that is neither a field
// nor a continuation (a missing separator), or at the end of the input. Every string in the
// result is valid UTF-8 (invalid bytes become U+FFFD) and free of control characters, so it may
// go into JSON, logs and a reply without further checks. RFC 2047 encoded-words are decoded in
// the Subject only (charsets UTF-8, US-ASCII, ISO-8859-1, Windows-1252; others stay encoded).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ipconfirm::mime {

struct IncomingLimits {
  std::size_t max_header_bytes = 256 * 1024;  // bytes of header read; the rest is ignored
  std::size_t max_header_fields = 2000;       // fields read; later ones are ignored
  std::size_t max_received = 100;             // Received bodies kept (all are counted)
};

struct IncomingMessage {
  std::string message_id;                  // "<x@y>" if syntactically a msg-id, else ""
  std::string subject;                     // unfolded, RFC 2047 decoded to UTF-8 when possible,
                                           // control chars removed, <= 998 bytes
  std::string from, date;                  // unfolded raw values (sanitised)
  std::optional<std::int64_t> date_epoch;  // parsed Date, seconds since epoch (UTC)
  std::vector<std::string> received;       // unfolded field bodies, header order, <= max_received
  std::size_t received_count = 0;          // how many Received fields there were in all
  std::string auto_submitted, precedence;  // lower-cased values, "" if absent
  bool has_list_headers = false;           // any List-Id/List-Unsubscribe/List-Post/... field
  bool is_delivery_report = false;         // multipart/report; report-type=delivery-status or
                                           // disposition-notification, or a top-level
                                           // message/delivery-status or
                                           // message/disposition-notification
  std::string references;                  // raw, sanitised
  bool header_truncated = false;           // a limit was hit
  std::size_t header_fields = 0;           // fields read
};

// Reads the header of `message`. Never fails: a malformed header yields empty fields, and a
// header beyond the limits is read up to them with header_truncated set. Runs in time linear in
// min(message size, max_header_bytes). The values other than subject are capped at 16 KiB.
// `message` may be the header alone (the server keeps no more, smtp/header_splitter.hpp);
// `header_cut` says that the header went on beyond the bytes given (the rest was not kept): its
// last line is then incomplete, read as if max_header_bytes had been reached there.
IncomingMessage read_incoming(std::string_view message, const IncomingLimits& limits = {},
                              bool header_cut = false);

// True if `text` is exactly one RFC 5322 §3.6.4 msg-id: "<" dot-atom-text "@" (dot-atom-text
// or "[" dtext "]") ">", at most 250 bytes, with no white space or comments around it.
bool is_msg_id(std::string_view text);

// `text` with every invalid UTF-8 sequence (overlong forms, surrogates, code points above
// U+10FFFF, truncated sequences) replaced by U+FFFD.
std::string to_valid_utf8(std::string_view text);

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
void cap_utf8(std::string& s, std::size_t max);

// Decodes RFC 2047 encoded-words in unstructured text to UTF-8. White space between two
// adjacent encoded-words is dropped (§6.2). Words in an unknown charset or with bad syntax are
// left as they are. The result is valid UTF-8 but may contain control characters.
std::string decode_rfc2047(std::string_view text);

}  // namespace ipconfirm::mime

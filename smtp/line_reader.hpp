// Cuts the bytes a client sends into SMTP command lines (RFC 5321 §2.3.8, §4.5.3.1.4).
//
// A sans-I/O push parser: the connection owns the receive buffer, offers its unread bytes to
// next(), and drops `consumed` bytes afterwards. A command line ends only at CRLF and may be
// at most `max_line` octets including the CRLF (512 by default, as §4.5.3.1.4 requires at
// least). A bare LF, a bare CR or a NUL is reported rather than guessed at: they are how SMTP
// smuggling and command injection start, and the session answers 5xx and closes on them.
//
// Memory is bounded by the caller's buffer and max_line: an over-long line is consumed and
// discarded as it arrives (the reader remembers that it is discarding) and reported once, as
// too_long, when its CRLF arrives, so the conversation stays in step.
//
// What it does not do: it does not judge 8-bit bytes (SMTPUTF8 allows them in commands), parse
// commands (see command_parser.hpp), or read message data after DATA (see data_decoder.hpp).
#pragma once

#include <cstddef>
#include <string_view>

namespace ipconfirm::smtp {

class LineReader {
 public:
  // `max_line` counts the CRLF; values below 2 are raised to 2 (an empty line).
  explicit LineReader(std::size_t max_line = 512);

  enum class Result {
    line,       // a complete line; `line` views into the buffer, without the CRLF
    need_more,  // no complete line yet; offer the unconsumed bytes again with more appended
    too_long,   // a line longer than max_line ended; `consumed` runs through its CRLF
    bare_lf,    // a LF not preceded by CR
    bare_cr,    // a CR followed by anything but LF
    nul,        // a NUL byte
  };

  // `consumed` must be dropped from the front of the buffer whatever the result. For line and
  // too_long it runs through the CRLF; for need_more it is 0 unless an over-long line is being
  // discarded; for bare_lf, bare_cr and nul it runs through the offending byte (the reader is
  // then reset, but the session is expected to close the connection).
  struct Out {
    Result result;
    std::size_t consumed;
    std::string_view line;  // only for Result::line; valid until the caller drops those bytes
  };

  // Looks for the next line at the front of `buf` (the caller's unconsumed bytes).
  Out next(std::string_view buf);

  std::size_t max_line() const { return max_line_; }
  // True while the rest of an over-long line is being discarded.
  bool discarding() const { return discarding_; }

 private:
  Out discard(std::string_view buf, std::size_t from);

  std::size_t max_line_;
  bool discarding_ = false;
  bool pending_cr_ = false;  // discarding, and the last byte consumed was a CR
};

}  // namespace ipconfirm::smtp

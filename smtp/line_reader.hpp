// Cuts the bytes a client sends into SMTP command lines (RFC 5321 §2.3.8, §4.5.3.1.4).
//
// A sans-I/O push parser: the connection owns the receive buffer, offers its unread bytes to
// next(), and drops `consumed` bytes afterwards. A command line ends only at CRLF and may be
// at most `max_line` octets including the CRLF (512 by default, as §4.5.3.1.4 requires at
// least). A bare LF, a bare CR or a NUL is reported rather than guessed at: they are how SMTP
// smuggling and command injection start, and the session answers 5xx and closes on them.
//
// Memory is bounded by the caller's buffer and max_line. An over-long line is reported as
// too_long as soon as it is proven too long (max_line - 1 octets without a CRLF), so that the
// client hears 500 at once rather than when (if ever) its CRLF comes; the rest of the line is
// then consumed and discarded as it arrives, and its CRLF ends it silently, so a client that
// sent one long command gets one reply and the conversation stays in step. If no CRLF comes
// within `max_discard` more octets, the line is reported as unterminated: the client is not
// speaking SMTP, and the session closes the connection.
//
// What it does not do: it does not judge 8-bit bytes (SMTPUTF8 allows them in commands), parse
// commands (see command_parser.hpp), or read message data after DATA (see data_decoder.hpp).
#pragma once

#include <cstddef>
#include <string_view>

namespace ipconfirm::smtp {

class LineReader {
 public:
  // `max_line` counts the CRLF; values below 2 are raised to 2 (an empty line). `max_discard`
  // bounds the rest of an over-long line (after too_long) that is read and dropped while
  // waiting for its CRLF; 0 is raised to 1.
  explicit LineReader(std::size_t max_line = 512, std::size_t max_discard = 4096);

  enum class Result {
    line,          // a complete line; `line` views into the buffer, without the CRLF that
                   // `consumed` runs through (after the rest of an over-long line, not at offset 0)
    need_more,     // no complete line yet; offer the unconsumed bytes again with more appended
    too_long,      // a line is longer than max_line: `consumed` is its first max_line - 1 octets;
                   // the rest of it, through its CRLF, is consumed by the next calls unreported
    unterminated,  // after too_long, max_discard more octets came without a CRLF
    bare_lf,       // a LF not preceded by CR
    bare_cr,       // a CR followed by anything but LF
    nul,           // a NUL byte
  };

  // `consumed` must be dropped from the front of the buffer whatever the result. For line it
  // runs through the CRLF; for need_more it is 0 unless an over-long line is being discarded;
  // for bare_lf, bare_cr, nul and unterminated it runs through the offending byte (the reader
  // is then reset, but the session is expected to close the connection). Each result is given
  // at the same offset of the input however the input was split into reads.
  struct Out {
    Result result;
    std::size_t consumed;
    std::string_view line;  // only for Result::line; valid until the caller drops those bytes
  };

  // Looks for the next line at the front of `buf` (the caller's unconsumed bytes).
  Out next(std::string_view buf);

  std::size_t max_line() const { return max_line_; }
  std::size_t max_discard() const { return max_discard_; }
  // True while the rest of an over-long line is being discarded.
  bool discarding() const { return discarding_; }

 private:
  Out discard(std::string_view buf);

  std::size_t max_line_;
  std::size_t max_discard_;
  std::size_t discarded_ = 0;  // octets dropped of the current over-long line after too_long
  bool discarding_ = false;
  bool pending_cr_ = false;  // discarding, and the last byte consumed was a CR
};

}  // namespace ipconfirm::smtp

// Decodes the message data a client sends after the 354 reply to DATA (RFC 5321 §4.1.1.4,
// §4.5.2, §4.5.3.1.6, §4.5.3.1.7).
//
// A sans-I/O push parser: the connection feeds it the bytes it reads and drops what feed()
// reports consumed. It keeps nothing: the unstuffed message goes to a Sink as it is decoded,
// in pieces that view the caller's buffer, so holding a message (or not) is the caller's
// choice. The data ends exactly at CRLF "." CRLF; the stream starts at the beginning
// of a line (the CRLF of the DATA command counts), so "." CRLF at once is an empty message.
// A leading dot is removed from every other line (dot-unstuffing, §4.5.2).
//
// Line endings are strict: a bare LF or a bare CR anywhere stops the decoder at once with
// State::bad_line_ending, and nothing after it is read. Guessing where a message ends from
// "\n.\n" or "\r.\r" is what lets one server see two messages where another sees one (SMTP
// smuggling, CVE-2023-51764, CVE-2023-51765, CVE-2023-51766). feed() also stops right after the
// final CRLF.CRLF, so that commands a client pipelined after it stay in the caller's buffer.
//
// Size is bounded: beyond Limits::max_message the data is still read up to the end marker,
// but no more of it is passed on, and over_size() is set. A line longer than Limits::max_line
// (counted after unstuffing, CRLF included) sets line_too_long() and is otherwise passed on.
//
// What it does not do: it does not look at headers or MIME structure (see mime/), and does not
// judge 8-bit or NUL bytes in the content; the session decides what to do with the flags.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ipconfirm::smtp {

class DataDecoder {
 public:
  struct Limits {
    std::size_t max_message = 10 * 1024 * 1024;  // octets of unstuffed message kept
    std::size_t max_line = 1000;                 // octets per line, CRLF included
  };
  enum class State {
    reading,          // the end marker has not arrived yet
    done,             // CRLF.CRLF was read; the message is complete
    bad_line_ending,  // a bare CR or LF was seen; the message must be discarded
  };

  // Two constructors rather than `Limits limits = {}`: GCC cannot use a nested struct's
  // default member initializers in a default argument of the enclosing class.
  DataDecoder() : DataDecoder(Limits{}) {}
  explicit DataDecoder(Limits limits);

  // Receives the unstuffed message (CRLF line endings, without the final ".\r\n") in order,
  // in pieces of any size; how the input is split into feed() calls changes only where the
  // pieces are cut. A piece is valid during the call only.
  class Sink {
   public:
    virtual void on_data(std::string_view piece) = 0;

   protected:
    ~Sink() = default;
  };

  // Reads from `in`, passes what it decoded to `out`, and returns how many bytes were consumed:
  // all of them while reading; up to and including the final ".\r\n" once it arrives; up to
  // but not including the byte that proved a line ending bad. Returns 0 once the state is no
  // longer `reading`.
  std::size_t feed(std::string_view in, Sink& out);

  State state() const { return state_; }
  bool over_size() const { return over_size_; }          // content beyond max_message dropped
  bool line_too_long() const { return line_too_long_; }  // a line exceeded max_line
  std::size_t size() const { return size_; }             // bytes of message passed on so far

  // Back to the start of a new message with the same limits.
  void reset();

 private:
  enum class Phase {
    line_start,  // at the first byte of a line
    dot,         // a line began with "."
    dot_cr,      // a line began with ".\r"
    text,        // inside a line
    cr,          // inside a line, just after a CR
  };

  // feed() without the last piece passed on.
  std::size_t decode(std::string_view in);
  // Passes on n bytes at `data`: joined to the pending piece when they follow it in the input.
  void keep(const char* data, std::size_t n);
  void flush();  // passes the pending piece to out_

  Limits limits_;
  State state_ = State::reading;
  Phase phase_ = Phase::line_start;
  std::size_t line_length_ = 0;  // content octets of the current line so far
  bool over_size_ = false;
  bool line_too_long_ = false;
  std::size_t size_ = 0;
  Sink* out_ = nullptr;          // during feed()
  const char* piece_ = nullptr;  // the piece being gathered, within the current feed() call
  std::size_t piece_size_ = 0;
};

}  // namespace ipconfirm::smtp

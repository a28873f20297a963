// Cuts a message, as it arrives, into its header and its body (RFC 5322 §2.1): the header ends
// with the first empty line, and everything after that line is the body.
//
// It keeps the header (at most `max_header` bytes; beyond that the rest of the header is
// dropped and header_cut() is set) and hands back the body part of each piece, so that the
// body can be passed on as it comes and never needs to be held. The SMTP server feeds it the
// unstuffed message data (smtp/session_pump.cpp), and `ipconfirm check` a stored message:
// both see the same split.
//
// Lines end in LF, with or without a CR before it: an empty line is "\r\n" or "\n" at the start
// of a line (the DATA decoder lets only CRLF through; a stored message may have bare LF). A
// message with no empty line is all header. Pure: no I/O.
//
// What it does not do: it does not parse fields (mime/incoming.hpp does, on the header kept
// here), and does not judge line lengths or bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ipconfirm::smtp {

class HeaderSplitter {
 public:
  explicit HeaderSplitter(std::size_t max_header = 256 * 1024);

  // Takes the next piece of the message and returns the part of it that belongs to the body:
  // empty while the header goes on, a suffix of `piece` in the piece where the header ends,
  // then the whole piece. How the message is cut into pieces does not change the result.
  std::string_view feed(std::string_view piece);

  // The empty line that ends the header has been seen (header() includes it).
  bool header_done() const { return done_; }
  // More header came than max_header bytes; header() holds the first max_header of them.
  bool header_cut() const { return cut_; }
  const std::string& header() const { return header_; }
  std::string take_header() { return std::move(header_); }
  std::size_t max_header() const { return max_header_; }

  // Back to the start of a new message; the header's buffer is given back.
  void reset();

 private:
  std::size_t max_header_;
  std::string header_;
  bool done_ = false;
  bool cut_ = false;
  std::size_t line_length_ = 0;  // bytes of the current line so far
  bool line_starts_cr_ = false;  // the current line so far is exactly "\r"
};

}  // namespace ipconfirm::smtp

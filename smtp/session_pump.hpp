// The receiving side of an SMTP connection without the socket: cuts the client's bytes into
// command lines (LineReader) and message data (DataDecoder) and feeds them to the Session.
//
// The Asio connection (smtp/server.cpp) only reads into a buffer, calls next() until it needs
// more bytes, writes the replies and carries out the actions (queue, STARTTLS, close); the
// session fuzz target drives exactly this code. Pure: no I/O, no clock.
//
// It also enforces the one rule that needs to see the buffer: bytes the client sent after DATA
// or STARTTLS, before our 354 or 220 (RFC 2920 §3.1 forbids it), are refused with 554 5.5.0 and
// the connection is closed, so that nothing pipelined becomes part of a message and no
// plaintext is answered inside TLS (CVE-2011-0411).
#pragma once

#include <cstddef>
#include <string>

#include "smtp/data_decoder.hpp"
#include "smtp/line_reader.hpp"
#include "smtp/session.hpp"

namespace ipconfirm::smtp {

class SessionPump {
 public:
  // max_line: command lines, CRLF included (RFC 5321: 512); max_text_line: message lines (1000).
  SessionPump(Session& session, std::size_t max_line, std::size_t max_text_line);

  // Consumes bytes from the front of `in` and returns the next step. When `in` holds no
  // complete command, or the message is not complete yet, need_more() is true and the step is
  // empty. On Action::queue, take_message() gives the message, and the caller answers with
  // Session::on_queued().
  Step next(std::string& in);
  bool need_more() const { return need_more_; }
  std::string take_message() { return std::move(message_); }

  // After the TLS handshake: a fresh line reader (nothing was buffered, see above).
  void restart_lines() { lines_ = LineReader(lines_.max_line(), lines_.max_discard()); }

 private:
  Session& session_;
  LineReader lines_;
  DataDecoder decoder_;
  bool in_data_ = false;
  bool need_more_ = false;
  std::string message_;
};

}  // namespace ipconfirm::smtp

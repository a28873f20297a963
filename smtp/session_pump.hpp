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
//
// Message data is not held whole. As it arrives it is unstuffed (DataDecoder) and split into
// header and body (HeaderSplitter): the header is kept (at most Limits::max_header bytes) and
// handed to the MessageSink once it ends, the body goes to the sink piece by piece and is not
// kept, unless the sink asked at DATA for the whole message (mail for postmaster@). Everything
// kept is counted in the MessageMemory; past its limit the message is read to its end and
// answered 451 4.3.2, and a DATA while it is full gets that answer at once.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "smtp/data_decoder.hpp"
#include "smtp/header_splitter.hpp"
#include "smtp/line_reader.hpp"
#include "smtp/message_memory.hpp"
#include "smtp/session.hpp"

namespace ipconfirm::smtp {

// The sink's answer when DATA is accepted, before the 354 goes out.
struct DataStart {
  bool keep_whole = false;      // keep the whole message for on_message (mail to be kept)
  std::optional<Reply> refuse;  // answer this instead of 354 (the transaction is reset)
};

// Where message data goes while it is read (the responder; the fuzzer and tests have their
// own). For each message: on_data_start at DATA; on_header once, when the header's empty line
// has come (or at the end of a message that has none); on_body for each piece of the body.
// A message that ends in a refusal (552, 500, 451, 521) gets no on_message, so on_data_start
// is where a consumer of the body starts afresh.
class MessageSink {
 public:
  virtual DataStart on_data_start(const Session& session) = 0;
  // The header, its empty line included; at most max_header bytes, `cut` when there was more.
  virtual void on_header(std::string_view header, bool cut) = 0;
  // The next piece of the body: unstuffed, CRLF line ends, in order, cut anywhere.
  virtual void on_body(std::string_view piece) = 0;

 protected:
  ~MessageSink() = default;
};

// A message that reached its final dot and is to be queued.
struct ReceivedMessage {
  std::string header;       // as on_header had it
  bool header_cut = false;  // the header went on beyond max_header bytes
  std::string whole;        // the whole message, only when DataStart::keep_whole; else empty
  std::size_t size = 0;     // octets of message data (unstuffed)
  MemoryHold hold;          // what it holds of the budget, given back with it
};

class SessionPump final : private DataDecoder::Sink {
 public:
  struct Limits {
    std::size_t max_line = 512;           // command lines, CRLF included (RFC 5321: 512)
    std::size_t max_text_line = 1000;     // message lines, CRLF included
    std::size_t max_header = 256 * 1024;  // header bytes kept
  };
  // `sink` and `memory` may be null (nothing told, nothing counted); both must outlive the pump.
  SessionPump(Session& session, Limits limits, MessageSink* sink = nullptr,
              MessageMemory* memory = nullptr);
  // Gives back what a message cut off in its DATA (a closed connection) still holds.
  ~SessionPump() { drop_message_data(); }
  SessionPump(const SessionPump&) = delete;
  SessionPump& operator=(const SessionPump&) = delete;

  // Consumes bytes from the front of `in` and returns the next step. When `in` holds no
  // complete command, or the message is not complete yet, need_more() is true and the step is
  // empty. On Action::queue, take_message() gives the message, and the caller answers with
  // Session::on_queued() (or Session::refuse()).
  Step next(std::string& in);
  bool need_more() const { return need_more_; }
  ReceivedMessage take_message() { return std::move(message_); }

  // After the TLS handshake: a fresh line reader (nothing was buffered, see above).
  void restart_lines() { lines_ = LineReader(lines_.max_line(), lines_.max_discard()); }

 private:
  void on_data(std::string_view piece) override;
  Step end_of_data();
  // Gives back what the current message holds and frees its buffers.
  void drop_message_data();

  Session& session_;
  LineReader lines_;
  DataDecoder decoder_;
  HeaderSplitter splitter_;
  MessageSink* sink_;
  MessageMemory* memory_;
  bool in_data_ = false;
  bool need_more_ = false;
  bool keep_whole_ = false;   // this message is kept whole (DataStart::keep_whole)
  bool over_budget_ = false;  // the budget ran out: keep nothing more, answer 451
  bool header_told_ = false;  // on_header was called for this message
  std::string whole_;
  std::size_t held_ = 0;  // bytes of this message counted in memory_
  ReceivedMessage message_;
};

}  // namespace ipconfirm::smtp

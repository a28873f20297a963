// Fuzzes a whole SMTP session as the connection drives it: the input is the client's byte
// stream, cut into reads by the first byte, fed to the same SessionPump (LineReader,
// DataDecoder, Session) that smtp/server.cpp uses; a queued message is answered alternately
// with success and a temporary failure. Checked: every reply is well formed (a 2xx-5xx code, no CR,
// LF or other control byte in its text), a kept message never exceeds the size limit, the session
// never asks for anything after it closed, and the buffer always shrinks or the loop reads more.
// Every other message is kept whole; the header and body pieces the sink got must join up to
// it. The budget for message data is small, and all of it must be given back at the end.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "core/ip_address.hpp"
#include "smtp/session.hpp"
#include "smtp/session_pump.hpp"

using namespace ipconfirm;
using namespace ipconfirm::smtp;

namespace {

// Collects what the pump hands on; every other message asks to be kept whole.
struct Sink : MessageSink {
  bool keep = false;
  bool told = false;
  std::string header, body;
  DataStart on_data_start(const Session&) override {
    keep = !keep;
    told = false;
    header.clear();
    body.clear();
    return {keep, std::nullopt};
  }
  void on_header(std::string_view h, bool /*cut*/) override {
    if (told) std::abort();
    told = true;
    header = h;
  }
  void on_body(std::string_view piece) override {
    if (!told || piece.empty()) std::abort();
    body.append(piece);
  }
};

void check(const Reply& r) {
  if (r.empty()) return;
  if (r.code < 200 || r.code > 599) std::abort();
  for (const auto& l : r.lines)
    for (char c : l) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t read_size = std::size_t{data[0]} % 61 + 1;
  std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  SessionConfig sc;
  sc.hostname = "mx.example.test";
  sc.domains = {"example.test", "example.net"};
  sc.max_message_size = 2048;
  sc.max_recipients = 3;
  sc.max_errors = 5;
  sc.max_commands = 100;
  sc.starttls_available = true;
  Session session(sc, *IpAddress::parse("192.0.2.1"), 40000);
  check(session.greeting());
  MessageMemory memory(1536);
  Sink sink;
  auto pump =
      std::make_unique<SessionPump>(session, SessionPump::Limits{64, 100, 256}, &sink, &memory);
  std::string in;
  bool closed = false, queue_ok = true;
  bool session_closed = false;  // the session itself said close (not the pipelining rule)

  while (!closed && (!stream.empty() || !in.empty())) {
    // Read: at most read_size more bytes.
    std::size_t n = std::min(read_size, stream.size());
    in.append(stream.substr(0, n));
    stream.remove_prefix(n);
    bool need_read = false;
    while (!closed && !need_read) {
      const std::size_t before = in.size();
      Step step = pump->next(in);
      if (in.size() > before) std::abort();
      if (pump->need_more()) {
        need_read = true;
        continue;
      }
      if (step.action == Action::queue) {
        if (session.envelope().rcpt_to.empty()) std::abort();
        ReceivedMessage message = pump->take_message();
        if (message.size > sc.max_message_size || message.header.size() > 256) std::abort();
        if (!sink.told || message.header != sink.header) std::abort();
        if (sink.keep ? (!message.header_cut && message.whole != sink.header + sink.body)
                      : !message.whole.empty())
          std::abort();
        if (memory.used() != message.hold.bytes()) std::abort();  // one session: all of it
        step = queue_ok ? session.on_queued(std::string("Q1"), "summary", "")
                        : session.on_queued(std::nullopt, "", "disk full");
        queue_ok = !queue_ok;
      }
      if (step.action == Action::close && !step.reply.empty() && step.reply.code != 554)
        session_closed = true;
      check(step.reply);
      switch (step.action) {
        case Action::none:
          break;
        case Action::queue:
          std::abort();  // answered above; never asked for from a command line
        case Action::close:
          closed = true;
          break;
        case Action::start_data:
          break;
        case Action::start_tls:
          session.on_tls_started(TlsInfo{"TLSv1.3", "TLS_AES_128_GCM_SHA256"});
          pump->restart_lines();
          if (session.in_data()) std::abort();
          break;
      }
    }
    if (stream.empty() && need_read) break;
  }
  if (session_closed && session.on_line("NOOP").action != Action::close) std::abort();
  pump.reset();  // the connection is gone, possibly in the middle of a message
  if (memory.used() != 0) std::abort();
  return 0;
}

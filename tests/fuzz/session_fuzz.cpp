// Fuzzes a whole SMTP session as the connection drives it: the input is the client's byte
// stream, cut into reads by the first byte, fed to the same SessionPump (LineReader,
// DataDecoder, Session) that smtp/server.cpp uses; a queued message is answered alternately
// with success and a temporary failure. Checked: every reply is well formed (a 2xx-5xx code, no CR,
// LF or other control byte in its text), a kept message never exceeds the size limit, the session
// never asks for anything after it closed, and the buffer always shrinks or the loop reads more.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/ip_address.hpp"
#include "smtp/session.hpp"
#include "smtp/session_pump.hpp"

using namespace ipconfirm;
using namespace ipconfirm::smtp;

namespace {

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
  SessionPump pump(session, 64, 100);
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
      Step step = pump.next(in);
      if (in.size() > before) std::abort();
      if (pump.need_more()) {
        need_read = true;
        continue;
      }
      if (step.action == Action::queue) {
        if (session.envelope().rcpt_to.empty()) std::abort();
        const std::string message = pump.take_message();
        if (message.size() > sc.max_message_size) std::abort();
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
          pump.restart_lines();
          if (session.in_data()) std::abort();
          break;
      }
    }
    if (stream.empty() && need_read) break;
  }
  if (session_closed && session.on_line("NOOP").action != Action::close) std::abort();
  return 0;
}

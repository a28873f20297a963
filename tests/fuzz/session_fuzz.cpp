// Fuzzes a whole SMTP session as the connection drives it: the input is the client's byte
// stream, cut into reads by the first byte; LineReader cuts command lines, DataDecoder reads
// message data after a 354, Session answers. Like smtp/server.cpp, bytes pipelined past DATA
// or STARTTLS close the session, and a queued message is answered alternately with success and
// a temporary failure. Checked: every reply is well formed (a 2xx-5xx code, no CR, LF or other
// control byte in its text), a kept message never exceeds the size limit, the session never
// asks for anything after it closed, and the buffer always shrinks or the loop reads more.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "responder/ip_address.hpp"
#include "smtp/data_decoder.hpp"
#include "smtp/line_reader.hpp"
#include "smtp/session.hpp"

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
  LineReader lines(64);
  DataDecoder decoder(DataDecoder::Limits{sc.max_message_size, 100});
  std::string in;
  bool in_data = false, closed = false, queue_ok = true;
  bool session_closed = false;  // the session itself said close (not the pipelining rule)

  while (!closed && (!stream.empty() || !in.empty())) {
    // Read: at most read_size more bytes.
    std::size_t n = std::min(read_size, stream.size());
    in.append(stream.substr(0, n));
    stream.remove_prefix(n);
    bool need_read = false;
    while (!closed && !need_read) {
      Step step;
      if (in_data) {
        const std::size_t used = decoder.feed(in);
        if (used > in.size()) std::abort();
        in.erase(0, used);
        if (decoder.size() > sc.max_message_size) std::abort();
        if (decoder.state() == DataDecoder::State::reading) {
          need_read = true;
          continue;
        }
        in_data = false;
        DataFault fault = DataFault::none;
        if (decoder.state() == DataDecoder::State::bad_line_ending)
          fault = DataFault::bad_line_ending;
        else if (decoder.over_size())
          fault = DataFault::too_big;
        else if (decoder.line_too_long())
          fault = DataFault::line_too_long;
        step = session.on_data_end(fault);
        if (step.action == Action::queue) {
          if (session.envelope().rcpt_to.empty()) std::abort();
          const std::string message = decoder.take_message();
          if (message.size() > sc.max_message_size) std::abort();
          step = queue_ok ? session.on_queued(std::string("Q1"), "summary", "")
                          : session.on_queued(std::nullopt, "", "disk full");
          queue_ok = !queue_ok;
        }
        decoder.reset();
      } else {
        const auto o = lines.next(in);
        if (o.consumed > in.size()) std::abort();
        switch (o.result) {
          case LineReader::Result::need_more:
            in.erase(0, o.consumed);
            need_read = true;
            continue;
          case LineReader::Result::line:
            step = session.on_line(std::string(o.line));
            break;
          case LineReader::Result::too_long:
            step = session.on_line_fault(LineFault::too_long);
            break;
          case LineReader::Result::bare_lf:
            step = session.on_line_fault(LineFault::bare_lf);
            break;
          case LineReader::Result::bare_cr:
            step = session.on_line_fault(LineFault::bare_cr);
            break;
          case LineReader::Result::nul:
            step = session.on_line_fault(LineFault::nul);
            break;
        }
        in.erase(0, o.consumed);
      }
      if ((step.action == Action::start_data || step.action == Action::start_tls) && !in.empty())
        step = {reply(554, "5.5.0", "improper use of SMTP command pipelining"), Action::close};
      else if (step.action == Action::close)
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
          in_data = true;
          break;
        case Action::start_tls:
          session.on_tls_started(TlsInfo{"TLSv1.3", "TLS_AES_128_GCM_SHA256"});
          lines = LineReader(64);
          if (session.in_data()) std::abort();
          break;
      }
    }
    if (stream.empty() && need_read) break;
  }
  if (session_closed && session.on_line("NOOP").action != Action::close) std::abort();
  return 0;
}

// What the SMTP listener counts for the metrics (ipconfirm_smtp_* in responder/metrics.hpp):
// connections, how sessions ended, TLS handshakes. Plain integers: the server increments them
// on the event loop and /metrics reads them there, so they need no atomics.
//
// Pure: no I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ipconfirm::smtp {

// How a connection ended. Stable names: they are label values of
// ipconfirm_smtp_sessions_total{outcome=...}.
enum class SessionEnd : std::size_t {
  quit,              // the client said QUIT (221)
  client_closed,     // the client closed without QUIT
  timeout,           // command_timeout or connection_deadline (421)
  protocol_error,    // we closed after a fatal 5xx: bare CR/LF, NUL, HTTP, bad pipelining...
  limit,             // we closed after 421: too many errors or commands
  tls_failed,        // the TLS handshake failed (STARTTLS or implicit TLS)
  io_error,          // a read or write failed
  shutdown,          // the server stopped (421)
  internal_error,    // an exception in our code (logged as `error`)
  connection_limit,  // refused at connect: max_connections or max_connections_per_ip (421)
  proxy_refused,     // a PROXY protocol listener: untrusted peer or bad header
};
inline constexpr std::size_t kSessionEnds = 11;

inline std::string_view to_string(SessionEnd e) {
  switch (e) {
    case SessionEnd::quit:
      return "quit";
    case SessionEnd::client_closed:
      return "client_closed";
    case SessionEnd::timeout:
      return "timeout";
    case SessionEnd::protocol_error:
      return "protocol_error";
    case SessionEnd::limit:
      return "limit";
    case SessionEnd::tls_failed:
      return "tls_failed";
    case SessionEnd::io_error:
      return "io_error";
    case SessionEnd::shutdown:
      return "shutdown";
    case SessionEnd::internal_error:
      return "internal_error";
    case SessionEnd::connection_limit:
      return "connection_limit";
    case SessionEnd::proxy_refused:
      return "proxy_refused";
  }
  return "unknown";
}

// A session the server closes after the reply with `code`: 221 is QUIT, 421 a limit, anything
// else (the fatal 5xx replies) a protocol error.
inline SessionEnd session_end_for_close(int code) {
  if (code == 221) return SessionEnd::quit;
  if (code == 421) return SessionEnd::limit;
  return SessionEnd::protocol_error;
}

struct ServerStats {
  std::uint64_t connections = 0;  // accepted, whatever became of them
  std::array<std::uint64_t, kSessionEnds> sessions{};
  std::uint64_t starttls_ok = 0, starttls_failed = 0;
  std::uint64_t implicit_tls_ok = 0, implicit_tls_failed = 0;

  void ended(SessionEnd e) { ++sessions[static_cast<std::size_t>(e)]; }
  std::uint64_t ended_count(SessionEnd e) const { return sessions[static_cast<std::size_t>(e)]; }
};

}  // namespace ipconfirm::smtp

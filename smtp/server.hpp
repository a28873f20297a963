// The SMTP listener and its connections: Asio coroutines that move bytes between the socket
// and the pure Session state machine, and enforce what only the connection can: connection
// limits (in total and per IP), a timeout per command, a deadline per connection, bounded
// buffers, the ban on pipelining past DATA and STARTTLS, STARTTLS itself (RFC 3207), implicit
// TLS per listener (RFC 8314), and the PROXY protocol header on listeners behind a load
// balancer (accepted only from trusted addresses; smtp/proxy_protocol.hpp parses it).
//
// Reload: prepare() and commit() change the listeners, the limits and the TLS certificate while
// the server runs; a connection keeps the options it was accepted under until it ends.
//
// What a message means is not decided here: at the final dot the connection hands the message
// to its ConnectionHandler (the responder), which analyses and queues it and returns what the
// 250 (or 451) should say.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/asio.hpp"
#include "smtp/server_stats.hpp"
#include "smtp/session.hpp"

namespace ipconfirm::smtp {

struct QueueOutcome {
  std::optional<std::string> queue_id;  // set: say 250; empty: say 451 with `failure`
  std::string summary;                  // safe text for the 250 line
  std::string failure;
};

// One per connection; created when a client is accepted.
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  virtual void on_helo(const std::string& helo) = 0;
  // The message is complete (unstuffed, CRLF endings). Never throws.
  virtual asio::awaitable<QueueOutcome> on_message(const Session& session, std::string message) = 0;
  virtual void on_close(std::string_view reason) = 0;
};

struct ConnectionInfo {
  IpAddress ip;  // the client; behind a PROXY protocol listener, the one the proxy saw
  std::uint16_t port = 0;
  std::string session_id;
  bool proxied = false;  // ip and port came from a PROXY protocol header
};

using HandlerFactory = std::function<std::unique_ptr<ConnectionHandler>(const ConnectionInfo&)>;

struct Listener {
  asio::ip::tcp::endpoint endpoint;
  bool implicit_tls = false;    // TLS from the first byte (RFC 8314 §3.3), no STARTTLS
  bool proxy_protocol = false;  // a PROXY protocol v1/v2 header must come first
};

// An address or CIDR block a PROXY protocol header is accepted from.
struct TrustedNetwork {
  IpAddress address;
  int prefix = 32;  // 32 or 128 for one address
};

struct ServerOptions {
  SessionConfig session;
  std::vector<Listener> listeners;
  std::size_t max_connections = 500;
  std::size_t max_connections_per_ip = 20;
  std::chrono::seconds command_timeout{60};
  std::chrono::seconds connection_deadline{600};
  std::size_t max_line = 512;
  std::size_t max_text_line = 1000;
  // PEM files; when set, STARTTLS is offered on plain listeners and implicit TLS listeners
  // work. start() loads them (TLS 1.2 and later only) and throws if they do not load.
  std::string tls_cert;
  std::string tls_key;
  std::shared_ptr<asio::ssl::context> tls;  // set: offer STARTTLS (built from the files above)
  std::vector<TrustedNetwork> trusted_proxies;
  std::size_t max_proxy_header = 536;  // the PROXY v2 maximum; v1 is at most 107
};

class Server {
 public:
  Server(asio::io_context& io, ServerOptions options, HandlerFactory factory);
  ~Server();
  // Binds every listener; throws std::runtime_error naming the address on failure.
  void start();
  // Stops accepting and closes every connection.
  void stop();
  std::size_t connections() const;

  // A reload in two steps, so that several servers change together or not at all. prepare()
  // loads the TLS files of `options` (always again: a renewed certificate keeps its path) and
  // binds the listeners it adds (an address already listened on is kept, with the listener
  // kind `options` gives it). It throws std::runtime_error naming the file or address, having
  // closed what it bound: nothing changes. commit() makes the change live: new connections get
  // `options` (limits, TLS context, trusted proxies), added listeners accept, and the ones
  // `options` does not name close. Connections already open keep their options.
  struct Change;
  std::shared_ptr<Change> prepare(ServerOptions options);
  void commit(std::shared_ptr<Change> change);

  // True while at least one listener accepts (for /healthz).
  bool listening() const;
  const ServerStats& stats() const;

  struct State;  // shared with the connection coroutines (server.cpp)

 private:
  std::shared_ptr<State> state_;
};

}  // namespace ipconfirm::smtp

// The SMTP listener and its connections: Asio coroutines that move bytes between the socket
// and the pure Session state machine, and enforce what only the connection can: connection
// limits (in total and per IP), a timeout per command, a deadline per connection, bounded
// buffers, the ban on pipelining past DATA and STARTTLS, and STARTTLS itself (RFC 3207).
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

#include "smtp/asio.hpp"
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
  IpAddress ip;
  std::uint16_t port = 0;
  std::string session_id;
};

using HandlerFactory = std::function<std::unique_ptr<ConnectionHandler>(const ConnectionInfo&)>;

struct Listener {
  asio::ip::tcp::endpoint endpoint;
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
  std::shared_ptr<asio::ssl::context> tls;  // set: offer STARTTLS
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

  struct State;  // shared with the connection coroutines (server.cpp)

 private:
  std::shared_ptr<State> state_;
};

}  // namespace ipconfirm::smtp

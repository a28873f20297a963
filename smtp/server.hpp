// The SMTP listener and its connections: Asio coroutines that move bytes between the socket
// and the pure Session state machine, and enforce what only the connection can: connection
// limits (in total and per IP, an IPv6 client counted per /64), a timeout per command, a
// deadline per connection, bounded buffers, the ban on pipelining past DATA and STARTTLS, STARTTLS
// itself (RFC 3207), implicit TLS per listener (RFC 8314), and the PROXY protocol header on
// listeners behind a load balancer (accepted only from trusted addresses; smtp/proxy_protocol.hpp
// parses it).
//
// Reload: prepare() and commit() change the listeners, the limits and the TLS certificate while
// the server runs; a connection keeps the options it was accepted under until it ends.
//
// What a message means is not decided here: the connection hands the message data to its
// ConnectionHandler (the responder) as it arrives (smtp/session_pump.hpp: the header, then the
// body in pieces; the whole message only when the handler asks for it), and at the final dot
// the handler analyses and queues it and returns what the 250 (or 451) should say. All
// connections together hold at most max_message_memory of message data.
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
#include "smtp/session_pump.hpp"

namespace ipconfirm::smtp {

struct QueueOutcome {
  std::optional<std::string> queue_id;  // set: say 250; empty: say 451 with `failure`
  std::string summary;                  // safe text for the 250 line
  std::string failure;
  std::optional<Reply> refusal = std::nullopt;  // without queue_id: say this instead
  bool queued = true;     // false: accepted, but no reply mail was queued ("accepted as <id>")
  std::string link = {};  // ends the 250 line after "; " (Session::on_queued)
};

// One per connection; created when a client is accepted. As a MessageSink it is told about
// each message's data while it is read (on_data_start, on_header, on_body); those calls are
// made on the event loop, from the connection's coroutine, and must not block.
class ConnectionHandler : public MessageSink {
 public:
  virtual ~ConnectionHandler() = default;
  virtual void on_helo(const std::string& helo) = 0;
  // MAIL FROM was accepted: a transaction begins (`envelope` holds the HELO name and the
  // sender), so that work on the sender (SPF) can start while the client goes on. A handler
  // drops what an earlier transaction started.
  virtual void on_mail_from(const Envelope& /*envelope*/) {}
  // The transaction ended without a message to answer (RSET, EHLO, a refused DATA or message):
  // what on_mail_from started is no longer needed.
  virtual void on_transaction_reset() {}
  // The message is complete: its header (and, if asked for at DATA, the whole message).
  // Never throws.
  virtual asio::awaitable<QueueOutcome> on_message(const Session& session,
                                                   ReceivedMessage message) = 0;
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
                                // (with implicit_tls too: the header, then TLS)
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
  std::size_t max_connections_per_ip = 20;  // per IPv4 address, per IPv6 network of
  int ipv6_connection_prefix = 64;          // this many bits
  std::chrono::seconds command_timeout{60};
  std::chrono::seconds connection_deadline{600};
  std::size_t max_line = 512;
  std::size_t max_text_line = 1000;
  std::size_t max_header = 256 * 1024;  // header bytes of a message kept for the handler
  // Message data held by all connections together (headers, and messages kept whole); past
  // it a message gets 451 4.3.2. 0: no limit.
  std::size_t max_message_memory = 64 * 1024 * 1024;
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

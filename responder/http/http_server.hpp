// The HTTP/1.1 listener for operators and scripts (/metrics, /healthz, later the report pages):
// Asio coroutines on the service's event loop, Boost.Beast's request parser, and the pure
// HttpRouter (responder/http/http_router.hpp) for what to answer.
//
// Bounded everywhere, since a listener may face the internet: the request line and header
// together (`max_request_size`, else 431), the number of header fields (else 431), open
// connections (over the cap a client gets 503 and the connection closes), requests per
// connection, and time: each request must arrive whole within `request_timeout` of the
// previous response (or of the connect), and each response must be written within it; an idle
// keep-alive connection is closed then. Only GET and HEAD are served; a request with a body is
// answered and the connection closed, since bodies are never read. HTTP/1.1 keep-alive and
// pipelined requests work; HTTP/1.0 closes unless it asks for keep-alive.
//
// What this file does not do: TLS (put a reverse proxy in front for that), chunked or
// compressed responses, or logging of each request.
//
// Reload: prepare() and commit() change the listeners and limits while the server runs
// (connections already open keep the limits they started with).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/asio.hpp"
#include "responder/http/http_router.hpp"

namespace ipconfirm::responder {

struct HttpServerOptions {
  std::vector<asio::ip::tcp::endpoint> listen;  // none: the server listens nowhere
  std::size_t max_connections = 64;
  std::chrono::seconds request_timeout{10};
  std::size_t max_request_size = 8192;  // request line and header fields, in bytes
  std::size_t max_header_fields = 50;
  std::size_t max_requests_per_connection = 100;
};

class HttpServer {
 public:
  // A response with an `off_loop` job (responder/http/http_router.hpp) has it run on
  // `offload` (a thread of the caller's); without one, on the event loop.
  HttpServer(asio::io_context& io, std::shared_ptr<const HttpRouter> router,
             asio::any_io_executor offload = {});
  ~HttpServer();

  struct Change;
  // Binds the listeners `options` adds to the running ones (an address already listened on is
  // kept, not bound again). Throws std::runtime_error naming the address when one cannot be
  // bound, having closed the ones it bound: nothing changes.
  std::shared_ptr<Change> prepare(HttpServerOptions options);
  // Makes a prepared change live: new connections get its limits, the added listeners accept,
  // the listeners it does not name close. Never throws.
  void commit(std::shared_ptr<Change> change);
  // Closes every listener and connection.
  void stop();

  std::size_t connections() const;
  const HttpStats& stats() const;

  struct State;  // shared with the coroutines (http_server.cpp)

 private:
  std::shared_ptr<State> state_;
};

}  // namespace ipconfirm::responder

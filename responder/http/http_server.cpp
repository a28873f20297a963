#include "responder/http/http_server.hpp"

// GCC 12 with the sanitizers reports -Wmaybe-uninitialized inside Boost 1.74's
// basic_parser::content_length() (a false positive about boost::none); this file is the only one
// that includes Beast.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/log.hpp"

namespace ipconfirm::responder {

namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::redirect_error;
using asio::use_awaitable;

IpAddress to_ip(const asio::ip::address& a) {
  if (a.is_v4()) return IpAddress::from_v4(a.to_v4().to_uint());
  return IpAddress::from_v6(a.to_v6().to_bytes());
}

std::string endpoint_text(const tcp::endpoint& e) {
  std::ostringstream out;
  out << e;
  return out.str();
}

// RFC 9110 §5.6.7 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date() {
  static const char* const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
                tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

}  // namespace

// One listening address; its acceptor closes when a reload drops it.
struct HttpListenerSlot {
  explicit HttpListenerSlot(asio::io_context& io) : acceptor(io) {}
  tcp::acceptor acceptor;
  tcp::endpoint endpoint;
  bool closed = false;
};

struct HttpServer::State : std::enable_shared_from_this<HttpServer::State> {
  State(asio::io_context& i, std::shared_ptr<const HttpRouter> r, asio::any_io_executor o)
      : io(i), router(std::move(r)), offload(std::move(o)) {}
  asio::io_context& io;
  std::shared_ptr<const HttpRouter> router;
  asio::any_io_executor offload;  // where off_loop jobs run; none: on the event loop
  std::shared_ptr<const HttpServerOptions> options = std::make_shared<HttpServerOptions>();
  std::vector<std::shared_ptr<HttpListenerSlot>> slots;
  std::set<beast::tcp_stream*> live;
  std::size_t open = 0;
  HttpStats stats;
  bool stopping = false;
};

struct HttpServer::Change {
  std::shared_ptr<const HttpServerOptions> options;
  std::vector<std::shared_ptr<HttpListenerSlot>> slots;  // every listener after the change
  std::vector<std::shared_ptr<HttpListenerSlot>> added;  // bound by prepare()
  bool committed = false;
  ~Change() {
    if (committed) return;
    boost::system::error_code ignored;
    for (auto& s : added) s->acceptor.close(ignored);
  }
};

namespace {

awaitable<void> write_response(beast::tcp_stream& stream, const HttpResponse& response,
                               bool head_only, bool keep_alive, std::chrono::seconds timeout,
                               boost::system::error_code& ec) {
  const std::string bytes = format_http_response(response, head_only, keep_alive, http_date());
  stream.expires_after(timeout);
  co_await asio::async_write(stream, asio::buffer(bytes), redirect_error(use_awaitable, ec));
}

HttpResponse run_job(const std::function<HttpResponse()>& job) {
  try {
    HttpResponse r = job();
    r.off_loop = nullptr;  // one hop only
    return r;
  } catch (const std::exception&) {
    return http_error(500);
  }
}

// Runs on the offload executor; the awaiting coroutine resumes on the event loop.
awaitable<HttpResponse> run_off_loop(std::function<HttpResponse()> job) {
  co_return run_job(job);
}

awaitable<void> serve_http(std::shared_ptr<HttpServer::State> st, tcp::socket socket) {
  // The limits this connection keeps, even if a reload changes them meanwhile.
  const std::shared_ptr<const HttpServerOptions> opts = st->options;
  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) co_return;
  beast::tcp_stream stream(std::move(socket));
  st->live.insert(&stream);
  ++st->open;
  ++st->stats.connections;
  struct Release {
    HttpServer::State* st;
    beast::tcp_stream* stream;
    ~Release() {
      st->live.erase(stream);
      --st->open;
    }
  } release{st.get(), &stream};

  if (st->open > opts->max_connections) {
    HttpResponse busy = http_error(503);
    busy.headers.emplace_back("Retry-After", "5");
    busy.close = true;
    ++st->stats.responses[503];
    co_await write_response(stream, busy, false, false, std::chrono::seconds(2), ec);
    stream.close();
    co_return;
  }

  // Request line and header, and whatever the client pipelined after them, must fit here.
  beast::flat_buffer buffer(opts->max_request_size);
  for (std::size_t n = 0; n < opts->max_requests_per_connection && !st->stopping; ++n) {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(opts->max_request_size));
    stream.expires_after(opts->request_timeout);
    co_await http::async_read_header(stream, buffer, parser, redirect_error(use_awaitable, ec));
    HttpResponse response;
    bool head_only = false;
    bool keep_alive = false;
    if (ec) {
      // The client closed or went quiet between requests, the server stops, or the connection
      // broke: nothing to answer. (On a timeout Beast has closed the socket already.)
      if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
          ec == beast::error::timeout || st->stopping || ec == asio::error::connection_reset ||
          ec == asio::error::operation_aborted || ec == asio::error::eof)
        break;
      response = (ec == http::error::header_limit || ec == http::error::buffer_overflow)
                     ? http_error(431)
                     : http_error(400);
      response.close = true;
    } else {
      const auto& req = parser.get();
      HttpRequest request;
      request.method = std::string(req.method_string());
      request.target = std::string(req.target());
      request.peer = to_ip(remote.address());
      split_target(request);
      const auto fields = static_cast<std::size_t>(std::distance(req.begin(), req.end()));
      const bool has_body = parser.chunked() || parser.content_length().value_or(0) > 0;
      const bool get_or_head = request.method == "GET" || request.method == "HEAD";
      head_only = request.method == "HEAD";
      keep_alive = req.keep_alive();
      if (fields > opts->max_header_fields) {
        response = http_error(431);
      } else if (req.version() == 11 && req.count(http::field::host) != 1) {
        response = http_error(400);  // RFC 9112 §3.2: exactly one Host in HTTP/1.1
      } else if (has_body && get_or_head) {
        response = http_error(400);  // bodies are never read
      } else {
        response = st->router->respond(request);
        if (response.off_loop) {
          std::function<HttpResponse()> job = std::move(response.off_loop);
          if (st->offload)
            response =
                co_await asio::co_spawn(st->offload, run_off_loop(std::move(job)), use_awaitable);
          else
            response = run_job(job);
        }
      }
      // The rest of the request (a body of another method) was not read: the next request
      // cannot be found in the stream.
      if (has_body || !get_or_head || response.status == 400 || response.status == 431)
        response.close = true;
    }
    if (n + 1 == opts->max_requests_per_connection) response.close = true;  // the last one
    ++st->stats.responses[response.status];
    boost::system::error_code wec;
    co_await write_response(stream, response, head_only, keep_alive, opts->request_timeout, wec);
    if (wec || response.close || !keep_alive) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream.close();
}

awaitable<void> accept_http(std::shared_ptr<HttpServer::State> st,
                            std::shared_ptr<HttpListenerSlot> slot) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket s = co_await slot->acceptor.async_accept(redirect_error(use_awaitable, ec));
    if (st->stopping || slot->closed) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      log_event("accept-error", {{"error", ec.message()}, {"listener", "http"}});
      asio::steady_timer t(st->io, std::chrono::milliseconds(100));
      co_await t.async_wait(redirect_error(use_awaitable, ec));
      continue;
    }
    asio::co_spawn(st->io, serve_http(st, std::move(s)), asio::detached);
  }
}

}  // namespace

HttpServer::HttpServer(asio::io_context& io, std::shared_ptr<const HttpRouter> router,
                       asio::any_io_executor offload)
    : state_(std::make_shared<State>(io, std::move(router), std::move(offload))) {}

HttpServer::~HttpServer() {
  stop();
}

std::shared_ptr<HttpServer::Change> HttpServer::prepare(HttpServerOptions options) {
  auto change = std::make_shared<Change>();
  for (const auto& endpoint : options.listen) {
    std::shared_ptr<HttpListenerSlot> slot;
    for (const auto& s : state_->slots)
      if (!s->closed && s->endpoint == endpoint) slot = s;
    for (const auto& s : change->slots)
      if (s->endpoint == endpoint) slot = s;  // listed twice
    if (!slot) {
      slot = std::make_shared<HttpListenerSlot>(state_->io);
      slot->endpoint = endpoint;
      boost::system::error_code ec;
      slot->acceptor.open(endpoint.protocol(), ec);
      if (!ec) slot->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec && endpoint.address().is_v6())
        slot->acceptor.set_option(asio::ip::v6_only(!endpoint.address().is_unspecified()), ec);
      if (!ec) slot->acceptor.bind(endpoint, ec);
      if (!ec) slot->acceptor.listen(asio::socket_base::max_listen_connections, ec);
      if (ec)
        throw std::runtime_error("cannot listen for HTTP on " + endpoint_text(endpoint) + ": " +
                                 ec.message());  // ~Change closes what it bound
      change->added.push_back(slot);
    }
    if (std::find(change->slots.begin(), change->slots.end(), slot) == change->slots.end())
      change->slots.push_back(slot);
  }
  change->options = std::make_shared<const HttpServerOptions>(std::move(options));
  return change;
}

void HttpServer::commit(std::shared_ptr<Change> change) {
  auto& st = *state_;
  if (st.stopping) return;
  change->committed = true;
  st.options = change->options;
  boost::system::error_code ignored;
  for (auto& old : st.slots) {
    if (std::find(change->slots.begin(), change->slots.end(), old) != change->slots.end()) continue;
    old->closed = true;
    old->acceptor.close(ignored);
    log_event("http-unlisten", {{"address", endpoint_text(old->endpoint)}});
  }
  st.slots = change->slots;
  for (auto& slot : change->added) {
    boost::system::error_code ec;
    log_event("http-listen", {{"address", endpoint_text(slot->acceptor.local_endpoint(ec))}});
    asio::co_spawn(st.io, accept_http(state_, slot), asio::detached);
  }
}

void HttpServer::stop() {
  if (!state_ || state_->stopping) return;
  state_->stopping = true;
  boost::system::error_code ignored;
  for (auto& slot : state_->slots) {
    slot->closed = true;
    slot->acceptor.close(ignored);
  }
  for (auto* s : state_->live) s->cancel();
}

std::size_t HttpServer::connections() const {
  return state_->open;
}

const HttpStats& HttpServer::stats() const {
  return state_->stats;
}

}  // namespace ipconfirm::responder

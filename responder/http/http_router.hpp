// What the HTTP listener answers, without the sockets: the routes (exact paths such as
// /metrics, and path prefixes for pages such as /r/TOKEN), the rules every request goes
// through (RFC 9110/9112: only GET and HEAD, an origin-form target, 404/405/400 with a short
// text body), and the bytes of a response (status line, Date, Content-Length, Connection).
//
// What this file does not do: it does not parse requests (Boost.Beast's parser does, in
// responder/http/http_server.cpp, which also enforces the size, header-count, connection and
// time limits) and it never decodes percent-escapes: a route matches the path as sent. A
// handler runs on the event loop and must not block; it returns the whole response, or one
// whose `off_loop` job makes it on another thread.
//
// Pure: no I/O.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/ip_address.hpp"

namespace ipconfirm::responder {

struct HttpRequest {
  std::string method;  // "GET" or "HEAD" by the time a handler sees it
  std::string target;  // as sent: path and query
  std::string path;    // the target up to '?'
  std::string query;   // after '?', without it; "" when there is none
  IpAddress peer;      // the client
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Further header fields, written as given (names and values must be valid field syntax).
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // close the connection after this response
  // Work that must not run on the event loop (a file read, a render): when set, the listener
  // runs it on its offload executor (responder/http/http_server.hpp) and sends the response it
  // returns instead of this one (a job that throws gives 500).
  std::function<HttpResponse()> off_loop;
};

// What the listener counts (responder/http/http_server.cpp), on the event loop only.
struct HttpStats {
  std::uint64_t connections = 0;           // accepted
  std::map<int, std::uint64_t> responses;  // by status code
};

class HttpRouter {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // `path` exactly ("/metrics"); a later add() of the same path replaces the handler.
  void add(std::string path, Handler handler);
  // Every path that starts with `prefix` ("/r/") and is longer than it; exact routes win, then
  // the longest prefix.
  void add_prefix(std::string prefix, Handler handler);

  // The response to one request whose header Beast has parsed. GET and HEAD go to the route's
  // handler (a handler that throws gives 500); another method on a known path is 405 with
  // `Allow: GET, HEAD`, on an unknown one 404; a target that is not a path ("*",
  // "http://host/x") is 400. A HEAD request is answered like GET; the server leaves the body
  // out.
  HttpResponse respond(const HttpRequest& request) const;

 private:
  const Handler* find(std::string_view path) const;
  std::vector<std::pair<std::string, Handler>> exact_;
  std::vector<std::pair<std::string, Handler>> prefixes_;
};

// "Not Found" for 404 and so on, for the codes this server sends; "Unknown" otherwise.
std::string_view http_reason(int status);
// A response with `status` and its reason phrase as the text body ("404 Not Found\n").
HttpResponse http_error(int status);
// Splits "path?query" (a target beginning with '/'); fills path and query of `request`.
void split_target(HttpRequest& request);

// The bytes of a response: status line, Date (`date`, an IMF-fixdate), Content-Type,
// Content-Length, `Cache-Control: no-store`, `X-Content-Type-Options: nosniff`, the handler's
// headers, `Connection: close` or keep-alive, then the body, left out when `head_only`
// (Content-Length still gives the GET body's size, RFC 9110 §9.3.2).
std::string format_http_response(const HttpResponse& response, bool head_only, bool keep_alive,
                                 std::string_view date);

}  // namespace ipconfirm::responder

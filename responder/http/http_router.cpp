#include "responder/http/http_router.hpp"

#include <exception>

namespace ipconfirm::responder {

void HttpRouter::add(std::string path, Handler handler) {
  for (auto& [p, h] : exact_) {
    if (p == path) {
      h = std::move(handler);
      return;
    }
  }
  exact_.emplace_back(std::move(path), std::move(handler));
}

void HttpRouter::add_prefix(std::string prefix, Handler handler) {
  prefixes_.emplace_back(std::move(prefix), std::move(handler));
}

const HttpRouter::Handler* HttpRouter::find(std::string_view path) const {
  for (const auto& [p, h] : exact_)
    if (p == path) return &h;
  const Handler* best = nullptr;
  std::size_t best_length = 0;
  for (const auto& [p, h] : prefixes_) {
    if (path.size() > p.size() && path.substr(0, p.size()) == p && p.size() >= best_length) {
      best = &h;
      best_length = p.size();
    }
  }
  return best;
}

void split_target(HttpRequest& request) {
  const auto q = request.target.find('?');
  request.path = request.target.substr(0, q);
  request.query = q == std::string::npos ? "" : request.target.substr(q + 1);
}

HttpResponse HttpRouter::respond(const HttpRequest& request) const {
  // Origin form only (RFC 9112 §3.2.1): the absolute form is for proxies and "*" for OPTIONS.
  if (request.target.empty() || request.target.front() != '/') return http_error(400);
  const Handler* handler = find(request.path);
  if (!handler) return http_error(404);
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse r = http_error(405);
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  try {
    return (*handler)(request);
  } catch (const std::exception&) {
    return http_error(500);
  }
}

std::string_view http_reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

HttpResponse http_error(int status) {
  HttpResponse r;
  r.status = status;
  r.body = std::to_string(status) + " " + std::string(http_reason(status)) + "\n";
  return r;
}

std::string format_http_response(const HttpResponse& response, bool head_only, bool keep_alive,
                                 std::string_view date) {
  std::string out;
  out.reserve(256 + response.body.size());
  out.append("HTTP/1.1 ")
      .append(std::to_string(response.status))
      .append(" ")
      .append(http_reason(response.status))
      .append("\r\n");
  out.append("Date: ").append(date).append("\r\n");
  out.append("Server: ipconfirm\r\n");
  if (!response.content_type.empty())
    out.append("Content-Type: ").append(response.content_type).append("\r\n");
  out.append("Content-Length: ").append(std::to_string(response.body.size())).append("\r\n");
  out.append("Cache-Control: no-store\r\n");
  out.append("X-Content-Type-Options: nosniff\r\n");
  for (const auto& [name, value] : response.headers)
    out.append(name).append(": ").append(value).append("\r\n");
  out.append(keep_alive && !response.close ? "Connection: keep-alive\r\n"
                                           : "Connection: close\r\n");
  out.append("\r\n");
  if (!head_only) out.append(response.body);
  return out;
}

}  // namespace ipconfirm::responder

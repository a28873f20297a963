// The HTTP listener's pure part: routing, the method and target rules, and the response bytes.
#include <doctest/doctest.h>

#include <stdexcept>

#include "responder/http/http_router.hpp"

using namespace ipconfirm::responder;

namespace {

HttpRequest request(std::string method, std::string target) {
  HttpRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  split_target(r);
  return r;
}

HttpResponse text(std::string body) {
  HttpResponse r;
  r.body = std::move(body);
  return r;
}

HttpRouter router() {
  HttpRouter r;
  r.add("/metrics", [](const HttpRequest& q) { return text("metrics " + q.query); });
  r.add("/r/special", [](const HttpRequest&) { return text("exact"); });
  r.add_prefix("/r/", [](const HttpRequest& q) { return text("report " + q.path.substr(3)); });
  r.add_prefix("/r/deep/", [](const HttpRequest&) { return text("deep"); });
  r.add("/boom", [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("x"); });
  return r;
}

bool has_header(const HttpResponse& r, const std::string& name, const std::string& value) {
  for (const auto& [n, v] : r.headers)
    if (n == name && v == value) return true;
  return false;
}

}  // namespace

TEST_CASE("http router: exact paths, the query apart") {
  auto r = router();
  CHECK(r.respond(request("GET", "/metrics")).body == "metrics ");
  auto q = request("GET", "/metrics?name=x&y");
  CHECK(q.path == "/metrics");
  CHECK(q.query == "name=x&y");
  CHECK(r.respond(q).body == "metrics name=x&y");
  CHECK(r.respond(request("HEAD", "/metrics")).status == 200);
}

TEST_CASE("http router: unknown paths are 404, also near misses") {
  auto r = router();
  for (const char* t : {"/", "/metrics/", "/Metrics", "/metrics%2F", "//metrics", "/r/", "/r"})
    CHECK_MESSAGE(r.respond(request("GET", t)).status == 404, t);
  CHECK(r.respond(request("GET", "/nope")).body == "404 Not Found\n");
}

TEST_CASE("http router: prefixes, exact before prefix, the longest prefix first") {
  auto r = router();
  CHECK(r.respond(request("GET", "/r/AbC123")).body == "report AbC123");
  CHECK(r.respond(request("GET", "/r/special")).body == "exact");
  CHECK(r.respond(request("GET", "/r/deep/x")).body == "deep");
}

TEST_CASE("http router: only GET and HEAD; 405 names them") {
  auto r = router();
  for (const char* m : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "BREW"}) {
    auto res = r.respond(request(m, "/metrics"));
    CHECK_MESSAGE(res.status == 405, m);
    CHECK(has_header(res, "Allow", "GET, HEAD"));
  }
  CHECK(r.respond(request("POST", "/unknown")).status == 404);
}

TEST_CASE("http router: a target that is not a path is 400") {
  auto r = router();
  CHECK(r.respond(request("GET", "*")).status == 400);
  CHECK(r.respond(request("GET", "http://example.test/metrics")).status == 400);
  CHECK(r.respond(request("GET", "")).status == 400);
}

TEST_CASE("http router: a handler that throws gives 500; add() replaces a route") {
  auto r = router();
  CHECK(r.respond(request("GET", "/boom")).status == 500);
  r.add("/metrics", [](const HttpRequest&) { return text("replaced"); });
  CHECK(r.respond(request("GET", "/metrics")).body == "replaced");
}

TEST_CASE("http response bytes: status line, length, headers, keep-alive") {
  HttpResponse r = text("hello\n");
  r.headers.emplace_back("X-Extra", "1");
  const std::string date = "Sun, 06 Nov 1994 08:49:37 GMT";
  CHECK(format_http_response(r, false, true, date) ==
        "HTTP/1.1 200 OK\r\n"
        "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        "Server: ipconfirm\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 6\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "X-Extra: 1\r\n"
        "Connection: keep-alive\r\n"
        "\r\n"
        "hello\n");
}

TEST_CASE("http response bytes: HEAD keeps the length and drops the body; close wins") {
  HttpResponse r = text("twelve bytes");
  const std::string head = format_http_response(r, true, true, "d");
  CHECK(head.find("Content-Length: 12\r\n") != std::string::npos);
  CHECK(head.size() >= 4);
  CHECK(head.substr(head.size() - 4) == "\r\n\r\n");
  CHECK(format_http_response(r, false, false, "d").find("Connection: close\r\n") !=
        std::string::npos);
  r.close = true;
  CHECK(format_http_response(r, false, true, "d").find("Connection: close\r\n") !=
        std::string::npos);
  CHECK(format_http_response(http_error(503), false, true, "d")
            .rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
}

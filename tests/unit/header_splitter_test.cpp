// HeaderSplitter: the header ends at the first empty line, whatever the pieces the message
// comes in; the header kept is bounded; the body is handed back, never kept.
#include "smtp/header_splitter.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

using ipconfirm::smtp::HeaderSplitter;

namespace {

struct Split {
  std::string header, body;
  bool done = false, cut = false;
  friend bool operator==(const Split&, const Split&) = default;
};

Split run(std::string_view message, const std::vector<std::size_t>& cuts, std::size_t max) {
  HeaderSplitter s(max);
  Split out;
  std::size_t from = 0;
  for (std::size_t i = 0; i <= cuts.size(); ++i) {
    const std::size_t to = i < cuts.size() ? cuts[i] : message.size();
    const std::string_view piece = message.substr(from, to - from);
    const std::string_view body = s.feed(piece);
    if (!body.empty() && body.data() + body.size() != piece.data() + piece.size())
      FAIL("the body part is not a suffix of the piece");
    out.body.append(body);
    from = to;
  }
  out.header = s.header();
  out.done = s.header_done();
  out.cut = s.header_cut();
  return out;
}

void check_all_splits(std::string_view message, std::size_t max, const Split& expected) {
  INFO("message: ", std::string(message));
  CHECK(run(message, {}, max) == expected);
  for (std::size_t cut = 0; cut <= message.size(); ++cut) {
    const Split got = run(message, {cut}, max);
    CHECK_MESSAGE(got == expected, "split at ", cut, ": [", got.header, "] [", got.body, "]");
  }
  std::vector<std::size_t> every;
  for (std::size_t cut = 1; cut < message.size(); ++cut) every.push_back(cut);
  CHECK(run(message, every, max) == expected);
}

}  // namespace

TEST_CASE("header splitter: the first empty line ends the header, in any pieces") {
  check_all_splits("Subject: a\r\nFrom: b\r\n\r\nbody\r\n\r\nmore\r\n", 1024,
                   {"Subject: a\r\nFrom: b\r\n\r\n", "body\r\n\r\nmore\r\n", true, false});
  check_all_splits("Subject: a\n\nbody\n", 1024, {"Subject: a\n\n", "body\n", true, false});
  check_all_splits("\r\nall body\r\n", 1024, {"\r\n", "all body\r\n", true, false});
  check_all_splits("Subject: a\r\n\r\n", 1024, {"Subject: a\r\n\r\n", "", true, false});
  // A CR alone is no line end; "\r\r\n" is a line holding a CR, not an empty one.
  check_all_splits("A: b\r\n\r\r\nC: d\r\n\r\nx", 1024,
                   {"A: b\r\n\r\r\nC: d\r\n\r\n", "x", true, false});
  check_all_splits("A: b\r\n \r\nX\r\n\r\nbody", 1024,
                   {"A: b\r\n \r\nX\r\n\r\n", "body", true, false});
}

TEST_CASE("header splitter: no empty line: all of it is header") {
  check_all_splits("Subject: a\r\nno separator\r\n", 1024,
                   {"Subject: a\r\nno separator\r\n", "", false, false});
  check_all_splits("", 1024, {"", "", false, false});
}

TEST_CASE("header splitter: a header over the limit is cut, and its end still found") {
  const std::string header = "X: " + std::string(40, 'h') + "\r\n\r\n";
  const std::size_t n = header.size();
  check_all_splits(header + "body", 20, {header.substr(0, 20), "body", true, true});
  check_all_splits(header + "body", n, {header, "body", true, false});
  check_all_splits(header + "body", n - 1, {header.substr(0, n - 1), "body", true, true});
  check_all_splits(std::string(100, 'h'), 10, {std::string(10, 'h'), "", false, true});
}

TEST_CASE("header splitter: reset starts over and gives the buffer back") {
  HeaderSplitter s(64);
  CHECK(s.feed("A: b\r\n\r\nbody") == "body");
  s.reset();
  CHECK(s.header().empty());
  CHECK(s.header().capacity() <= std::string().capacity());
  CHECK_FALSE(s.header_done());
  CHECK(s.feed("C: d\r\n").empty());
  CHECK(s.feed("\r\nx") == "x");
  CHECK(s.take_header() == "C: d\r\n\r\n");
}

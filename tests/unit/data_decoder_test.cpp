// DataDecoder: every input is fed whole, split at every byte boundary, and byte by byte, and
// must give the same message (the pieces passed on, joined), flags and end position each time. The
// smuggling cases are the line-ending tricks of CVE-2023-51764/51765/51766.
#include "smtp/data_decoder.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

using ipconfirm::smtp::DataDecoder;
using State = DataDecoder::State;

namespace {

// Joins the pieces the decoder passes on, and checks that each one is worth a call.
struct Collect : DataDecoder::Sink {
  std::string message;
  void on_data(std::string_view piece) override {
    if (piece.empty()) FAIL("an empty piece");
    message.append(piece);
  }
};

std::string feed_all(DataDecoder& decoder, std::string_view input,
                     std::size_t* consumed = nullptr) {
  Collect c;
  const std::size_t n = decoder.feed(input, c);
  if (consumed) *consumed = n;
  return c.message;
}

struct Outcome {
  State state = State::reading;
  std::string message;
  bool over_size = false;
  bool line_too_long = false;
  std::size_t consumed = 0;  // input bytes the decoder took; the rest is left for commands
  friend bool operator==(const Outcome&, const Outcome&) = default;
};

std::string show(const Outcome& o) {
  const char* states[] = {"reading", "done", "bad_line_ending"};
  std::string m;
  for (char c : o.message) {
    if (c == '\r') {
      m += "\\r";
    } else if (c == '\n') {
      m += "\\n";
    } else {
      m += c;
    }
  }
  return std::string(states[static_cast<int>(o.state)]) + " [" + m +
         "] over_size=" + std::to_string(o.over_size) +
         " line_too_long=" + std::to_string(o.line_too_long) +
         " consumed=" + std::to_string(o.consumed);
}

// Feeds `input` in chunks cut at `cuts` (ascending offsets), as a session would: while the
// decoder reads it must take every byte; once it stops, the rest is not offered again.
Outcome run(std::string_view input, const std::vector<std::size_t>& cuts,
            DataDecoder::Limits limits) {
  DataDecoder decoder(limits);
  Collect collected;
  Outcome o;
  std::size_t from = 0;
  for (std::size_t i = 0; i <= cuts.size() && decoder.state() == State::reading; ++i) {
    const std::size_t to = i < cuts.size() ? cuts[i] : input.size();
    const std::size_t n = decoder.feed(input.substr(from, to - from), collected);
    if (n > to - from) FAIL("consumed more than offered");
    if (decoder.state() == State::reading && n != to - from) FAIL("stopped while reading");
    if (decoder.size() > limits.max_message) FAIL("kept more than max_message");
    o.consumed += n;
    from = to;
  }
  if (decoder.state() != State::reading && decoder.feed("more\r\n.\r\n", collected) != 0) {
    FAIL("consumed after it stopped");
  }
  o.state = decoder.state();
  o.over_size = decoder.over_size();
  o.line_too_long = decoder.line_too_long();
  o.message = std::move(collected.message);
  if (o.message.size() != decoder.size()) FAIL("size() disagrees with the message");
  return o;
}

void check_all_splits(std::string_view input, DataDecoder::Limits limits, const Outcome& expected) {
  const auto whole = run(input, {}, limits);
  CHECK_MESSAGE(whole == expected, show(whole), " != ", show(expected));
  for (std::size_t cut = 0; cut <= input.size(); ++cut) {
    const auto got = run(input, {cut}, limits);
    CHECK_MESSAGE(got == expected, "split at ", cut, ": ", show(got));
  }
  for (std::size_t a = 1; a < input.size(); ++a) {
    for (std::size_t b = a + 1; b < input.size(); ++b) {
      const auto got = run(input, {a, b}, limits);
      if (!(got == expected)) FAIL_CHECK("split at ", a, " and ", b, ": ", show(got));
    }
  }
  std::vector<std::size_t> every;
  for (std::size_t cut = 1; cut < input.size(); ++cut) every.push_back(cut);
  const auto bytewise = run(input, every, limits);
  CHECK_MESSAGE(bytewise == expected, "byte by byte: ", show(bytewise));
}

struct Case {
  const char* name;
  std::string input;
  DataDecoder::Limits limits;
  Outcome expected;
};

constexpr DataDecoder::Limits defaults{};

}  // namespace

TEST_CASE("data decoder: every split gives the same message and verdict") {
  using namespace std::string_literals;
  const std::vector<Case> cases = {
      {"empty message", ".\r\n", defaults, {State::done, "", false, false, 3}},
      {"one line", "hello\r\n.\r\n", defaults, {State::done, "hello\r\n", false, false, 10}},
      {"headers and body, commands pipelined after the dot",
       "Subject: hi\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@b.test>\r\nQUIT\r\n",
       defaults,
       {State::done, "Subject: hi\r\n\r\nbody\r\n", false, false, 24}},
      {"an empty line is content", "\r\n.\r\n", defaults, {State::done, "\r\n", false, false, 5}},
      {"blank lines before the end",
       "a\r\n\r\n\r\n.\r\n",
       defaults,
       {State::done, "a\r\n\r\n\r\n", false, false, 10}},
      {"dot-stuffed lines",
       "..\r\n...\r\n..x\r\n.\r\n",
       defaults,
       {State::done, ".\r\n..\r\n.x\r\n", false, false, 17}},
      {"a leading dot is removed even if the client did not stuff",
       ".x\r\n.\r\n",
       defaults,
       {State::done, "x\r\n", false, false, 7}},
      {"a dot inside a line stays",
       "a.\r\n a . \r\n.\r\n",
       defaults,
       {State::done, "a.\r\n a . \r\n", false, false, 14}},
      {"dot then CRLF inside a line is not the end",
       "x.\r\n.\r\n",
       defaults,
       {State::done, "x.\r\n", false, false, 7}},
      {"8-bit and NUL content is kept",
       "\xc3\xa4\0b\r\n.\r\n"s,
       defaults,
       {State::done, "\xc3\xa4\0b\r\n"s, false, false, 9}},
      {"not finished", "abc\r\n.", defaults, {State::reading, "abc\r\n", false, false, 6}},
      {"not finished after .CR",
       "abc\r\n.\r",
       defaults,
       {State::reading, "abc\r\n", false, false, 7}},
      // SMTP smuggling: none of these ends the message, each one stops the decoder.
      {"smuggling LF.LF",
       "a\n.\nMAIL FROM:<x@y.test>\r\n",
       defaults,
       {State::bad_line_ending, "a", false, false, 1}},
      {"smuggling CR.CR",
       "a\r.\rMAIL FROM:<x@y.test>\r\n",
       defaults,
       {State::bad_line_ending, "a", false, false, 2}},
      {"smuggling LF.CRLF",
       "a\n.\r\nMAIL FROM:<x@y.test>\r\n",
       defaults,
       {State::bad_line_ending, "a", false, false, 1}},
      {"smuggling CRLF.LF",
       "a\r\n.\nMAIL FROM:<x@y.test>\r\n",
       defaults,
       {State::bad_line_ending, "a\r\n", false, false, 4}},
      {"smuggling CRLF.CR",
       "a\r\n.\rMAIL FROM:<x@y.test>\r\n",
       defaults,
       {State::bad_line_ending, "a\r\n", false, false, 5}},
      {"smuggling CRLF.CRCRLF",
       "a\r\n.\r\r\n",
       defaults,
       {State::bad_line_ending, "a\r\n", false, false, 5}},
      {"bare LF at the start", "\n.\r\n", defaults, {State::bad_line_ending, "", false, false, 0}},
      {"bare CR inside a line",
       "ab\rc\r\n.\r\n",
       defaults,
       {State::bad_line_ending, "ab", false, false, 3}},
      {"bare LF after a stuffed dot",
       "..\n.\r\n",
       defaults,
       {State::bad_line_ending, ".", false, false, 2}},
      {"bare LF after a good line",
       "ok\r\nno\n.\r\n",
       defaults,
       {State::bad_line_ending, "ok\r\nno", false, false, 6}},
      // Limits.
      {"exactly max_message",
       "0123456789\r\n.\r\n",
       {12, 1000},
       {State::done, "0123456789\r\n", false, false, 15}},
      {"over max_message: read to the end, keep no more",
       "0123456789\r\nabc\r\n.\r\nQUIT\r\n",
       {8, 1000},
       {State::done, "01234567", true, false, 20}},
      {"over max_message by the final CRLF",
       "0123456789\r\n.\r\n",
       {11, 1000},
       {State::done, "0123456789\r", true, false, 15}},
      {"over max_message still stops at bare LF",
       "0123456789\nQUIT\r\n",
       {4, 1000},
       {State::bad_line_ending, "0123", true, false, 10}},
      {"exactly max_line", "1234\r\n.\r\n", {100, 6}, {State::done, "1234\r\n", false, false, 9}},
      {"one over max_line",
       "12345\r\nok\r\n.\r\n",
       {100, 6},
       {State::done, "12345\r\nok\r\n", false, true, 14}},
      {"max_line counts after unstuffing",
       "..234\r\n.\r\n",
       {100, 6},
       {State::done, ".234\r\n", false, false, 10}},
      {"long line without its end yet",
       "1234567",
       {100, 6},
       {State::reading, "1234567", false, true, 7}},
  };
  for (const auto& c : cases) {
    INFO("case: ", std::string(c.name));
    check_all_splits(c.input, c.limits, c.expected);
  }
}

TEST_CASE("data decoder: a large over-size message in network-sized chunks stays bounded") {
  const std::size_t limit = 1024 * 1024;
  std::string line(998, 'x');
  line += "\r\n";
  std::string input;
  while (input.size() < 3 * limit) input += line;
  input += std::string(5000, 'y') + "\r\n.\r\nQUIT\r\n";
  for (std::size_t chunk : {1000u, 4096u, 65536u}) {
    std::vector<std::size_t> cuts;
    for (std::size_t i = chunk; i < input.size(); i += chunk) cuts.push_back(i);
    const auto got = run(input, cuts, {limit, 1000});
    CHECK(got.state == State::done);
    CHECK(got.over_size);
    CHECK(got.line_too_long);
    CHECK(got.message.size() == limit);
    CHECK(got.message == input.substr(0, limit));
    CHECK(got.consumed == input.size() - 6);
  }
}

TEST_CASE("data decoder: a megabyte with no line end is read, kept up to the limit, flagged") {
  DataDecoder decoder({64 * 1024, 1000});
  const std::string chunk(4096, 'A');
  Collect c;
  for (int i = 0; i < 256; ++i) REQUIRE(decoder.feed(chunk, c) == chunk.size());
  CHECK(decoder.state() == State::reading);
  CHECK(decoder.size() == 64 * 1024);
  CHECK(c.message.size() == 64 * 1024);
  CHECK(decoder.over_size());
  CHECK(decoder.line_too_long());
  CHECK(decoder.feed("\r\n.\r\nNOOP\r\n", c) == 5);
  CHECK(decoder.state() == State::done);
}

TEST_CASE("data decoder: reset starts a new message after the first") {
  DataDecoder decoder;
  const std::string_view stream = "one\r\n.\r\nNOOP\r\n";
  std::size_t n = 0;
  CHECK(feed_all(decoder, stream, &n) == "one\r\n");
  CHECK(n == 8);
  CHECK(decoder.state() == State::done);
  CHECK(decoder.size() == 5);
  CHECK(feed_all(decoder, stream.substr(n), &n).empty());
  CHECK(n == 0);

  decoder.reset();
  CHECK(decoder.state() == State::reading);
  CHECK(decoder.size() == 0);
  CHECK(feed_all(decoder, "a\nb", &n) == "a");
  CHECK(n == 1);
  CHECK(decoder.state() == State::bad_line_ending);
  decoder.reset();
  CHECK(feed_all(decoder, "..two\r\n.\r\n", &n) == ".two\r\n");
  CHECK(n == 10);
  CHECK(decoder.state() == State::done);
  CHECK_FALSE(decoder.over_size());
  CHECK_FALSE(decoder.line_too_long());
}

TEST_CASE("data decoder: pieces view the input; only a dropped dot or a split CRLF cuts them") {
  struct Pieces : DataDecoder::Sink {
    std::vector<std::string_view> seen;
    void on_data(std::string_view piece) override { seen.push_back(piece); }
  };
  DataDecoder decoder;
  const std::string input = "Subject: x\r\n\r\nline\r\n..dot\r\nend\r\n.\r\n";
  Pieces p;
  REQUIRE(decoder.feed(input, p) == input.size());
  REQUIRE(p.seen.size() == 2);
  CHECK(p.seen[0].data() == input.data());  // no copy: the caller's buffer
  CHECK(p.seen[0] == "Subject: x\r\n\r\nline\r\n");
  CHECK(p.seen[1] == ".dot\r\nend\r\n");
  // A CR at the end of one read and its LF at the start of the next.
  DataDecoder split;
  Pieces q;
  split.feed("ab\r", q);
  split.feed("\ncd\r\n.\r\n", q);
  std::string joined;
  for (auto piece : q.seen) joined.append(piece);
  CHECK(joined == "ab\r\ncd\r\n");
}

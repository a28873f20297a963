// LineReader: every input is offered whole, split at every byte boundary, and byte by byte,
// the way a session would (append what arrived, call next() until need_more, drop `consumed`),
// and must give the same events each time.
#include "smtp/line_reader.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

using ipconfirm::smtp::LineReader;
using Result = LineReader::Result;

namespace {

struct Event {
  Result result;
  std::string line;  // for Result::line
  std::size_t end;   // offset in the input just after the bytes consumed with this event
  friend bool operator==(const Event&, const Event&) = default;
};

std::string name(Result r) {
  switch (r) {
    case Result::line:
      return "line";
    case Result::need_more:
      return "need_more";
    case Result::too_long:
      return "too_long";
    case Result::unterminated:
      return "unterminated";
    case Result::bare_lf:
      return "bare_lf";
    case Result::bare_cr:
      return "bare_cr";
    case Result::nul:
      return "nul";
  }
  return "?";
}

std::string show(const std::vector<Event>& events) {
  std::string s;
  for (const auto& e : events) {
    s += name(e.result) + "(" + e.line + ")@" + std::to_string(e.end) + " ";
  }
  return s;
}

bool is_fatal(Result r) {
  return r == Result::bare_lf || r == Result::bare_cr || r == Result::nul ||
         r == Result::unterminated;
}

// Plays a session: input arrives in chunks cut at `cuts` (ascending offsets). The caller's
// buffer must stay below max_line bytes between reads, whatever the input.
std::vector<Event> run(std::string_view input, const std::vector<std::size_t>& cuts,
                       std::size_t max_line, std::size_t max_discard = 4096) {
  LineReader reader(max_line, max_discard);
  std::vector<Event> events;
  std::string buffer;
  std::size_t base = 0;  // input offset of buffer[0]
  std::size_t from = 0;
  for (std::size_t i = 0; i <= cuts.size(); ++i) {
    const std::size_t to = i < cuts.size() ? cuts[i] : input.size();
    buffer.append(input.substr(from, to - from));
    from = to;
    while (true) {
      const auto out = reader.next(buffer);
      if (out.consumed > buffer.size()) FAIL("consumed more than offered");
      if (out.result == Result::line
              ? out.line.data() + out.line.size() + 2 != buffer.data() + out.consumed ||
                    out.line.data() < buffer.data()
              : !out.line.empty()) {
        FAIL("line does not view the buffer up to the CRLF consumed");
      }
      if (out.result != Result::need_more) {
        events.push_back({out.result, std::string(out.line), base + out.consumed});
      }
      buffer.erase(0, out.consumed);
      base += out.consumed;
      if (is_fatal(out.result)) return events;
      if (out.result == Result::need_more) break;
    }
    if (buffer.size() >= max_line) FAIL("buffer grew to ", buffer.size(), " bytes");
  }
  return events;
}

void check_all_splits(std::string_view input, std::size_t max_line,
                      const std::vector<Event>& expected, std::size_t max_discard = 4096) {
  INFO("input: ", std::string(input));
  const auto whole = run(input, {}, max_line, max_discard);
  CHECK_MESSAGE(whole == expected, show(whole), " != ", show(expected));
  for (std::size_t cut = 0; cut <= input.size(); ++cut) {
    const auto got = run(input, {cut}, max_line, max_discard);
    CHECK_MESSAGE(got == expected, "split at ", cut, ": ", show(got));
  }
  std::vector<std::size_t> every;
  for (std::size_t cut = 1; cut < input.size(); ++cut) every.push_back(cut);
  const auto bytewise = run(input, every, max_line, max_discard);
  CHECK_MESSAGE(bytewise == expected, "byte by byte: ", show(bytewise));
}

struct Case {
  const char* name;
  std::string input;
  std::size_t max_line;
  std::vector<Event> expected;
  std::size_t max_discard = 4096;
};

}  // namespace

TEST_CASE("line reader: every split gives the same lines and verdicts") {
  using namespace std::string_literals;
  const std::vector<Case> cases = {
      {"one line", "EHLO client.example\r\n", 512, {{Result::line, "EHLO client.example", 21}}},
      {"pipelined lines",
       "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n",
       512,
       {{Result::line, "MAIL FROM:<a@b.test>", 22},
        {Result::line, "RCPT TO:<c@d.test>", 42},
        {Result::line, "DATA", 48}}},
      {"empty line", "\r\nNOOP\r\n", 512, {{Result::line, "", 2}, {Result::line, "NOOP", 8}}},
      {"incomplete line", "EHLO client", 512, {}},
      {"line then partial", "NOOP\r\nQUI", 512, {{Result::line, "NOOP", 6}}},
      {"CR at the end waits", "NOOP\r", 512, {}},
      {"bare LF", "EHLO x\nQUIT\r\n", 512, {{Result::bare_lf, "", 7}}},
      {"bare LF after a line",
       "NOOP\r\nQUIT\n",
       512,
       {{Result::line, "NOOP", 6}, {Result::bare_lf, "", 11}}},
      {"LF first", "\n", 512, {{Result::bare_lf, "", 1}}},
      {"bare CR", "EHLO x\rQUIT\r\n", 512, {{Result::bare_cr, "", 8}}},
      {"CR CR LF", "NOOP\r\r\n", 512, {{Result::bare_cr, "", 6}}},
      {"NUL", "EH\0LO\r\n"s, 512, {{Result::nul, "", 3}}},
      {"8-bit is not judged",
       "RCPT TO:<\xc3\xbc@example.test>\r\n",
       512,
       {{Result::line, "RCPT TO:<\xc3\xbc@example.test>", 27}}},
      {"exactly max_line", "12345678\r\n", 10, {{Result::line, "12345678", 10}}},
      {"one over max_line, then in step",
       "123456789\r\nNOOP\r\n",
       10,
       {{Result::too_long, "", 9}, {Result::line, "NOOP", 17}}},
      {"far over max_line",
       std::string(35, 'x') + "\r\nQUIT\r\n",
       10,
       {{Result::too_long, "", 9}, {Result::line, "QUIT", 43}}},
      {"too long, CR where LF must be, then bare",
       "123456789\rX",
       10,
       {{Result::too_long, "", 9}, {Result::bare_cr, "", 11}}},
      {"too long, then bare LF",
       std::string(20, 'x') + "\nQUIT\r\n",
       10,
       {{Result::too_long, "", 9}, {Result::bare_lf, "", 21}}},
      {"too long, then bare CR",
       std::string(20, 'x') + "\rQUIT\r\n",
       10,
       {{Result::too_long, "", 9}, {Result::bare_cr, "", 22}}},
      {"too long, then NUL",
       std::string(20, 'x') + "\0\r\n"s,
       10,
       {{Result::too_long, "", 9}, {Result::nul, "", 21}}},
      {"too long and unfinished", std::string(30, 'x') + "\r", 10, {{Result::too_long, "", 9}}},
      {"two too long lines",
       std::string(12, 'a') + "\r\n" + std::string(12, 'b') + "\r\n",
       10,
       {{Result::too_long, "", 9}, {Result::too_long, "", 23}}},
      {"too long, and no line end within max_discard",
       std::string(40, 'x') + "\r\nNOOP\r\n",
       10,
       {{Result::too_long, "", 9}, {Result::unterminated, "", 29}},
       20},
      {"too long, the CR one byte past max_discard",
       std::string(29, 'x') + "\r\nNOOP\r\n",
       10,
       {{Result::too_long, "", 9}, {Result::unterminated, "", 29}},
       20},
      {"too long, the CR as the last byte within max_discard",
       std::string(28, 'x') + "\r\nNOOP\r\n",
       10,
       {{Result::too_long, "", 9}, {Result::line, "NOOP", 36}},
       20},
      {"default limit: 510 octets fit",
       std::string(510, 'a') + "\r\n",
       512,
       {{Result::line, std::string(510, 'a'), 512}}},
      {"default limit: 511 octets do not",
       std::string(511, 'a') + "\r\nNOOP\r\n",
       512,
       {{Result::too_long, "", 511}, {Result::line, "NOOP", 519}}},
  };
  for (const auto& c : cases) {
    INFO("case: ", std::string(c.name));
    check_all_splits(c.input, c.max_line, c.expected, c.max_discard);
  }
}

TEST_CASE("line reader: a megabyte with no CRLF is too long at once, then unterminated") {
  const std::size_t n = 1024 * 1024;
  const std::string input = std::string(n, 'A') + "\r\nQUIT\r\n";
  const std::vector<Event> expected = {{Result::too_long, "", 511},
                                       {Result::unterminated, "", 511 + 4096}};
  for (std::size_t chunk : {3u, 511u, 512u, 513u, 4096u, 65536u}) {
    std::vector<std::size_t> cuts;
    for (std::size_t i = chunk; i < input.size(); i += chunk) cuts.push_back(i);
    const auto got = run(input, cuts, 512);
    CHECK_MESSAGE(got == expected, "chunk ", chunk, ": ", show(got));
  }
}

TEST_CASE("line reader: discarding consumes the whole buffer and says so") {
  LineReader reader(8);
  auto out = reader.next("0123456789");
  CHECK(out.result == Result::too_long);
  CHECK(out.consumed == 7);
  CHECK(reader.discarding());
  out = reader.next("89");
  CHECK(out.result == Result::need_more);
  CHECK(out.consumed == 2);
  out = reader.next("abc\r");
  CHECK(out.result == Result::need_more);
  CHECK(out.consumed == 4);
  out = reader.next("\nNOOP\r\n");
  CHECK(out.result == Result::line);
  CHECK(out.line == "NOOP");
  CHECK(out.consumed == 7);
  CHECK_FALSE(reader.discarding());
  out = reader.next("NOOP\r\n");
  CHECK(out.result == Result::line);
  CHECK(out.line == "NOOP");
  CHECK(out.consumed == 6);
}

TEST_CASE("line reader: need_more consumes nothing so the line stays in the caller's buffer") {
  LineReader reader;
  const auto out = reader.next("MAIL FROM:<a@b.test>");
  CHECK(out.result == Result::need_more);
  CHECK(out.consumed == 0);
  CHECK(reader.max_line() == 512);
  CHECK(LineReader(0).max_line() == 2);
}

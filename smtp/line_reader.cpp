#include "smtp/line_reader.hpp"

#include <algorithm>

namespace ipconfirm::smtp {

namespace {

bool is_special(char c) {
  return c == '\r' || c == '\n' || c == '\0';
}

// The index of the first CR, LF or NUL in buf[from, to), or `to`.
std::size_t find_special(std::string_view buf, std::size_t from, std::size_t to) {
  const char* begin = buf.data() + from;
  const char* end = buf.data() + to;
  return static_cast<std::size_t>(std::find_if(begin, end, is_special) - buf.data());
}

}  // namespace

LineReader::LineReader(std::size_t max_line, std::size_t max_discard)
    : max_line_(std::max<std::size_t>(max_line, 2)),
      max_discard_(std::max<std::size_t>(max_discard, 1)) {}

LineReader::Out LineReader::next(std::string_view buf) {
  if (discarding_) {
    Out out = discard(buf);
    if (out.result != Result::line) return out;
    // The over-long line ended at its CRLF (`consumed`); go on with what follows it.
    const std::size_t ended = out.consumed;
    out = next(buf.substr(ended));
    out.consumed += ended;
    return out;
  }

  // A line may hold max_line - 2 octets before its CR; max_line - 1 octets without CR, LF or
  // NUL prove it too long, whatever follows.
  const std::size_t proof = max_line_ - 1;
  const std::size_t window = std::min(buf.size(), proof);
  const std::size_t i = find_special(buf, 0, window);
  if (i == window) {
    if (window < proof) return {Result::need_more, 0, {}};
    discarding_ = true;
    discarded_ = 0;
    return {Result::too_long, proof, {}};
  }
  switch (buf[i]) {
    case '\0':
      return {Result::nul, i + 1, {}};
    case '\n':
      return {Result::bare_lf, i + 1, {}};
    default:  // '\r', at most at max_line - 2: where a line that fits ends
      break;
  }
  if (i + 1 == buf.size()) return {Result::need_more, 0, {}};
  if (buf[i + 1] != '\n') return {Result::bare_cr, i + 2, {}};
  return {Result::line, i + 2, buf.substr(0, i)};
}

// The rest of an over-long line. Result::line (with an empty view) means its CRLF was found:
// `consumed` runs through it, and next() goes on with the following bytes.
LineReader::Out LineReader::discard(std::string_view buf) {
  auto stop = [&](Result r, std::size_t consumed) -> Out {
    discarding_ = false;
    pending_cr_ = false;
    return {r, consumed, {}};
  };
  if (pending_cr_) {
    if (buf.empty()) return {Result::need_more, 0, {}};
    if (buf[0] != '\n') return stop(Result::bare_cr, 1);
    return stop(Result::line, 1);
  }
  const std::size_t window = std::min(buf.size(), max_discard_ - discarded_);
  const std::size_t i = find_special(buf, 0, window);
  if (i == window) {
    discarded_ += window;
    if (discarded_ == max_discard_) return stop(Result::unterminated, window);
    return {Result::need_more, window, {}};
  }
  switch (buf[i]) {
    case '\0':
      return stop(Result::nul, i + 1);
    case '\n':
      return stop(Result::bare_lf, i + 1);
    default:  // '\r'
      break;
  }
  if (i + 1 == buf.size()) {
    pending_cr_ = true;
    discarded_ += i + 1;
    return {Result::need_more, i + 1, {}};
  }
  if (buf[i + 1] != '\n') return stop(Result::bare_cr, i + 2);
  return stop(Result::line, i + 2);
}

}  // namespace ipconfirm::smtp

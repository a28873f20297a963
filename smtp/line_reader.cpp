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

LineReader::LineReader(std::size_t max_line) : max_line_(std::max<std::size_t>(max_line, 2)) {}

LineReader::Out LineReader::next(std::string_view buf) {
  if (discarding_) return discard(buf, 0);

  // A line may hold max_line - 2 octets before its CR; looking at max_line bytes is enough to
  // find either its end or the proof that it is too long.
  const std::size_t window = std::min(buf.size(), max_line_);
  const std::size_t i = find_special(buf, 0, window);
  if (i == window) {
    if (window < max_line_) return {Result::need_more, 0, {}};
    discarding_ = true;
    return discard(buf, window);
  }
  switch (buf[i]) {
    case '\0':
      return {Result::nul, i + 1, {}};
    case '\n':
      return {Result::bare_lf, i + 1, {}};
    default:  // '\r'
      break;
  }
  if (i + 2 > max_line_) {
    // The CR sits where the LF should be at the latest; whatever follows, this line is too
    // long, unless the CR turns out to be bare.
    discarding_ = true;
    return discard(buf, i);
  }
  if (i + 1 == buf.size()) return {Result::need_more, 0, {}};
  if (buf[i + 1] != '\n') return {Result::bare_cr, i + 2, {}};
  return {Result::line, i + 2, buf.substr(0, i)};
}

LineReader::Out LineReader::discard(std::string_view buf, std::size_t from) {
  std::size_t pos = from;
  if (pending_cr_) {
    if (pos == buf.size()) return {Result::need_more, pos, {}};
    pending_cr_ = false;
    discarding_ = false;
    if (buf[pos] != '\n') return {Result::bare_cr, pos + 1, {}};
    return {Result::too_long, pos + 1, {}};
  }
  const std::size_t i = find_special(buf, pos, buf.size());
  if (i == buf.size()) return {Result::need_more, i, {}};
  discarding_ = false;
  switch (buf[i]) {
    case '\0':
      return {Result::nul, i + 1, {}};
    case '\n':
      return {Result::bare_lf, i + 1, {}};
    default:  // '\r'
      break;
  }
  if (i + 1 == buf.size()) {
    discarding_ = true;
    pending_cr_ = true;
    return {Result::need_more, i + 1, {}};
  }
  if (buf[i + 1] != '\n') return {Result::bare_cr, i + 2, {}};
  return {Result::too_long, i + 2, {}};
}

}  // namespace ipconfirm::smtp

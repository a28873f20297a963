#include "smtp/header_splitter.hpp"

#include <algorithm>
#include <cstring>

namespace ipconfirm::smtp {

HeaderSplitter::HeaderSplitter(std::size_t max_header) : max_header_(max_header) {}

std::string_view HeaderSplitter::feed(std::string_view piece) {
  if (done_) return piece;
  std::size_t pos = 0;
  while (pos < piece.size()) {
    const auto* lf =
        static_cast<const char*>(std::memchr(piece.data() + pos, '\n', piece.size() - pos));
    const std::size_t end = lf ? static_cast<std::size_t>(lf - piece.data()) + 1 : piece.size();
    const std::string_view part = piece.substr(pos, end - pos);
    // Is the line, through this part, empty: "\n" or "\r\n" from its start?
    bool empty_line = false;
    if (lf) {
      const std::size_t total = line_length_ + part.size();
      empty_line = total == 1 ||
                   (total == 2 && (line_length_ == 1 ? line_starts_cr_ : part.front() == '\r'));
    } else if (line_length_ == 0) {
      line_starts_cr_ = part == "\r";
    } else {
      line_starts_cr_ = false;
    }
    const std::size_t room = max_header_ - std::min(max_header_, header_.size());
    header_.append(part.substr(0, room));
    if (part.size() > room) cut_ = true;
    pos = end;
    if (!lf) {
      line_length_ += part.size();
      break;
    }
    line_length_ = 0;
    line_starts_cr_ = false;
    if (empty_line) {
      done_ = true;
      return piece.substr(pos);
    }
  }
  return {};
}

void HeaderSplitter::reset() {
  std::string().swap(header_);
  done_ = false;
  cut_ = false;
  line_length_ = 0;
  line_starts_cr_ = false;
}

}  // namespace ipconfirm::smtp

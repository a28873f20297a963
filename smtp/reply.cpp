#include "smtp/reply.hpp"

namespace ipconfirm::smtp {

std::string Reply::format() const {
  std::string out;
  const std::string code_text = std::to_string(code);
  for (std::size_t i = 0; i < lines.size() || i == 0; ++i) {
    bool last = lines.empty() || i + 1 == lines.size();
    out += code_text;
    out += last ? ' ' : '-';
    if (!enhanced.empty()) {
      out += enhanced;
      out += ' ';
    }
    if (!lines.empty()) out += lines[i];
    out += "\r\n";
    if (lines.empty()) break;
  }
  return out;
}

}  // namespace ipconfirm::smtp

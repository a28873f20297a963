#include "core/domain.hpp"

#include "core/ascii.hpp"

#include <cstddef>

namespace ipconfirm {

namespace {
constexpr std::size_t max_domain = 255;  // RFC 5321 §4.5.3.1.2
constexpr std::size_t max_label = 63;    // RFC 1035 §2.3.4
}  // namespace

bool is_valid_domain(std::string_view d, bool allow_8bit) {
  if (d.empty() || d.size() > max_domain) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = d.find('.', start);
    const std::string_view label =
        d.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > max_label) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      const bool eight_bit = static_cast<unsigned char>(c) >= 0x80;
      if (!ascii::is_alnum(c) && c != '-' && !(allow_8bit && eight_bit)) return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

}  // namespace ipconfirm

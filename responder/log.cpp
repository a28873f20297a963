#include "responder/log.hpp"

#include <unistd.h>

#include <ctime>

namespace ipconfirm {

namespace {

void append_value(std::string& out, std::string_view v) {
  bool quote = v.empty() || v.find_first_of(" \"=") != std::string_view::npos;
  if (quote) out += '"';
  std::size_t n = 0;
  for (char c : v) {
    if (++n > 400) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
  if (quote) out += '"';
}

}  // namespace

std::string format_log_fields(std::string_view event, std::initializer_list<LogField> fields) {
  std::string out(event);
  for (const auto& [k, v] : fields) {
    out += ' ';
    out += k;
    out += '=';
    append_value(out, v);
  }
  return out;
}

void log_event(std::string_view event, std::initializer_list<LogField> fields) {
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  // The process never forks after start, so its pid is read once.
  static const std::string pid = std::to_string(getpid());
  std::string line =
      std::string(stamp) + " ipconfirm[" + pid + "]: " + format_log_fields(event, fields) + "\n";
  std::size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(2, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
}

}  // namespace ipconfirm

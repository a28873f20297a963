#include "core/log.hpp"

#include <unistd.h>

#include <ctime>
#include <mutex>

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
  return format_log_fields(event, std::span<const LogField>(fields.begin(), fields.size()));
}

std::string format_log_fields(std::string_view event, std::span<const LogField> fields) {
  std::string out(event);
  for (const auto& [k, v] : fields) {
    out += ' ';
    out += k;
    out += '=';
    append_value(out, v);
  }
  return out;
}

namespace {

void write_all(std::string_view text) {
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(2, text.data() + off, text.size() - off);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
}

// Above this many gathered bytes the lines are written at once, without waiting for the flush.
constexpr std::size_t kMaxGathered = 64 * 1024;

struct Deferral {
  std::mutex mutex;  // also orders the writes, so that lines keep their order
  LogPoster post;
  std::string gathered;
  bool flush_posted = false;
};

Deferral& deferral() {
  static Deferral d;
  return d;
}

// With d.mutex held.
void flush_gathered(Deferral& d) {
  write_all(d.gathered);
  d.gathered.clear();
  d.flush_posted = false;
}

}  // namespace

void set_log_deferral(LogPoster post) {
  Deferral& d = deferral();
  std::lock_guard<std::mutex> lock(d.mutex);
  flush_gathered(d);
  d.post = std::move(post);
}

void log_flush() {
  Deferral& d = deferral();
  std::lock_guard<std::mutex> lock(d.mutex);
  flush_gathered(d);
}

void log_event(std::string_view event, std::initializer_list<LogField> fields) {
  log_event(event, std::span<const LogField>(fields.begin(), fields.size()));
}

void log_event(std::string_view event, std::span<const LogField> fields) {
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  // The process never forks after start, so its pid is read once.
  static const std::string pid = std::to_string(getpid());
  std::string line =
      std::string(stamp) + " ipconfirm[" + pid + "]: " + format_log_fields(event, fields) + "\n";
  Deferral& d = deferral();
  std::lock_guard<std::mutex> lock(d.mutex);
  if (!d.post) {
    write_all(line);
    return;
  }
  d.gathered += line;
  if (d.gathered.size() >= kMaxGathered) {
    flush_gathered(d);  // a flush already posted finds nothing, and the next line posts one
    return;
  }
  if (!d.flush_posted) {
    d.flush_posted = true;
    d.post([] { log_flush(); });
  }
}

}  // namespace ipconfirm

#include "core/log.hpp"

#include <unistd.h>

#include <cstdint>
#include <ctime>
#include <mutex>
#include <utility>

#include "core/utf8.hpp"

namespace ipconfirm {

namespace {

// Code points that change how a line is shown rather than what it says: C1 controls (NEL
// U+0085 breaks lines, CSI U+009B starts terminal escape sequences), the Unicode line and
// paragraph separators, and the bidirectional formatting characters that reorder text.
bool is_unsafe_code_point(std::uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || cp == 0x061C ||
         cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

void append_hex(std::string& out, const char* prefix, std::uint32_t v, int digits) {
  static const char hex[] = "0123456789abcdef";
  out += prefix;
  for (int d = digits - 1; d >= 0; --d) out += hex[(v >> (4 * d)) & 0xF];
}

// Escapes `v` into `out`, reading at most `max_in` bytes of it; true if it stopped early.
bool append_escaped(std::string& out, std::string_view v, std::size_t max_in) {
  std::size_t i = 0;
  while (i < v.size()) {
    if (i >= max_in) return true;
    const auto u = static_cast<unsigned char>(v[i]);
    if (u < 0x80) {
      if (v[i] == '"' || v[i] == '\\') {
        out += '\\';
        out += v[i];
      } else if (u < 0x20 || u == 0x7F) {
        append_hex(out, "\\x", u, 2);
      } else {
        out += v[i];
      }
      ++i;
      continue;
    }
    const auto [cp, len] = utf8::decode(v, i);
    if (len == 0) {
      append_hex(out, "\\x", u, 2);  // not UTF-8: shown as the byte it is
      ++i;
    } else if (is_unsafe_code_point(cp)) {
      append_hex(out, "\\u", cp, 4);
      i += len;
    } else {
      out.append(v.substr(i, len));
      i += len;
    }
  }
  return false;
}

void append_value(std::string& out, std::string_view v) {
  bool quote = v.empty() || v.find_first_of(" \"=") != std::string_view::npos;
  if (quote) out += '"';
  if (append_escaped(out, v, 400)) out += "...";
  if (quote) out += '"';
}

}  // namespace

std::string log_escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  append_escaped(out, value, value.size());
  return out;
}

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

#include "core/log.hpp"

#include <unistd.h>

#include <cstdint>
#include <ctime>
#include <mutex>
#include <utility>

namespace ipconfirm {

namespace {

// The code point of the well-formed UTF-8 sequence at s[i] and its length, or length 0 when
// the bytes there are not one (overlong, surrogate, above U+10FFFF, truncated).
std::pair<std::uint32_t, std::size_t> decode_utf8(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t len = 0;
  std::uint32_t cp = 0, min = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2, cp = c & 0x1Fu, min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3, cp = c & 0x0Fu, min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4, cp = c & 0x07u, min = 0x10000;
  }
  if (len == 0 || i + len > s.size()) return {0, 0};
  for (std::size_t k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return {0, 0};
    cp = (cp << 6) | (cc & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {0, 0};
  return {cp, len};
}

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
    auto [cp, len] = decode_utf8(v, i);
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

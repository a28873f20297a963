#include "mime/incoming.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "core/ascii.hpp"
#include "core/utf8.hpp"
#include "mime/date.hpp"

namespace ipconfirm::mime {
namespace {

constexpr std::size_t kMaxValueBytes = 16 * 1024;
constexpr std::size_t kMaxSubjectBytes = 998;
constexpr std::size_t kMaxMsgIdBytes = 250;
constexpr std::size_t kMaxEncodedWord = 512;  // RFC 2047 says 75; be lenient, but bounded

using ascii::iequals;
using ascii::is_wsp;
using ascii::lower;
using ascii::to_lower;
using ascii::trim;

bool is_atext(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr && c != '\0';
}

bool is_dot_atom_text(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '.') {
      if (s[i + 1] == '.') return false;
    } else if (!is_atext(s[i])) {
      return false;
    }
  }
  return true;
}

// Valid UTF-8, TAB as space, every other control character removed, trimmed, capped.
std::string clean(std::string_view raw, std::size_t max) {
  std::string valid = to_valid_utf8(raw);
  std::string out;
  out.reserve(valid.size());
  for (char c : valid) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\t') {
      out.push_back(' ');
    } else if (u >= 0x20 && u != 0x7F) {
      out.push_back(c);
    }
  }
  out = std::string(trim(out));
  cap_utf8(out, max);
  return out;
}

// Removes RFC 5322 comments (outside quoted strings), each replaced by one space.
std::string strip_comments(std::string_view s) {
  std::string out;
  int depth = 0;
  bool quoted = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\\' && (quoted || depth > 0) && i + 1 < s.size()) {
      if (depth == 0) out.append(s.substr(i, 2));
      ++i;
    } else if (depth > 0) {
      if (c == '(') ++depth;
      if (c == ')' && --depth == 0) out.push_back(' ');
    } else if (c == '"') {
      quoted = !quoted;
      out.push_back(c);
    } else if (c == '(' && !quoted) {
      depth = 1;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// True for a top-level Content-Type that marks an automatic report: any multipart/report
// (RFC 6522: delivery status, disposition notifications, abuse feedback, TLS reports, ...) and
// the bare message/delivery-status and message/disposition-notification types. None of them
// may be answered (RFC 3834 §2).
bool is_report_content_type(std::string_view value) {
  const std::string v = strip_comments(value);
  std::string_view s = v;
  std::string type = lower(trim(s.substr(0, s.find(';'))));
  type.erase(std::remove(type.begin(), type.end(), ' '), type.end());
  return type == "multipart/report" || type == "message/delivery-status" ||
         type == "message/disposition-notification";
}

bool is_list_field(std::string_view name) {
  constexpr std::array<std::string_view, 8> kList = {
      "list-id",    "list-unsubscribe", "list-post",    "list-help",
      "list-owner", "list-subscribe",   "list-archive", "list-unsubscribe-post"};
  for (auto l : kList) {
    if (iequals(name, l)) return true;
  }
  return false;
}

// The fields whose value we keep; every other field is only counted.
bool is_kept_field(std::string_view name) {
  constexpr std::array<std::string_view, 9> kKept = {"received",   "message-id",   "subject",
                                                     "from",       "date",         "auto-submitted",
                                                     "precedence", "content-type", "references"};
  for (auto k : kKept) {
    if (iequals(name, k)) return true;
  }
  return false;
}

// ftext of RFC 5322 §3.6.8: printable US-ASCII except ':'.
bool is_field_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c < 33 || c > 126 || c == ':') return false;
  }
  return true;
}

std::optional<std::string> decode_b(std::string_view text) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else if (c == '=') {
      break;
    } else {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::optional<std::string> decode_q(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '_') {
      out.push_back(' ');
    } else if (text[i] == '=') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex_value(text[i + 1]);
      const int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

void append_code_point(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Converts `bytes` in `charset` to UTF-8; nullopt for a charset we do not know.
std::optional<std::string> to_utf8(std::string_view charset, std::string_view bytes) {
  const std::string cs = lower(charset.substr(0, charset.find('*')));  // RFC 2231 language
  if (cs == "utf-8" || cs == "utf8" || cs == "us-ascii" || cs == "ascii") {
    return std::string(bytes);
  }
  const bool latin1 = cs == "iso-8859-1" || cs == "latin1" || cs == "iso8859-1";
  const bool cp1252 = cs == "windows-1252" || cs == "cp1252";
  if (!latin1 && !cp1252) return std::nullopt;
  // Windows-1252 0x80..0x9F; 0 marks the five unassigned bytes, which we read as Latin-1.
  constexpr std::array<std::uint16_t, 32> kCp1252 = {
      0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
      0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
      0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};
  std::string out;
  for (char c : bytes) {
    std::uint32_t cp = static_cast<unsigned char>(c);
    if (cp1252 && cp >= 0x80 && cp <= 0x9F && kCp1252[cp - 0x80] != 0) cp = kCp1252[cp - 0x80];
    append_code_point(out, cp);
  }
  return out;
}

// Tries to read one encoded-word starting at s[0] ("=?"); returns its decoded text and length.
std::optional<std::pair<std::string, std::size_t>> encoded_word(std::string_view s) {
  const std::size_t limit = std::min(s.size(), kMaxEncodedWord);
  std::size_t q1 = 2;
  while (q1 < limit && s[q1] != '?' && !is_wsp(s[q1]) && s[q1] != '\r' && s[q1] != '\n') ++q1;
  if (q1 >= limit || s[q1] != '?' || q1 == 2 || q1 + 2 >= limit || s[q1 + 2] != '?') {
    return std::nullopt;
  }
  const char enc = to_lower(s[q1 + 1]);
  std::size_t q3 = q1 + 3;
  while (q3 < limit && s[q3] != '?' && !is_wsp(s[q3]) && s[q3] != '\r' && s[q3] != '\n') ++q3;
  if (q3 + 1 >= limit || s[q3] != '?' || s[q3 + 1] != '=') return std::nullopt;
  const std::string_view text = s.substr(q1 + 3, q3 - q1 - 3);
  std::optional<std::string> bytes;
  if (enc == 'b') {
    bytes = decode_b(text);
  } else if (enc == 'q') {
    bytes = decode_q(text);
  }
  if (!bytes) return std::nullopt;
  auto utf8 = to_utf8(s.substr(2, q1 - 2), *bytes);
  if (!utf8) return std::nullopt;
  return std::make_pair(std::move(*utf8), q3 + 2);
}

// The state of the header scan: the field being read, and the result being built.
class HeaderReader {
 public:
  explicit HeaderReader(const IncomingLimits& limits) : limits_(limits) {}

  void start_field(std::string_view name, std::string_view first_line_value) {
    ++result_.header_fields;
    if (is_list_field(name)) result_.has_list_headers = true;
    keep_ = is_kept_field(name);
    if (!keep_) return;
    name_ = lower(name);
    value_.assign(first_line_value.substr(0, kMaxValueBytes));
  }

  void continue_field(std::string_view line) {
    // Unfolding (RFC 5322 §2.2.3) removes only the line break; the leading white space stays.
    if (!keep_ || value_.size() >= kMaxValueBytes) return;
    value_.append(line.substr(0, kMaxValueBytes - value_.size()));
  }

  void drop_field() { keep_ = false; }

  void finish_field() {
    if (!keep_) return;
    keep_ = false;
    IncomingMessage& r = result_;
    if (name_ == "received") {
      ++r.received_count;
      if (r.received.size() < limits_.max_received) {
        r.received.push_back(clean(value_, kMaxValueBytes));
      }
      return;
    }
    // Repeated Auto-Submitted or Precedence fields: the most automatic one counts, so that
    // "Auto-Submitted: no" cannot hide a later "auto-generated".
    if (name_ == "auto-submitted") {
      std::string v = lower(clean(value_, kMaxValueBytes));
      if (r.auto_submitted.empty() || r.auto_submitted.rfind("no", 0) == 0) r.auto_submitted = v;
      return;
    }
    if (name_ == "precedence") {
      std::string v = lower(clean(value_, kMaxValueBytes));
      auto automatic = [](const std::string& p) {
        return p.rfind("bulk", 0) == 0 || p.rfind("list", 0) == 0 || p.rfind("junk", 0) == 0;
      };
      if (r.precedence.empty() || !automatic(r.precedence)) r.precedence = v;
      return;
    }
    if (!seen_.insert(name_)) return;  // the first of a repeated singleton field wins
    if (name_ == "message-id") {
      const std::string id = std::string(trim(strip_comments(clean(value_, kMaxValueBytes))));
      if (is_msg_id(id)) r.message_id = id;
    } else if (name_ == "subject") {
      r.subject = clean(decode_rfc2047(value_), kMaxSubjectBytes);
    } else if (name_ == "from") {
      r.from = clean(value_, kMaxValueBytes);
    } else if (name_ == "date") {
      r.date = clean(value_, kMaxValueBytes);
      r.date_epoch = parse_rfc5322_date(r.date);
    } else if (name_ == "content-type") {
      r.is_delivery_report = is_report_content_type(clean(value_, kMaxValueBytes));
    } else if (name_ == "references") {
      r.references = clean(value_, kMaxValueBytes);
    }
  }

  IncomingMessage& result() { return result_; }

 private:
  // A tiny set of names already taken (there are only eight singleton fields).
  struct Seen {
    std::vector<std::string> names;
    bool insert(const std::string& n) {
      if (std::find(names.begin(), names.end(), n) != names.end()) return false;
      names.push_back(n);
      return true;
    }
  };

  const IncomingLimits& limits_;
  IncomingMessage result_;
  bool keep_ = false;
  std::string name_;
  std::string value_;
  Seen seen_;
};

}  // namespace

bool is_msg_id(std::string_view text) {
  if (text.size() < 5 || text.size() > kMaxMsgIdBytes || text.front() != '<' ||
      text.back() != '>') {
    return false;
  }
  const std::string_view inner = text.substr(1, text.size() - 2);
  const std::size_t at = inner.find('@');
  if (at == std::string_view::npos) return false;
  const std::string_view left = inner.substr(0, at);
  const std::string_view right = inner.substr(at + 1);
  if (!is_dot_atom_text(left)) return false;
  if (!right.empty() && right.front() == '[') {
    if (right.size() < 2 || right.back() != ']') return false;
    for (char c : right.substr(1, right.size() - 2)) {
      if (c < 33 || c > 126 || c == '[' || c == ']' || c == '\\') return false;
    }
    return true;
  }
  return is_dot_atom_text(right);
}

std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {  // a run of ASCII goes in one append
      std::size_t j = i + 1;
      while (j < s.size() && static_cast<unsigned char>(s[j]) < 0x80) ++j;
      out.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    if (const std::size_t len = utf8::decode(s, i).length; len != 0) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;  // resynchronise on the next byte
    }
  }
  return out;
}

void cap_utf8(std::string& s, std::size_t max) {
  if (s.size() <= max) return;
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
}

std::string decode_rfc2047(std::string_view s) {
  std::string out;
  bool after_word = false;         // only white space since the last encoded-word
  std::size_t after_word_len = 0;  // out.size() right after that word
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '=' && i + 1 < s.size() && s[i + 1] == '?') {
      if (auto word = encoded_word(s.substr(i))) {
        if (after_word) out.resize(after_word_len);
        out.append(word->first);
        i += word->second;
        after_word = true;
        after_word_len = out.size();
        continue;
      }
    }
    if (!(is_wsp(s[i]) || s[i] == '\r' || s[i] == '\n')) after_word = false;
    out.push_back(s[i]);
    ++i;
  }
  return out;
}

IncomingMessage read_incoming(std::string_view message, const IncomingLimits& limits,
                              bool header_cut) {
  auto finish = [](HeaderReader& r) {
    r.finish_field();
    return std::move(r.result());
  };
  HeaderReader reader(limits);
  const std::size_t limit = std::min(message.size(), limits.max_header_bytes);
  std::size_t pos = 0;
  bool first_line = true;
  while (pos < message.size()) {
    std::size_t line_end;
    std::size_t next;
    const void* lf = pos < limit ? std::memchr(message.data() + pos, '\n', limit - pos) : nullptr;
    if (lf != nullptr) {
      line_end = static_cast<std::size_t>(static_cast<const char*>(lf) - message.data());
      next = line_end + 1;
    } else if (limit == message.size() && !header_cut) {
      line_end = next = message.size();
    } else {
      // The header goes on past the byte limit. The field being read is complete only if the
      // cut line starts a new field rather than continuing it.
      if (is_wsp(message[pos])) {
        reader.drop_field();
      } else {
        reader.finish_field();
      }
      reader.result().header_truncated = true;
      return std::move(reader.result());
    }
    std::string_view line = message.substr(pos, line_end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = next;
    if (line.empty()) return finish(reader);  // the header/body separator
    if (is_wsp(line.front())) {
      reader.continue_field(line);  // a continuation with no field before it is ignored
      first_line = false;
      continue;
    }
    reader.finish_field();
    const std::size_t colon = line.find(':');
    // Obsolete syntax (RFC 5322 §4.5) allows white space before the colon.
    const std::string_view name =
        colon == std::string_view::npos ? std::string_view{} : trim(line.substr(0, colon));
    if (!is_field_name(name)) {
      // An mbox "From " line may lead the message; any other non-field line starts the body.
      if (first_line && line.substr(0, 5) == "From ") {
        first_line = false;
        continue;
      }
      return finish(reader);
    }
    first_line = false;
    if (reader.result().header_fields >= limits.max_header_fields) {
      reader.result().header_truncated = true;
      return std::move(reader.result());
    }
    reader.start_field(name, line.substr(colon + 1));
  }
  // The end of the bytes given: the end of the message, or, when the header was cut right
  // after a line end, a header that goes on (whether its last field does is not known).
  if (header_cut) reader.result().header_truncated = true;
  return finish(reader);
}

}  // namespace ipconfirm::mime

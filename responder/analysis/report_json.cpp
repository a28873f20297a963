#include "responder/analysis/report_json.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace ipconfirm::responder {

namespace {

using json = nlohmann::ordered_json;

// The length of the valid UTF-8 sequence at s[i] (lead byte >= 0x80), or 0: the rules of
// RFC 3629 §4 (no overlong forms, no surrogates, nothing above U+10FFFF), the ones the
// library's decoder applies.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto tail = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c >= 0xC2 && c <= 0xDF) return tail(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!tail(1) || !tail(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!tail(1) || !tail(2) || !tail(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// The bytes a JSON string holds as they are: printable ASCII but the quote and the backslash
// (and DEL, which the library leaves as it is too).
constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();

class Writer {
 public:
  Writer(std::string& out, std::string_view newline) : out_(out), newline_(newline) {}

  void value(const json& v, std::size_t indent) {
    switch (v.type()) {
      case json::value_t::object: {
        const auto& members = v.get_ref<const json::object_t&>();
        if (members.empty()) {
          out_ += "{}";
          return;
        }
        out_ += '{';
        bool first = true;
        for (const auto& [key, member] : members) {
          if (!first) out_ += ',';
          first = false;
          out_ += newline_;
          out_.append(indent + 2, ' ');
          if (!string(key)) library(json(key));
          out_ += ": ";
          value(member, indent + 2);
        }
        out_ += newline_;
        out_.append(indent, ' ');
        out_ += '}';
        return;
      }
      case json::value_t::array: {
        const auto& elements = v.get_ref<const json::array_t&>();
        if (elements.empty()) {
          out_ += "[]";
          return;
        }
        out_ += '[';
        bool first = true;
        for (const auto& e : elements) {
          if (!first) out_ += ',';
          first = false;
          out_ += newline_;
          out_.append(indent + 2, ' ');
          value(e, indent + 2);
        }
        out_ += newline_;
        out_.append(indent, ' ');
        out_ += ']';
        return;
      }
      case json::value_t::string: {
        const std::string& s = v.get_ref<const std::string&>();
        if (!string(s)) library(v);
        return;
      }
      case json::value_t::boolean:
        out_ += v.get<bool>() ? "true" : "false";
        return;
      case json::value_t::null:
        out_ += "null";
        return;
      case json::value_t::number_integer:
        number(v.get<std::int64_t>());
        return;
      case json::value_t::number_unsigned:
        number(v.get<std::uint64_t>());
        return;
      default:  // floating point, binary, discarded: as the library writes them
        library(v);
        return;
    }
  }

 private:
  // `s` quoted and escaped; false (and nothing written) if it holds invalid UTF-8, which the
  // library replaces in its own way.
  bool string(std::string_view s) {
    const std::size_t start = out_.size();
    out_ += '"';
    std::size_t run = 0;  // the start of the bytes not yet appended
    const std::size_t n = s.size();
    for (std::size_t i = 0; i < n;) {
      while (i < n && kPlain[static_cast<unsigned char>(s[i])]) ++i;
      if (i == n) break;
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x80) {
        const std::size_t len = utf8_sequence(s, i);
        if (len == 0) {
          out_.resize(start);
          return false;
        }
        i += len;
        continue;
      }
      out_.append(s, run, i - run);
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\b':
          out_ += "\\b";
          break;
        case '\t':
          out_ += "\\t";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\f':
          out_ += "\\f";
          break;
        case '\r':
          out_ += "\\r";
          break;
        default: {
          constexpr std::string_view kHex = "0123456789abcdef";
          out_ += "\\u00";
          out_ += kHex[c >> 4];
          out_ += kHex[c & 0xF];
        }
      }
      run = ++i;
    }
    out_.append(s, run, std::string_view::npos);
    out_ += '"';
    return true;
  }

  template <typename Int>
  void number(Int n) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, n);
    out_.append(buf, r.ptr);
  }

  // A scalar as the library's serializer writes it (no line break can come from one).
  void library(const json& v) {
    nlohmann::detail::serializer<json> s(nlohmann::detail::output_adapter<char>(out_), ' ',
                                         json::error_handler_t::replace);
    s.dump(v, false, false, 0);
  }

  std::string& out_;
  std::string_view newline_;
};

// A first guess of the text's size, so that it grows at most once or twice: about 24 bytes
// per value, plus the strings themselves.
std::size_t estimate(const json& j) {
  switch (j.type()) {
    case json::value_t::object: {
      std::size_t n = 8;
      for (const auto& [key, member] : j.get_ref<const json::object_t&>())
        n += key.size() + 8 + estimate(member);
      return n;
    }
    case json::value_t::array: {
      std::size_t n = 8;
      for (const auto& e : j.get_ref<const json::array_t&>()) n += 8 + estimate(e);
      return n;
    }
    case json::value_t::string:
      return j.get_ref<const std::string&>().size() + 2;
    default:
      return 8;
  }
}

}  // namespace

std::string report_json_text(const nlohmann::ordered_json& j, std::string_view newline) {
  std::string out;
  out.reserve(estimate(j) * 5 / 4);
  Writer(out, newline).value(j, 0);
  return out;
}

std::string with_crlf(std::string_view lf_text) {
  std::size_t lfs = 0;
  for (const char *p = lf_text.data(), *end = p + lf_text.size();
       (p = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)))); ++p)
    ++lfs;
  std::string out(lf_text.size() + lfs + 2, '\0');  // each LF one byte more, and the last CRLF
  char* o = out.data();
  std::size_t pos = 0;
  for (std::size_t lf; (lf = lf_text.find('\n', pos)) != std::string_view::npos; pos = lf + 1) {
    lf_text.copy(o, lf - pos, pos);
    o += lf - pos;
    *o++ = '\r';
    *o++ = '\n';
  }
  o += lf_text.copy(o, lf_text.size() - pos, pos);
  *o++ = '\r';
  *o = '\n';
  return out;
}

}  // namespace ipconfirm::responder

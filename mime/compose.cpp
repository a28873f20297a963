#include "mime/compose.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <functional>
#include <random>
#include <string_view>

#include "core/ascii.hpp"
#include "core/utf8.hpp"
#include "mime/date.hpp"
#include "mime/incoming.hpp"

namespace ipconfirm::mime {
namespace {

constexpr std::size_t kFoldColumn = 78;
constexpr std::size_t kMaxEncodedWord = 75;  // RFC 2047 §2
constexpr std::size_t kMaxAddressBytes = 512;
constexpr std::size_t kMaxDisplayBytes = 256;
constexpr std::size_t kMaxFilenameBytes = 200;
constexpr std::size_t kMaxFieldNameBytes = 76;
constexpr std::size_t kMaxReferences = 50;
constexpr std::size_t kBodyLine = 78;  // longest line a 7bit body may have
constexpr std::string_view kHex = "0123456789ABCDEF";

std::mt19937_64& rng() {
  thread_local std::mt19937_64 engine = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }();
  return engine;
}

std::string random_hex(std::size_t digits) {
  std::string out;
  while (out.size() < digits) {
    std::uint64_t v = rng()();
    for (int i = 0; i < 16 && out.size() < digits; ++i, v >>= 4) out.push_back(kHex[v & 0xF]);
  }
  return out;
}

using ascii::iequals;
using ascii::is_alnum;
using ascii::to_lower;

bool is_printable_ascii(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7E) return false;
  }
  return true;
}

// A header value made safe: valid UTF-8, each run of white space and line-break characters one
// space, other control characters dropped, trimmed.
std::string header_text(std::string_view raw) {
  const std::string valid = to_valid_utf8(raw);
  std::string out;
  out.reserve(valid.size());
  bool space = false;
  for (char c : valid) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = true;
    } else if (u >= 0x20 && u != 0x7F) {
      if (space && !out.empty()) out.push_back(' ');
      space = false;
      out.push_back(c);
    }
  }
  return out;
}

// Writes "Name: token token ..." folding between tokens so that lines stay within 78 columns
// where the tokens allow.
std::string fold(std::string_view name, const std::vector<std::string>& tokens) {
  std::string out(name);
  out.push_back(':');
  std::size_t line = out.size();
  bool first = true;
  for (const auto& t : tokens) {
    if (!first && line + 1 + t.size() > kFoldColumn) {
      out.append("\r\n");
      line = 0;
    }
    out.push_back(' ');
    out.append(t);
    line += 1 + t.size();
    first = false;
  }
  out.append("\r\n");
  return out;
}

std::vector<std::string> split_spaces(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t sp = s.find(' ', i);
    const std::size_t end = sp == std::string_view::npos ? s.size() : sp;
    if (end > i) out.emplace_back(s.substr(i, end - i));
    i = end + 1;
  }
  return out;
}

// Bytes that Q encoding may leave as they are in any context (RFC 2047 §5 (3)).
bool q_safe(char c) {
  return is_alnum(c) || c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

std::size_t utf8_length(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// Writes the base64 of `in` at `o` ((in.size() + 2) / 3 * 4 characters); returns the end.
char* base64_to(char* o, std::string_view in) {
  constexpr std::string_view kB64 =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16 |
                            static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8 |
                            static_cast<unsigned char>(in[i + 2]);
    *o++ = kB64[v >> 18];
    *o++ = kB64[(v >> 12) & 63];
    *o++ = kB64[(v >> 6) & 63];
    *o++ = kB64[v & 63];
  }
  if (i < in.size()) {
    std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (i + 1 < in.size())
      v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    *o++ = kB64[v >> 18];
    *o++ = kB64[(v >> 12) & 63];
    *o++ = i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  return o;
}

void append_base64(std::string& out, std::string_view in) {
  // Written through a pointer into room made once: a push_back per character was the largest
  // cost of encoding a reply's JSON attachment.
  const std::size_t start = out.size();
  out.resize(start + (in.size() + 2) / 3 * 4);
  base64_to(out.data() + start, in);
}

std::size_t q_length(std::string_view bytes) {
  std::size_t n = 0;
  for (char c : bytes) n += (q_safe(c) || c == ' ') ? 1 : 3;
  return n;
}

std::string q_encode(std::string_view bytes) {
  std::string out;
  for (char c : bytes) {
    if (q_safe(c)) {
      out.push_back(c);
    } else if (c == ' ') {
      out.push_back('_');
    } else {
      const auto u = static_cast<unsigned char>(c);
      out.push_back('=');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
  return out;
}

// Splits valid UTF-8 `text` into encoded-words, each at most `first_budget` (the first) or
// 75 characters long, never splitting a character.
std::vector<std::string> encoded_words(std::string_view text, std::size_t first_budget) {
  constexpr std::string_view kPrefixQ = "=?utf-8?Q?";
  constexpr std::string_view kPrefixB = "=?utf-8?B?";
  constexpr std::size_t kOverhead = 12;  // prefix and "?="
  const bool use_q = q_length(text) <= (text.size() + 2) / 3 * 4;
  auto encoded_size = [&](std::size_t bytes_q, std::size_t bytes) {
    return use_q ? bytes_q : (bytes + 2) / 3 * 4;
  };
  std::vector<std::string> words;
  std::size_t budget = first_budget;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = start;
    std::size_t qlen = 0;
    while (end < text.size()) {
      const std::size_t n =
          std::min(utf8_length(static_cast<unsigned char>(text[end])), text.size() - end);
      const std::size_t add = q_length(text.substr(end, n));
      if (kOverhead + encoded_size(qlen + add, end + n - start) > budget && end > start) break;
      qlen += add;
      end += n;
    }
    const std::string_view chunk = text.substr(start, end - start);
    std::string w(use_q ? kPrefixQ : kPrefixB);
    if (use_q) {
      w.append(q_encode(chunk));
    } else {
      append_base64(w, chunk);
    }
    w.append("?=");
    words.push_back(std::move(w));
    start = end;
    budget = kMaxEncodedWord;
  }
  return words;
}

std::size_t first_word_budget(std::string_view field_name) {
  const std::size_t used = field_name.size() + 2;  // "Name: "
  const std::size_t left = used < kFoldColumn ? kFoldColumn - used : 0;
  return std::clamp<std::size_t>(left, 24, kMaxEncodedWord);
}

// An unstructured field (RFC 5322 §3.2.5): plain folded text when it is printable ASCII with
// words that fit on a line and nothing a reader could take for an encoded-word, else
// encoded-words.
std::string unstructured_field(std::string_view name, std::string_view raw) {
  const std::string text = header_text(raw);
  std::vector<std::string> words = split_spaces(text);
  bool plain = is_printable_ascii(text) && text.find("=?") == std::string::npos;
  for (const auto& w : words) plain = plain && w.size() < kFoldColumn - 1;
  if (plain) return fold(name, words);
  return fold(name, encoded_words(text, first_word_budget(name)));
}

// True if every quoted-string in `s` is closed (backslash escapes inside quotes honoured).
bool quotes_closed(std::string_view s) {
  bool quoted = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (quoted && s[i] == '\\') {
      if (++i == s.size()) return false;
    } else if (s[i] == '"') {
      quoted = !quoted;
    }
  }
  return !quoted;
}

// An addr-spec with everything removed that could end the angle brackets or the field. A
// quoted local part ("john doe"@example) keeps its spaces and escapes; if the quotes do not
// pair up, quotes, backslashes and spaces are all dropped, so that no quoted-string can run
// past the closing angle bracket.
std::string clean_address(std::string_view raw) {
  const std::string text = header_text(raw);
  std::string out;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '<' || c == '>' || c == ',') continue;
    if (c == '"') {
      quoted = !quoted;
    } else if (c == '\\' && !quoted) {
      continue;
    } else if (c == '\\' && i + 1 < text.size()) {
      out.push_back(c);
      out.push_back(text[++i]);
      continue;
    } else if (c == ' ' && !quoted) {
      continue;
    }
    out.push_back(c);
  }
  cap_utf8(out, kMaxAddressBytes);
  if (!quotes_closed(out)) {
    std::erase_if(out, [](char c) { return c == '"' || c == '\\' || c == ' '; });
  }
  return out;
}

bool is_atom_char(char c) {
  return is_alnum(c) || std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr;
}

// The display-name phrase as tokens: atoms, one quoted-string, or encoded-words.
std::vector<std::string> phrase_tokens(std::string_view raw, std::string_view field_name) {
  std::string text = header_text(raw);
  cap_utf8(text, kMaxDisplayBytes);
  if (text.empty()) return {};
  if (is_printable_ascii(text) && text.find("=?") == std::string::npos) {
    bool atoms = true;
    for (char c : text) atoms = atoms && (c == ' ' || is_atom_char(c));
    if (atoms) return split_spaces(text);
    std::string q = "\"";
    for (char c : text) {
      if (c == '"' || c == '\\') q.push_back('\\');
      q.push_back(c);
    }
    q.push_back('"');
    return {q};
  }
  return encoded_words(text, first_word_budget(field_name));
}

// The valid msg-ids in `raw`, in order; a long list keeps the first and the most recent ones.
std::vector<std::string> msg_ids(std::string_view raw) {
  std::vector<std::string> ids;
  std::size_t i = 0;
  while ((i = raw.find('<', i)) != std::string_view::npos) {
    const std::size_t end = raw.find('>', i);
    if (end == std::string_view::npos) break;
    const std::string_view id = raw.substr(i, end - i + 1);
    if (is_msg_id(id)) ids.emplace_back(id);
    i = end + 1;
  }
  if (ids.size() > kMaxReferences) {
    ids.erase(ids.begin() + 1, ids.end() - static_cast<std::ptrdiff_t>(kMaxReferences - 1));
  }
  return ids;
}

bool is_field_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxFieldNameBytes) return false;
  for (char c : name) {
    if (c < 33 || c > 126 || c == ':') return false;
  }
  return true;
}

// Fields the composer writes itself or that must never come from a caller.
bool is_reserved_field(std::string_view name) {
  constexpr std::array<std::string_view, 13> kReserved = {
      "from",        "to",         "cc",           "bcc",    "subject",  "date",       "message-id",
      "in-reply-to", "references", "mime-version", "sender", "reply-to", "return-path"};
  for (auto r : kReserved) {
    if (iequals(name, r)) return true;
  }
  return name.size() >= 8 && iequals(name.substr(0, 8), "content-");
}

// The length of the line break at s[i] (a CR or LF): 2 for CRLF, else 1.
std::size_t break_length(std::string_view s, std::size_t i) {
  return s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n' ? 2 : 1;
}

// Text bodies: valid UTF-8 with every line break CRLF (RFC 2046 §4.1.1 canonical form).
std::string canonical_text(std::string_view valid) {
  std::string out;
  out.reserve(valid.size() + valid.size() / 32);
  std::size_t i = 0;
  while (i < valid.size()) {
    const std::size_t brk = ascii::find_line_break(valid, i);
    if (brk == std::string::npos) {
      out.append(valid, i, std::string::npos);
      break;
    }
    out.append(valid, i, brk - i).append("\r\n");
    i = brk + break_length(valid, brk);
  }
  return out;
}

// The bytes a 7bit body may hold within a line: printable ASCII and TAB.
constexpr std::array<bool, 256> k7bit = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c <= 0x7E; ++c) t[c] = true;
  t['\t'] = true;
  return t;
}();

// True if `body` can go as 7bit unchanged: printable ASCII and TAB, lines of at most 78
// characters, and line breaks only as CRLF; with `any_break`, a bare CR or LF counts as a line
// break too (what the body will be once canonical_text made it CRLF).
bool is_7bit_safe(std::string_view body, bool any_break = false) {
  const std::size_t n = body.size();
  std::size_t i = 0, line_start = 0;
  while (true) {
    while (i < n && k7bit[static_cast<unsigned char>(body[i])]) ++i;
    if (i - line_start > kBodyLine) return false;
    if (i == n) return true;
    if (body[i] != '\r' && !(any_break && body[i] == '\n')) return false;
    const std::size_t len = break_length(body, i);
    if (len == 1 && !any_break) return false;
    i += len;
    line_start = i;
  }
}

// What quoted_printable does with each byte.
enum class QpClass : unsigned char { literal, encode, blank, cr, lf };

constexpr std::array<QpClass, 256> kQpClasses = [] {
  std::array<QpClass, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[c] = c >= 33 && c <= 126 && c != '=' ? QpClass::literal : QpClass::encode;
  t[' '] = t['\t'] = QpClass::blank;
  t['\r'] = QpClass::cr;
  t['\n'] = QpClass::lf;
  return t;
}();

// Quoted-printable (RFC 2045 §6.7): CRLF pairs are line breaks, every other byte that is not
// printable ASCII (bare CR and LF included) is encoded, lines are at most 76 characters. With
// `any_break`, a bare CR or LF is a line break too: the encoding of canonical_text(in), written
// without that copy.
//
// With `valid` set, the bytes above 0x7F are checked on the way to be valid UTF-8 (the way
// to_valid_utf8 reads them); at the first that is not, *valid becomes false and "" is returned.
std::string quoted_printable(std::string_view in, bool any_break = false, bool* valid = nullptr) {
  // Written through a pointer into a buffer sized for the worst case (every byte encoded, a
  // soft break every 25 bytes: under 4 bytes out per byte in), then cut to size.
  std::string out(in.size() * 4 + 8, '\0');
  char* o = out.data();
  std::size_t line = 0;
  const std::size_t n = in.size();
  const auto cls = [&](std::size_t k) { return kQpClasses[static_cast<unsigned char>(in[k])]; };
  // True if the line break at in[k] (a CR or LF) is one.
  const auto is_break = [&](std::size_t k) {
    return any_break || (in[k] == '\r' && k + 1 < n && in[k + 1] == '\n');
  };
  std::size_t continuation = 0;  // bytes of a UTF-8 sequence checked already
  std::size_t i = 0;
  while (i < n) {
    const QpClass k = cls(i);
    if (k == QpClass::literal) {
      if (line == 75) {  // leave room for the soft line break "="
        *o++ = '=';
        *o++ = '\r';
        *o++ = '\n';
        line = 0;
      }
      // A run of literal bytes, as much of it as the line takes (75 - line), in one copy.
      const std::size_t limit = std::min(n, i + (75 - line));
      std::size_t j = i + 1;
      // A blank is literal too when another byte follows on its line.
      while (j < limit && (cls(j) == QpClass::literal ||
                           (cls(j) == QpClass::blank && j + 1 < n && cls(j + 1) <= QpClass::blank)))
        ++j;
      std::memcpy(o, in.data() + i, j - i);
      o += j - i;
      line += j - i;
      i = j;
      continue;
    }
    if ((k == QpClass::cr || k == QpClass::lf) && is_break(i)) {
      *o++ = '\r';
      *o++ = '\n';
      line = 0;
      i += break_length(in, i);
      continue;
    }
    const auto u = static_cast<unsigned char>(in[i]);
    if (valid && u >= 0x80) {
      if (continuation > 0) {
        --continuation;
      } else if (const std::size_t len = utf8::decode(in, i).length; len != 0) {
        continuation = len - 1;
      } else {
        *valid = false;
        return {};
      }
    }
    bool literal = false;
    if (k == QpClass::blank) {
      const bool at_line_end =
          i + 1 == n || ((cls(i + 1) == QpClass::cr || cls(i + 1) == QpClass::lf) &&
                         (any_break || (in[i + 1] == '\r' && i + 2 < n && in[i + 2] == '\n')));
      literal = !at_line_end;
    }
    const std::size_t len = literal ? 1 : 3;
    if (line + len > 75) {  // leave room for the soft line break "="
      *o++ = '=';
      *o++ = '\r';
      *o++ = '\n';
      line = 0;
    }
    if (literal) {
      *o++ = in[i];
    } else {
      *o++ = '=';
      *o++ = kHex[u >> 4];
      *o++ = kHex[u & 0xF];
    }
    line += len;
    ++i;
  }
  out.resize(static_cast<std::size_t>(o - out.data()));
  return out;
}

// Base64 in lines of 76 characters, CRLF between them, in one pass into a buffer sized once.
std::string base64_lines(std::string_view in) {
  constexpr std::size_t kLineBytes = 57;  // 76 characters of base64
  const std::size_t lines = (in.size() + kLineBytes - 1) / kLineBytes;
  std::string out((in.size() + 2) / 3 * 4 + (lines ? lines - 1 : 0) * 2, '\0');
  char* o = out.data();
  for (std::size_t i = 0; i < in.size(); i += kLineBytes) {
    if (i > 0) {
      *o++ = '\r';
      *o++ = '\n';
    }
    o = base64_to(o, in.substr(i, kLineBytes));
  }
  return out;
}

struct Part {
  std::string header;  // complete fields, each ending in CRLF
  std::string body;    // encoded, without the CRLF that precedes the next boundary
};

Part text_part(std::string_view subtype, std::string_view raw) {
  // Encoded from the caller's bytes when they are valid UTF-8 (the rendered report always is),
  // their line breaks made CRLF on the way: no copy of the text before its encoding.
  // Bytes that are 7bit-safe are ASCII, so valid UTF-8 too; otherwise the encoder checks
  // them on its way, and only a text that was not is made valid (to_valid_utf8) and encoded
  // again.
  Part p;
  p.header = "Content-Type: text/" + std::string(subtype) + "; charset=utf-8\r\n";
  if (is_7bit_safe(raw, true)) {
    p.header += "Content-Transfer-Encoding: 7bit\r\n";
    p.body = canonical_text(raw);
    return p;
  }
  bool valid = true;
  p.body = quoted_printable(raw, true, &valid);
  if (!valid) p.body = quoted_printable(to_valid_utf8(raw), true);  // U+FFFD: still not 7bit
  p.header += "Content-Transfer-Encoding: quoted-printable\r\n";
  return p;
}

bool is_token_char(char c) {
  return c > 32 && c < 127 && std::strchr("()<>@,;:\\\"/[]?=", c) == nullptr;
}

// "type/subtype" in lower case if `raw` starts with a valid one, followed by its parameters
// made header-safe; application/octet-stream otherwise.
std::string clean_content_type(std::string_view raw) {
  const std::string text = header_text(raw);
  const std::size_t semi = text.find(';');
  const std::string type = text.substr(0, semi);
  const std::size_t slash = type.find('/');
  bool ok = slash != std::string::npos && slash > 0 && slash + 1 < type.size();
  for (std::size_t i = 0; ok && i < type.size(); ++i) ok = i == slash || is_token_char(type[i]);
  if (!ok || !is_printable_ascii(text) || text.size() > 200) return "application/octet-stream";
  std::string out;
  for (char c : type) out.push_back(to_lower(c));
  if (semi != std::string::npos) out.append(text.substr(semi));
  return out;
}

// The Content-Disposition field for an attachment, with an RFC 2231 file name when it is not
// plain ASCII.
std::string disposition_field(std::string_view raw_name) {
  std::string name;
  for (char c : header_text(raw_name)) name.push_back(c == '/' || c == '\\' ? '_' : c);
  cap_utf8(name, kMaxFilenameBytes);
  if (name.empty()) name = "attachment";
  std::vector<std::string> tokens{"attachment;"};
  if (is_printable_ascii(name)) {
    std::string q = "filename=\"";
    for (char c : name) {
      if (c == '"' || c == '\\') q.push_back('\\');
      q.push_back(c);
    }
    q.push_back('"');
    tokens.push_back(q);
  } else {
    // RFC 2231 §3-4: percent-encoded UTF-8, in numbered sections that fit on a line.
    std::string encoded;
    for (char c : name) {
      const auto u = static_cast<unsigned char>(c);
      if (is_alnum(c) || std::strchr("!#$&+-.^_`|~", c) != nullptr) {
        encoded.push_back(c);
      } else {
        encoded.push_back('%');
        encoded.push_back(kHex[u >> 4]);
        encoded.push_back(kHex[u & 0xF]);
      }
    }
    constexpr std::size_t kSection = 60;
    std::vector<std::string> sections;
    std::size_t i = 0;
    while (i < encoded.size()) {
      std::size_t end = std::min(encoded.size(), i + kSection);
      // Never split a %XX triplet.
      if (end < encoded.size() && encoded[end - 1] == '%') end -= 1;
      if (end < encoded.size() && end >= 2 && encoded[end - 2] == '%') end -= 2;
      sections.push_back(encoded.substr(i, end - i));
      i = end;
    }
    if (sections.size() == 1) {
      tokens.push_back("filename*=utf-8''" + sections[0]);
    } else {
      for (std::size_t k = 0; k < sections.size(); ++k) {
        std::string t = "filename*" + std::to_string(k) + "*=" + (k == 0 ? "utf-8''" : "") +
                        sections[k] + (k + 1 < sections.size() ? ";" : "");
        tokens.push_back(std::move(t));
      }
    }
  }
  return fold("Content-Disposition", tokens);
}

Part attachment_part(const Attachment& a) {
  Part p;
  const std::string type = clean_content_type(a.content_type);
  p.header = "Content-Type: " + type + "\r\n" + disposition_field(a.filename);
  if (is_7bit_safe(a.body)) {
    p.header += "Content-Transfer-Encoding: 7bit\r\n";
    p.body = a.body;
  } else if (type.rfind("text/", 0) == 0) {
    p.header += "Content-Transfer-Encoding: quoted-printable\r\n";
    p.body = quoted_printable(a.body);
  } else {
    p.header += "Content-Transfer-Encoding: base64\r\n";
    p.body = base64_lines(a.body);
  }
  return p;
}

// True if `needle` occurs in `part`'s header or body.
bool occurs_in(const Part& part,
               const std::boyer_moore_horspool_searcher<std::string::const_iterator>& needle) {
  return std::search(part.header.begin(), part.header.end(), needle) != part.header.end() ||
         std::search(part.body.begin(), part.body.end(), needle) != part.body.end();
}

// A random boundary that occurs in none of `parts` and is not `taken`.
std::string fresh_boundary(const std::vector<const Part*>& parts, std::string_view taken = {}) {
  std::string boundary;
  for (int attempt = 0;; ++attempt) {
    // "=_" cannot start a line of quoted-printable or base64 output (RFC 2045 §7.2 idea).
    boundary = "=_ipconfirm_" + random_hex(32);
    const std::boyer_moore_horspool_searcher needle(boundary.cbegin(), boundary.cend());
    bool clash = boundary == taken;
    for (const Part* p : parts) clash = clash || occurs_in(*p, needle);
    if (!clash || attempt >= 100) break;
  }
  return boundary;
}

std::string multipart_header(std::string_view subtype, std::string_view boundary) {
  std::string h = "Content-Type: multipart/";
  h.append(subtype).append(";\r\n boundary=\"").append(boundary).append("\"\r\n");
  return h;
}

// A part after the delimiter line of `boundary`, appended to `out`.
void append_part(std::string& out, std::string_view boundary, const Part& p) {
  out.append("\r\n--").append(boundary).append("\r\n");
  out.append(p.header).append("\r\n").append(p.body);
}

std::string domain_of(std::string_view address) {
  const std::size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string{} : std::string(address.substr(at + 1));
}

}  // namespace

std::string make_message_id(std::string_view hostname) {
  std::string host;
  std::string label;
  auto flush = [&] {
    if (label.empty()) return;
    if (!host.empty()) host.push_back('.');
    host += label;
    label.clear();
  };
  for (char c : hostname.substr(0, 253)) {
    if (is_alnum(c) || c == '-') {
      label.push_back(to_lower(c));
    } else if (c == '.') {
      flush();
    }
  }
  flush();
  if (host.empty()) host = "localhost";
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return "<" + std::to_string(now) + "." + random_hex(16) + "@" + host + ">";
}

std::string compose(const OutgoingMessage& m) {
  std::string out;
  out += "Date: " + format_rfc5322_date(m.date_epoch) + "\r\n";

  const std::string from = clean_address(m.from_address);
  std::vector<std::string> from_tokens = phrase_tokens(m.from_display, "From");
  from_tokens.push_back("<" + from + ">");
  out += fold("From", from_tokens);
  out += fold("To", {"<" + clean_address(m.to_address) + ">"});
  out += unstructured_field("Subject", m.subject);

  const std::string id = is_msg_id(m.message_id) ? m.message_id : make_message_id(domain_of(from));
  out += "Message-ID: " + id + "\r\n";
  if (is_msg_id(m.in_reply_to)) out += "In-Reply-To: " + m.in_reply_to + "\r\n";
  if (auto refs = msg_ids(m.references); !refs.empty()) out += fold("References", refs);

  for (const auto& [name, value] : m.extra_headers) {
    if (!is_field_name(name) || is_reserved_field(name)) continue;
    out += unstructured_field(name, value);
  }
  out += "MIME-Version: 1.0\r\n";

  // Each part is encoded once and written once, straight into the message: multipart/mixed
  // { multipart/alternative { text, html } or the text alone, then the attachments }. A
  // boundary must occur in none of the parts it encloses; the mixed one encloses the
  // alternative one's delimiter lines too, which hold only that other boundary.
  const bool alternative = !m.html_body.empty();
  const Part text = text_part("plain", m.text_body);
  const Part html = alternative ? text_part("html", m.html_body) : Part{};
  std::vector<Part> attachments;
  attachments.reserve(m.attachments.size());
  for (const auto& a : m.attachments) attachments.push_back(attachment_part(a));
  std::vector<const Part*> leaves{&text};
  if (alternative) leaves.push_back(&html);
  const std::string alternative_boundary = alternative ? fresh_boundary(leaves) : std::string();
  for (const Part& a : attachments) leaves.push_back(&a);
  const std::string mixed_boundary = fresh_boundary(leaves, alternative_boundary);

  std::size_t size = out.size() + 512;
  for (const Part* p : leaves) size += p->header.size() + p->body.size() + 128;
  out.reserve(size);
  out += multipart_header("mixed", mixed_boundary);
  out += "\r\nThis is a multi-part message in MIME format.\r\n";
  if (alternative) {
    append_part(out, mixed_boundary,
                Part{multipart_header("alternative", alternative_boundary), std::string()});
    append_part(out, alternative_boundary, text);
    append_part(out, alternative_boundary, html);
    out.append("\r\n--").append(alternative_boundary).append("--\r\n");
  } else {
    append_part(out, mixed_boundary, text);
  }
  for (const Part& a : attachments) append_part(out, mixed_boundary, a);
  out.append("\r\n--").append(mixed_boundary).append("--\r\n");
  return out;
}

}  // namespace ipconfirm::mime

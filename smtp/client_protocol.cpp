#include "smtp/client_protocol.hpp"
#include "core/ascii.hpp"
#include "smtp/command_parser.hpp"

#include <cstdint>
#include <cstring>
#include <limits>

namespace ipconfirm::smtp {

namespace {

using ascii::is_alnum;
using ascii::is_digit;

char to_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_upper(c);
  return out;
}

// RFC 5321 §4.2 textstring is HT and printable ASCII; octets above 127 are tolerated because
// servers announcing SMTPUTF8 send UTF-8 text. Everything else (NUL, CR, other controls, DEL)
// has no business in a reply.
bool is_reply_text_octet(char c) {
  auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t start = i;
    while (i < s.size() && s[i] != ' ') ++i;
    if (i > start) words.push_back(s.substr(start, i - start));
  }
  return words;
}

// A decimal number that fits in size_t; nullopt on anything else.
std::optional<std::size_t> parse_size(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  std::size_t value = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    auto digit = static_cast<std::size_t>(c - '0');
    if (value > (std::numeric_limits<std::size_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

}  // namespace

ReplyReader::Out ReplyReader::next(std::string_view buf) {
  auto fail = [this](std::string message) {
    error_ = std::move(message);
    partial_ = Reply{};
    return Out{Status::error, 0, Reply{}, error_};
  };
  if (!error_.empty()) return Out{Status::error, 0, Reply{}, error_};

  std::size_t pos = 0;
  for (;;) {
    std::string_view rest = buf.substr(pos);
    std::size_t lf = rest.find('\n');
    if (lf == std::string_view::npos) {
      // The line cannot end within max_line octets (CRLF included) any more.
      if (rest.size() >= max_line) return fail("reply line longer than 2048 octets");
      return Out{Status::need_more, pos, Reply{}, {}};
    }
    if (lf + 1 > max_line) return fail("reply line longer than 2048 octets");
    if (lf == 0 || rest[lf - 1] != '\r') return fail("reply line not ended by CRLF");
    std::string_view line = rest.substr(0, lf - 1);

    if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) ||
        line[0] < '2' || line[0] > '5') {
      return fail("malformed reply code");
    }
    bool last = true;
    if (line.size() > 3) {
      if (line[3] == '-') {
        last = false;
      } else if (line[3] != ' ') {
        return fail("malformed reply code");
      }
    }
    std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view{};
    for (char c : text) {
      if (!is_reply_text_octet(c)) return fail("control character in reply");
    }
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (!partial_.lines.empty() && code != partial_.code) {
      return fail("reply code changes within a multi-line reply");
    }
    if (partial_.lines.size() >= max_lines) return fail("reply longer than 100 lines");
    partial_.code = code;
    partial_.lines.emplace_back(text);
    pos += lf + 1;

    if (last) {
      Out out{Status::reply, pos, std::move(partial_), {}};
      partial_ = Reply{};
      return out;
    }
  }
}

std::string dot_stuff(std::string_view message) {
  std::string out;
  out.reserve(message.size() + message.size() / 32 + 5);
  // Line by line: each line's text goes in one append, with a '.' before it if it starts with
  // one; CRLF, bare CR and bare LF all end a line and become CRLF.
  std::size_t i = 0;
  const std::size_t n = message.size();
  while (i < n) {
    std::size_t brk = ascii::find_line_break(message, i);
    if (brk == std::string_view::npos) brk = n;
    if (message[i] == '.') out += '.';
    out.append(message.data() + i, brk - i);
    if (brk == n) {
      out += "\r\n";  // the last line had no line break
      break;
    }
    out += "\r\n";
    i = brk + (message[brk] == '\r' && brk + 1 < n && message[brk + 1] == '\n' ? 2 : 1);
  }
  out += ".\r\n";
  return out;
}

bool has_8bit(std::string_view text) {
  // Eight bytes at a time: any byte with its high bit set.
  std::size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    if (word & 0x8080808080808080ull) return true;
  }
  for (; i < text.size(); ++i) {
    if (static_cast<unsigned char>(text[i]) >= 0x80) return true;
  }
  return false;
}

Capabilities parse_ehlo(const Reply& r) {
  Capabilities caps;
  for (std::size_t i = 1; i < r.lines.size(); ++i) {
    std::vector<std::string_view> words = split_words(r.lines[i]);
    if (words.empty()) continue;
    std::string keyword = upper(words[0]);
    if (keyword == "STARTTLS") {
      caps.starttls = true;
    } else if (keyword == "PIPELINING") {
      caps.pipelining = true;
    } else if (keyword == "8BITMIME") {
      caps.eightbitmime = true;
    } else if (keyword == "SMTPUTF8") {
      caps.smtputf8 = true;
    } else if (keyword == "SIZE") {
      std::optional<std::size_t> limit;
      if (words.size() > 1) limit = parse_size(words[1]);
      caps.size = limit.value_or(0);
    } else if (keyword == "AUTH" || keyword.rfind("AUTH=", 0) == 0) {
      // "AUTH=PLAIN LOGIN" is the pre-RFC 4954 form some servers still announce.
      if (keyword.size() > 5) words[0] = words[0].substr(5);
      std::size_t first = (keyword == "AUTH" || keyword == "AUTH=") ? 1 : 0;
      for (std::size_t w = first; w < words.size(); ++w) {
        std::string mechanism = upper(words[w]);
        bool known = false;
        for (const auto& m : caps.auth) known = known || m == mechanism;
        if (!known) caps.auth.push_back(std::move(mechanism));
      }
    }
  }
  return caps;
}

SmtpAddressResult smtp_address(std::string_view address) {
  SmtpAddressResult out;
  if (address.empty()) {
    out.address = SmtpAddress{};
    return out;
  }
  std::string arg = "TO:<";
  arg += address;
  arg += '>';
  // RCPT's grammar is MAIL's without <>; 8-bit is allowed (the caller then asks for SMTPUTF8).
  PathResult r = parse_rcpt_to(arg, true);
  const bool path_ok = r.error == PathError::none || r.error == PathError::address_literal;
  if (!path_ok || !r.mailbox || !r.params.empty()) {
    out.error = r.error == PathError::none || r.detail.empty() ? "not a single mailbox" : r.detail;
    return out;
  }
  SmtpAddress a;
  a.text = r.mailbox->to_string();
  a.utf8 = has_8bit(a.text);
  out.address = std::move(a);
  return out;
}

bool is_safe_helo_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  bool literal = name.front() == '[';
  if (literal && (name.size() < 3 || name.back() != ']')) return false;
  std::string_view inner = literal ? name.substr(1, name.size() - 2) : name;
  for (char c : inner) {
    if (!(is_alnum(c) || c == '-' || c == '.' || (literal && c == ':'))) return false;
  }
  return true;
}

std::string mail_from_command(std::string_view sender, const MailParameters& params) {
  std::string out = "MAIL FROM:<";
  out += sender;
  out += '>';
  if (params.size) out += " SIZE=" + std::to_string(*params.size);
  if (params.body_8bitmime) out += " BODY=8BITMIME";
  if (params.smtputf8) out += " SMTPUTF8";
  out += "\r\n";
  return out;
}

std::string rcpt_to_command(std::string_view recipient) {
  std::string out = "RCPT TO:<";
  out += recipient;
  out += ">\r\n";
  return out;
}

std::string base64_encode(std::string_view data) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto octet = [&](std::size_t k) {
    return static_cast<unsigned>(static_cast<unsigned char>(data[k]));
  };
  for (; i + 2 < data.size(); i += 3) {
    unsigned v = (octet(i) << 16) | (octet(i + 1) << 8) | octet(i + 2);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  std::size_t left = data.size() - i;
  if (left == 1) {
    unsigned v = octet(i) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (left == 2) {
    unsigned v = (octet(i) << 16) | (octet(i + 1) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> auth_plain_response(std::string_view user, std::string_view password) {
  if (user.find('\0') != std::string_view::npos || password.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  std::string raw;
  raw += '\0';
  raw += user;
  raw += '\0';
  raw += password;
  return base64_encode(raw);
}

std::string describe(const Reply& r, std::size_t max) {
  std::string out = std::to_string(r.code);
  for (std::size_t i = 0; i < r.lines.size(); ++i) {
    out += i == 0 ? " " : " / ";
    out += r.lines[i];
    if (out.size() >= max) break;
  }
  if (out.size() > max) out.resize(max);
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) c = '?';
  }
  return out;
}

}  // namespace ipconfirm::smtp

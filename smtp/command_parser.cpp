#include "smtp/command_parser.hpp"

#include <array>
#include <cstddef>
#include <utility>

#include "core/ascii.hpp"
#include "core/domain.hpp"
#include "core/ip_address.hpp"

namespace ipconfirm::smtp {

namespace {

constexpr std::size_t max_local_part = 64;  // RFC 5321 §4.5.3.1.1
constexpr std::size_t max_domain = 255;     // §4.5.3.1.2
constexpr std::size_t max_path = 256;       // §4.5.3.1.3, brackets included

unsigned char byte(char c) {
  return static_cast<unsigned char>(c);
}
using ascii::iequals;
using ascii::is_alpha;
using ascii::is_digit;

bool is_let_dig(char c) {
  return is_alpha(c) || is_digit(c);
}
bool is_8bit(char c) {
  return byte(c) >= 0x80;
}
bool is_ctl(char c) {
  return byte(c) < 0x20 || byte(c) == 0x7f;
}
char to_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

// qtextSMTP: printable ASCII but '"' and '\'.
bool is_qtext(char c) {
  return byte(c) >= 32 && byte(c) <= 126 && c != '"' && c != '\\';
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool has_8bit(std::string_view s) {
  for (char c : s) {
    if (is_8bit(c)) return true;
  }
  return false;
}

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = byte(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const unsigned char t = byte(s[i + k]);
      if (t < (k == 1 ? lo : 0x80) || t > (k == 1 ? hi : 0xbf)) return false;
    }
    i += n + 1;
  }
  return true;
}

// Dot-string (§4.1.2), with UTF8-non-ascii as atext (RFC 6531 §3.3) when `utf8`.
bool is_dot_string(std::string_view s, bool utf8) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char c : s) {
    if (c == '.') {
      if (prev == '.') return false;
    } else if (!ascii::is_atext(c) && !(utf8 && is_8bit(c))) {
      return false;
    }
    prev = c;
  }
  return true;
}

// Domain (§4.1.2): sub-domains of let-dig and '-', not starting or ending with '-'. With
// `utf8`, 8-bit bytes count as letters (U-labels, RFC 6531 §3.3); the caller checks UTF-8.
// The inside of an address literal (§4.1.3): an IPv4 address or "IPv6:" and an IPv6 address.
// General-address-literal needs an IANA-registered tag and none is registered, so "[tag:x]" is
// refused, as is an IPv6 address without its tag.
bool address_literal_ok(std::string_view s) {
  if (istarts_with(s, "IPv6:")) {
    const auto ip = IpAddress::parse(s.substr(5));
    return ip.has_value();
  }
  return s.find(':') == std::string_view::npos && IpAddress::parse(s).has_value();
}

PathResult fail(PathError error, std::string detail) {
  PathResult r;
  r.error = error;
  r.detail = std::move(detail);
  return r;
}

// Reads a Mailbox starting at s[pos] and ending just before '>'. On success `pos` is at '>'.
// Errors that still leave a well-formed mailbox (address_literal) set r.mailbox.
PathResult parse_mailbox(std::string_view s, std::size_t& pos, bool utf8_allowed) {
  Mailbox mb;
  const std::size_t local_start = pos;
  bool local_8bit = false;
  if (pos < s.size() && s[pos] == '"') {
    ++pos;
    while (true) {
      if (pos == s.size()) return fail(PathError::missing_brackets, "unterminated quoted string");
      const char c = s[pos];
      if (c == '"') {
        ++pos;
        break;
      }
      if (c == '\\') {
        if (pos + 1 == s.size() || byte(s[pos + 1]) < 32 || byte(s[pos + 1]) > 126) {
          return fail(PathError::bad_local_part, "invalid quoted pair in local part");
        }
        mb.local += s[pos + 1];
        pos += 2;
        continue;
      }
      if (is_8bit(c)) {
        local_8bit = true;
      } else if (!is_qtext(c)) {
        return fail(PathError::bad_local_part, "invalid character in quoted local part");
      }
      mb.local += c;
      ++pos;
    }
  } else {
    while (pos < s.size() && (ascii::is_atext(s[pos]) || s[pos] == '.' || is_8bit(s[pos]))) {
      local_8bit = local_8bit || is_8bit(s[pos]);
      ++pos;
    }
    mb.local = std::string(s.substr(local_start, pos - local_start));
    if (pos == s.size()) return fail(PathError::missing_brackets, "missing closing >");
    if (s[pos] != '@' && s[pos] != '>') {
      return fail(PathError::bad_local_part, "invalid character in local part");
    }
    if (!is_dot_string(mb.local, true)) {
      return fail(PathError::bad_local_part, "local part is not a valid dot-string");
    }
  }
  if (pos == s.size()) return fail(PathError::missing_brackets, "missing closing >");
  if (s[pos] != '@') {
    if (s[pos] == '>') return fail(PathError::syntax, "missing @domain");
    return fail(PathError::bad_local_part, "invalid character after local part");
  }
  if (pos - local_start > max_local_part) {
    return fail(PathError::too_long, "local part longer than 64 octets");
  }
  if (local_8bit) {
    if (!utf8_allowed) return fail(PathError::utf8_not_allowed, "8-bit local part needs SMTPUTF8");
    if (!is_valid_utf8(mb.local)) return fail(PathError::bad_local_part, "invalid UTF-8");
  }
  ++pos;  // '@'

  const std::size_t domain_start = pos;
  if (pos < s.size() && s[pos] == '[') {
    const std::size_t close = s.find(']', pos);
    if (close == std::string_view::npos) {
      return fail(PathError::bad_domain, "unterminated address literal");
    }
    pos = close + 1;
    mb.domain = std::string(s.substr(domain_start, pos - domain_start));
    if (pos == s.size()) return fail(PathError::missing_brackets, "missing closing >");
    if (s[pos] != '>') return fail(PathError::bad_domain, "invalid character after domain");
    if (mb.domain.size() > max_domain) {
      return fail(PathError::too_long, "domain longer than 255 octets");
    }
    if (!address_literal_ok(s.substr(domain_start + 1, close - domain_start - 1))) {
      return fail(PathError::bad_domain, "invalid address literal");
    }
    PathResult r = fail(PathError::address_literal, "address literals are not accepted");
    r.mailbox = std::move(mb);
    return r;
  }
  bool domain_8bit = false;
  while (pos < s.size() &&
         (is_let_dig(s[pos]) || s[pos] == '-' || s[pos] == '.' || is_8bit(s[pos]))) {
    domain_8bit = domain_8bit || is_8bit(s[pos]);
    ++pos;
  }
  mb.domain = std::string(s.substr(domain_start, pos - domain_start));
  if (pos == s.size()) return fail(PathError::missing_brackets, "missing closing >");
  if (s[pos] != '>') return fail(PathError::bad_domain, "invalid character in domain");
  if (mb.domain.size() > max_domain) {
    return fail(PathError::too_long, "domain longer than 255 octets");
  }
  if (domain_8bit) {
    if (!utf8_allowed) return fail(PathError::utf8_not_allowed, "8-bit domain needs SMTPUTF8");
    if (!is_valid_utf8(mb.domain)) return fail(PathError::bad_domain, "invalid UTF-8");
  }
  if (!is_valid_domain(mb.domain, true)) return fail(PathError::bad_domain, "invalid domain");
  PathResult r;
  r.mailbox = std::move(mb);
  return r;
}

// Reads an A-d-l (§4.1.2) "@one,@two:" starting at s[pos] == '@'; on success `pos` is after
// the ':'.
bool skip_source_route(std::string_view s, std::size_t& pos) {
  while (true) {
    if (pos == s.size() || s[pos] != '@') return false;
    const std::size_t start = ++pos;
    while (pos < s.size() && s[pos] != ',' && s[pos] != ':' && s[pos] != '>') ++pos;
    if (pos == s.size() || s[pos] == '>') return false;
    if (!is_valid_domain(s.substr(start, pos - start))) return false;
    if (s[pos++] == ':') return true;
  }
}

// esmtp-param *(SP esmtp-param) (§4.1.2); esmtp-value may carry UTF-8 with SMTPUTF8 (RFC
// 6531 §3.3).
bool parse_params(std::string_view s, bool utf8_allowed, std::vector<PathParam>& out,
                  std::string& detail) {
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t end = s.find(' ', start);
    if (end == std::string_view::npos) end = s.size();
    const std::string_view param = s.substr(start, end - start);
    const std::size_t eq = param.find('=');
    const std::string_view keyword = param.substr(0, eq);
    if (keyword.empty() || !is_let_dig(keyword.front())) {
      detail = param.empty() ? "empty parameter" : "invalid parameter keyword";
      return false;
    }
    PathParam p;
    for (char c : keyword) {
      if (!is_let_dig(c) && c != '-') {
        detail = "invalid parameter keyword";
        return false;
      }
      p.keyword += to_upper(c);
    }
    if (eq != std::string_view::npos) {
      const std::string_view value = param.substr(eq + 1);
      bool eightbit = false;
      for (char c : value) {
        if (is_8bit(c)) {
          eightbit = true;
        } else if (byte(c) < 33 || byte(c) > 126 || c == '=') {
          detail = "invalid parameter value";
          return false;
        }
      }
      if (value.empty() || (eightbit && (!utf8_allowed || !is_valid_utf8(value)))) {
        detail = "invalid parameter value";
        return false;
      }
      p.value = std::string(value);
    }
    if (p.keyword == "SIZE") {
      // RFC 1870: size-value ::= 1*20DIGIT
      bool digits = !p.value.empty() && p.value.size() <= 20;
      for (char c : p.value) digits = digits && is_digit(c);
      if (!digits) {
        detail = "SIZE needs a number";
        return false;
      }
    } else if (p.keyword == "SMTPUTF8" && eq != std::string_view::npos) {
      detail = "SMTPUTF8 takes no value";
      return false;
    }
    out.push_back(std::move(p));
    start = end + 1;
  }
  return true;
}

PathResult parse_path_arg(std::string_view arg, std::string_view prefix, bool is_mail,
                          bool utf8_allowed) {
  for (char c : arg) {
    if (is_ctl(c)) return fail(PathError::syntax, "control character in command");
  }
  if (!istarts_with(arg, prefix)) {
    return fail(PathError::syntax, is_mail ? "expected FROM:<address>" : "expected TO:<address>");
  }
  std::string_view s = arg.substr(prefix.size());
  if (!s.empty() && s.front() == ' ') s.remove_prefix(1);  // "FROM: <a@b>" is common
  if (s.empty()) return fail(PathError::syntax, "missing address");
  if (s.front() != '<') {
    if (s.front() == ' ') return fail(PathError::syntax, "unexpected space before address");
    return fail(PathError::missing_brackets, "address must be enclosed in <>");
  }

  std::size_t pos = 1;
  PathResult r;
  if (pos < s.size() && s[pos] == '>') {
    if (!is_mail) return fail(PathError::syntax, "null path is not a recipient");
  } else if (!is_mail && istarts_with(s.substr(pos), "postmaster>")) {
    r.mailbox = Mailbox{std::string(s.substr(pos, 10)), {}};
    pos += 10;
  } else {
    bool routed = false;
    if (pos < s.size() && s[pos] == '@') {
      if (!skip_source_route(s, pos)) return fail(PathError::syntax, "invalid source route");
      routed = true;
    }
    r = parse_mailbox(s, pos, utf8_allowed);
    if (routed) {
      if (r.error != PathError::none) r.mailbox.reset();
      r.error = PathError::source_route;
      r.detail = "source routes are not accepted";
    }
    if (r.error != PathError::none && !r.mailbox) return r;
  }
  ++pos;  // '>'
  if (pos > max_path) {
    return fail(PathError::too_long, "path longer than 256 octets");
  }

  const std::string_view rest = s.substr(pos);
  if (!rest.empty()) {
    if (rest.front() != ' ') return fail(PathError::syntax, "unexpected text after address");
    std::string detail;
    if (!parse_params(rest.substr(1), utf8_allowed, r.params, detail)) {
      r.error = PathError::bad_parameter;
      r.detail = std::move(detail);
      r.params.clear();
      return r;
    }
  }
  if (is_mail && r.mailbox && (has_8bit(r.mailbox->local) || has_8bit(r.mailbox->domain))) {
    bool smtputf8 = false;
    for (const auto& p : r.params) smtputf8 = smtputf8 || p.keyword == "SMTPUTF8";
    if (!smtputf8) {
      return fail(PathError::utf8_not_allowed, "8-bit address needs the SMTPUTF8 parameter");
    }
  }
  return r;
}

struct VerbName {
  std::string_view name;
  Verb verb;
};

constexpr std::array<VerbName, 14> verbs{{
    {"EHLO", Verb::ehlo},
    {"HELO", Verb::helo},
    {"MAIL", Verb::mail},
    {"RCPT", Verb::rcpt},
    {"DATA", Verb::data},
    {"RSET", Verb::rset},
    {"NOOP", Verb::noop},
    {"QUIT", Verb::quit},
    {"VRFY", Verb::vrfy},
    {"EXPN", Verb::expn},
    {"HELP", Verb::help},
    {"STARTTLS", Verb::starttls},
    {"AUTH", Verb::auth},
    {"BDAT", Verb::bdat},
}};

}  // namespace

Command parse_command(std::string_view line) {
  const std::size_t sp = line.find(' ');
  Command c{Verb::unknown, line.substr(0, sp), {}};
  if (sp != std::string_view::npos) c.arg = line.substr(sp + 1);
  for (const auto& v : verbs) {
    if (iequals(c.verb_text, v.name)) {
      c.verb = v.verb;
      break;
    }
  }
  return c;
}

std::string Mailbox::to_string() const {
  std::string out;
  if (is_dot_string(local, true)) {
    out = local;
  } else {
    out.reserve(local.size() + 4);
    out += '"';
    for (char c : local) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  if (!domain.empty()) {
    out += '@';
    out += domain;
  }
  return out;
}

PathResult parse_mail_from(std::string_view arg, bool utf8_allowed) {
  return parse_path_arg(arg, "FROM:", true, utf8_allowed);
}

PathResult parse_rcpt_to(std::string_view arg, bool utf8_allowed) {
  return parse_path_arg(arg, "TO:", false, utf8_allowed);
}

}  // namespace ipconfirm::smtp

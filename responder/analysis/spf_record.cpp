// SPF record parser and macro expander. See spf_record.hpp.
#include "responder/analysis/spf_record.hpp"

#include <algorithm>

#include "core/ascii.hpp"

namespace ipconfirm::responder {

namespace {

constexpr std::string_view kDelimiters = ".-+,/_=";

bool is_macro_letter(char c, bool explanation) {
  switch (ascii::to_lower(c)) {
    case 's':
    case 'l':
    case 'o':
    case 'd':
    case 'i':
    case 'p':
    case 'h':
    case 'v':
      return true;
    case 'c':
    case 'r':
    case 't':
      return explanation;
    default:
      return false;
  }
}

// A visible character other than '%' (macro-literal, §7.1).
bool is_macro_literal(char c) {
  return c >= 0x21 && c <= 0x7e && c != '%';
}

std::string hex_byte(unsigned char b) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out = "%";
  out += kHex[b >> 4];
  out += kHex[b & 0x0f];
  return out;
}

// URL-escapes everything outside the unreserved set of RFC 3986 (§7.3).
std::string url_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (ascii::is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
      out += c;
    else
      out += hex_byte(static_cast<unsigned char>(c));
  }
  return out;
}

std::string dotted_nibbles(const IpAddress& ip) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(63);
  for (std::uint8_t b : ip.bytes()) {
    if (!out.empty()) out += '.';
    out += kHex[b >> 4];
    out += '.';
    out += kHex[b & 0x0f];
  }
  return out;
}

std::string macro_value(char letter, const SpfMacroContext& ctx) {
  switch (ascii::to_lower(letter)) {
    case 's':
      return std::string(ctx.sender);
    case 'l':
      return std::string(ctx.local_part);
    case 'o':
      return std::string(ctx.sender_domain);
    case 'd':
      return std::string(ctx.domain);
    case 'i':
      return ctx.ip.is_v4() ? ctx.ip.to_string() : dotted_nibbles(ctx.ip);
    case 'p':
      return ctx.validated_ptr.empty() ? std::string("unknown") : std::string(ctx.validated_ptr);
    case 'v':
      return ctx.ip.is_v4() ? "in-addr" : "ip6";
    case 'h':
      return std::string(ctx.helo);
    case 'c':
      return ctx.ip.to_string();
    case 'r':
      return ctx.receiver.empty() ? std::string("unknown") : std::string(ctx.receiver);
    case 't':
      return std::to_string(ctx.now);
    default:
      return {};
  }
}

// Splits on any of `delimiters`, optionally reverses, keeps the `keep` right-most parts
// (0: all) and joins with '.' (§7.3).
std::string transform(std::string_view value, std::string_view delimiters, bool reverse,
                      std::size_t keep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= value.size(); ++i) {
    if (i == value.size() || delimiters.find(value[i]) != std::string_view::npos) {
      parts.push_back(value.substr(start, i - start));
      start = i + 1;
    }
  }
  if (reverse) std::reverse(parts.begin(), parts.end());
  std::size_t first = 0;
  if (keep != 0 && keep < parts.size()) first = parts.size() - keep;
  std::string out;
  for (std::size_t i = first; i < parts.size(); ++i) {
    if (i != first) out += '.';
    out += parts[i];
  }
  return out;
}

struct Scan {
  bool ok = true;
  bool uses_p = false;
  std::size_t last_expand_end = std::string_view::npos;  // just after the last macro-expand
};

// Walks a macro-string once: validates it and, when `ctx` and `out` are given, expands it.
// Stops with ok = false on the first syntax error or when `out` would pass the size bound.
Scan scan(std::string_view s, bool explanation, const SpfMacroContext* ctx, std::string* out) {
  Scan r;
  auto fail = [&r] {
    r.ok = false;
    return r;
  };
  auto append = [&](std::string_view v) {
    if (!out) return true;
    if (out->size() + v.size() > kMaxMacroExpansion) return false;
    out->append(v);
    return true;
  };
  std::size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c != '%') {
      if (!(is_macro_literal(c) || (explanation && c == ' '))) return fail();
      if (!append(s.substr(i, 1))) return fail();
      ++i;
      continue;
    }
    if (i + 1 >= s.size()) return fail();
    const char n = s[i + 1];
    if (n == '%' || n == '_' || n == '-') {
      if (!append(n == '%' ? "%" : n == '_' ? " " : "%20")) return fail();
      i += 2;
      r.last_expand_end = i;
      continue;
    }
    if (n != '{') return fail();
    std::size_t j = i + 2;
    if (j >= s.size() || !is_macro_letter(s[j], explanation)) return fail();
    const char letter = s[j++];
    if (ascii::to_lower(letter) == 'p') r.uses_p = true;
    // transformers = *DIGIT [ "r" ]; a DIGIT transformer must be non-zero.
    std::size_t keep = 0;
    bool has_digits = false;
    while (j < s.size() && ascii::is_digit(s[j])) {
      has_digits = true;
      // More parts than any name can have behave like "all"; cap to stay in range.
      keep = std::min<std::size_t>(keep * 10 + static_cast<std::size_t>(s[j] - '0'), 1000);
      ++j;
    }
    if (has_digits && keep == 0) return fail();
    bool reverse = false;
    if (j < s.size() && ascii::to_lower(s[j]) == 'r') {
      reverse = true;
      ++j;
    }
    const std::size_t delim_start = j;
    while (j < s.size() && kDelimiters.find(s[j]) != std::string_view::npos) ++j;
    if (j >= s.size() || s[j] != '}') return fail();
    std::string_view delimiters = s.substr(delim_start, j - delim_start);
    if (delimiters.empty()) delimiters = ".";
    if (ctx && out) {
      std::string value = macro_value(letter, *ctx);
      if (value.size() > kMaxMacroExpansion) return fail();
      value = transform(value, delimiters, reverse, keep);
      if (letter >= 'A' && letter <= 'Z') value = url_escape(value);
      if (!append(value)) return fail();
    }
    i = j + 1;
    r.last_expand_end = i;
  }
  return r;
}

// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
bool is_toplabel(std::string_view t) {
  if (t.empty() || !ascii::is_alnum(t.front()) || !ascii::is_alnum(t.back())) return false;
  bool alpha_or_dash = false;
  for (char c : t) {
    if (!ascii::is_alnum(c) && c != '-') return false;
    if (ascii::is_alpha(c) || c == '-') alpha_or_dash = true;
  }
  return alpha_or_dash;
}

// A CIDR length: "0" or a number without leading zero, at most `max`.
std::optional<int> parse_cidr(std::string_view digits, int max) {
  if (digits.empty() || digits.size() > 3) return std::nullopt;
  if (digits.size() > 1 && digits.front() == '0') return std::nullopt;
  int v = 0;
  for (char c : digits) {
    if (!ascii::is_digit(c)) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

// The digits after the last '/' of `s` when everything after it is digits, else nullopt.
std::optional<std::size_t> trailing_slash_digits(std::string_view s) {
  const std::size_t slash = s.rfind('/');
  if (slash == std::string_view::npos || slash + 1 == s.size()) return std::nullopt;
  for (std::size_t i = slash + 1; i < s.size(); ++i)
    if (!ascii::is_digit(s[i])) return std::nullopt;
  return slash;
}

bool is_modifier_name(std::string_view n) {
  if (n.empty() || !ascii::is_alpha(n.front())) return false;
  for (char c : n)
    if (!ascii::is_alnum(c) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

std::string quote(std::string_view term) {
  return "'" + std::string(term) + "'";
}

// Parses the part of an a/mx term after its name: "" | ":" domain-spec [cidr] | cidr.
bool parse_a_mx_argument(std::string_view rest, SpfMechanism& m, std::string& error) {
  // dual-cidr-length = [ "/" ip4-cidr ] [ "//" ip6-cidr ], taken from the end.
  if (auto slash = trailing_slash_digits(rest); slash && *slash > 0 && rest[*slash - 1] == '/') {
    auto v = parse_cidr(rest.substr(*slash + 1), 128);
    if (!v) return error = "invalid IPv6 CIDR length in " + quote(m.text), false;
    m.cidr6 = *v;
    rest = rest.substr(0, *slash - 1);
  }
  if (auto slash = trailing_slash_digits(rest)) {
    auto v = parse_cidr(rest.substr(*slash + 1), 32);
    if (!v) return error = "invalid IPv4 CIDR length in " + quote(m.text), false;
    m.cidr4 = *v;
    rest = rest.substr(0, *slash);
  }
  if (rest.empty()) return true;
  if (rest.front() != ':') return error = "unexpected text in " + quote(m.text), false;
  rest.remove_prefix(1);
  if (rest.empty()) return error = "empty domain in " + quote(m.text), false;
  if (!is_valid_domain_spec(rest)) return error = "invalid domain in " + quote(m.text), false;
  m.domain_spec = std::string(rest);
  return true;
}

bool parse_ip_argument(std::string_view rest, bool v6, SpfMechanism& m, std::string& error) {
  if (rest.size() < 2 || rest.front() != ':')
    return error = "missing address in " + quote(m.text), false;
  rest.remove_prefix(1);
  std::string_view net = rest;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    auto v = parse_cidr(rest.substr(slash + 1), v6 ? 128 : 32);
    if (!v) return error = "invalid CIDR length in " + quote(m.text), false;
    (v6 ? m.cidr6 : m.cidr4) = *v;
    net = rest.substr(0, slash);
  }
  const bool has_colon = net.find(':') != std::string_view::npos;
  const auto ip = has_colon == v6 ? IpAddress::parse(net) : std::nullopt;
  if (!ip) return error = "invalid address in " + quote(m.text), false;
  if (v6 && ip->is_v4()) {  // IpAddress folds ::ffff:a.b.c.d to IPv4; keep it IPv6 here
    m.network = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    std::copy_n(ip->bytes().begin(), 4, m.network.begin() + 12);
  } else {
    m.network = ip->bytes();
  }
  return true;
}

bool parse_mechanism(std::string_view term, SpfMechanism& m, std::string& error) {
  m.text = std::string(term);
  std::string_view body = term;
  switch (body.front()) {
    case '+':
      m.qualifier = SpfQualifier::pass;
      body.remove_prefix(1);
      break;
    case '-':
      m.qualifier = SpfQualifier::fail;
      body.remove_prefix(1);
      break;
    case '~':
      m.qualifier = SpfQualifier::softfail;
      body.remove_prefix(1);
      break;
    case '?':
      m.qualifier = SpfQualifier::neutral;
      body.remove_prefix(1);
      break;
    default:
      break;
  }
  const std::size_t name_end = std::min(body.find(':'), body.find('/'));
  const std::string name = ascii::lower(body.substr(0, name_end));
  const std::string_view rest =
      name_end == std::string_view::npos ? std::string_view{} : body.substr(name_end);
  if (name == "all") {
    m.kind = SpfMechanismKind::all;
    if (!rest.empty()) return error = "'all' takes no argument: " + quote(term), false;
    return true;
  }
  if (name == "include" || name == "exists") {
    m.kind = name == "include" ? SpfMechanismKind::include : SpfMechanismKind::exists;
    if (rest.empty() || rest.front() != ':')
      return error = quote(name) + " needs a domain: " + quote(term), false;
    const std::string_view spec = rest.substr(1);
    if (spec.empty()) return error = "empty domain in " + quote(term), false;
    if (!is_valid_domain_spec(spec)) return error = "invalid domain in " + quote(term), false;
    m.domain_spec = std::string(spec);
    return true;
  }
  if (name == "a" || name == "mx") {
    m.kind = name == "a" ? SpfMechanismKind::a : SpfMechanismKind::mx;
    return parse_a_mx_argument(rest, m, error);
  }
  if (name == "ptr") {
    m.kind = SpfMechanismKind::ptr;
    if (rest.empty()) return true;
    if (rest.front() != ':') return error = "'ptr' takes no CIDR length: " + quote(term), false;
    const std::string_view spec = rest.substr(1);
    if (spec.empty()) return error = "empty domain in " + quote(term), false;
    if (!is_valid_domain_spec(spec)) return error = "invalid domain in " + quote(term), false;
    m.domain_spec = std::string(spec);
    return true;
  }
  if (name == "ip4" || name == "ip6") {
    m.kind = name == "ip4" ? SpfMechanismKind::ip4 : SpfMechanismKind::ip6;
    return parse_ip_argument(rest, name == "ip6", m, error);
  }
  return error = "unknown mechanism " + quote(term), false;
}

}  // namespace

bool queries_dns(SpfMechanismKind kind) {
  switch (kind) {
    case SpfMechanismKind::include:
    case SpfMechanismKind::a:
    case SpfMechanismKind::mx:
    case SpfMechanismKind::ptr:
    case SpfMechanismKind::exists:
      return true;
    default:
      return false;
  }
}

bool is_spf1_record(std::string_view text) {
  return text.size() >= 6 && ascii::iequals(text.substr(0, 6), "v=spf1") &&
         (text.size() == 6 || text[6] == ' ');
}

bool is_valid_macro_string(std::string_view s, bool explanation) {
  return scan(s, explanation, nullptr, nullptr).ok;
}

bool is_valid_domain_spec(std::string_view s) {
  const Scan r = scan(s, false, nullptr, nullptr);
  if (!r.ok) return false;
  if (r.last_expand_end == s.size()) return true;  // domain-end = macro-expand
  std::string_view t = s;
  if (!t.empty() && t.back() == '.') t.remove_suffix(1);
  const std::size_t dot = t.rfind('.');
  if (dot == std::string_view::npos) return false;
  return is_toplabel(t.substr(dot + 1));
}

bool uses_p_macro(std::string_view s) {
  return scan(s, true, nullptr, nullptr).uses_p;
}

std::optional<std::string> expand_macros(std::string_view s, const SpfMacroContext& ctx,
                                         bool explanation) {
  std::string out;
  if (!scan(s, explanation, &ctx, &out).ok) return std::nullopt;
  return out;
}

SpfTarget expand_domain_spec(std::string_view spec, const SpfMacroContext& ctx) {
  SpfTarget t;
  if (!is_valid_domain_spec(spec)) {
    t.status = SpfTarget::Status::syntax_error;
    return t;
  }
  auto expanded = expand_macros(spec, ctx, false);
  if (!expanded) {  // only the size bound can fail here: the syntax was checked
    t.status = SpfTarget::Status::invalid_name;
    return t;
  }
  std::string name = std::move(*expanded);
  if (!name.empty() && name.back() == '.') name.pop_back();
  // §7.3: over 253 characters, drop labels from the left until it fits.
  while (name.size() > 253) {
    const std::size_t dot = name.find('.');
    if (dot == std::string::npos) break;
    name.erase(0, dot + 1);
  }
  t.name = std::move(name);
  bool ok = !t.name.empty() && t.name.size() <= 253;
  std::size_t start = 0;
  while (ok && start <= t.name.size()) {
    std::size_t dot = t.name.find('.', start);
    if (dot == std::string::npos) dot = t.name.size();
    const std::size_t len = dot - start;
    if (len == 0 || len > 63) ok = false;
    start = dot + 1;
  }
  if (!ok) t.status = SpfTarget::Status::invalid_name;
  return t;
}

bool spf_network_contains(const std::array<std::uint8_t, 16>& network, bool network_v6, int cidr,
                          const IpAddress& ip) {
  if (ip.is_v4() == network_v6) return false;
  const int max = network_v6 ? 128 : 32;
  cidr = std::clamp(cidr, 0, max);
  const auto& b = ip.bytes();
  const int full = cidr / 8;
  for (int i = 0; i < full; ++i)
    if (b[static_cast<std::size_t>(i)] != network[static_cast<std::size_t>(i)]) return false;
  const int rest = cidr % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (b[static_cast<std::size_t>(full)] & mask) ==
         (network[static_cast<std::size_t>(full)] & mask);
}

SpfParse parse_spf_record(std::string_view text) {
  SpfParse p;
  if (text.size() > kMaxSpfRecord) {
    p.error = "record of " + std::to_string(text.size()) + " bytes (at most " +
              std::to_string(kMaxSpfRecord) + " are evaluated)";
    return p;
  }
  if (!is_spf1_record(text)) {
    p.error = "not an SPF record (it must start with \"v=spf1\")";
    return p;
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c > 0x7e) {
      p.error = "byte " + hex_byte(c).substr(1) + " (hex) at offset " + std::to_string(i) +
                ": SPF records are printable ASCII, terms separated by spaces";
      return p;
    }
  }
  SpfRecord rec;
  std::size_t terms = 0;
  std::size_t pos = 6;
  while (pos < text.size()) {
    if (text[pos] == ' ') {
      ++pos;
      continue;
    }
    std::size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view term = text.substr(pos, end - pos);
    pos = end;
    if (++terms > kMaxSpfTerms) {
      p.error = "more than " + std::to_string(kMaxSpfTerms) + " terms";
      return p;
    }
    const std::size_t sep = term.find_first_of(":/=");
    if (sep != std::string_view::npos && term[sep] == '=') {
      const std::string_view name = term.substr(0, sep);
      const std::string_view value = term.substr(sep + 1);
      if (!is_modifier_name(name)) {
        p.error = "invalid modifier name in " + quote(term);
        return p;
      }
      const std::string lname = ascii::lower(name);
      if (lname == "redirect" || lname == "exp") {
        auto& slot = lname == "redirect" ? rec.redirect : rec.exp;
        if (slot) {
          p.error = "'" + lname + "=' appears twice";
          return p;
        }
        if (value.empty()) {
          p.error = "empty domain in " + quote(term);
          return p;
        }
        if (!is_valid_domain_spec(value)) {
          p.error = "invalid domain in " + quote(term);
          return p;
        }
        slot = std::string(value);
        (lname == "redirect" ? rec.redirect_text : rec.exp_text) = std::string(term);
        continue;
      }
      if (!is_valid_macro_string(value)) {
        p.error = "invalid macro in modifier " + quote(term);
        return p;
      }
      rec.unknown_modifiers.emplace_back(term);
      continue;
    }
    SpfMechanism m;
    if (!parse_mechanism(term, m, p.error)) return p;
    rec.mechanisms.push_back(std::move(m));
  }
  p.record = std::move(rec);
  return p;
}

}  // namespace ipconfirm::responder

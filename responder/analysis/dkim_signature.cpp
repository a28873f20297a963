#include "responder/analysis/dkim_signature.hpp"

#include <charconv>

#include "core/ascii.hpp"
#include "core/domain.hpp"

namespace ipconfirm::responder {

namespace {

bool is_fws(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string_view trim_fws(std::string_view s) {
  while (!s.empty() && is_fws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_fws(s.back())) s.remove_suffix(1);
  return s;
}

std::string strip_fws(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    if (!is_fws(c)) out.push_back(c);
  return out;
}

bool is_tag_name(std::string_view name) {
  if (name.empty() || !ascii::is_alpha(name.front())) return false;
  for (char c : name)
    if (!ascii::is_alnum(c) && c != '_') return false;
  return true;
}

// A decimal number of at most `max_digits` digits, nothing else.
template <typename T>
std::optional<T> parse_number(std::string_view s, std::size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  for (char c : s)
    if (!ascii::is_digit(c)) return std::nullopt;
  T value{};
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || ptr != s.data() + s.size()) return std::nullopt;
  return value;
}

// Splits a colon-separated list ("from : to:subject"), trimming folding white space.
std::vector<std::string_view> split_colon_list(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == ':') {
      out.push_back(trim_fws(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  return out;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

RawHeader split_raw_header(std::string_view header, std::size_t max_bytes, std::size_t max_fields) {
  RawHeader out;
  if (header.size() > max_bytes) {
    header = header.substr(0, max_bytes);
    out.truncated = true;
  }
  std::size_t pos = 0;
  bool current = false;  // the last line read belongs to a field that may continue
  std::size_t field_begin = 0, colon = 0;
  auto close_field = [&](std::size_t end) {
    if (!current) return;
    current = false;
    RawField f;
    f.raw = header.substr(field_begin, end - field_begin);
    std::string_view name = header.substr(field_begin, colon - field_begin);
    while (!name.empty() && ascii::is_wsp(name.back())) name.remove_suffix(1);
    f.name = name;
    std::string_view value = header.substr(colon + 1, end - colon - 1);
    if (!value.empty() && value.back() == '\n') value.remove_suffix(1);
    if (!value.empty() && value.back() == '\r') value.remove_suffix(1);
    f.value = value;
    if (out.fields.size() >= max_fields) {
      out.truncated = true;
      return;
    }
    out.fields.push_back(f);
  };
  while (pos < header.size()) {
    std::size_t lf = header.find('\n', pos);
    std::size_t next = lf == std::string_view::npos ? header.size() : lf + 1;
    std::string_view line = header.substr(pos, next - pos);
    std::string_view content = line;
    if (!content.empty() && content.back() == '\n') content.remove_suffix(1);
    if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
    if (content.empty()) break;  // the empty line that ends the header
    if (ascii::is_wsp(content.front())) {
      if (!current) ++out.skipped_lines;  // a continuation of nothing
      pos = next;
      continue;
    }
    close_field(pos);
    if (out.truncated) return out;
    std::size_t c = content.find(':');
    bool ok = c != std::string_view::npos && c > 0;
    if (ok) {
      std::string_view name = content.substr(0, c);
      while (!name.empty() && ascii::is_wsp(name.back())) name.remove_suffix(1);
      ok = !name.empty();
      for (char ch : name) {
        auto u = static_cast<unsigned char>(ch);
        if (u < 0x21 || u > 0x7e) ok = false;
      }
    }
    if (ok) {
      current = true;
      field_begin = pos;
      colon = pos + c;
    } else {
      ++out.skipped_lines;
    }
    pos = next;
  }
  close_field(pos);
  return out;
}

MessageParts split_message(std::string_view message) {
  MessageParts parts;
  std::size_t pos = 0;
  while (pos < message.size()) {
    std::size_t lf = message.find('\n', pos);
    if (lf == std::string_view::npos) break;
    std::size_t line_len = lf - pos;
    if (line_len == 0 || (line_len == 1 && message[pos] == '\r')) {
      parts.header = message.substr(0, pos);
      parts.body = message.substr(lf + 1);
      parts.has_body = true;
      return parts;
    }
    pos = lf + 1;
  }
  parts.header = message;
  return parts;
}

const DkimTag* DkimTagList::find(std::string_view name) const {
  for (const auto& t : tags)
    if (t.name == name) return &t;
  return nullptr;
}

DkimTagList parse_tag_list(std::string_view text, std::size_t max_tags) {
  DkimTagList out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t semi = text.find(';', start);
    std::size_t end = semi == std::string_view::npos ? text.size() : semi;
    std::string_view spec = text.substr(start, end - start);
    if (trim_fws(spec).empty()) {
      if (semi == std::string_view::npos) break;  // nothing, or after a trailing ';'
      out.error = "empty tag in the tag list";
      return out;
    }
    std::size_t eq = spec.find('=');
    if (eq == std::string_view::npos) {
      out.error = "tag without '=': " + std::string(trim_fws(spec).substr(0, 40));
      return out;
    }
    std::string_view name = trim_fws(spec.substr(0, eq));
    if (!is_tag_name(name)) {
      out.error = "invalid tag name '" + std::string(name.substr(0, 40)) + "'";
      return out;
    }
    std::string_view raw_value = spec.substr(eq + 1);
    for (char c : raw_value) {
      auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && !is_fws(c)) || u == 0x7f) {
        out.error = "control character in the value of " + std::string(name) + "=";
        return out;
      }
    }
    for (const auto& t : out.tags) {
      if (t.name == name) {
        out.error = "tag " + std::string(name) + "= appears twice";
        return out;
      }
    }
    if (out.tags.size() >= max_tags) {
      out.error = "more than " + std::to_string(max_tags) + " tags";
      return out;
    }
    DkimTag tag;
    tag.name = name;
    tag.value = trim_fws(raw_value);
    tag.span_begin = start + eq + 1;
    tag.span_end = end;
    out.tags.push_back(tag);
    if (semi == std::string_view::npos) break;
    start = semi + 1;
  }
  out.ok = true;
  return out;
}

std::optional<std::string> decode_base64(std::string_view text, std::size_t max_bytes) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0, sextets = 0, padding = 0;
  for (char c : text) {
    if (is_fws(c)) continue;
    if (c == '=') {
      ++padding;
      if (padding > 2) return std::nullopt;
      continue;
    }
    if (padding > 0) return std::nullopt;  // data after '='
    int v = base64_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    ++sextets;
    if (bits >= 8) {
      bits -= 8;
      if (out.size() >= max_bytes) return std::nullopt;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  int rest = sextets % 4;
  if (rest == 1) return std::nullopt;
  if (padding > 0 && (rest == 0 || rest + padding != 4)) return std::nullopt;
  // The unused low bits of the last sextet must be zero (a canonical encoding).
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string encode_base64(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    std::uint32_t v = (std::uint32_t{static_cast<unsigned char>(data[i])} << 16) |
                      (std::uint32_t{static_cast<unsigned char>(data[i + 1])} << 8) |
                      std::uint32_t{static_cast<unsigned char>(data[i + 2])};
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (i < data.size()) {
    std::uint32_t v = std::uint32_t{static_cast<unsigned char>(data[i])} << 16;
    if (i + 1 < data.size()) v |= std::uint32_t{static_cast<unsigned char>(data[i + 1])} << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string_view to_string(DkimCanon canon) {
  return canon == DkimCanon::relaxed ? "relaxed" : "simple";
}

DkimHash hash_of(DkimAlgorithm algorithm) {
  return algorithm == DkimAlgorithm::rsa_sha1 ? DkimHash::sha1 : DkimHash::sha256;
}

DkimKeyType key_type_of(DkimAlgorithm algorithm) {
  switch (algorithm) {
    case DkimAlgorithm::rsa_sha256:
    case DkimAlgorithm::rsa_sha1:
      return DkimKeyType::rsa;
    case DkimAlgorithm::ed25519_sha256:
      return DkimKeyType::ed25519;
    case DkimAlgorithm::unknown:
      break;
  }
  return DkimKeyType::unknown;
}

std::string_view hash_name(DkimHash hash) {
  return hash == DkimHash::sha1 ? "sha1" : "sha256";
}

bool identity_within(std::string_view identity, std::string_view domain, bool strict) {
  std::size_t at = identity.rfind('@');
  if (at == std::string_view::npos) return false;
  std::string_view idomain = identity.substr(at + 1);
  if (ascii::iequals(idomain, domain)) return true;
  if (strict || idomain.size() <= domain.size() + 1) return false;
  std::string_view tail = idomain.substr(idomain.size() - domain.size());
  return idomain[idomain.size() - domain.size() - 1] == '.' && ascii::iequals(tail, domain);
}

DkimSignature parse_dkim_signature(std::string_view value, DkimSignatureKind kind) {
  DkimSignature sig;
  sig.tags = parse_tag_list(value);
  auto fail = [&](std::string why) {
    sig.ok = false;
    sig.error = std::move(why);
    return sig;
  };
  if (!sig.tags.ok) return fail(sig.tags.error);
  const DkimTagList& t = sig.tags;
  const bool arc = kind != DkimSignatureKind::dkim;

  // Fill in what a report shows first, so that even a broken signature names its domain.
  if (const auto* d = t.find("d")) sig.domain = std::string(d->value);
  if (const auto* s = t.find("s")) sig.selector = std::string(s->value);
  if (const auto* a = t.find("a")) sig.algorithm_name = std::string(a->value);
  if (kind == DkimSignatureKind::arc_message) {
    sig.header_canon = DkimCanon::relaxed;
    sig.body_canon = DkimCanon::relaxed;
  }

  std::vector<std::string_view> required;
  switch (kind) {
    case DkimSignatureKind::dkim:
      required = {"v", "a", "b", "bh", "d", "h", "s"};
      break;
    case DkimSignatureKind::arc_message:
      required = {"i", "a", "b", "bh", "d", "h", "s"};
      break;
    case DkimSignatureKind::arc_seal:
      required = {"i", "a", "b", "cv", "d", "s"};
      break;
  }
  for (auto name : required)
    if (!t.find(name)) return fail("missing " + std::string(name) + "= tag");

  if (kind == DkimSignatureKind::dkim && t.find("v")->value != "1") return fail("v= is not 1");

  if (sig.algorithm_name == "rsa-sha256") {
    sig.algorithm = DkimAlgorithm::rsa_sha256;
  } else if (sig.algorithm_name == "rsa-sha1") {
    sig.algorithm = DkimAlgorithm::rsa_sha1;
  } else if (sig.algorithm_name == "ed25519-sha256") {
    sig.algorithm = DkimAlgorithm::ed25519_sha256;
  } else {
    return fail("unknown algorithm a=" + sig.algorithm_name.substr(0, 40));
  }

  auto b = decode_base64(t.find("b")->value, kDkimMaxSignatureBytes);
  if (!b || b->empty()) return fail("b= is not valid base64");
  sig.signature = std::move(*b);

  if (kind != DkimSignatureKind::arc_seal) {
    auto bh = decode_base64(t.find("bh")->value, kDkimMaxBodyHashBytes);
    if (!bh || bh->empty()) return fail("bh= is not valid base64");
    sig.body_hash = std::move(*bh);
  }

  if (!is_valid_domain(sig.domain)) return fail("d= is not a valid domain name");
  if (sig.selector.empty()) return fail("s= is empty");
  if (sig.selector.find_first_of(": \t\r\n") != std::string::npos)
    return fail("s= is not a valid selector");

  if (const auto* c = t.find("c"); c && kind != DkimSignatureKind::arc_seal) {
    std::string_view cv = c->value;
    std::string_view head = cv, body = "simple";
    if (auto slash = cv.find('/'); slash != std::string_view::npos) {
      head = cv.substr(0, slash);
      body = cv.substr(slash + 1);
    }
    auto canon = [](std::string_view s) -> std::optional<DkimCanon> {
      if (s == "simple") return DkimCanon::simple;
      if (s == "relaxed") return DkimCanon::relaxed;
      return std::nullopt;
    };
    auto hc = canon(head), bc = canon(body);
    if (!hc || !bc) return fail("unknown canonicalization c=" + std::string(cv.substr(0, 40)));
    sig.header_canon = *hc;
    sig.body_canon = *bc;
  } else if (c && kind == DkimSignatureKind::arc_seal) {
    // RFC 8617 §4.1.3: the seal is always relaxed; a c= tag is ignored like any unknown tag.
  }

  if (kind == DkimSignatureKind::arc_seal) {
    if (t.find("h")) return fail("h= is not allowed in ARC-Seal");
    sig.header_canon = DkimCanon::relaxed;
    std::string_view cv = t.find("cv")->value;
    if (cv != "none" && cv != "pass" && cv != "fail") return fail("cv= is not none, pass or fail");
    sig.chain = std::string(cv);
  } else {
    auto names = split_colon_list(t.find("h")->value);
    if (names.size() > kDkimMaxSignedHeaders)
      return fail("h= names more than " + std::to_string(kDkimMaxSignedHeaders) + " fields");
    for (auto n : names) {
      // An empty name (h= empty, or "from::to") selects no field. RFC 6376's grammar has no
      // empty names, but dkimpy and the ARC test suite accept them, and they sign nothing:
      // skip them. (A DKIM h= must still name From.)
      if (n.empty()) continue;
      for (char ch : n) {
        auto u = static_cast<unsigned char>(ch);
        if (u < 0x21 || u > 0x7e || ch == ':') return fail("h= has an invalid field name");
      }
      sig.signed_headers.push_back(ascii::lower(n));
    }
    if (kind == DkimSignatureKind::arc_message) {
      for (const auto& n : sig.signed_headers)
        if (n == "arc-seal") return fail("h= names ARC-Seal (RFC 8617 §4.1.2)");
    }
  }

  if (arc) {
    auto i = parse_number<int>(t.find("i")->value, 2);
    if (!i || *i < 1 || *i > 50) return fail("i= is not an instance number from 1 to 50");
    sig.instance = *i;
  } else {
    if (const auto* i = t.find("i")) {
      sig.identity = std::string(i->value);
      if (sig.identity.find('@') == std::string::npos) return fail("i= has no '@'");
      if (!identity_within(sig.identity, sig.domain))
        return fail("i= (" + sig.identity.substr(0, 80) + ") is not within d=");
    } else {
      sig.identity = "@" + sig.domain;
    }
  }

  if (const auto* l = t.find("l"); l && kind != DkimSignatureKind::arc_seal) {
    auto n = parse_number<std::uint64_t>(l->value, 18);
    if (!n) return fail("l= is not a decimal number");
    sig.length = *n;
  }
  if (const auto* q = t.find("q"); q && kind == DkimSignatureKind::dkim) {
    bool dns_txt = false;
    for (auto m : split_colon_list(q->value))
      if (m == "dns/txt") dns_txt = true;
    if (!dns_txt) return fail("q= does not include dns/txt");
  }
  if (const auto* ts = t.find("t")) {
    auto n = parse_number<std::int64_t>(ts->value, 12);
    if (!n) return fail("t= is not a decimal number");
    sig.timestamp = *n;
  }
  if (const auto* x = t.find("x")) {
    auto n = parse_number<std::int64_t>(x->value, 12);
    if (!n) return fail("x= is not a decimal number");
    sig.expiration = *n;
    if (sig.timestamp && *sig.expiration < *sig.timestamp) return fail("x= is before t=");
  }
  sig.ok = true;
  return sig;
}

DkimKeyRecord parse_dkim_key(std::string_view txt) {
  DkimKeyRecord key;
  auto fail = [&](std::string why) {
    key.ok = false;
    key.error = std::move(why);
    return key;
  };
  DkimTagList t = parse_tag_list(txt);
  if (!t.ok) return fail("key record: " + t.error);
  if (const auto* v = t.find("v")) {
    if (v->value != "DKIM1") return fail("key record: v= is not DKIM1");
    if (&t.tags.front() != v) return fail("key record: v= is not the first tag");
  }
  if (const auto* k = t.find("k")) {
    key.key_type_name = std::string(k->value.substr(0, 40));
    if (k->value == "rsa") {
      key.key_type = DkimKeyType::rsa;
    } else if (k->value == "ed25519") {
      key.key_type = DkimKeyType::ed25519;
    } else {
      return fail("key record: unknown key type k=" + key.key_type_name);
    }
  }
  if (const auto* h = t.find("h")) {
    for (auto name : split_colon_list(h->value))
      if (!name.empty() && key.hashes.size() < 16) key.hashes.emplace_back(name);
  }
  if (const auto* s = t.find("s")) {
    bool email = false;
    for (auto name : split_colon_list(s->value))
      if (name == "email" || name == "*") email = true;
    if (!email) return fail("key record: s= does not allow email");
  }
  if (const auto* flags = t.find("t")) {
    for (auto f : split_colon_list(flags->value)) {
      if (f == "y") key.testing = true;
      if (f == "s") key.strict = true;
    }
  }
  const auto* p = t.find("p");
  if (!p) return fail("key record: no p= tag");
  std::string compact = strip_fws(p->value);
  if (compact.empty()) {
    key.revoked = true;
    key.ok = true;
    return key;
  }
  auto der = decode_base64(compact, kDkimMaxKeyBytes);
  if (!der) return fail("key record: p= is not valid base64 or is too large");
  key.public_key = std::move(*der);
  key.ok = true;
  return key;
}

}  // namespace ipconfirm::responder

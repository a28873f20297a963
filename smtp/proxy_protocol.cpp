#include "smtp/proxy_protocol.hpp"
#include "core/ascii.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace ipconfirm::smtp {

namespace {

constexpr std::size_t kV1MaxLength = 107;  // spec §2.1, CRLF included
constexpr std::string_view kV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr std::size_t kV2FixedLength = 16;
constexpr std::size_t kV2MaxBlockLength = 536;
constexpr std::size_t kV4BlockLength = 2 * 4 + 2 * 2;
constexpr std::size_t kV6BlockLength = 2 * 16 + 2 * 2;
constexpr std::size_t kUnixBlockLength = 2 * 108;
constexpr std::size_t kMaxV4Text = 15;  // 255.255.255.255
constexpr std::size_t kMaxV6Text = 45;  // ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255

// The outcome of one step over the bytes seen so far.
enum class Step { ok, need_more, invalid };

ProxyParse need_more() {
  return ProxyParse{ProxyStatus::need_more, 0, {}, {}};
}

ProxyParse invalid(std::string why) {
  return ProxyParse{ProxyStatus::invalid, 0, {}, std::move(why)};
}

using ascii::is_digit;

bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// True if `text` (no delimiter seen yet) can still grow into a dotted quad without leading zeros.
bool viable_v4_prefix(std::string_view text) {
  if (text.size() > kMaxV4Text) return false;
  std::size_t groups = 1;
  std::size_t digits = 0;
  unsigned value = 0;
  char first = 0;
  for (char c : text) {
    if (c == '.') {
      if (digits == 0 || ++groups > 4) return false;
      digits = 0;
      value = 0;
      continue;
    }
    if (!is_digit(c)) return false;
    if (digits == 0) first = c;
    if (digits > 0 && first == '0') return false;  // leading zero (spec: no octal confusion)
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (++digits > 3 || value > 255) return false;
  }
  return true;
}

// True if `text` (no delimiter seen yet) can still grow into an IPv6 address: hex groups of at
// most four digits, at most one "::", no ":::", and an optional trailing dotted quad.
bool viable_v6_prefix(std::string_view text) {
  if (text.size() > kMaxV6Text) return false;
  if (auto dot = text.find('.'); dot != std::string_view::npos) {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon > dot) return false;
    if (!viable_v4_prefix(text.substr(colon + 1))) return false;
    text = text.substr(0, colon + 1);
  }
  std::size_t double_colons = 0;
  std::size_t groups = 0;
  std::size_t digits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ':') {
      if (i >= 1 && text[i - 1] == ':') {
        if (++double_colons > 1) return false;
        if (i >= 2 && text[i - 2] == ':') return false;  // ":::"
      }
      digits = 0;
      continue;
    }
    if (!is_hex(c)) return false;
    if (digits++ == 0 && ++groups > 8) return false;
    if (digits > 4) return false;
  }
  return true;
}

// Reads the bytes seen so far from left to right; every method answers need_more when the bytes
// run out before it can decide.
class Cursor {
 public:
  explicit Cursor(std::string_view buf) : buf_(buf) {}

  std::size_t position() const { return pos_; }

  // Consumes `literal` if the bytes start with it.
  Step literal(std::string_view literal) {
    std::string_view rest = buf_.substr(pos_);
    std::size_t n = std::min(rest.size(), literal.size());
    if (rest.substr(0, n) != literal.substr(0, n)) return Step::invalid;
    if (n < literal.size()) return Step::need_more;
    pos_ += n;
    return Step::ok;
  }

  // Consumes an address of the given family and the single space after it.
  Step address(bool v6, std::optional<IpAddress>& out) {
    std::string_view rest = buf_.substr(pos_);
    std::size_t end = rest.find(' ');
    std::string_view text = rest.substr(0, end);
    if (!(v6 ? viable_v6_prefix(text) : viable_v4_prefix(text))) return Step::invalid;
    if (end == std::string_view::npos) return Step::need_more;
    out = IpAddress::parse(text);
    if (!out) return Step::invalid;
    // TCP4 must be a dotted quad; TCP6 must be written as IPv6 (a mapped ::ffff:a.b.c.d is
    // still IPv6 text, which IpAddress folds to IPv4).
    if (v6 ? text.find(':') == std::string_view::npos : !out->is_v4()) return Step::invalid;
    pos_ += end + 1;
    return Step::ok;
  }

  // Consumes a decimal port 0-65535 without sign or leading zero, and the `delimiter` after it.
  Step port(char delimiter, std::uint16_t& out) {
    unsigned value = 0;
    std::size_t digits = 0;
    for (std::size_t i = pos_; i < buf_.size(); ++i) {
      char c = buf_[i];
      if (c == delimiter) {
        if (digits == 0) return Step::invalid;
        out = static_cast<std::uint16_t>(value);
        pos_ = i + 1;
        return Step::ok;
      }
      if (!is_digit(c) || (digits == 1 && value == 0)) return Step::invalid;
      value = value * 10 + static_cast<unsigned>(c - '0');
      if (++digits > 5 || value > 65535) return Step::invalid;
    }
    return Step::need_more;
  }

  // Consumes any bytes other than CR and LF, then CRLF ("PROXY UNKNOWN <ignored>\r\n").
  Step ignored_until_crlf() {
    std::size_t cr = ascii::find_line_break(buf_, pos_);
    if (cr == std::string_view::npos) return Step::need_more;
    pos_ = cr;  // a bare LF fails the CRLF below
    return literal("\r\n");
  }

 private:
  std::string_view buf_;
  std::size_t pos_ = 0;
};

ProxyParse step_failure(Step s, const char* what) {
  if (s == Step::need_more) return need_more();
  return invalid(std::string("PROXY v1: ") + what);
}

// `buf` holds at most kV1MaxLength bytes.
ProxyParse parse_v1(std::string_view buf) {
  Cursor in(buf);
  if (Step s = in.literal("PROXY "); s != Step::ok) {
    return s == Step::need_more ? need_more() : invalid("not a PROXY header");
  }

  // The protocol: try each keyword; stay undecided while the bytes are a prefix of one.
  struct Keyword {
    std::string_view text;
    int family;  // 4, 6, or 0 for UNKNOWN
  };
  static constexpr Keyword kKeywords[] = {{"TCP4 ", 4}, {"TCP6 ", 6}, {"UNKNOWN", 0}};
  int family = -1;
  bool waiting = false;
  for (const Keyword& k : kKeywords) {
    Cursor attempt = in;
    Step s = attempt.literal(k.text);
    if (s == Step::ok) {
      in = attempt;
      family = k.family;
      break;
    }
    if (s == Step::need_more) waiting = true;
  }
  if (family < 0) return waiting ? need_more() : invalid("PROXY v1: unknown protocol");

  ProxyParse result{ProxyStatus::ok, 0, {}, {}};
  if (family == 0) {
    // "UNKNOWN" then CRLF, or a space and anything up to the CRLF (spec: ignore it).
    Step s = in.literal("\r\n");
    if (s == Step::invalid) {
      s = in.literal(" ");
      if (s == Step::ok) s = in.ignored_until_crlf();
    }
    if (s != Step::ok) return step_failure(s, "malformed UNKNOWN line");
    result.header.local = true;
    result.consumed = in.position();
    return result;
  }

  ProxyHeader& h = result.header;
  bool v6 = family == 6;
  if (Step s = in.address(v6, h.source); s != Step::ok) return step_failure(s, "bad source");
  if (Step s = in.address(v6, h.destination); s != Step::ok) {
    return step_failure(s, "bad destination");
  }
  if (Step s = in.port(' ', h.source_port); s != Step::ok) {
    return step_failure(s, "bad source port");
  }
  if (Step s = in.port('\r', h.destination_port); s != Step::ok) {
    return step_failure(s, "bad destination port");
  }
  if (Step s = in.literal("\n"); s != Step::ok) return step_failure(s, "CR without LF");
  result.consumed = in.position();
  return result;
}

std::uint16_t be16(std::string_view b, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(b[at]) << 8) |
                                    static_cast<unsigned char>(b[at + 1]));
}

std::uint32_t be32(std::string_view b, std::size_t at) {
  return (std::uint32_t{be16(b, at)} << 16) | be16(b, at + 2);
}

// True if `tlvs` is a sequence of complete type / 16-bit length / value records.
bool well_framed_tlvs(std::string_view tlvs) {
  std::size_t pos = 0;
  while (pos < tlvs.size()) {
    if (tlvs.size() - pos < 3) return false;
    std::size_t length = be16(tlvs, pos + 1);
    if (tlvs.size() - pos - 3 < length) return false;
    pos += 3 + length;
  }
  return true;
}

ProxyParse parse_v2(std::string_view buf) {
  std::size_t n = std::min(buf.size(), kV2Signature.size());
  if (buf.substr(0, n) != kV2Signature.substr(0, n)) return invalid("not a PROXY header");
  if (buf.size() < 13) return need_more();

  const auto version_command = static_cast<unsigned char>(buf[12]);
  if ((version_command >> 4) != 2) return invalid("PROXY v2: unsupported version");
  const unsigned command = version_command & 0x0fu;
  if (command > 1) return invalid("PROXY v2: unknown command");
  const bool local_command = command == 0;
  if (buf.size() < 14) return need_more();

  // The family and transport byte (spec §2.2): the pairs the specification assigns. LOCAL
  // ignores it altogether.
  const auto family = static_cast<unsigned char>(buf[13]);
  std::size_t minimum = 0;
  switch (family) {
    case 0x00:
      minimum = 0;
      break;
    case 0x11:
    case 0x12:
      minimum = kV4BlockLength;
      break;
    case 0x21:
    case 0x22:
      minimum = kV6BlockLength;
      break;
    case 0x31:
    case 0x32:
      minimum = kUnixBlockLength;
      break;
    default:
      if (!local_command) return invalid("PROXY v2: unknown address family or transport");
  }
  if (local_command) minimum = 0;
  if (buf.size() < kV2FixedLength) return need_more();

  const std::size_t length = be16(buf, 14);
  if (length > kV2MaxBlockLength) return invalid("PROXY v2: header too long");
  if (length < minimum) return invalid("PROXY v2: address block too short");
  if (buf.size() < kV2FixedLength + length) return need_more();

  ProxyParse result{ProxyStatus::ok, kV2FixedLength + length, {}, {}};
  ProxyHeader& h = result.header;
  std::string_view block = buf.substr(kV2FixedLength, length);
  if (local_command || (family != 0x11 && family != 0x21)) {
    // LOCAL (health checks), or a forwarded flow we do not use (UDP, UNIX, UNSPEC): the spec lets
    // the receiver fall back to the connection's own endpoints.
    h.local = true;
    return result;
  }
  std::size_t ports_at = 0;
  if (family == 0x11) {
    h.source = IpAddress::from_v4(be32(block, 0));
    h.destination = IpAddress::from_v4(be32(block, 4));
    ports_at = 8;
  } else {
    std::array<std::uint8_t, 16> source{};
    std::array<std::uint8_t, 16> destination{};
    for (std::size_t i = 0; i < 16; ++i) {
      source[i] = static_cast<std::uint8_t>(block[i]);
      destination[i] = static_cast<std::uint8_t>(block[16 + i]);
    }
    h.source = IpAddress::from_v6(source);
    h.destination = IpAddress::from_v6(destination);
    ports_at = 32;
  }
  h.source_port = be16(block, ports_at);
  h.destination_port = be16(block, ports_at + 2);
  if (!well_framed_tlvs(block.substr(ports_at + 4))) return invalid("PROXY v2: malformed TLV");
  return result;
}

}  // namespace

ProxyParse parse_proxy_header(std::string_view buf) {
  if (buf.empty()) return need_more();
  if (buf[0] == 'P') {
    ProxyParse r = parse_v1(buf.substr(0, kV1MaxLength));
    if (r.status == ProxyStatus::need_more && buf.size() >= kV1MaxLength) {
      return invalid("PROXY v1: no CRLF within 107 bytes");
    }
    return r;
  }
  if (buf[0] == '\r') return parse_v2(buf);
  return invalid("not a PROXY header");
}

}  // namespace ipconfirm::smtp

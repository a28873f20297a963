#include "core/ip_address.hpp"

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>

namespace ipconfirm {

namespace {

bool all_digits_dotted_quad(std::string_view s) {
  // inet_pton(AF_INET) already refuses octal and short forms; we only refuse what it lets
  // through that we do not want (nothing today), and keep the check cheap.
  return !s.empty() && s.size() <= 15;
}

const char kHex[] = "0123456789abcdef";

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[64];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress a;
  if (text.find(':') == std::string_view::npos) {
    if (!all_digits_dotted_quad(text)) return std::nullopt;
    in_addr v4{};
    if (inet_pton(AF_INET, buf, &v4) != 1) return std::nullopt;
    a.v4_ = true;
    std::memcpy(a.bytes_.data(), &v4, 4);
    return a;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, buf, &v6) != 1) return std::nullopt;
  std::array<std::uint8_t, 16> b{};
  std::memcpy(b.data(), &v6, 16);
  return from_v6(b);
}

IpAddress IpAddress::from_v4(std::uint32_t h) {
  IpAddress a;
  a.v4_ = true;
  a.bytes_[0] = static_cast<std::uint8_t>(h >> 24);
  a.bytes_[1] = static_cast<std::uint8_t>(h >> 16);
  a.bytes_[2] = static_cast<std::uint8_t>(h >> 8);
  a.bytes_[3] = static_cast<std::uint8_t>(h);
  return a;
}

IpAddress IpAddress::from_v6(const std::array<std::uint8_t, 16>& b) {
  IpAddress a;
  static const std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(b.data(), kMapped, 12) == 0) {
    a.v4_ = true;
    std::memcpy(a.bytes_.data(), b.data() + 12, 4);
    return a;
  }
  a.v4_ = false;
  a.bytes_ = b;
  return a;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (v4_) {
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", bytes_[0], bytes_[1], bytes_[2], bytes_[3]);
    return buf;
  }
  in6_addr v6{};
  std::memcpy(&v6, bytes_.data(), 16);
  inet_ntop(AF_INET6, &v6, buf, sizeof buf);  // glibc follows RFC 5952
  return buf;
}

std::string IpAddress::reverse_name() const {
  if (v4_) return dnsbl_name("in-addr.arpa");
  return dnsbl_name("ip6.arpa");
}

std::string IpAddress::dnsbl_name(std::string_view zone) const {
  std::string out;
  if (v4_) {
    char buf[20];
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u.", bytes_[3], bytes_[2], bytes_[1], bytes_[0]);
    out = buf;
  } else {
    out.reserve(64 + zone.size());
    for (int i = 15; i >= 0; --i) {
      out += kHex[bytes_[static_cast<std::size_t>(i)] & 0xf];
      out += '.';
      out += kHex[bytes_[static_cast<std::size_t>(i)] >> 4];
      out += '.';
    }
  }
  out += zone;
  return out;
}

bool IpAddress::is_loopback() const {
  if (v4_) return bytes_[0] == 127;
  for (int i = 0; i < 15; ++i)
    if (bytes_[static_cast<std::size_t>(i)] != 0) return false;
  return bytes_[15] == 1;
}

bool IpAddress::is_private() const {
  if (v4_) {
    return bytes_[0] == 10 || (bytes_[0] == 172 && (bytes_[1] & 0xf0) == 16) ||
           (bytes_[0] == 192 && bytes_[1] == 168);
  }
  return (bytes_[0] & 0xfe) == 0xfc;
}

bool IpAddress::is_cgnat() const {
  return v4_ && bytes_[0] == 100 && (bytes_[1] & 0xc0) == 64;
}

bool IpAddress::is_link_local() const {
  if (v4_) return bytes_[0] == 169 && bytes_[1] == 254;
  return bytes_[0] == 0xfe && (bytes_[1] & 0xc0) == 0x80;
}

bool IpAddress::is_unspecified() const {
  std::size_t n = v4_ ? 4 : 16;
  for (std::size_t i = 0; i < n; ++i)
    if (bytes_[i] != 0) return false;
  return true;
}

bool IpAddress::is_documentation() const {
  if (v4_) {
    return (bytes_[0] == 192 && bytes_[1] == 0 && bytes_[2] == 2) ||
           (bytes_[0] == 198 && bytes_[1] == 51 && bytes_[2] == 100) ||
           (bytes_[0] == 203 && bytes_[1] == 0 && bytes_[2] == 113);
  }
  return bytes_[0] == 0x20 && bytes_[1] == 0x01 && bytes_[2] == 0x0d && bytes_[3] == 0xb8;
}

bool IpAddress::is_non_public() const {
  if (is_loopback() || is_private() || is_cgnat() || is_link_local() || is_unspecified())
    return true;
  if (v4_) {
    return bytes_[0] == 0 || bytes_[0] >= 224;  // this-network, multicast, 240/4, broadcast
  }
  if (bytes_[0] == 0xff) return true;  // multicast
  // fd00:ec2::254 (AWS metadata over IPv6) is inside fc00::/7 already.
  return false;
}

std::string_view IpAddress::scope() const {
  if (is_loopback()) return "loopback";
  if (is_private()) return "private";
  if (is_cgnat()) return "cgnat";
  if (is_link_local()) return "link-local";
  if (is_non_public()) return "reserved";
  return "public";
}

bool IpAddress::same_network(const IpAddress& o, int prefix) const {
  if (v4_ != o.v4_) return false;
  int max = v4_ ? 32 : 128;
  if (prefix < 0) prefix = 0;
  if (prefix > max) prefix = max;
  int full = prefix / 8;
  for (int i = 0; i < full; ++i)
    if (bytes_[static_cast<std::size_t>(i)] != o.bytes_[static_cast<std::size_t>(i)]) return false;
  int rest = prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (bytes_[static_cast<std::size_t>(full)] & mask) ==
         (o.bytes_[static_cast<std::size_t>(full)] & mask);
}

}  // namespace ipconfirm

// An IPv4 or IPv6 address as a value, with the classifications the analysis needs.
//
// Pure: no sockets, no DNS. Parsing accepts the textual forms of RFC 4291 §2.2 and dotted-quad
// IPv4 (no octal, no short forms). IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are folded to
// IPv4 on parse, so a dual-stack listener reports the address the sender knows. Zone ids
// ("fe80::1%eth0") are not accepted here; callers that meet them strip them first.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ipconfirm {

class IpAddress {
 public:
  // Parses "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1". Returns nullopt on anything else
  // (including surrounding brackets, a zone id, a port, or white space).
  static std::optional<IpAddress> parse(std::string_view text);
  static IpAddress from_v4(std::uint32_t host_order);
  static IpAddress from_v6(const std::array<std::uint8_t, 16>& bytes);

  bool is_v4() const { return v4_; }
  // Network order bytes; for IPv4 only the first four are meaningful.
  const std::array<std::uint8_t, 16>& bytes() const { return bytes_; }

  // Canonical text: dotted quad, or RFC 5952 compressed lower-case IPv6.
  std::string to_string() const;

  // The name under in-addr.arpa or ip6.arpa whose PTR records name this address.
  std::string reverse_name() const;
  // The DNSBL query name under `zone`: reversed octets (IPv4) or nibbles (IPv6), then the zone.
  std::string dnsbl_name(std::string_view zone) const;

  bool is_loopback() const;       // 127/8, ::1
  bool is_private() const;        // RFC 1918, fc00::/7
  bool is_cgnat() const;          // 100.64/10 (RFC 6598)
  bool is_link_local() const;     // 169.254/16, fe80::/10
  bool is_unspecified() const;    // 0.0.0.0, ::
  bool is_documentation() const;  // 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32
  // True for every address that is not reachable on the public internet: loopback, private,
  // CGNAT, link-local, unspecified, multicast, 0/8, 240/4, and the cloud metadata address.
  bool is_non_public() const;
  // "public", "private", "loopback", "cgnat", "link-local", "reserved" — for reports.
  std::string_view scope() const;

  // True if both addresses lie in the same /prefix (IPv4) or /prefix (IPv6) network.
  bool same_network(const IpAddress& other, int prefix) const;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;

 private:
  bool v4_ = true;
  std::array<std::uint8_t, 16> bytes_{};
};

}  // namespace ipconfirm

// The IANA special-purpose address registries, and the decision whether an address found in
// the DNS may be connected to as a mail destination.
//
// The tables are the IANA IPv4 Special-Purpose Address Registry (created 2009-08-19; 25 rows,
// the newest 192.0.0.10/32 of 2017-02) and the IANA IPv6 Special-Purpose Address Registry
// (created 2006-01-10, last updated 2025-10-09; 25 rows, the newest 100:0:0:1::/64 of 2025-04,
// RFC 9780), as published in 2026, row by row with their "Forwardable" and "Globally
// Reachable" columns (RFC 6890 §2.2.2, RFC 8190).
// "N/A" (6to4, Teredo: the address stands for another host) and the blank cells of terminated
// rows read as "not globally reachable". IANA adds rows over time: a new row must be added
// here, with its test (tests/unit/special_purpose_test.cpp walks every row).
//
// Pure: values only. It does not know the host's own addresses (the delivery code adds those,
// from getifaddrs(3) at delivery time) and it is not the analysis' notion of a "public"
// sender (IpAddress::scope(), which keeps its meaning for reports).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/ip_address.hpp"

namespace ipconfirm {

struct SpecialPurposeBlock {
  std::string_view block;      // as IANA writes it: "192.0.0.0/24", "2001::/32"
  std::string_view name;       // IANA's name for it
  std::string_view rfc;        // "RFC 6890"
  std::string_view allocated;  // "2010-01"
  bool forwardable;
  // Only a "True" in the registry; "False", "N/A" and a blank cell are false.
  bool globally_reachable;
};

// Every row of both registries, IPv4 first, in IANA's order.
std::span<const SpecialPurposeBlock> special_purpose_registry();

// The most specific row that contains `ip` (2001:1::1/128 inside 2001::/23), or nullptr. The
// IPv4-mapped row (::ffff:0:0/96) never matches: IpAddress folds those addresses to IPv4.
const SpecialPurposeBlock* find_special_purpose(const IpAddress& ip);

// The IPv4 address that an IPv6 address carries, for the formats that embed one: the NAT64
// well-known prefix 64:ff9b::/96 (RFC 6052), 6to4 2002::/16 (RFC 3056: bits 16-47), Teredo
// 2001::/32 (RFC 4380: the client's address, bits 96-127 inverted), IPv4-compatible ::/96
// (RFC 4291 §2.5.5.1, deprecated; not :: and ::1) and IPv4-translated ::ffff:0:0:0/96
// (RFC 2765). nullopt for anything else.
std::optional<IpAddress> embedded_ipv4(const IpAddress& ip);

// Why a mail client must not connect to `ip` as found in the DNS (an MX host's A/AAAA record),
// or nullopt when it may. Refused: every registry row that is not globally reachable (the most
// specific row decides), multicast (224.0.0.0/4, ff00::/8), IPv6 outside the global unicast
// space 2000::/3 (IANA IPv6 Address Space: site-local fec0::/10, IPv4-compatible ::/96, ...),
// 6to4 and Teredo whatever they embed, the NAT64 well-known prefix when the IPv4 address it
// embeds is refused itself, and the Azure platform address 168.63.129.16 (its metadata and
// DNS service, reachable from every Azure VM; 169.254.169.254 is link-local already). The
// reason is short, printable text for the log: the row's name, block and RFC.
std::optional<std::string> why_not_a_destination(const IpAddress& ip);

}  // namespace ipconfirm

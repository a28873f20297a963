// The PROXY protocol header (HAProxy "PROXY protocol" specification, versions 1 and 2) that a
// load balancer sends before any SMTP byte, telling the listener the real client's address.
//
// Pure: it looks at the first bytes of a connection and says whether they hold a complete,
// valid header, need more bytes, or can never become one. It does not read from the socket,
// time out, or bound how long the caller waits; the caller does that. It is strict, as the
// specification asks ("any sequence which does not exactly match the protocol must be
// discarded"):
//  - v1: "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n" or "PROXY UNKNOWN[ <anything>]\r\n",
//    at most 107 bytes with the CRLF. Single spaces, a bare CR or LF is refused, ports are
//    decimal 0-65535 without sign or leading zero, addresses are those IpAddress::parse accepts
//    and of the announced family (an IPv4-mapped IPv6 address under TCP6 is accepted and
//    reported as IPv4, as IpAddress folds it). IPv4 octets with a leading zero are refused.
//  - v2: the 12-byte signature, version 2, command LOCAL or PROXY, the address length honoured
//    and at most 536 bytes. PROXY over TCP/IPv4 or TCP/IPv6 yields the addresses; the TLVs that
//    follow must be well framed (type, 16-bit length, value) and are otherwise skipped. The
//    other valid family/transport pairs (AF_UNSPEC, UDP, AF_UNIX) fall back to "local", as the
//    specification allows; unassigned commands or pairs are invalid. LOCAL ignores the block.
// Bytes that can no longer start a valid header are refused at once ("EHLO", "GET /"), so a
// client that speaks first is never kept waiting. Within an address the check while bytes are
// still missing is structural (characters, group sizes, length); the exact parse is done when
// the address ends, at most 45 bytes later.
// It does not interpret TLVs (CRC32C, unique id, SSL, authority) nor log anything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/ip_address.hpp"

namespace ipconfirm::smtp {

struct ProxyHeader {
  bool local = false;  // v2 LOCAL command or v1 "UNKNOWN": use the socket's own addresses
  std::optional<IpAddress> source;
  std::uint16_t source_port = 0;
  std::optional<IpAddress> destination;
  std::uint16_t destination_port = 0;
};

enum class ProxyStatus { need_more, ok, invalid };

struct ProxyParse {
  ProxyStatus status;
  std::size_t consumed = 0;  // bytes of the header when status is ok, else 0
  ProxyHeader header;        // filled when status is ok
  std::string error;         // why, when status is invalid (for the log; no client data in it)
};

// Looks at the first bytes of a connection. need_more: call again with more bytes (the caller
// bounds total wait and size); ok: `consumed` bytes were the header; invalid: close the connection.
ProxyParse parse_proxy_header(std::string_view buf);

}  // namespace ipconfirm::smtp

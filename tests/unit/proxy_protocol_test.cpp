// PROXY protocol v1/v2 parser: headers captured from HAProxy (tests/data/proxy_protocol/, each
// followed by the client's first line), headers built byte by byte from the specification, every
// prefix of a valid header, and one input per malformation.
#include "smtp/proxy_protocol.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using ipconfirm::IpAddress;
using ipconfirm::smtp::parse_proxy_header;
using ipconfirm::smtp::ProxyParse;
using ipconfirm::smtp::ProxyStatus;

namespace {

std::string status_name(ProxyStatus s) {
  switch (s) {
    case ProxyStatus::need_more:
      return "need_more";
    case ProxyStatus::ok:
      return "ok";
    case ProxyStatus::invalid:
      return "invalid";
  }
  return "?";
}

std::string status_of(std::string_view bytes) {
  return status_name(parse_proxy_header(bytes).status);
}

std::string read_data(const std::string& name) {
  std::ifstream in(std::string(IPCONFIRM_TEST_DATA) + "/proxy_protocol/" + name, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "missing test data " << name);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string addr(const ProxyParse& r, bool source) {
  const auto& a = source ? r.header.source : r.header.destination;
  return a ? a->to_string() : "none";
}

const std::string kSignature{"\r\n\r\n\0\r\nQUIT\n", 12};

// A v2 header: signature, version/command byte, family byte, big-endian length, then `block`.
std::string v2(unsigned char version_command, unsigned char family, const std::string& block) {
  std::string out = kSignature;
  out += static_cast<char>(version_command);
  out += static_cast<char>(family);
  out += static_cast<char>((block.size() >> 8) & 0xff);
  out += static_cast<char>(block.size() & 0xff);
  return out + block;
}

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out += static_cast<char>(v);
  return out;
}

std::string port_bytes(std::uint16_t p) {
  return bytes({p >> 8, p & 0xff});
}

// 192.0.2.10:56324 -> 198.51.100.25:25
const std::string kV4Block =
    bytes({192, 0, 2, 10, 198, 51, 100, 25}) + port_bytes(56324) + port_bytes(25);

// 2001:db8::10:56324 -> 2001:db8:1::25:25
const std::string kV6Block =
    bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
           0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x25}) +
    port_bytes(56324) + port_bytes(25);

// Asserts the decision is made at one point and never revised: every prefix shorter than the
// returned length says need_more, and every longer one says the same as the whole input.
std::size_t decision_point(std::string_view input) {
  const ProxyStatus final_status = parse_proxy_header(input).status;
  std::size_t decided = input.size();
  for (std::size_t n = 0; n <= input.size(); ++n) {
    ProxyStatus s = parse_proxy_header(input.substr(0, n)).status;
    if (s != ProxyStatus::need_more) {
      decided = n;
      break;
    }
  }
  for (std::size_t n = decided; n <= input.size(); ++n) {
    INFO("prefix length " << n);
    REQUIRE(status_name(parse_proxy_header(input.substr(0, n)).status) ==
            status_name(final_status));
  }
  return decided;
}

// Checks a valid header: every proper prefix needs more, the whole header is ok, trailing bytes
// (the client's first SMTP line) are not consumed.
ProxyParse check_valid(const std::string& header) {
  INFO("header of " << header.size() << " bytes");
  for (std::size_t n = 0; n < header.size(); ++n) {
    INFO("prefix length " << n);
    REQUIRE(status_of(std::string_view(header).substr(0, n)) == "need_more");
  }
  ProxyParse whole = parse_proxy_header(header);
  REQUIRE(status_name(whole.status) == "ok");
  CHECK(whole.consumed == header.size());
  CHECK(whole.error.empty());
  ProxyParse more = parse_proxy_header(header + "EHLO client.example\r\n");
  REQUIRE(status_name(more.status) == "ok");
  CHECK(more.consumed == header.size());
  return whole;
}

void check_invalid(const std::string& input) {
  INFO("input: " << input);
  ProxyParse r = parse_proxy_header(input);
  CHECK(status_name(r.status) == "invalid");
  CHECK(r.consumed == 0);
  CHECK_FALSE(r.error.empty());
  decision_point(input);
}

}  // namespace

TEST_CASE("proxy: headers captured from HAProxy") {
  struct Sample {
    const char* file;
    std::size_t header_size;
    bool local;
    const char* source;
    std::uint16_t source_port;
    const char* destination;
    std::uint16_t destination_port;
  };
  const Sample samples[] = {
      {"haproxy-v1-tcp4.bin", 44, false, "127.0.0.1", 33952, "127.0.0.1", 35404},
      {"haproxy-v1-tcp6.bin", 32, false, "::1", 42690, "::1", 35406},
      // A dual-stack listener sees an IPv4 client as ::ffff:a.b.c.d; IpAddress folds it.
      {"haproxy-v1-tcp6-mapped.bin", 58, false, "127.0.0.1", 47100, "127.0.0.1", 35410},
      {"haproxy-v2-tcp4.bin", 28, false, "127.0.0.1", 48164, "127.0.0.1", 35405},
      {"haproxy-v2-tcp6.bin", 52, false, "::1", 52132, "::1", 35407},
      {"haproxy-v2-tcp6-mapped.bin", 52, false, "127.0.0.1", 41800, "127.0.0.1", 35409},
      // proxy-v2-options crc32c,unique-id: two TLVs after the addresses.
      {"haproxy-v2-tcp4-tlv.bin", 79, false, "127.0.0.1", 46804, "127.0.0.1", 35408},
      // A health check (send-proxy-v2 check): LOCAL, AF_UNSPEC, no address block.
      {"haproxy-v2-local-check.bin", 16, true, "none", 0, "none", 0},
  };
  for (const Sample& s : samples) {
    CAPTURE(s.file);
    const std::string data = read_data(s.file);
    REQUIRE(data.size() >= s.header_size);
    const std::string header = data.substr(0, s.header_size);
    ProxyParse r = check_valid(header);
    CHECK(r.header.local == s.local);
    CHECK(addr(r, true) == s.source);
    CHECK(r.header.source_port == s.source_port);
    CHECK(addr(r, false) == s.destination);
    CHECK(r.header.destination_port == s.destination_port);
    // The file goes on with what the client sent after the load balancer's header.
    ProxyParse all = parse_proxy_header(data);
    REQUIRE(status_name(all.status) == "ok");
    CHECK(all.consumed == s.header_size);
    const std::string rest = data.substr(all.consumed);
    CHECK((rest.empty() || rest == "EHLO client.example\r\n"));
  }
}

TEST_CASE("proxy v1: TCP4 and TCP6 lines") {
  ProxyParse r = check_valid("PROXY TCP4 192.0.2.10 198.51.100.25 56324 25\r\n");
  CHECK_FALSE(r.header.local);
  REQUIRE(r.header.source);
  CHECK(r.header.source->is_v4());
  CHECK(addr(r, true) == "192.0.2.10");
  CHECK(r.header.source_port == 56324);
  CHECK(addr(r, false) == "198.51.100.25");
  CHECK(r.header.destination_port == 25);

  r = check_valid("PROXY TCP6 2001:db8::10 2001:DB8:1::25 65535 0\r\n");
  REQUIRE(r.header.source);
  CHECK_FALSE(r.header.source->is_v4());
  CHECK(addr(r, true) == "2001:db8::10");
  CHECK(addr(r, false) == "2001:db8:1::25");
  CHECK(r.header.source_port == 65535);
  CHECK(r.header.destination_port == 0);

  r = check_valid("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n");
  CHECK(addr(r, false) == "255.255.255.255");

  // The longest TCP6 line of the specification (104 bytes).
  const std::string full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  r = check_valid("PROXY TCP6 " + full + " " + full + " 65535 65535\r\n");
  CHECK(r.consumed == 104);
  CHECK(addr(r, true) == full);

  r = check_valid("PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n");
  CHECK(addr(r, true) == "192.0.2.1");
  CHECK(r.header.source->is_v4());
  CHECK(addr(r, false) == "::1");
}

TEST_CASE("proxy v1: UNKNOWN means the connection's own addresses") {
  ProxyParse r = check_valid("PROXY UNKNOWN\r\n");
  CHECK(r.header.local);
  CHECK_FALSE(r.header.source);
  CHECK_FALSE(r.header.destination);

  // The rest of the line is ignored, up to the 107-byte limit (the spec's worst case).
  const std::string full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  const std::string longest = "PROXY UNKNOWN " + full + " " + full + " 65535 65535\r\n";
  REQUIRE(longest.size() == 107);
  r = check_valid(longest);
  CHECK(r.header.local);
  CHECK_FALSE(r.header.source);

  r = check_valid("PROXY UNKNOWN whatever the sender put here\r\n");
  CHECK(r.header.local);
}

TEST_CASE("proxy v1: malformed lines are invalid") {
  const char* cases[] = {
      "proxy TCP4 192.0.2.10 198.51.100.25 56324 25\r\n",   // keyword is upper case
      "PROXY  TCP4 192.0.2.10 198.51.100.25 56324 25\r\n",  // two spaces
      "PROXY TCP5 192.0.2.10 198.51.100.25 56324 25\r\n",
      "PROXY tcp4 192.0.2.10 198.51.100.25 56324 25\r\n",
      "PROXY UDP4 192.0.2.10 198.51.100.25 56324 25\r\n",
      "PROXY TCP4  192.0.2.10 198.51.100.25 56324 25\r\n",
      "PROXY TCP4 192.0.2.10  198.51.100.25 56324 25\r\n",
      "PROXY TCP4 192.0.2.10 198.51.100.25  56324 25\r\n",
      "PROXY TCP4 192.0.2.10 198.51.100.25 56324  25\r\n",
      "PROXY TCP4 192.0.2.10 198.51.100.25 56324 25 \r\n",  // trailing space
      "PROXY TCP4 192.0.2.10 198.51.100.25 56324 25\n",     // LF alone
      "PROXY TCP4 192.0.2.10 198.51.100.25 56324 25\r\r\n",
      "PROXY TCP4 192.0.2.10 198.51.100.25 56324 25\rX",  // CR alone
      "PROXY TCP4 192.0.2.10 198.51.100.25 56324\r\n",    // a port missing
      "PROXY TCP4 192.0.2.10 198.51.100.25\r\n",
      "PROXY TCP4\r\n",
      "PROXY\r\n",
      "PROXY TCP4 192.0.2.10\t198.51.100.25 56324 25\r\n",
      // Addresses: family, octets, leading zeros, shape.
      "PROXY TCP4 2001:db8::1 198.51.100.25 56324 25\r\n",
      "PROXY TCP4 192.0.2.10 2001:db8::1 56324 25\r\n",
      "PROXY TCP6 192.0.2.10 2001:db8::1 56324 25\r\n",
      "PROXY TCP6 2001:db8::1 198.51.100.25 56324 25\r\n",
      "PROXY TCP4 192.0.2.010 198.51.100.25 56324 25\r\n",
      "PROXY TCP4 192.0.2.256 198.51.100.25 56324 25\r\n",
      "PROXY TCP4 192.0.2 198.51.100.25 56324 25\r\n",
      "PROXY TCP4 192.0.2.1.5 198.51.100.25 56324 25\r\n",
      "PROXY TCP4 192.0..2 198.51.100.25 56324 25\r\n",
      "PROXY TCP4 .192.0.2.1 198.51.100.25 56324 25\r\n",
      "PROXY TCP4 192.0.2.1. 198.51.100.25 56324 25\r\n",
      "PROXY TCP4 localhost 198.51.100.25 56324 25\r\n",
      "PROXY TCP6 [2001:db8::1] 2001:db8::2 56324 25\r\n",
      "PROXY TCP6 fe80::1%eth0 2001:db8::2 56324 25\r\n",
      "PROXY TCP6 2001:db8:::1 2001:db8::2 56324 25\r\n",
      "PROXY TCP6 2001::db8::1 2001:db8::2 56324 25\r\n",
      "PROXY TCP6 2001:db8:12345::1 2001:db8::2 56324 25\r\n",
      "PROXY TCP6 1:2:3:4:5:6:7:8:9 2001:db8::2 56324 25\r\n",
      "PROXY TCP6 :1 2001:db8::2 56324 25\r\n",
      "PROXY TCP6 ::ffff:192.0.2.010 2001:db8::2 56324 25\r\n",
      // Ports: sign, leading zero, range, empty, letters.
      "PROXY TCP4 192.0.2.10 198.51.100.25 +56324 25\r\n",
      "PROXY TCP4 192.0.2.10 198.51.100.25 -1 25\r\n",
      "PROXY TCP4 192.0.2.10 198.51.100.25 56324 025\r\n",
      "PROXY TCP4 192.0.2.10 198.51.100.25 00 25\r\n",
      "PROXY TCP4 192.0.2.10 198.51.100.25 65536 25\r\n",
      "PROXY TCP4 192.0.2.10 198.51.100.25 99999 25\r\n",
      "PROXY TCP4 192.0.2.10 198.51.100.25 100000 25\r\n",
      "PROXY TCP4 192.0.2.10 198.51.100.25 56324 0x19\r\n",
      // UNKNOWN: the line still ends with CRLF and nothing is glued to the keyword.
      "PROXY UNKNOWN\n",
      "PROXY UNKNOWNX\r\n",
      "PROXY UNKNOWN\rX",
      "PROXY UNKNOWN junk\nmore\r\n",
      "PROXY UNKNOWN junk\rmore\r\n",
  };
  for (const char* c : cases) check_invalid(c);
}

TEST_CASE("proxy v1: a line without CRLF in 107 bytes is invalid") {
  const std::string long_line = "PROXY UNKNOWN " + std::string(93, 'a') + "\r\n";
  REQUIRE(long_line.size() == 109);
  CHECK(status_of(long_line) == "invalid");
  CHECK(decision_point(long_line) == 107);
  // One byte short of the limit is still undecided; the CRLF may come.
  CHECK(status_of(long_line.substr(0, 106)) == "need_more");
  // A TCP6 line made long by mapped addresses exceeds the limit too.
  const std::string mapped = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
  CHECK(status_of("PROXY TCP6 " + mapped + " " + mapped + " 65535 65535\r\n") == "invalid");
}

TEST_CASE("proxy: other protocols are refused as soon as the bytes rule PROXY out") {
  CHECK(decision_point("EHLO client.example\r\n") == 1);
  CHECK(decision_point("GET / HTTP/1.1\r\n") == 1);
  CHECK(decision_point("\x16\x03\x01\x02\x00") == 1);  // a TLS ClientHello
  CHECK(decision_point("POST / HTTP/1.1\r\n") == 2);
  CHECK(decision_point("PROXX TCP4") == 5);
  CHECK(decision_point("\r\nQUIT\r\n") == 3);  // v2 signature broken at its third byte
  CHECK(status_of("") == "need_more");
  CHECK(status_of("P") == "need_more");
  CHECK(status_of("\r") == "need_more");

  // Inside a v1 line, as soon as a token cannot be completed.
  CHECK(decision_point("PROXY TCP7 192.0.2.1") == 10);
  CHECK(decision_point("PROXY UNKNOWNX") == 14);
  CHECK(decision_point("PROXY TCP4 192.0.2.010 ") == 21);
  CHECK(decision_point("PROXY TCP4 192.0.2.300 ") == 22);
  CHECK(decision_point("PROXY TCP4 192.0.2.10 198.51.100.25 01") == 38);
  CHECK(status_of("PROXY TCP4 192.0.2.10 198.51.100.25 65536") == "invalid");
  CHECK(status_of("PROXY TCP4 192.0.2.10 198.51.100.25 6553") == "need_more");
  CHECK(status_of("PROXY TCP6 2001:db8::1 ") == "need_more");
  CHECK(status_of("PROXY TCP6 2001:db8:::") == "invalid");
  CHECK(status_of("PROXY TCP6 12345") == "invalid");
  CHECK(status_of("PROXY TCP6 2001:db8::g") == "invalid");
}

TEST_CASE("proxy v2: PROXY over TCP/IPv4 and TCP/IPv6") {
  ProxyParse r = check_valid(v2(0x21, 0x11, kV4Block));
  CHECK_FALSE(r.header.local);
  CHECK(addr(r, true) == "192.0.2.10");
  CHECK(r.header.source_port == 56324);
  CHECK(addr(r, false) == "198.51.100.25");
  CHECK(r.header.destination_port == 25);

  r = check_valid(v2(0x21, 0x21, kV6Block));
  CHECK_FALSE(r.header.local);
  CHECK(addr(r, true) == "2001:db8::10");
  CHECK(r.header.source_port == 56324);
  CHECK(addr(r, false) == "2001:db8:1::25");
  CHECK(r.header.destination_port == 25);
}

TEST_CASE("proxy v2: TLVs after the addresses are skipped") {
  // PP2_TYPE_NOOP with an empty value, PP2_TYPE_AUTHORITY "mx.example.test", a NOOP pad.
  const std::string tlvs =
      bytes({0x04, 0, 0}) + bytes({0x02, 0, 15}) + "mx.example.test" + bytes({0x04, 0, 3, 0, 0, 0});
  ProxyParse r = check_valid(v2(0x21, 0x11, kV4Block + tlvs));
  CHECK(r.consumed == 16 + 12 + tlvs.size());
  CHECK(addr(r, true) == "192.0.2.10");

  r = check_valid(v2(0x21, 0x21, kV6Block + tlvs));
  CHECK(addr(r, false) == "2001:db8:1::25");

  // The largest block allowed: addresses and one TLV filling 536 bytes.
  const std::string pad =
      bytes({0x04, (536 - 12 - 3) >> 8, (536 - 12 - 3) & 0xff}) + std::string(536 - 12 - 3, 'x');
  r = check_valid(v2(0x21, 0x11, kV4Block + pad));
  CHECK(r.consumed == 16 + 536);
}

TEST_CASE("proxy v2: LOCAL and unused families use the connection's own addresses") {
  // LOCAL: the block is skipped whatever it holds, and the family byte is ignored.
  ProxyParse r = check_valid(v2(0x20, 0x00, ""));
  CHECK(r.header.local);
  r = check_valid(v2(0x20, 0x11, kV4Block));
  CHECK(r.header.local);
  CHECK_FALSE(r.header.source);
  CHECK(r.consumed == 28);
  r = check_valid(v2(0x20, 0xff, "abc"));
  CHECK(r.header.local);
  r = check_valid(v2(0x20, 0x00, std::string(536, '\0')));
  CHECK(r.consumed == 16 + 536);

  // PROXY with AF_UNSPEC, AF_UNIX or a datagram transport: the spec's fallback to UNSPEC.
  r = check_valid(v2(0x21, 0x00, ""));
  CHECK(r.header.local);
  r = check_valid(v2(0x21, 0x00, "ignored"));
  CHECK(r.header.local);
  r = check_valid(v2(0x21, 0x31, std::string(216, '\0')));
  CHECK(r.header.local);
  CHECK_FALSE(r.header.source);
  r = check_valid(v2(0x21, 0x32, std::string(216, 'a')));
  CHECK(r.header.local);
  r = check_valid(v2(0x21, 0x12, kV4Block));
  CHECK(r.header.local);
  r = check_valid(v2(0x21, 0x22, kV6Block));
  CHECK(r.header.local);
}

TEST_CASE("proxy v2: malformed headers are invalid") {
  // Every signature byte, altered, is refused at that byte.
  const std::string good = v2(0x21, 0x11, kV4Block);
  for (std::size_t i = 0; i < 12; ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x40);
    CAPTURE(i);
    check_invalid(bad);
    CHECK(decision_point(bad) == i + 1);
  }

  struct Bad {
    const char* why;
    std::string input;
    std::size_t decided_at;  // bytes needed to see it is invalid
  };
  const Bad cases[] = {
      {"version 1", v2(0x11, 0x11, kV4Block), 13},
      {"version 3", v2(0x31, 0x11, kV4Block), 13},
      {"version 0", v2(0x01, 0x11, kV4Block), 13},
      {"command 2", v2(0x22, 0x11, kV4Block), 13},
      {"command 15", v2(0x2f, 0x11, kV4Block), 13},
      {"family 4", v2(0x21, 0x41, kV4Block), 14},
      {"AF_INET, transport UNSPEC", v2(0x21, 0x10, kV4Block), 14},
      {"AF_INET, transport 3", v2(0x21, 0x13, kV4Block), 14},
      {"AF_UNSPEC, transport STREAM", v2(0x21, 0x01, kV4Block), 14},
      {"block too short for IPv4", v2(0x21, 0x11, kV4Block.substr(0, 11)), 16},
      {"block too short for IPv6", v2(0x21, 0x21, kV6Block.substr(0, 35)), 16},
      {"IPv4 length with IPv6 family", v2(0x21, 0x21, kV4Block), 16},
      {"block too short for UNIX", v2(0x21, 0x31, std::string(215, '\0')), 16},
      {"block over 536 bytes", v2(0x21, 0x11, kV4Block + std::string(525, '\0')), 16},
      {"LOCAL over 536 bytes", v2(0x20, 0x00, std::string(537, '\0')), 16},
      {"TLV header cut", v2(0x21, 0x11, kV4Block + bytes({0x04, 0})), 30},
      {"TLV value cut", v2(0x21, 0x11, kV4Block + bytes({0x04, 0, 5, 'a', 'b'})), 33},
      {"second TLV cut", v2(0x21, 0x21, kV6Block + bytes({0x04, 0, 0, 0x05, 0, 2, 'a'})), 59},
  };
  for (const Bad& c : cases) {
    CAPTURE(c.why);
    check_invalid(c.input);
    CHECK(decision_point(c.input) == c.decided_at);
  }

  // A header whose block has not fully arrived is not invalid yet: the caller bounds the wait.
  CHECK(status_of(good.substr(0, good.size() - 1)) == "need_more");
  // A 65535-byte length is refused from the fixed part alone.
  CHECK(status_of(kSignature + bytes({0x21, 0x11, 0xff, 0xff})) == "invalid");
}

TEST_CASE("proxy v2: an IPv4-mapped IPv6 source is reported as IPv4") {
  std::string block =
      bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 33}) + kV6Block.substr(16);
  ProxyParse r = check_valid(v2(0x21, 0x21, block));
  REQUIRE(r.header.source);
  CHECK(r.header.source->is_v4());
  CHECK(*r.header.source == *IpAddress::parse("192.0.2.33"));
  CHECK(addr(r, false) == "2001:db8:1::25");
}

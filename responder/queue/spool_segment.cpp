#include "responder/queue/spool_segment.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "core/crc32.hpp"

namespace ipconfirm::responder {

namespace {

// A reply is a few kilobytes, forwarded postmaster mail at most the message size; the spool
// refuses entries over 64 MiB (spool.cpp), so no record's length is longer than this.
constexpr std::uint64_t kMaxPayload = 64u << 20;
constexpr std::size_t kSegmentNameLength = 16;

// The CRC-32 of the record's type byte followed by its payload: a flipped type (E and D differ
// in one bit) must fail the check as much as a flipped payload byte.
std::uint32_t crc32_of(char type, std::string_view bytes) {
  return crc32_ieee(bytes, crc32_ieee(std::string_view(&type, 1)));
}

bool parse_hex8(std::string_view text, std::uint32_t& out) {
  if (text.size() != 8) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + 8, out, 16);
  return ec == std::errc{} && end == text.data() + 8;
}

}  // namespace

void append_segment_record(std::string& out, char type, std::string_view payload,
                           std::optional<std::uint32_t> payload_crc) {
  const std::uint32_t crc = payload_crc ? crc32_combine_ieee(crc32_ieee(std::string_view(&type, 1)),
                                                             *payload_crc, payload.size())
                                        : crc32_of(type, payload);
  char head[48];
  const int n = std::snprintf(head, sizeof head, "%c %zu %08x\n", type, payload.size(),
                              static_cast<unsigned>(crc));
  out.append(head, static_cast<std::size_t>(n));
  out.append(payload);
  out.push_back('\n');
}

SegmentScan scan_segment(std::string_view in) {
  SegmentScan scan;
  if (in.substr(0, kSegmentMagic.size()) != kSegmentMagic) {
    scan.bad_magic = true;
    scan.problem = in.size() < kSegmentMagic.size() && kSegmentMagic.substr(0, in.size()) == in
                       ? "cut short in the format line"
                       : "not a version 1 segment";
    return scan;
  }
  std::size_t pos = kSegmentMagic.size();
  scan.good_bytes = pos;
  while (pos < in.size()) {
    const std::size_t eol = in.find('\n', pos);
    // "<type> <length> <crc>\n": at most 1 + 1 + 20 + 1 + 8 characters before the newline.
    if (eol == std::string_view::npos || eol - pos > 31) {
      scan.problem = eol == std::string_view::npos && in.size() - pos <= 31
                         ? "a record cut short in its header"
                         : "a record with a bad header";
      return scan;
    }
    const std::string_view head = in.substr(pos, eol - pos);
    const std::size_t sp2 = head.rfind(' ');
    std::uint64_t length = 0;
    std::uint32_t crc = 0;
    bool ok = head.size() >= 12 && (head[0] == 'E' || head[0] == 'D') && head[1] == ' ' &&
              sp2 != std::string_view::npos && sp2 > 2;
    if (ok) {
      const std::string_view digits = head.substr(2, sp2 - 2);
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
      ok = ec == std::errc{} && end == digits.data() + digits.size() &&
           !(digits.size() > 1 && digits[0] == '0') && length <= kMaxPayload &&
           parse_hex8(head.substr(sp2 + 1), crc);
    }
    if (!ok) {
      scan.problem = "a record with a bad header";
      return scan;
    }
    const std::size_t start = eol + 1;
    if (length + 1 > in.size() - start) {
      scan.problem = "a record cut short";
      return scan;
    }
    const std::string_view payload = in.substr(start, static_cast<std::size_t>(length));
    if (in[start + payload.size()] != '\n' || crc32_of(head[0], payload) != crc) {
      scan.problem = "a record whose checksum does not match";
      return scan;
    }
    scan.records.push_back({head[0], payload, start});
    pos = start + payload.size() + 1;
    scan.good_bytes = pos;
  }
  return scan;
}

std::string segment_name(std::uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llu", static_cast<unsigned long long>(seq));
  return buf;
}

std::optional<std::uint64_t> parse_segment_name(std::string_view name) {
  if (name.size() != kSegmentNameLength) return std::nullopt;
  std::uint64_t seq = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), seq);
  if (ec != std::errc{} || end != name.data() + name.size() || seq == 0) return std::nullopt;
  return seq;
}

}  // namespace ipconfirm::responder

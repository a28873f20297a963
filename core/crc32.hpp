// CRC-32 of IEEE 802.3 (reflected polynomial 0xEDB88320), the checksum of the spool's and the
// report store's files, computed by zlib several bytes per step.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ipconfirm {

// crc32_ieee("123456789") is 0xCBF43926. `crc` continues an earlier value over more bytes:
// crc32_ieee(b, crc32_ieee(a)) == crc32_ieee(a + b); 0 starts afresh.
std::uint32_t crc32_ieee(std::string_view bytes, std::uint32_t crc = 0);

// The CRC-32 of a + b from crc32_ieee(a), crc32_ieee(b) and b's length, without reading the
// bytes again (zlib's crc32_combine): a record whose payload already carries its own checksum
// is checked once, not twice.
std::uint32_t crc32_combine_ieee(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t length_b);

// The value as the files write it: 8 lower-case hex digits.
std::string crc32_hex(std::uint32_t crc);

}  // namespace ipconfirm

#include "core/crc32.hpp"

#include <doctest/doctest.h>

#include <string>

using ipconfirm::crc32_ieee;

TEST_CASE("crc32: the IEEE 802.3 check value, the empty input and continuation") {
  CHECK(crc32_ieee("123456789") == 0xCBF43926u);
  CHECK(crc32_ieee("") == 0u);
  CHECK(crc32_ieee("6789", crc32_ieee("12345")) == 0xCBF43926u);
  const std::string big(3u << 20, 'x');
  CHECK(crc32_ieee(std::string_view(big).substr(1u << 20), crc32_ieee(big.substr(0, 1u << 20))) ==
        crc32_ieee(big));
}

TEST_CASE("crc32: combining two checksums equals the checksum of the joined bytes") {
  const std::string a = "the first part of a record\n";
  const std::string b(70'000, 'y');
  CHECK(ipconfirm::crc32_combine_ieee(crc32_ieee(a), crc32_ieee(b), b.size()) == crc32_ieee(a + b));
  CHECK(ipconfirm::crc32_combine_ieee(crc32_ieee(a), crc32_ieee(""), 0) == crc32_ieee(a));
}

// The spool's segment record format: read back after every possible cut, never a damaged record.
#include "responder/queue/spool_segment.hpp"

#include <doctest/doctest.h>

#include "core/crc32.hpp"
#include "responder/queue/report_store.hpp"
#include "responder/queue/spool.hpp"

#include <string>
#include <vector>

using namespace ipconfirm::responder;

TEST_CASE("spool segment: records read back, and every cut stops at the last whole record") {
  std::string seg(kSegmentMagic);
  append_segment_record(seg, 'E', "first payload");
  const std::size_t after_first = seg.size();
  append_segment_record(seg, 'D', "000000000001.000000.1");
  const std::size_t after_second = seg.size();
  append_segment_record(seg, 'E', std::string("binary\n\0\xff", 10));
  SegmentScan all = scan_segment(seg);
  CHECK(all.problem.empty());
  CHECK_FALSE(all.bad_magic);
  REQUIRE(all.records.size() == 3);
  CHECK(all.records[0].type == 'E');
  CHECK(all.records[0].payload == "first payload");
  CHECK(seg.substr(all.records[0].offset, 13) == "first payload");
  CHECK(all.records[1].type == 'D');
  CHECK(all.records[1].payload == "000000000001.000000.1");
  CHECK(all.records[2].payload == std::string("binary\n\0\xff", 10));
  CHECK(all.good_bytes == seg.size());

  for (std::size_t n = 0; n < seg.size(); ++n) {
    INFO("cut at " << n);
    SegmentScan s = scan_segment(std::string_view(seg).substr(0, n));
    if (n < kSegmentMagic.size()) {
      CHECK(s.bad_magic);
      continue;
    }
    const std::size_t whole = n >= after_second ? 2 : n >= after_first ? 1 : 0;
    CHECK(s.records.size() == whole);
    CHECK(s.good_bytes == (whole == 2   ? after_second
                           : whole == 1 ? after_first
                                        : kSegmentMagic.size()));
    CHECK(s.problem.empty() == (s.good_bytes == n));
  }
}

TEST_CASE("spool segment: a flipped byte is never read as a record") {
  std::string seg(kSegmentMagic);
  append_segment_record(seg, 'E', "payload one");
  append_segment_record(seg, 'D', "an-id");
  for (std::size_t i = kSegmentMagic.size(); i < seg.size(); ++i) {
    for (int mask : {0x01, 0x10, 0x80}) {
      std::string bad = seg;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ mask);
      SegmentScan s = scan_segment(bad);
      INFO("byte " << i << " mask " << mask);
      // Whatever is read is exactly what was written; reading stops at the damage.
      for (const auto& r : s.records) {
        const bool original = (r.type == 'E' && r.payload == "payload one") ||
                              (r.type == 'D' && r.payload == "an-id");
        CHECK(original);
      }
      CHECK(s.records.size() < 2);
      CHECK_FALSE(s.problem.empty());
    }
  }
  CHECK(scan_segment("garbage").bad_magic);
  CHECK(scan_segment("").bad_magic);
  CHECK(scan_segment(std::string(kSegmentMagic) + "E 5 00000000\nhello\n").problem ==
        "a record whose checksum does not match");
  CHECK(scan_segment(std::string(kSegmentMagic) + "X 0 00000000\n\n").problem ==
        "a record with a bad header");
  CHECK(scan_segment(std::string(kSegmentMagic) + "E 05 00000000\n").problem ==
        "a record with a bad header");
  CHECK(scan_segment(std::string(kSegmentMagic) + "E 99999999999999999999 00000000\n").problem ==
        "a record with a bad header");
}

TEST_CASE("spool segment: names") {
  CHECK(segment_name(42) == "0000000000000042");
  CHECK(parse_segment_name("0000000000000042") == 42u);
  CHECK_FALSE(parse_segment_name("42").has_value());
  CHECK_FALSE(parse_segment_name("000000000000004x").has_value());
  CHECK_FALSE(parse_segment_name("0000000000000000").has_value());
  CHECK_FALSE(parse_segment_name("../0000000000042").has_value());
}

TEST_CASE("spool segment: a payload's known checksum gives the same record as reading it") {
  QueueEntry e;
  e.id = "0123456789abcdef";
  e.recipient = "sender@example.org";
  e.data = std::string(5000, 'z') + "\r\n";
  std::uint32_t crc = 0;
  const std::string entry = serialize_spool_entry(e, &crc);
  CHECK(crc == ipconfirm::crc32_ieee(entry));
  std::string known, read;
  append_segment_record(known, 'E', entry, crc);
  append_segment_record(read, 'E', entry);
  CHECK(known == read);

  const std::string report = serialize_stored_report("{\"a\": 1}\n", &crc);
  CHECK(crc == ipconfirm::crc32_ieee(report));
}

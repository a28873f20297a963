// The spool's segment files: the record format read back after every possible cut, the
// writer's segments (appends, done marks, moves into files, removal), and a spool that holds
// both segments and the first format's one file per entry.
#include "responder/queue/spool_segment.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "responder/queue/spool.hpp"
#include "tests/unit/spool_test_support.hpp"

using namespace ipconfirm::responder;
using ipconfirm::responder::test::names_in;
using ipconfirm::responder::test::read_all;
using ipconfirm::responder::test::TempDir;
using ipconfirm::responder::test::write_all;
namespace fs = std::filesystem;

namespace {

QueueEntry reply_to(std::string recipient, std::size_t body = 100) {
  QueueEntry e;
  e.recipient = std::move(recipient);
  e.data = "Subject: report\r\n\r\n" + std::string(body, 'x') + "\r\n";
  e.origin = "ip 192.0.2.1";
  return e;
}

Spool open_ok(const fs::path& dir, SpoolOpenReport& report) {
  std::string error;
  auto spool = Spool::open({dir, 100000}, report, error);
  REQUIRE_MESSAGE(spool.has_value(), error);
  return std::move(*spool);
}

Spool open_ok(const fs::path& dir) {
  SpoolOpenReport report;
  return open_ok(dir, report);
}

std::vector<std::string> segment_files(const fs::path& dir) {
  return names_in(dir / "segments");
}

// Writes an entry the way the first spool format did: queue/<id>, one file per entry.
void write_old_entry(const fs::path& dir, const QueueEntry& e) {
  fs::create_directories(dir / "queue");
  write_all(dir / "queue" / e.id, serialize_spool_entry(e));
}

}  // namespace

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
    CHECK(s.good_bytes == (whole == 2 ? after_second : whole == 1 ? after_first
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

TEST_CASE("spool segment: a batch goes into one segment with no file per entry") {
  TempDir tmp;
  Spool spool = open_ok(tmp.path());
  std::vector<QueueEntry> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(reply_to("r" + std::to_string(i) + "@sender.test"));
  auto results = spool.enqueue_batch(batch, 1000);
  REQUIRE(results.size() == 5);
  for (const auto& r : results) REQUIRE_MESSAGE(r.error == SpoolError::none, r.detail);
  CHECK(names_in(tmp.path() / "queue").empty());
  CHECK(names_in(tmp.path() / "tmp").empty());
  CHECK(segment_files(tmp.path()).size() == 1);
  for (int i = 0; i < 5; ++i) {
    auto e = spool.load(results[static_cast<std::size_t>(i)].id);
    REQUIRE(e.has_value());
    CHECK(e->recipient == "r" + std::to_string(i) + "@sender.test");
  }
  // Delivered: done marks, and the segment stays until it is no longer the current one.
  for (const auto& r : results) REQUIRE(spool.remove(r.id) == SpoolError::none);
  CHECK(spool.size() == 0);
  CHECK(Spool::peek(tmp.path()).empty());
  spool = Spool();  // placeholder assignment is not allowed; see below
}

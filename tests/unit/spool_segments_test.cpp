// The spool's segment files as the spool uses them: appends, done marks, moves into files of
// their own, removal of segments whose entries are all done, recovery after a cut tail, and an
// older spool with one file per entry (an upgrade).
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "responder/queue/spool.hpp"
#include "responder/queue/spool_segment.hpp"
#include "tests/unit/spool_test_support.hpp"

using namespace ipconfirm::responder;
using ipconfirm::responder::test::names_in;
using ipconfirm::responder::test::read_all;
using ipconfirm::responder::test::TempDir;
using ipconfirm::responder::test::write_all;
namespace fs = std::filesystem;

namespace {

QueueEntry reply_to(const std::string& recipient, std::size_t body = 100) {
  QueueEntry e;
  e.recipient = recipient;
  e.data = "Subject: report\r\n\r\n" + std::string(body, 'x') + "\r\n";
  e.origin = "from 192.0.2.1";
  return e;
}

Spool open_with(const fs::path& dir, SpoolOpenReport& report, std::uint64_t segment_bytes) {
  std::string error;
  auto spool = Spool::open({dir, 10000, segment_bytes}, report, error);
  REQUIRE_MESSAGE(spool.has_value(), error);
  return std::move(*spool);
}

Spool open_with(const fs::path& dir, std::uint64_t segment_bytes = 8u << 20) {
  SpoolOpenReport report;
  return open_with(dir, report, segment_bytes);
}

std::vector<std::string> ids_of(const std::vector<QueueEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.id);
  return out;
}

}  // namespace

TEST_CASE(
    "spool segments: a batch is one segment record each; a full segment is followed by a "
    "new one; a segment goes when all its entries are done") {
  TempDir tmp;
  Spool spool = open_with(tmp.path(), 2000);  // about three 600-byte entries per segment
  std::vector<QueueEntry> batch;
  for (int i = 0; i < 4; ++i) batch.push_back(reply_to("b" + std::to_string(i) + "@x.test", 500));
  auto results = spool.enqueue_batch(batch, 1000);
  REQUIRE(results.size() == 4);
  std::vector<std::string> ids;
  for (const auto& r : results) {
    REQUIRE_MESSAGE(r.error == SpoolError::none, r.detail);
    ids.push_back(r.id);
  }
  // One batch, one segment, whatever its size.
  CHECK(names_in(tmp.path() / "segments") == std::vector<std::string>{"0000000000000001"});
  const std::string bytes = read_all(tmp.path() / "segments" / "0000000000000001");
  SegmentScan scan = scan_segment(bytes);
  CHECK(scan.problem.empty());
  REQUIRE(scan.records.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(scan.records[i].type == 'E');
    CHECK(spool.place(ids[i])->offset == scan.records[i].offset);
  }
  // Past the bound: the next entries go to segment 2, then 3.
  for (int i = 0; i < 4; ++i) ids.push_back(spool.enqueue(reply_to("n@x.test", 500), 1001).id);
  CHECK(names_in(tmp.path() / "segments") ==
        std::vector<std::string>{"0000000000000001", "0000000000000002", "0000000000000003"});
  CHECK(spool.place(ids[4])->segment == 2);
  CHECK(spool.place(ids[7])->segment == 3);

  // Done marks: segment 1 stays while one of its entries is live, and goes with the last.
  SpoolWriter& writer = *spool.writer();
  for (int i = 0; i < 3; ++i) {
    REQUIRE(spool.forget(ids[i]) == SpoolError::none);
    CHECK(writer.done(ids[i]).empty());
  }
  CHECK(fs::exists(tmp.path() / "segments" / "0000000000000001"));
  CHECK(scan_segment(read_all(tmp.path() / "segments" / "0000000000000001")).records.size() == 7);
  CHECK(spool.load(ids[3])->recipient == "b3@x.test");
  REQUIRE(spool.remove(ids[3]) == SpoolError::none);
  CHECK_FALSE(fs::exists(tmp.path() / "segments" / "0000000000000001"));
  CHECK(ids_of(Spool::peek(tmp.path())) == std::vector<std::string>(ids.begin() + 4, ids.end()));
  // The segment being appended to stays even with nothing live in it.
  REQUIRE(spool.remove(ids[7]) == SpoolError::none);
  CHECK(fs::exists(tmp.path() / "segments" / "0000000000000003"));
  CHECK(ids_of(Spool::peek(tmp.path())) ==
        std::vector<std::string>(ids.begin() + 4, ids.end() - 1));
}

TEST_CASE("spool segments: a retried entry moves into a file of its own and frees its segment") {
  TempDir tmp;
  std::string a, b;
  {
    Spool spool = open_with(tmp.path(), 1);  // every batch fills its segment
    a = spool.enqueue(reply_to("a@x.test"), 1000).id;
    b = spool.enqueue(reply_to("b@x.test"), 1000).id;
    CHECK(names_in(tmp.path() / "segments").size() == 2);
    // The deliverer's way: the index first, then the writer.
    REQUIRE(spool.reschedule(a, 1600) == SpoolError::none);
    CHECK(spool.load(a)->next_attempt == 1000);  // still the segment copy
    CHECK(spool.writer()->rewrite({a, 1600, 1, "451 4.3.0 later"}).empty());
    CHECK(names_in(tmp.path() / "queue") == std::vector<std::string>{a});
    // Its segment held only it: gone.
    CHECK(names_in(tmp.path() / "segments") == std::vector<std::string>{"0000000000000002"});
    CHECK(spool.load(a)->attempts == 1);
    CHECK(spool.place(a)->segment == 0);
    // A second retry rewrites the file.
    REQUIRE(spool.reschedule(a, 2000) == SpoolError::none);
    CHECK(spool.writer()->rewrite({a, 2000, 2, "451 4.3.0 again"}).empty());
    CHECK(spool.load(a)->attempts == 2);
    auto seen = Spool::peek(tmp.path());
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].id == a);
    CHECK(seen[0].next_attempt == 2000);
    CHECK(seen[1].id == b);
  }
  SpoolOpenReport report;
  Spool spool = open_with(tmp.path(), report, 1);
  CHECK(report.recovered == 2);
  CHECK(report.problems.empty());
  CHECK(spool.load(a)->last_error == "451 4.3.0 again");
  CHECK(spool.due(1999) == std::vector<std::string>{b});
  // Done with both kinds: the file is unlinked, the segment goes.
  REQUIRE(spool.remove(a) == SpoolError::none);
  REQUIRE(spool.remove(b) == SpoolError::none);
  CHECK(names_in(tmp.path() / "queue").empty());
  CHECK(names_in(tmp.path() / "segments").empty());
}

TEST_CASE("spool segments: a file of its own wins over a segment copy not yet marked done") {
  // A crash between the move (file durable) and the done mark of the segment copy.
  TempDir tmp;
  std::string id;
  {
    Spool spool = open_with(tmp.path());
    id = spool.enqueue(reply_to("a@x.test"), 1000).id;
    QueueEntry moved = *spool.load(id);
    moved.attempts = 4;
    moved.next_attempt = 5000;
    write_all(tmp.path() / "queue" / id, serialize_spool_entry(moved));
  }
  SpoolOpenReport report;
  Spool spool = open_with(tmp.path(), report, 8u << 20);
  CHECK(report.recovered == 1);
  CHECK(spool.load(id)->attempts == 4);
  CHECK(spool.due(4999).empty());
  CHECK(Spool::peek(tmp.path()).size() == 1);
  // Its segment has no live entry left: removed at open.
  CHECK(names_in(tmp.path() / "segments").empty());
}

TEST_CASE("spool segments: a tail cut anywhere is cut off at open, and later marks count") {
  TempDir tmp;
  std::vector<std::string> ids;
  std::uint64_t before_last = 0;
  {
    Spool spool = open_with(tmp.path());
    for (int i = 0; i < 2; ++i) ids.push_back(spool.enqueue(reply_to("a@x.test"), 1000).id);
    before_last = fs::file_size(tmp.path() / "segments" / "0000000000000001");
    ids.push_back(spool.enqueue(reply_to("c@x.test"), 1000).id);
  }
  const fs::path segment = tmp.path() / "segments" / "0000000000000001";
  const std::string whole = read_all(segment);
  // Every cut inside the last record, as kill -9 during its write leaves it: the first two
  // entries are read, the cut record is dropped and the file cut back to them.
  for (std::uint64_t n = before_last; n < whole.size(); ++n) {
    INFO("cut at " << n);
    write_all(segment, whole.substr(0, n));
    SpoolOpenReport report;
    Spool spool = open_with(tmp.path(), report, 8u << 20);
    CHECK(report.recovered == 2);
    CHECK(report.truncated == (n == before_last ? 0u : 1u));
    CHECK(fs::file_size(segment) == before_last);
    CHECK(ids_of(spool.list()) == std::vector<std::string>{ids[0], ids[1]});
  }
  // Garbage after the last whole record (a power loss before the sync): the same.
  write_all(segment, whole + std::string(300, '\0'));
  {
    SpoolOpenReport report;
    Spool spool = open_with(tmp.path(), report, 8u << 20);
    CHECK(report.recovered == 3);
    CHECK(report.truncated == 1);
    REQUIRE(report.problems.size() == 1);
    CHECK(report.problems[0].find("cut there") != std::string::npos);
    CHECK(fs::file_size(segment) == whole.size());
    // A done mark written after the cut is read back at the next start.
    REQUIRE(spool.remove(ids[0]) == SpoolError::none);
    // New entries go to a new segment.
    CHECK(spool.place(spool.enqueue(reply_to("d@x.test"), 1000).id)->segment == 2);
  }
  SpoolOpenReport report;
  Spool spool = open_with(tmp.path(), report, 8u << 20);
  CHECK(report.recovered == 3);
  CHECK(report.truncated == 0);
  CHECK_FALSE(spool.load(ids[0]).has_value());
  CHECK(spool.load(ids[1]).has_value());
  CHECK(spool.load(ids[2]).has_value());
}

TEST_CASE("spool segments: a segment cut in its format line is removed, a foreign one set aside") {
  TempDir tmp;
  { Spool spool = open_with(tmp.path()); }
  write_all(tmp.path() / "segments" / "0000000000000007", "ipconfirm-seg");
  write_all(tmp.path() / "segments" / "0000000000000008", "");
  write_all(tmp.path() / "segments" / "0000000000000009", "GIF89a not a segment");
  write_all(tmp.path() / "segments" / "notes.txt", "left alone");
  SpoolOpenReport report;
  Spool spool = open_with(tmp.path(), report, 8u << 20);
  CHECK(report.recovered == 0);
  CHECK(report.set_aside == 1);
  CHECK(names_in(tmp.path() / "segments") == std::vector<std::string>{"notes.txt"});
  CHECK(read_all(tmp.path() / "corrupt" / "0000000000000009") == "GIF89a not a segment");
  // Numbers are not reused: the next segment comes after every name seen.
  CHECK(spool.place(spool.enqueue(reply_to("a@x.test"), 1).id)->segment == 10);
}

TEST_CASE("spool segments: an older spool (one file per entry) is read, and grows segments") {
  TempDir tmp;
  // What the spool wrote before segments: queue/<id> in the version 1 entry format, no
  // segments/ folder.
  fs::create_directories(tmp.path() / "queue");
  fs::create_directories(tmp.path() / "tmp");
  std::vector<std::string> old_ids = {"001700000000.000001.77", "001700000000.000002.77"};
  for (std::size_t i = 0; i < old_ids.size(); ++i) {
    QueueEntry e = reply_to("old" + std::to_string(i) + "@x.test");
    e.id = old_ids[i];
    e.created = 1700000000;
    e.next_attempt = 1700000000;
    write_all(tmp.path() / "queue" / e.id, serialize_spool_entry(e));
  }
  SpoolOpenReport report;
  Spool spool = open_with(tmp.path(), report, 8u << 20);
  CHECK(report.recovered == 2);
  CHECK(report.problems.empty());
  CHECK(fs::is_directory(tmp.path() / "segments"));
  const std::string fresh = spool.enqueue(reply_to("new@x.test"), 1700000100).id;
  CHECK(spool.due(1700000100) == std::vector<std::string>{old_ids[0], old_ids[1], fresh});
  CHECK(spool.load(old_ids[1])->recipient == "old1@x.test");
  CHECK(ids_of(Spool::peek(tmp.path())) == std::vector<std::string>{old_ids[0], old_ids[1], fresh});
  // Done with an old entry: its file goes.
  REQUIRE(spool.remove(old_ids[0]) == SpoolError::none);
  CHECK(names_in(tmp.path() / "queue") == std::vector<std::string>{old_ids[1]});
  CHECK(spool.flush(1700000200) == 2);
  CHECK(spool.load(fresh)->next_attempt == 1700000200);
}

#include "responder/queue/spool.hpp"

#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <set>

#include "tests/unit/spool_test_support.hpp"

using namespace ipconfirm::responder;
using ipconfirm::responder::test::names_in;
using ipconfirm::responder::test::read_all;
using ipconfirm::responder::test::TempDir;
using ipconfirm::responder::test::write_all;
namespace fs = std::filesystem;

namespace {

QueueEntry sample(std::string recipient = "alice@sender.test") {
  QueueEntry e;
  e.recipient = std::move(recipient);
  e.sender = "";
  e.data =
      "From: ipconfirm@example.test\r\nTo: alice@sender.test\r\nSubject: report\r\n\r\n"
      "Your address 192.0.2.1 has no reverse DNS.\r\n";
  e.origin = "from 192.0.2.1 msg <abc@sender.test>";
  return e;
}

Spool open_ok(const fs::path& dir, SpoolOpenReport& report, std::size_t max_entries = 10000) {
  std::string error;
  auto spool = Spool::open({dir, max_entries}, report, error);
  REQUIRE_MESSAGE(spool.has_value(), error);
  CHECK(error.empty());
  return std::move(*spool);
}

Spool open_ok(const fs::path& dir, std::size_t max_entries = 10000) {
  SpoolOpenReport report;
  return open_ok(dir, report, max_entries);
}

}  // namespace

TEST_CASE("spool: serialized entries round-trip, including binary data") {
  QueueEntry e = sample();
  e.id = "000001700000.000001.42";
  e.sender = "bounce@example.test";
  static const char raw[] = "line\r\ncrc32 00000000\n\0with NUL\xff";
  e.data = std::string(raw, sizeof raw - 1);
  REQUIRE(e.data.size() == 31);
  e.last_error = "451 4.7.1 try later\r\nsecond line";
  e.attempts = 7;
  e.created = 1700000000;
  e.next_attempt = -5;
  std::string why;
  auto back = parse_spool_entry(serialize_spool_entry(e), why);
  REQUIRE_MESSAGE(back.has_value(), why);
  CHECK(back->id == e.id);
  CHECK(back->recipient == e.recipient);
  CHECK(back->sender == e.sender);
  CHECK(back->data == e.data);
  CHECK(back->origin == e.origin);
  CHECK(back->attempts == 7);
  CHECK(back->created == 1700000000);
  CHECK(back->next_attempt == -5);
  CHECK(back->last_error == e.last_error);
}

TEST_CASE("spool: every truncation and every flipped byte of an entry is detected") {
  QueueEntry e = sample();
  e.id = "000001700000.000001.42";
  e.attempts = 3;
  const std::string bytes = serialize_spool_entry(e);
  std::string why;
  REQUIRE(parse_spool_entry(bytes, why).has_value());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    INFO("prefix length " << n);
    CHECK_FALSE(parse_spool_entry(std::string_view(bytes).substr(0, n), why).has_value());
  }
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (int mask : {0x01, 0x20, 0x80}) {
      std::string flipped = bytes;
      flipped[i] = static_cast<char>(static_cast<unsigned char>(flipped[i]) ^ mask);
      INFO("byte " << i << " mask " << mask);
      CHECK_FALSE(parse_spool_entry(flipped, why).has_value());
    }
  }
  CHECK_FALSE(parse_spool_entry(bytes + "x", why).has_value());
  CHECK(why == "bytes after the checksum");
  CHECK_FALSE(parse_spool_entry("", why).has_value());
  CHECK(why == "empty file");
  CHECK_FALSE(parse_spool_entry("From: someone\r\n\r\nhello", why).has_value());
  CHECK(why == "not a version 1 spool entry");
}

TEST_CASE("spool: enqueue then load round-trips and is on disk") {
  TempDir tmp;
  Spool spool = open_ok(tmp.path() / "spool");
  CHECK(spool.size() == 0);
  QueueEntry in = sample();
  auto r = spool.enqueue(in, 1700000000);
  REQUIRE_MESSAGE(r.error == SpoolError::none, r.detail);
  CHECK(is_valid_spool_id(r.id));
  CHECK(spool.size() == 1);
  // Appended to the first segment; nothing in queue/ or tmp/.
  CHECK(names_in(tmp.path() / "spool" / "segments") ==
        std::vector<std::string>{"0000000000000001"});
  CHECK(names_in(tmp.path() / "spool" / "queue").empty());
  CHECK(names_in(tmp.path() / "spool" / "tmp").empty());
  REQUIRE(spool.place(r.id).has_value());
  CHECK(spool.place(r.id)->segment == 1);

  SpoolError err = SpoolError::io;
  auto out = spool.load(r.id, &err);
  REQUIRE(out.has_value());
  CHECK(err == SpoolError::none);
  CHECK(out->id == r.id);
  CHECK(out->recipient == in.recipient);
  CHECK(out->sender == "");
  CHECK(out->data == in.data);
  CHECK(out->origin == in.origin);
  CHECK(out->attempts == 0);
  CHECK(out->created == 1700000000);
  CHECK(out->next_attempt == 1700000000);
  CHECK(out->last_error.empty());

  CHECK(spool.due(1699999999).empty());
  CHECK(spool.due(1700000000) == std::vector<std::string>{r.id});
  auto all = spool.list();
  REQUIRE(all.size() == 1);
  CHECK(all[0].data == in.data);
}

TEST_CASE("spool: an explicit next_attempt is kept; ids are unique and sort in enqueue order") {
  TempDir tmp;
  Spool spool = open_ok(tmp.path());
  QueueEntry later = sample();
  later.next_attempt = 1700000600;
  auto first = spool.enqueue(later, 1700000000);
  REQUIRE(first.error == SpoolError::none);
  CHECK(spool.due(1700000599).empty());
  CHECK(spool.due(1700000600).size() == 1);

  std::vector<std::string> ids{first.id};
  for (int i = 0; i < 50; ++i) {
    auto r = spool.enqueue(sample("r" + std::to_string(i) + "@sender.test"), 1700000000 + i / 10);
    REQUIRE(r.error == SpoolError::none);
    ids.push_back(r.id);
  }
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == ids.size());
  CHECK(std::is_sorted(ids.begin(), ids.end()));
  auto all = spool.list();
  REQUIRE(all.size() == ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) CHECK(all[i].id == ids[i]);
  CHECK(all[1].recipient == "r0@sender.test");
  CHECK(all.back().recipient == "r49@sender.test");
}

TEST_CASE("spool: update rewrites only the retry fields, durably") {
  TempDir tmp;
  std::string id;
  {
    Spool spool = open_ok(tmp.path());
    auto r = spool.enqueue(sample(), 1000);
    REQUIRE(r.error == SpoolError::none);
    id = r.id;
    QueueEntry changed = *spool.load(id);
    changed.attempts = 2;
    changed.next_attempt = 1120;
    changed.last_error = "421 4.3.2 shutting down";
    changed.data = "must not be written";
    changed.recipient = "mallory@evil.test";
    REQUIRE(spool.update(changed) == SpoolError::none);
    CHECK(spool.last_detail().empty());
    CHECK(spool.due(1119).empty());
    CHECK(spool.due(1120) == std::vector<std::string>{id});
    CHECK(names_in(tmp.path() / "tmp").empty());

    QueueEntry ghost = changed;
    ghost.id = "000000000001.000000.1";
    CHECK(spool.update(ghost) == SpoolError::not_found);
    CHECK_FALSE(spool.last_detail().empty());
  }
  Spool again = open_ok(tmp.path());
  auto e = again.load(id);
  REQUIRE(e.has_value());
  CHECK(e->attempts == 2);
  CHECK(e->next_attempt == 1120);
  CHECK(e->last_error == "421 4.3.2 shutting down");
  CHECK(e->data == sample().data);
  CHECK(e->recipient == "alice@sender.test");
  CHECK(e->created == 1000);
  CHECK(again.due(1119).empty());
}

TEST_CASE("spool: remove unlinks, and a second remove is not_found") {
  TempDir tmp;
  Spool spool = open_ok(tmp.path());
  auto a = spool.enqueue(sample(), 1000);
  auto b = spool.enqueue(sample(), 1000);
  REQUIRE(spool.remove(a.id) == SpoolError::none);
  CHECK(spool.size() == 1);
  CHECK(spool.remove(a.id) == SpoolError::not_found);
  SpoolError err = SpoolError::none;
  CHECK_FALSE(spool.load(a.id, &err).has_value());
  CHECK(err == SpoolError::not_found);
  CHECK(spool.load(b.id).has_value());
  // The done mark is on disk: peek and a restart see only b.
  auto seen = Spool::peek(tmp.path());
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].id == b.id);
  TempDir other;
  spool = open_ok(other.path());  // releases the lock
  Spool again = open_ok(tmp.path());
  CHECK(again.due(2000) == std::vector<std::string>{b.id});
}

TEST_CASE("spool: forget then the writer's done is remove in two halves") {
  TempDir tmp;
  Spool spool = open_ok(tmp.path());
  auto a = spool.enqueue(sample(), 1000);
  auto b = spool.enqueue(sample(), 1000);
  REQUIRE(spool.forget(a.id) == SpoolError::none);
  CHECK(spool.size() == 1);
  CHECK(spool.due(2000) == std::vector<std::string>{b.id});
  CHECK(spool.forget(a.id) == SpoolError::not_found);
  CHECK(spool.forget("../x") == SpoolError::not_found);
  // Forgotten but not yet marked done: a restart here would find it and send it again.
  CHECK(Spool::peek(tmp.path()).size() == 2);
  SpoolWriter& writer = *spool.writer();
  CHECK(writer.done(a.id).empty());
  REQUIRE(Spool::peek(tmp.path()).size() == 1);
  CHECK(Spool::peek(tmp.path())[0].id == b.id);
  CHECK(writer.done(a.id).empty());  // already done: no error
  CHECK_FALSE(writer.done("../queue").empty());
  CHECK(Spool::peek(tmp.path()).size() == 1);
}

TEST_CASE("spool: reopening recovers entries, their schedule and removes temporary files") {
  TempDir tmp;
  std::vector<std::string> kept;
  {
    Spool spool = open_ok(tmp.path());
    for (int i = 0; i < 4; ++i) {
      auto r = spool.enqueue(sample("u" + std::to_string(i) + "@sender.test"), 5000 + i);
      REQUIRE(r.error == SpoolError::none);
      kept.push_back(r.id);
    }
    REQUIRE(spool.remove(kept[1]) == SpoolError::none);
    kept.erase(kept.begin() + 1);
  }
  // What a process killed in the middle of a write leaves behind.
  write_all(tmp.path() / "tmp" / "000000005000.123456.99", "ipconfirm-spool 1\nid 2");
  write_all(tmp.path() / "tmp" / "stray", "");

  SpoolOpenReport report;
  Spool spool = open_ok(tmp.path(), report);
  CHECK(report.recovered == 3);
  CHECK(report.temp_removed == 2);
  CHECK(report.set_aside == 0);
  CHECK(report.problems.empty());
  CHECK(names_in(tmp.path() / "tmp").empty());
  CHECK(spool.size() == 3);
  auto all = spool.list();
  REQUIRE(all.size() == 3);
  CHECK(all[0].recipient == "u0@sender.test");
  CHECK(all[1].recipient == "u2@sender.test");
  CHECK(all[2].recipient == "u3@sender.test");
  CHECK(spool.due(5002) == std::vector<std::string>{kept[0], kept[1]});
  // New ids do not collide with recovered ones.
  auto r = spool.enqueue(sample(), 5000);
  REQUIRE(r.error == SpoolError::none);
  CHECK(spool.size() == 4);
}

TEST_CASE("spool: damaged files are set aside and reported, and do not stop open()") {
  TempDir tmp;
  std::vector<std::string> ids;
  {
    Spool spool = open_ok(tmp.path());
    for (int i = 0; i < 6; ++i) ids.push_back(spool.enqueue(sample(), 100).id);
    // Into files of their own (as after a retry, or as an older spool had them all).
    CHECK(spool.flush(100) == 6);
  }
  const fs::path q = tmp.path() / "queue";
  std::map<std::string, std::string> damaged;  // name -> bytes written

  std::string whole = read_all(q / ids[0]);
  damaged[ids[0]] = whole.substr(0, whole.size() / 2);  // truncated
  std::string flipped = read_all(q / ids[1]);
  flipped[flipped.size() - 40] ^= 0x04;  // a byte of the message data
  damaged[ids[1]] = flipped;
  damaged[ids[2]] = "\x89PNG garbage \x00\x01\x02 not a spool entry";  // garbage
  damaged[ids[3]] = "";                                                // zero-length
  damaged["000000000099.000000.1"] = read_all(q / ids[4]);  // valid file under another name
  damaged[".hidden"] = "x";                                 // not an entry name
  for (const auto& [name, bytes] : damaged) write_all(q / name, bytes);
  write_all(tmp.path() / "outside", "precious");
  fs::create_symlink(tmp.path() / "outside", q / "000000000098.000000.1");

  SpoolOpenReport report;
  Spool spool = open_ok(tmp.path(), report);
  CHECK(report.recovered == 2);
  CHECK(report.set_aside == damaged.size() + 1);
  CHECK(report.problems.size() == damaged.size() + 1);
  for (const std::string& p : report.problems) CHECK(p.find("moved to corrupt/") != p.npos);
  CHECK(spool.size() == 2);
  CHECK(spool.load(ids[4]).has_value());
  CHECK(spool.load(ids[5]).has_value());
  SpoolError err = SpoolError::none;
  CHECK_FALSE(spool.load(ids[0], &err).has_value());
  CHECK(err == SpoolError::not_found);
  CHECK(names_in(q) == std::vector<std::string>{ids[4], ids[5]});
  // The damaged files are kept byte for byte for a human to look at.
  for (const auto& [name, bytes] : damaged) {
    INFO(name);
    CHECK(read_all(tmp.path() / "corrupt" / name) == bytes);
  }
  auto has_problem = [&](const std::string& name, const std::string& text) {
    for (const std::string& p : report.problems) {
      if (p.find(name) != p.npos && p.find(text) != p.npos) return true;
    }
    return false;
  };
  CHECK(has_problem(ids[0], "truncated"));
  CHECK(has_problem(ids[1], "checksum mismatch"));
  CHECK(has_problem(ids[2], "not a version 1 spool entry"));
  CHECK(has_problem(ids[3], "empty file"));
  CHECK(has_problem("000000000099.000000.1", "does not match the file name"));
  CHECK(has_problem(".hidden", "not an entry name"));
  CHECK(has_problem("000000000098.000000.1", "symbolic link"));
  CHECK(fs::is_symlink(tmp.path() / "corrupt" / "000000000098.000000.1"));
  CHECK(read_all(tmp.path() / "outside") == "precious");

  // Setting aside the same name again does not overwrite the first copy.
  TempDir other;
  spool = open_ok(other.path());  // move assignment releases the lock on tmp.path()
  write_all(q / ids[3], "again");
  SpoolOpenReport second;
  Spool reopened = open_ok(tmp.path(), second);
  CHECK(second.set_aside == 1);
  CHECK(read_all(tmp.path() / "corrupt" / ids[3]).empty());
  CHECK(read_all(tmp.path() / "corrupt" / (ids[3] + ".1")) == "again");
}

TEST_CASE("spool: an entry damaged while the spool is open loads as corrupt") {
  TempDir tmp;
  Spool spool = open_ok(tmp.path());
  auto r = spool.enqueue(sample(), 100);
  const fs::path segment = tmp.path() / "segments" / "0000000000000001";
  std::string bytes = read_all(segment);
  bytes[bytes.size() / 2] ^= 0x10;
  write_all(segment, bytes);
  SpoolError err = SpoolError::none;
  CHECK_FALSE(spool.load(r.id, &err).has_value());
  CHECK(err == SpoolError::corrupt);
  QueueEntry e = sample();
  e.id = r.id;
  CHECK(spool.update(e) == SpoolError::corrupt);
  CHECK(spool.list().empty());
  fs::remove(segment);
  CHECK_FALSE(spool.load(r.id, &err).has_value());
  CHECK(err == SpoolError::not_found);
}

TEST_CASE("spool: full at max_entries, nothing written, and room again after a remove") {
  TempDir tmp;
  std::vector<std::string> ids;
  {
    Spool spool = open_ok(tmp.path(), 3);
    for (int i = 0; i < 3; ++i) {
      auto r = spool.enqueue(sample(), 100);
      REQUIRE(r.error == SpoolError::none);
      ids.push_back(r.id);
    }
    auto over = spool.enqueue(sample(), 100);
    CHECK(over.error == SpoolError::full);
    CHECK(over.id.empty());
    CHECK(over.detail.find("queue full") != std::string::npos);
    CHECK(spool.size() == 3);
    CHECK(Spool::peek(tmp.path()).size() == 3);
    CHECK(names_in(tmp.path() / "tmp").empty());
    REQUIRE(spool.remove(ids[0]) == SpoolError::none);
    CHECK(spool.enqueue(sample(), 100).error == SpoolError::none);
  }
  // A smaller cap on restart never drops entries; it only refuses new ones.
  SpoolOpenReport report;
  Spool spool = open_ok(tmp.path(), report, 2);
  CHECK(report.recovered == 3);
  CHECK(spool.size() == 3);
  CHECK(spool.enqueue(sample(), 100).error == SpoolError::full);
}

TEST_CASE("spool: ids that are not plain names are not_found, never paths") {
  TempDir tmp;
  write_all(tmp.path() / "outside", "precious");
  Spool spool = open_ok(tmp.path() / "spool");
  auto r = spool.enqueue(sample(), 100);
  REQUIRE(r.error == SpoolError::none);
  const std::vector<std::string> bad = {"../x",
                                        "../outside",
                                        "../../outside",
                                        "../lock",
                                        "../queue/" + r.id,
                                        "./" + r.id,
                                        r.id + "/",
                                        "/etc/passwd",
                                        "",
                                        ".",
                                        "..",
                                        "a/b",
                                        std::string("x\0y", 3),
                                        std::string(65, 'a')};
  for (const std::string& id : bad) {
    INFO("id '" << id << "'");
    CHECK_FALSE(is_valid_spool_id(id));
    SpoolError err = SpoolError::none;
    CHECK_FALSE(spool.load(id, &err).has_value());
    CHECK(err == SpoolError::not_found);
    CHECK(spool.remove(id) == SpoolError::not_found);
    QueueEntry e = sample();
    e.id = id;
    CHECK(spool.update(e) == SpoolError::not_found);
  }
  CHECK(read_all(tmp.path() / "outside") == "precious");
  CHECK(fs::exists(tmp.path() / "spool" / "lock"));
  CHECK(spool.size() == 1);
  CHECK(spool.load(r.id).has_value());
  CHECK(is_valid_spool_id(r.id));
  CHECK(is_valid_spool_id("A-z_0.9"));
  CHECK(is_valid_spool_id(std::string(64, 'a')));
}

TEST_CASE("spool: one owner at a time; the lock moves with the Spool") {
  TempDir tmp;
  std::optional<Spool> holder;
  {
    Spool first = open_ok(tmp.path());
    holder.emplace(std::move(first));
  }  // the moved-from object's destructor must not release the lock
  SpoolOpenReport report;
  std::string error;
  CHECK_FALSE(Spool::open({tmp.path(), 10}, report, error).has_value());
  CHECK(error.find("in use") != std::string::npos);
  // The moved-to object works.
  CHECK(holder->enqueue(sample(), 1).error == SpoolError::none);
  holder.reset();
  auto again = Spool::open({tmp.path(), 10}, report, error);
  REQUIRE(again.has_value());
  CHECK(again->size() == 1);
}

TEST_CASE("spool: open fails cleanly when the directory cannot be created") {
  TempDir tmp;
  write_all(tmp.path() / "file", "x");
  SpoolOpenReport report;
  std::string error;
  CHECK_FALSE(Spool::open({tmp.path() / "file" / "spool", 10}, report, error).has_value());
  CHECK_FALSE(error.empty());
  CHECK_FALSE(Spool::open({fs::path(), 10}, report, error).has_value());
  CHECK_FALSE(error.empty());
}

TEST_CASE("spool: a write error is reported and leaves nothing behind") {
  TempDir tmp;
  // One batch per segment: each enqueue needs a new segment file.
  SpoolOpenReport open_report;
  std::string error;
  auto opened = Spool::open({tmp.path(), 100, 1}, open_report, error);
  REQUIRE(opened.has_value());
  Spool spool = std::move(*opened);
  auto kept = spool.enqueue(sample(), 100);
  REQUIRE(kept.error == SpoolError::none);
  // A file where segments/ was: no new segment can be created now.
  fs::rename(tmp.path() / "segments", tmp.path() / "segments.moved");
  write_all(tmp.path() / "segments", "x");
  auto r = spool.enqueue(sample(), 100);
  CHECK(r.error == SpoolError::io);
  CHECK(r.id.empty());
  CHECK(r.detail.find("open") != std::string::npos);
  CHECK(spool.size() == 1);
  fs::remove(tmp.path() / "segments");
  fs::rename(tmp.path() / "segments.moved", tmp.path() / "segments");
  CHECK(Spool::peek(tmp.path()).size() == 1);
  fs::remove_all(tmp.path() / "tmp");  // the entry's own file cannot be written now
  QueueEntry e = *spool.load(kept.id);
  e.attempts = 1;
  e.next_attempt = 999;
  CHECK(spool.update(e) == SpoolError::io);
  CHECK_FALSE(spool.last_detail().empty());
  CHECK(spool.load(kept.id)->attempts == 0);  // the old content is intact
  CHECK(spool.due(100) == std::vector<std::string>{kept.id});
}

TEST_CASE("spool: a full file system is no_space, nothing half-written, earlier entries intact") {
  TempDir tmp;
  auto result = ipconfirm::responder::test::run_on_small_tmpfs(
      tmp.path() / "mnt", "64k", [](const fs::path& mnt) -> std::string {
        SpoolOpenReport report;
        std::string error;
        auto spool = Spool::open({mnt / "spool", 10000}, report, error);
        if (!spool) return "open failed: " + error;
        QueueEntry e = sample();
        e.data.append(8000, 'x');
        std::vector<std::string> ids;
        Spool::Enqueued r;
        for (int i = 0; i < 100; ++i) {
          r = spool->enqueue(e, 100);
          if (r.error != SpoolError::none) break;
          ids.push_back(r.id);
        }
        if (r.error != SpoolError::no_space) {
          return "expected no_space, got '" + std::string(to_string(r.error)) + "' after " +
                 std::to_string(ids.size()) + " entries: " + r.detail;
        }
        if (ids.empty()) return "no entry fitted at all";
        if (spool->size() != ids.size()) return "index counts a failed entry";
        if (!names_in(mnt / "spool" / "tmp").empty()) return "a temporary file was left";
        if (Spool::peek(mnt / "spool").size() != ids.size()) return "segments/ mismatch";
        for (const auto& id : ids) {
          auto loaded = spool->load(id);
          if (!loaded || loaded->data != e.data) return "entry " + id + " damaged";
        }
        // Reopening the full spool recovers exactly the accepted entries.
        spool.reset();
        auto again = Spool::open({mnt / "spool", 10000}, report, error);
        if (!again) return "reopen failed: " + error;
        // The failed append was cut off again: no damaged tail to cut at the restart.
        if (report.recovered != ids.size() || report.set_aside != 0 || report.truncated != 0)
          return "reopen mismatch";
        for (const auto& id : ids) {
          auto loaded = again->load(id);
          if (!loaded || loaded->data != e.data) return "entry " + id + " damaged after reopen";
        }
        return "";
      });
  if (result.skipped) {
    MESSAGE("SKIPPED: no tmpfs for the ENOSPC test: " << result.skip_reason);
    return;
  }
  CHECK_MESSAGE(result.output.empty(), result.output);
}

TEST_CASE("spool: to_string names every error") {
  CHECK(to_string(SpoolError::none) == "none");
  CHECK(to_string(SpoolError::no_space) == "no space left");
  CHECK(to_string(SpoolError::full) == "queue full");
  CHECK(to_string(SpoolError::io) == "I/O error");
  CHECK(to_string(SpoolError::corrupt) == "corrupt entry");
  CHECK(to_string(SpoolError::not_found) == "not found");
}

TEST_CASE("spool: reschedule then the writer's rewrite is update in two halves") {
  TempDir tmp;
  std::string id;
  {
    Spool spool = open_ok(tmp.path());
    auto r = spool.enqueue(sample(), 1000);
    REQUIRE(r.error == SpoolError::none);
    id = r.id;
    // The index moves at once; the file still has the old schedule until the rewrite.
    REQUIRE(spool.reschedule(id, 1300) == SpoolError::none);
    CHECK(spool.due(1299).empty());
    CHECK(spool.due(1300) == std::vector<std::string>{id});
    CHECK(Spool::peek(tmp.path()).front().next_attempt == 1000);
    // Not written yet: read from its segment.
    CHECK(spool.load(id)->next_attempt == 1000);
    SpoolWriter& writer = *spool.writer();
    CHECK(writer.rewrite({id, 1300, 3, "451 4.3.0 try later"}).empty());
    CHECK(names_in(tmp.path() / "tmp").empty());
    // Moved into a file of its own; its segment copy is marked done.
    CHECK(names_in(tmp.path() / "queue") == std::vector<std::string>{id});
    CHECK(spool.load(id)->next_attempt == 1300);
    REQUIRE(Spool::peek(tmp.path()).size() == 1);
    CHECK(Spool::peek(tmp.path()).front().attempts == 3);
    // Only the fields given change.
    CHECK(writer.rewrite({id, 1400, std::nullopt, std::nullopt}).empty());
    CHECK(spool.reschedule("000000000001.000000.1", 5) == SpoolError::not_found);
    CHECK(spool.reschedule("../x", 5) == SpoolError::not_found);
  }
  Spool again = open_ok(tmp.path());
  auto e = again.load(id);
  REQUIRE(e.has_value());
  CHECK(e->next_attempt == 1400);
  CHECK(e->attempts == 3);
  CHECK(e->last_error == "451 4.3.0 try later");
  CHECK(e->data == sample().data);
  CHECK(e->created == 1000);
}

TEST_CASE("spool: a rewrite never brings back an entry removed before it") {
  TempDir tmp;
  Spool spool = open_ok(tmp.path());
  auto r = spool.enqueue(sample(), 1000);
  REQUIRE(spool.forget(r.id) == SpoolError::none);
  SpoolWriter& writer = *spool.writer();
  REQUIRE(writer.done(r.id).empty());
  CHECK(writer.rewrite({r.id, 2000, 1, "late"}).empty());  // no error ...
  CHECK(names_in(tmp.path() / "queue").empty());           // ... and no file
  CHECK(Spool::peek(tmp.path()).empty());
  CHECK(names_in(tmp.path() / "tmp").empty());
  CHECK_FALSE(writer.rewrite({"../x", 1, 1, ""}).empty());
  write_all(tmp.path() / "queue" / "000000000002.000000.1", "not an entry");
  CHECK_FALSE(writer.rewrite({"000000000002.000000.1", 1, 1, ""}).empty());
  CHECK(read_all(tmp.path() / "queue" / "000000000002.000000.1") == "not an entry");
}

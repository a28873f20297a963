// The spool's interface for other processes while a server owns it: in_use(), peek(),
// request() and, on the owner's side, take_requests() and flush().
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "responder/queue/spool.hpp"
#include "tests/unit/spool_test_support.hpp"

using namespace ipconfirm::responder;
using ipconfirm::responder::test::TempDir;
using ipconfirm::responder::test::write_all;
namespace fs = std::filesystem;

namespace {

QueueEntry entry_to(std::string recipient) {
  QueueEntry e;
  e.recipient = std::move(recipient);
  e.data = "Subject: report\r\n\r\nbody\r\n";
  e.origin = "ip 192.0.2.1";
  return e;
}

Spool open_spool(const fs::path& dir) {
  SpoolOpenReport report;
  std::string error;
  auto spool = Spool::open({dir, 100}, report, error);
  REQUIRE_MESSAGE(spool.has_value(), error);
  return std::move(*spool);
}

}  // namespace

TEST_CASE("spool control: in_use tells whether an owner holds the lock") {
  TempDir tmp;
  CHECK_FALSE(Spool::in_use(tmp.path()));  // no spool at all yet
  {
    Spool spool = open_spool(tmp.path());
    CHECK(Spool::in_use(tmp.path()));
  }
  CHECK_FALSE(Spool::in_use(tmp.path()));  // closed: the lock is free again
}

TEST_CASE("spool control: peek reads the entries of an owned spool without changing it") {
  TempDir tmp;
  Spool spool = open_spool(tmp.path());
  auto a = spool.enqueue(entry_to("a@sender.test"), 1000);
  auto b = spool.enqueue(entry_to("b@sender.test"), 1001);
  REQUIRE(a.error == SpoolError::none);
  REQUIRE(b.error == SpoolError::none);
  // A foreign file and a corrupt one are left out, and left where they are.
  write_all(tmp.path() / "queue" / "junk", "not an entry");
  write_all(tmp.path() / "queue" / ".hidden", "x");
  auto seen = Spool::peek(tmp.path());
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].id == a.id);
  CHECK(seen[1].recipient == "b@sender.test");
  CHECK(fs::exists(tmp.path() / "queue" / "junk"));
  CHECK(spool.size() == 2);
  CHECK(Spool::peek(tmp.path() / "nothing-here").empty());
}

TEST_CASE("spool control: requests reach the owner whole, once, in order") {
  TempDir tmp;
  Spool spool = open_spool(tmp.path());
  std::string error;
  auto r1 = Spool::request(tmp.path(), "flush\n", error);
  REQUIRE_MESSAGE(r1.has_value(), error);
  auto r2 = Spool::request(tmp.path(), "delete 123.456.7\n", error);
  REQUIRE_MESSAGE(r2.has_value(), error);
  CHECK(fs::exists(*r1));
  // A request still being written (its name starts with '.') is not taken.
  write_all(tmp.path() / "control" / ".partial", "flu");
  std::vector<std::string> problems;
  auto got = spool.take_requests(problems);
  CHECK(problems.empty());
  REQUIRE(got.size() == 2);
  CHECK(got[0] == "flush\n");
  CHECK(got[1] == "delete 123.456.7\n");
  CHECK_FALSE(fs::exists(*r1));
  CHECK_FALSE(fs::exists(*r2));
  CHECK(spool.take_requests(problems).empty());
}

TEST_CASE("spool control: flush makes every entry due now, durably") {
  TempDir tmp;
  std::string id;
  {
    Spool spool = open_spool(tmp.path());
    QueueEntry e = entry_to("a@sender.test");
    e.next_attempt = 5000;
    auto q = spool.enqueue(e, 1000);
    REQUIRE(q.error == SpoolError::none);
    id = q.id;
    CHECK(spool.due(1200).empty());
    CHECK(spool.flush(1200) == 1);
    CHECK(spool.due(1200) == std::vector<std::string>{id});
  }
  Spool again = open_spool(tmp.path());
  CHECK(again.due(1200) == std::vector<std::string>{id});
  CHECK(again.load(id)->next_attempt == 1200);
}

TEST_CASE("spool control: FIFOs in control/ and queue/ are refused without blocking") {
  // Opening a FIFO for reading waits for a writer: every reader must open non-blocking and
  // take regular files only. (Before, each of these calls hung.)
  TempDir tmp;
  {
    Spool spool = open_spool(tmp.path());
    auto a = spool.enqueue(entry_to("a@sender.test"), 1000);
    REQUIRE(a.error == SpoolError::none);
    REQUIRE(::mkfifo((tmp.path() / "control" / "evil").c_str(), 0600) == 0);
    REQUIRE(::mkfifo((tmp.path() / "queue" / "000000000001.000001.1").c_str(), 0600) == 0);
    std::vector<std::string> problems;
    CHECK(spool.take_requests(problems).empty());
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].find("not a regular file") != std::string::npos);
    CHECK_FALSE(fs::exists(tmp.path() / "control" / "evil"));
    auto seen = Spool::peek(tmp.path());
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].id == a.id);
  }
  SpoolOpenReport report;
  std::string error;
  auto again = Spool::open({tmp.path(), 100}, report, error);
  REQUIRE(again.has_value());
  CHECK(report.recovered == 1);
  CHECK(report.set_aside == 1);
  // A FIFO as the lock file does not hang in_use() either.
  fs::remove(tmp.path() / "lock");
  REQUIRE(::mkfifo((tmp.path() / "lock").c_str(), 0600) == 0);
  CHECK_FALSE(Spool::in_use(tmp.path()));
}

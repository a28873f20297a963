// /healthz: the verdict from the facts, and the spool probe against real folders.
#include <doctest/doctest.h>

#include <fstream>

#include "responder/health.hpp"
#include "spool_test_support.hpp"

using namespace ipconfirm::responder;

namespace {
HealthFacts good() {
  HealthFacts f;
  f.smtp_listening = true;
  f.queue_entries = 3;
  f.queue_capacity = 10;
  return f;
}
}  // namespace

TEST_CASE("health: healthy names every check") {
  Health h = judge_health(good());
  CHECK(h.ok);
  CHECK(h.text == "service: ok\nsmtp: ok\nspool: ok\nqueue: ok\n");
}

TEST_CASE("health: each failing check makes it unhealthy and says why") {
  auto f = good();
  f.smtp_listening = false;
  CHECK(!judge_health(f).ok);
  CHECK(judge_health(f).text.find("smtp: not listening\n") != std::string::npos);
  f = good();
  f.spool_problem = "open: Read-only file system";
  CHECK(!judge_health(f).ok);
  CHECK(judge_health(f).text.find("spool: not writable (open: Read-only file system)") !=
        std::string::npos);
  f = good();
  f.queue_entries = 10;
  CHECK(!judge_health(f).ok);
  CHECK(judge_health(f).text.find("queue: full (10 of 10)") != std::string::npos);
  f = good();
  f.stopping = true;
  CHECK(!judge_health(f).ok);
}

TEST_CASE("health: the probe writes into a folder and leaves nothing behind") {
  test::TempDir dir;
  CHECK(probe_writable(dir.path()) == "");
  CHECK(std::filesystem::is_empty(dir.path()));
}

TEST_CASE("health: the probe names the failing call") {
  test::TempDir dir;
  CHECK(probe_writable(dir.path() / "missing").rfind("open: No such file or directory", 0) == 0);
  std::ofstream(dir.path() / "file") << "x";
  CHECK(probe_writable(dir.path() / "file").rfind("open: Not a directory", 0) == 0);
}

// How the SMTP listener names the end of a session (label values of the metrics).
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "smtp/server_stats.hpp"

using namespace ipconfirm::smtp;

TEST_CASE("server stats: the reply that closes a session tells how it ended") {
  CHECK(session_end_for_close(221) == SessionEnd::quit);
  CHECK(session_end_for_close(421) == SessionEnd::limit);
  CHECK(session_end_for_close(521) == SessionEnd::protocol_error);
  CHECK(session_end_for_close(554) == SessionEnd::protocol_error);
  CHECK(session_end_for_close(500) == SessionEnd::protocol_error);
}

TEST_CASE("server stats: every outcome has its own label value") {
  std::set<std::string> names;
  for (std::size_t i = 0; i < kSessionEnds; ++i) {
    auto name = std::string(to_string(static_cast<SessionEnd>(i)));
    CHECK(name != "unknown");
    names.insert(name);
  }
  CHECK(names.size() == kSessionEnds);
  ServerStats s;
  s.ended(SessionEnd::timeout);
  s.ended(SessionEnd::timeout);
  CHECK(s.ended_count(SessionEnd::timeout) == 2);
  CHECK(s.ended_count(SessionEnd::quit) == 0);
}

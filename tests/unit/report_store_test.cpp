// The stored reports behind GET /r/TOKEN: tokens, file names, the file format and its checks,
// writing and reading in a real folder, and the index (lookup by token, expiry, the bound).
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <set>
#include <string>

#include "responder/queue/report_store.hpp"
#include "spool_test_support.hpp"

using namespace ipconfirm::responder;
namespace test = ipconfirm::responder::test;
using ipconfirm::responder::test::read_all;
using ipconfirm::responder::test::TempDir;
using ipconfirm::responder::test::write_all;
namespace fs = std::filesystem;

namespace {

// A spool folder with the tmp/ that write_report_unsynced writes into, and reports/.
fs::path spool_in(const TempDir& t, std::vector<std::string>* problems = nullptr) {
  fs::create_directories(t.path() / "tmp");
  std::vector<std::string> ignored;
  std::string error;
  REQUIRE(ReportIndex::open(t.path(), problems ? *problems : ignored, error));
  return t.path();
}

// The file name of a report written at `created` seconds (and `micros` microseconds).
std::string name_for(const std::string& token, std::int64_t created, std::int64_t micros = 0) {
  return report_file_name(created * 1000000 + micros, report_token_digest(token));
}

}  // namespace

TEST_CASE("report store: tokens are 22 URL-safe characters, and never the same") {
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {
    const std::string t = new_report_token();
    CHECK(t.size() == kReportTokenLength);
    CHECK(is_report_token(t));
    CHECK(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
          std::string::npos);
    seen.insert(t);
  }
  CHECK(seen.size() == 2000);
  // Every character of the alphabet turns up over 2000 tokens (44,000 characters): the bytes are
  // not, say, all zero or from a short range.
  std::set<char> chars;
  for (const auto& t : seen) chars.insert(t.begin(), t.end() - 1);  // the last holds 4 bits
  CHECK(chars.size() == 64);
}

TEST_CASE("report store: the token's form") {
  CHECK(is_report_token("AAAAAAAAAAAAAAAAAAAAAA"));
  CHECK(is_report_token("abc-_0123456789xyzABCD"));
  CHECK_FALSE(is_report_token(""));
  CHECK_FALSE(is_report_token("AAAAAAAAAAAAAAAAAAAAA"));    // 21
  CHECK_FALSE(is_report_token("AAAAAAAAAAAAAAAAAAAAAAA"));  // 23
  CHECK_FALSE(is_report_token("AAAAAAAAAAAAAAAAAAAA+/"));   // standard base64, not URL-safe
  CHECK_FALSE(is_report_token("AAAAAAAAAAAAAAAAAAAA=="));
  CHECK_FALSE(is_report_token("../../../../etc/passwd"));
  CHECK_FALSE(is_report_token("AAAAAAAAAAAAAAAAAAAA.."));
}

TEST_CASE("report store: the digest is SHA-256 in hex, and names the file") {
  // SHA-256("abc") from FIPS 180-2, appendix B.1.
  CHECK(report_token_digest("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string d = report_token_digest("AAAAAAAAAAAAAAAAAAAAAA");
  const std::string name = report_file_name(1795442103000042, d);
  CHECK(name == "001795442103.000042." + d);
  auto parsed = parse_report_file_name(name);
  REQUIRE(parsed);
  CHECK(parsed->created == 1795442103);
  CHECK(parsed->digest == d);
  CHECK_FALSE(parse_report_file_name("001795442103.000042." + d.substr(1)));
  CHECK_FALSE(parse_report_file_name("001795442103." + d));
  CHECK_FALSE(parse_report_file_name("1795442103.000042." + d));
  CHECK_FALSE(parse_report_file_name("001795442103-000042." + d));
  CHECK_FALSE(parse_report_file_name("00179544210x.000042." + d));
  CHECK_FALSE(parse_report_file_name("001795442103.00004x." + d));
  std::string upper = name;
  upper.back() = 'F';
  CHECK_FALSE(parse_report_file_name(upper));
  CHECK_FALSE(parse_report_file_name("../" + name.substr(3)));
}

TEST_CASE("report store: the file format round-trips and every damage is caught") {
  const std::string json = "{\n  \"ipconfirm\": 1,\n  \"x\": \"line\\nbreak\"\n}\n";
  const std::string bytes = serialize_stored_report(json);
  CHECK(bytes.rfind("ipconfirm-report 1\njson " + std::to_string(json.size()) + "\n", 0) == 0);
  std::string why;
  auto back = parse_stored_report(bytes, why);
  REQUIRE_MESSAGE(back, why);
  CHECK(*back == json);
  // Every truncation, and every single flipped byte, is refused.
  for (std::size_t n = 0; n < bytes.size(); ++n)
    CHECK_MESSAGE(!parse_stored_report(bytes.substr(0, n), why), n);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::string damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x01);
    CHECK_MESSAGE(!parse_stored_report(damaged, why), i);
  }
  CHECK_FALSE(parse_stored_report(bytes + "x", why));
  CHECK_FALSE(parse_stored_report("ipconfirm-spool 1\n", why));
}

TEST_CASE("report store: written, then read back; a damaged or foreign file reads as absent") {
  TempDir t;
  const fs::path dir = spool_in(t);
  const std::string token = new_report_token();
  const std::string name = name_for(token, 1795442103);
  CHECK(write_report_unsynced(dir, StoredReport{name, "{\"a\": 1}\n"}) == "");
  CHECK(fs::is_regular_file(dir / "reports" / name));
  CHECK(fs::is_empty(dir / "tmp"));  // renamed away, nothing left behind
  auto json = read_stored_report(dir, name);
  REQUIRE(json);
  CHECK(*json == "{\"a\": 1}\n");
  // No token inside: the file holds the report, its name only the token's digest.
  CHECK(read_all(dir / "reports" / name).find(token) == std::string::npos);

  std::string bytes = read_all(dir / "reports" / name);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x20);
  write_all(dir / "reports" / name, bytes);
  CHECK_FALSE(read_stored_report(dir, name));
  CHECK_FALSE(read_stored_report(dir, "../reports/" + name));
  CHECK_FALSE(read_stored_report(dir, name_for(new_report_token(), 1795442103)));  // missing
  // Not a regular file: a FIFO planted under a report's name is not opened for reading.
  const std::string fifo = name_for(new_report_token(), 1795442104);
  REQUIRE(::mkfifo((dir / "reports" / fifo).c_str(), 0600) == 0);
  CHECK_FALSE(read_stored_report(dir, fifo));

  CHECK(unlink_stored_report(dir, name) == "");
  CHECK_FALSE(fs::exists(dir / "reports" / name));
  CHECK(unlink_stored_report(dir, name) == "");  // already gone: no error
  CHECK(unlink_stored_report(dir, "x/../y") != "");
  CHECK(write_report_unsynced(dir, StoredReport{"../escape", "{}"}) != "");
}

TEST_CASE("report store: the index finds a report by its token only") {
  TempDir t;
  const fs::path dir = spool_in(t);
  std::vector<std::string> problems;
  std::string error;
  auto index = ReportIndex::open(dir, problems, error);
  REQUIRE(index);
  const std::string token = new_report_token();
  const std::string name = name_for(token, 1000);
  index->add(name);
  CHECK(index->size() == 1);
  REQUIRE(index->find(token));
  CHECK(*index->find(token) == name);
  CHECK_FALSE(index->find(new_report_token()));
  CHECK_FALSE(index->find(report_token_digest(token)));  // the digest is no key to it
  CHECK_FALSE(index->find(name));
  index->add(name);  // twice: once
  index->add("not-a-report");
  CHECK(index->size() == 1);
}

TEST_CASE("report store: an expired report is forgotten before a lookup, like one never made") {
  TempDir t;
  const fs::path dir = spool_in(t);
  std::vector<std::string> problems;
  std::string error;
  auto index = ReportIndex::open(dir, problems, error);
  REQUIRE(index);
  const std::int64_t day = 86400;
  const std::string old_token = new_report_token(), new_token = new_report_token();
  index->add(name_for(old_token, 1000));
  index->add(name_for(new_token, 1000 + day));
  // Just before the old one's lifetime ends, nothing goes.
  CHECK(index->prune(1000 + 7 * day - 1, 7 * day, 100).empty());
  CHECK(index->find(old_token));
  // At its end, it goes, and is then absent exactly as an unknown token is.
  auto gone = index->prune(1000 + 7 * day, 7 * day, 100);
  REQUIRE(gone.size() == 1);
  CHECK(gone[0] == name_for(old_token, 1000));
  CHECK_FALSE(index->find(old_token));
  CHECK(index->find(new_token));
  CHECK(index->size() == 1);
}

TEST_CASE("report store: past max_reports the oldest go first, to the microsecond") {
  TempDir t;
  const fs::path dir = spool_in(t);
  std::vector<std::string> problems;
  std::string error;
  auto index = ReportIndex::open(dir, problems, error);
  REQUIRE(index);
  // Five reports in one second, added out of order: their age, not their digest or the order
  // of adding, decides.
  std::vector<std::string> tokens;
  for (int i = 0; i < 5; ++i) tokens.push_back(new_report_token());
  for (int i : {3, 0, 4, 1, 2}) index->add(name_for(tokens[static_cast<std::size_t>(i)], 2000, i));
  auto gone = index->prune(2010, 86400, 3);
  REQUIRE(gone.size() == 2);
  CHECK(gone[0] == name_for(tokens[0], 2000, 0));
  CHECK(gone[1] == name_for(tokens[1], 2000, 1));
  CHECK_FALSE(index->find(tokens[0]));
  CHECK_FALSE(index->find(tokens[1]));
  for (int i = 2; i < 5; ++i) CHECK(index->find(tokens[static_cast<std::size_t>(i)]));
}

TEST_CASE("report store: open indexes the folder and leaves foreign names alone") {
  TempDir t;
  const fs::path dir = spool_in(t);
  const std::string token = new_report_token();
  const std::string name = name_for(token, 3000);
  REQUIRE(write_report_unsynced(dir, StoredReport{name, "{}"}) == "");
  write_all(dir / "reports" / "README", "not a report");
  std::vector<std::string> problems;
  std::string error;
  auto index = ReportIndex::open(dir, problems, error);
  REQUIRE(index);
  CHECK(index->size() == 1);
  CHECK(index->find(token));
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("reports/README") != std::string::npos);
  CHECK(fs::exists(dir / "reports" / "README"));
  // A folder that cannot be made is an error.
  write_all(t.path() / "file", "x");
  CHECK_FALSE(ReportIndex::open(t.path() / "file", problems, error));
  CHECK_FALSE(error.empty());
}

TEST_CASE("report store: reports appended to a segment, read back, found again after a restart") {
  TempDir t;
  std::vector<std::string> problems;
  std::string error;
  auto index = ReportIndex::open(t.path(), problems, error);
  REQUIRE(index);
  const std::vector<std::string> tokens = {new_report_token(), new_report_token(),
                                           new_report_token()};
  std::vector<StoredReport> stored;
  for (std::size_t i = 0; i < tokens.size(); ++i)
    stored.push_back({name_for(tokens[i], 5000, static_cast<std::int64_t>(i)),
                      "{\"n\": " + std::to_string(i) + "}"});
  std::vector<const StoredReport*> batch = {&stored[0], &stored[1]};
  std::vector<ReportPlace> places;
  REQUIRE(index->writer()->write_batch(batch, places) == "");
  REQUIRE(places.size() == 2);
  CHECK(places[0].segment == 1);
  batch = {&stored[2]};
  std::vector<ReportPlace> more;
  REQUIRE(index->writer()->write_batch(batch, more) == "");
  places.push_back(more[0]);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(index->add(stored[i].name, places[i]));
    auto name = index->find(tokens[i]);
    REQUIRE(name);
    auto json = read_stored_report(t.path(), *name, *index->place(*name));
    REQUIRE(json);
    CHECK(*json == stored[i].json);
  }
  // One file for the three, no file per report, the token nowhere.
  CHECK(test::names_in(t.path() / "report-segments") ==
        std::vector<std::string>{"0000000000000001"});
  CHECK(test::names_in(t.path() / "reports").empty());
  CHECK(read_all(t.path() / "report-segments" / "0000000000000001").find(tokens[0]) ==
        std::string::npos);

  index.reset();
  auto again = ReportIndex::open(t.path(), problems, error);
  REQUIRE(again);
  CHECK(problems.empty());
  CHECK(again->size() == 3);
  auto name = again->find(tokens[1]);
  REQUIRE(name);
  CHECK(read_stored_report(t.path(), *name, *again->place(*name)) == stored[1].json);
  // New reports go to a new segment.
  REQUIRE(again->writer()->write_batch(batch = {&stored[0]}, more) == "");
  CHECK(more[0].segment == 2);
}

TEST_CASE("report store: a segment goes when its last report is forgotten, even the current one") {
  TempDir t;
  std::vector<std::string> problems;
  std::string error;
  auto index = ReportIndex::open(t.path(), problems, error);
  REQUIRE(index);
  // An older report in a file of its own, beside the segment's.
  const std::string old_token = new_report_token();
  fs::create_directories(t.path() / "tmp");
  REQUIRE(write_report_unsynced(t.path(), StoredReport{name_for(old_token, 100), "{}"}) == "");
  index->add(name_for(old_token, 100));
  std::vector<std::string> tokens;
  std::vector<StoredReport> stored;
  for (int i = 0; i < 3; ++i) {
    tokens.push_back(new_report_token());
    stored.push_back({name_for(tokens.back(), 1000 + i), "{}"});
  }
  std::vector<ReportPlace> places;
  REQUIRE(index->writer()->write_batch({&stored[0], &stored[1], &stored[2]}, places) == "");
  for (int i = 0; i < 3; ++i)
    index->add(stored[static_cast<std::size_t>(i)].name, places[static_cast<std::size_t>(i)]);
  // Two pushed out by the bound: the old file to unlink, one segment report.
  std::vector<std::uint64_t> segments;
  auto files = index->prune(1100, 86400, 2, &segments);
  CHECK(files == std::vector<std::string>{name_for(old_token, 100)});
  CHECK(segments == std::vector<std::uint64_t>{1});
  CHECK(index->writer()->done(1) == "");
  CHECK(fs::exists(t.path() / "report-segments" / "0000000000000001"));
  // Expired, the other two: the segment goes with the last.
  segments.clear();
  CHECK(index->prune(1002 + 86400, 86400, 100, &segments).empty());
  CHECK(segments == std::vector<std::uint64_t>{1, 1});
  CHECK(index->writer()->done(1) == "");
  CHECK(fs::exists(t.path() / "report-segments" / "0000000000000001"));
  CHECK(index->writer()->done(1) == "");
  CHECK_FALSE(fs::exists(t.path() / "report-segments" / "0000000000000001"));
  // The next batch starts a new segment.
  REQUIRE(index->writer()->write_batch({&stored[0]}, places) == "");
  CHECK(places[0].segment == 2);
}

TEST_CASE("report store: a report segment cut anywhere in its last record is cut there at open") {
  TempDir t;
  std::vector<std::string> problems;
  std::string error;
  std::vector<StoredReport> stored;
  std::vector<std::string> tokens;
  for (int i = 0; i < 2; ++i) {
    tokens.push_back(new_report_token());
    stored.push_back({name_for(tokens.back(), 3000 + i), "{\"k\": \"" + tokens.back() + "\"}"});
  }
  std::uint64_t before_last = 0;
  {
    auto index = ReportIndex::open(t.path(), problems, error);
    REQUIRE(index);
    std::vector<ReportPlace> places;
    REQUIRE(index->writer()->write_batch({&stored[0]}, places) == "");
    before_last = fs::file_size(t.path() / "report-segments" / "0000000000000001");
    REQUIRE(index->writer()->write_batch({&stored[1]}, places) == "");
  }
  const fs::path segment = t.path() / "report-segments" / "0000000000000001";
  const std::string whole = read_all(segment);
  for (std::uint64_t n = before_last; n <= whole.size(); ++n) {
    INFO("cut at " << n);
    write_all(segment, whole.substr(0, n));
    problems.clear();
    auto index = ReportIndex::open(t.path(), problems, error);
    REQUIRE(index);
    const bool all = n == whole.size();
    CHECK(index->size() == (all ? 2u : 1u));
    CHECK(problems.size() == (all || n == before_last ? 0u : 1u));
    CHECK(fs::file_size(segment) == (all ? whole.size() : before_last));
    auto name = index->find(tokens[0]);
    REQUIRE(name);
    CHECK(read_stored_report(t.path(), *name, *index->place(*name)) == stored[0].json);
    CHECK(index->find(tokens[1]).has_value() == all);
  }
}

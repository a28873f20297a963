#include "responder/queue/maildir.hpp"

#include <doctest/doctest.h>

#include <regex>
#include <set>

#include "tests/unit/spool_test_support.hpp"

using namespace ipconfirm::responder;
using ipconfirm::responder::test::names_in;
using ipconfirm::responder::test::read_all;
using ipconfirm::responder::test::TempDir;
using ipconfirm::responder::test::write_all;
namespace fs = std::filesystem;

namespace {
const std::string kMessage =
    "From: ipconfirm@example.test\r\nTo: alice@sender.test\r\nSubject: report\r\n\r\n"
    "Line one.\r\n.\r\n..dot stays as given\r\n";
}

TEST_CASE("maildir: a delivery lands in new/ with LF line ends") {
  TempDir tmp;
  const fs::path md = tmp.path() / "a" / "b" / "Maildir";
  std::string final_path;
  REQUIRE(deliver_to_maildir(md, kMessage, "mx.example.test", &final_path) == SpoolError::none);
  CHECK(fs::is_directory(md / "cur"));
  CHECK(names_in(md / "tmp").empty());
  CHECK(names_in(md / "cur").empty());
  auto names = names_in(md / "new");
  REQUIRE(names.size() == 1);
  CHECK(final_path == (md / "new" / names[0]).string());
  // The Maildir convention is LF; the message is given in wire form (CRLF).
  CHECK(read_all(final_path) ==
        "From: ipconfirm@example.test\nTo: alice@sender.test\nSubject: report\n\n"
        "Line one.\n.\n..dot stays as given\n");
  const std::regex shape(R"(^[0-9]+\.M[0-9]+P([0-9]+)Q[0-9]+\.mx\.example\.test$)");
  std::smatch m;
  REQUIRE(std::regex_match(names[0], m, shape));
  CHECK(m[1] == std::to_string(::getpid()));
  CHECK((fs::status(md / "new").permissions() & fs::perms::others_all) == fs::perms::none);
}

TEST_CASE("maildir: only CRLF pairs become LF; binary and large messages are otherwise kept") {
  TempDir tmp;
  std::string big, expected;
  for (int i = 0; big.size() < (1u << 20); ++i) {
    big += "line " + std::to_string(i) + "\r\n";
    expected += "line " + std::to_string(i) + "\n";
  }
  big += std::string("\0\xff\r\n\rx\n\r\r\n\r", 12);
  expected += std::string("\0\xff\n\rx\n\r\n\r", 10);
  std::string path;
  REQUIRE(deliver_to_maildir(tmp.path(), big, "h", &path) == SpoolError::none);
  CHECK(read_all(path) == expected);
  REQUIRE(deliver_to_maildir(tmp.path(), "", "h", &path) == SpoolError::none);
  CHECK(fs::file_size(path) == 0);
}

TEST_CASE("maildir: many deliveries get distinct names") {
  TempDir tmp;
  std::set<std::string> paths;
  for (int i = 0; i < 200; ++i) {
    std::string path;
    REQUIRE(deliver_to_maildir(tmp.path(), std::to_string(i), "h", &path) == SpoolError::none);
    paths.insert(path);
    CHECK(read_all(path) == std::to_string(i));
  }
  CHECK(paths.size() == 200);
  CHECK(names_in(tmp.path() / "new").size() == 200);
}

TEST_CASE("maildir: host names are made safe for a single path component") {
  CHECK(maildir_safe_host("mx.example.test") == "mx.example.test");
  CHECK(maildir_safe_host("a/b:c") == "a\\057b\\072c");
  CHECK(maildir_safe_host("") == "localhost");
  CHECK(maildir_safe_host("../..") == "..\\057..");
  CHECK(maildir_safe_host(std::string("x\ny z\\", 6)) == "x\\012y\\040z\\134");
  CHECK(maildir_safe_host(std::string(500, 'h')).size() == 160);

  TempDir tmp;
  std::string path;
  REQUIRE(deliver_to_maildir(tmp.path(), "m", "evil/../host:1", &path) == SpoolError::none);
  CHECK(fs::path(path).parent_path() == tmp.path() / "new");
  CHECK(fs::path(path).filename().string().find("evil\\057..\\057host\\0721") != std::string::npos);
}

TEST_CASE("maildir: an unusable directory is an error, not a silent success") {
  TempDir tmp;
  write_all(tmp.path() / "file", "x");
  std::string path = "unchanged";
  CHECK(deliver_to_maildir(tmp.path() / "file", "m", "h", &path) == SpoolError::io);
  CHECK(path == "unchanged");
  fs::create_directories(tmp.path() / "md");
  write_all(tmp.path() / "md" / "new", "not a directory");
  CHECK(deliver_to_maildir(tmp.path() / "md", "m", "h", &path) == SpoolError::io);
}

TEST_CASE("maildir: a full file system is no_space and leaves nothing in tmp/ or new/") {
  TempDir tmp;
  auto result = ipconfirm::responder::test::run_on_small_tmpfs(
      tmp.path() / "mnt", "64k", [](const fs::path& mnt) -> std::string {
        const fs::path md = mnt / "Maildir";
        if (deliver_to_maildir(md, "small\r\n", "h") != SpoolError::none) {
          return "a small message did not fit";
        }
        std::string big(200 * 1024, 'x');
        SpoolError e = deliver_to_maildir(md, big, "h");
        if (e != SpoolError::no_space) return "expected no_space, got " + std::string(to_string(e));
        if (!names_in(md / "tmp").empty()) return "a partial file was left in tmp/";
        if (names_in(md / "new").size() != 1) return "new/ should hold only the first message";
        return "";
      });
  if (result.skipped) {
    MESSAGE("SKIPPED: no tmpfs for the ENOSPC test: " << result.skip_reason);
    return;
  }
  CHECK_MESSAGE(result.output.empty(), result.output);
}

TEST_CASE("maildir: symbolic links are never followed: not the Maildir, not tmp/, not new/") {
  // Whoever can write where the Maildir lives must not be able to make ipconfirm write (as
  // root) anywhere else. Each case must fail with io and leave the link's target untouched.
  TempDir tmp;
  const fs::path elsewhere = tmp.path() / "elsewhere";
  fs::create_directories(elsewhere / "tmp");
  fs::create_directories(elsewhere / "new");
  fs::create_directories(elsewhere / "cur");
  std::string path = "unchanged";

  fs::create_directory_symlink(elsewhere, tmp.path() / "linked");
  CHECK(deliver_to_maildir(tmp.path() / "linked", "m\r\n", "h", &path) == SpoolError::io);

  for (const char* sub : {"tmp", "new", "cur"}) {
    INFO("symlinked ", sub);
    const fs::path md = tmp.path() / (std::string("md-") + sub);
    fs::create_directories(md);
    for (const char* other : {"tmp", "new", "cur"})
      if (std::string(other) != sub) fs::create_directory(md / other);
    fs::create_directory_symlink(elsewhere / sub, md / sub);
    CHECK(deliver_to_maildir(md, "m\r\n", "h", &path) == SpoolError::io);
  }
  CHECK(path == "unchanged");
  CHECK(names_in(elsewhere / "tmp").empty());
  CHECK(names_in(elsewhere / "new").empty());
  CHECK(names_in(elsewhere / "cur").empty());
}

TEST_CASE("maildir: the limits on messages and bytes answer full and write nothing") {
  TempDir tmp;
  MaildirLimits limits;
  limits.max_messages = 3;
  limits.max_bytes = 100;
  std::string path;
  for (int i = 0; i < 3; ++i)
    REQUIRE(deliver_to_maildir(tmp.path(), "0123456789\r\n", "h", &path, limits) ==
            SpoolError::none);
  CHECK(deliver_to_maildir(tmp.path(), "x", "h", &path, limits) == SpoolError::full);
  // Read mail (moved to cur/) still counts; removed mail makes room.
  const auto names = names_in(tmp.path() / "new");
  fs::rename(tmp.path() / "new" / names[0], tmp.path() / "cur" / (names[0] + ":2,S"));
  CHECK(deliver_to_maildir(tmp.path(), "x", "h", &path, limits) == SpoolError::full);
  fs::remove(tmp.path() / "new" / names[1]);
  CHECK(deliver_to_maildir(tmp.path(), "x", "h", &path, limits) == SpoolError::none);
  fs::remove(tmp.path() / "new" / names[2]);
  // 2 messages of 11 and 1 byte: 88 bytes are left, so 89 do not fit, 80 do.
  CHECK(deliver_to_maildir(tmp.path(), std::string(89, 'b'), "h", &path, limits) ==
        SpoolError::full);
  CHECK(deliver_to_maildir(tmp.path(), std::string(80, 'b'), "h", &path, limits) ==
        SpoolError::none);
  CHECK(names_in(tmp.path() / "tmp").empty());
}

// Warnings for secret files readable by group or others (config/secret_files.hpp).
#include "config/secret_files.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/unit/spool_test_support.hpp"

using namespace ipconfirm::config;
using ipconfirm::responder::test::TempDir;

namespace {

std::string file(const TempDir& tmp, const std::string& name, unsigned mode) {
  const std::string path = (tmp.path() / name).string();
  std::ofstream(path) << "secret\n";
  ::chmod(path.c_str(), mode);
  return path;
}

}  // namespace

TEST_CASE("secret files: group- or world-readable secrets are named, private ones are not") {
  TempDir tmp;
  Config c;
  const std::string conf = file(tmp, "ipconfirm.toml", 0644);
  CHECK(secret_file_warnings(c, conf).empty());  // no password in it: nothing secret
  c.delivery.smarthost_password = "pw";
  auto w = secret_file_warnings(c, conf);
  REQUIRE(w.size() == 1);
  CHECK(w[0].file == conf);
  CHECK(w[0].mode == 0644);
  CHECK(w[0].holds.find("smarthost_password") != std::string::npos);
  ::chmod(conf.c_str(), 0600);
  CHECK(secret_file_warnings(c, conf).empty());

  c.delivery.smarthost_auth_file = file(tmp, "auth", 0640);  // group-readable
  c.smtp.tls_key = file(tmp, "key.pem", 0604);               // world-readable
  w = secret_file_warnings(c, conf);
  REQUIRE(w.size() == 2);
  CHECK(w[0].file == c.delivery.smarthost_auth_file);
  CHECK(w[0].mode == 0640);
  CHECK(w[1].file == c.smtp.tls_key);
  CHECK(w[1].holds.find("TLS private key") != std::string::npos);

  ::chmod(c.delivery.smarthost_auth_file.c_str(), 0600);
  ::chmod(c.smtp.tls_key.c_str(), 0400);
  CHECK(secret_file_warnings(c, conf).empty());
  c.smtp.tls_key = (tmp.path() / "missing.pem").string();  // a missing file fails elsewhere
  CHECK(secret_file_warnings(c, conf).empty());
  CHECK(secret_file_warnings(c, "").empty());  // the built-in config
}

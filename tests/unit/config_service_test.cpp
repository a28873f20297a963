// The [service] section: who the server runs as.
#include <doctest/doctest.h>

#include "config/config.hpp"

using namespace ipconfirm::config;

namespace {
const char* kBase =
    "hostname = \"mx.example.test\"\ndomains = [\"example.test\"]\n"
    "[smtp]\nlisten = [\"127.0.0.1:2525\"]\n";
LoadResult parse(const std::string& service) {
  return parse_config(std::string(kBase) + "[service]\n" + service, "t.toml");
}
}  // namespace

TEST_CASE("config: [service] user and group") {
  LoadResult none = parse_config(kBase, "t.toml");
  REQUIRE(none.config);
  CHECK(none.config->service.user.empty());
  CHECK(none.config->service.group.empty());

  LoadResult r = parse("user = \"_ipconfirm\"\ngroup = \"ssl-cert\"\n");
  REQUIRE_MESSAGE(r.config, r.error);
  CHECK(r.config->service.user == "_ipconfirm");
  CHECK(r.config->service.group == "ssl-cert");

  CHECK(parse("user = \"root\"\n").config->service.user == "root");
  CHECK(parse("user = \"\"\n").config->service.user.empty());
  CHECK(parse("user = \"machine$\"\n").config);
}

TEST_CASE("config: [service] refuses what is not an account name, with its line") {
  for (const char* bad : {"-rf", "a b", "x/y", "..", "a\\nb", "a$b", "nobody:x",
                          "a_name_that_is_much_longer_than_32_bytes"}) {
    LoadResult r = parse(std::string("user = \"") + bad + "\"\n");
    CHECK_MESSAGE(!r.config, bad);
    CHECK(r.error.find("t.toml:6: key 'service.user'") != std::string::npos);
  }
  LoadResult g = parse("user = \"ipc\"\ngroup = \"a b\"\n");
  CHECK(g.error.find("t.toml:7: key 'service.group'") != std::string::npos);
  LoadResult lone = parse("group = \"mail\"\n");
  CHECK(lone.error.find("key 'service.group': needs service.user") != std::string::npos);
  LoadResult unknown = parse("uid = 0\n");
  CHECK(unknown.error.find("t.toml:6: key 'service.uid': unknown key") != std::string::npos);
  LoadResult type = parse("user = 65534\n");
  CHECK(type.error.find("key 'service.user': must be a string") != std::string::npos);
}

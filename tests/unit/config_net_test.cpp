// The config keys of the network hardening: the DNS cache budget, the smarthost's name and TLS
// verification, and the limits of direct MX delivery.
#include <doctest/doctest.h>

#include "config/config.hpp"

using namespace ipconfirm::config;

namespace {

LoadResult parse(const std::string& tables) {
  return parse_config(
      "hostname = \"mx.example.test\"\ndomains = [\"example.test\"]\n"
      "[smtp]\nlisten = [\"127.0.0.1:2525\"]\n" +
          tables,
      "t.toml");
}

}  // namespace

TEST_CASE("config net: dns.cache_bytes") {
  auto defaults = parse("");
  REQUIRE(defaults.config);
  CHECK(defaults.config->dns.cache_bytes == 16 * 1024 * 1024);
  auto set = parse("[dns]\ncache_bytes = 1048576\n");
  REQUIRE_MESSAGE(set.config, set.error);
  CHECK(set.config->dns.cache_bytes == 1048576);
  auto off = parse("[dns]\ncache_bytes = 0\n");
  REQUIRE(off.config);
  CHECK(off.config->dns.cache_bytes == 0);
  auto bad = parse("[dns]\ncache_bytes = -1\n");
  CHECK_FALSE(bad.config);
  CHECK(bad.error.find("t.toml:6: key 'dns.cache_bytes'") != std::string::npos);
}

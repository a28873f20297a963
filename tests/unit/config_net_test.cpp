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

TEST_CASE("config net: delivery.max_per_domain and delivery.attempt_deadline") {
  auto defaults = parse("");
  REQUIRE(defaults.config);
  CHECK(defaults.config->delivery.max_per_domain == 2);
  CHECK(defaults.config->delivery.attempt_deadline == std::chrono::seconds(120));
  auto set = parse("[delivery]\nmode = \"mx\"\nmax_per_domain = 5\nattempt_deadline = 30\n");
  REQUIRE_MESSAGE(set.config, set.error);
  CHECK(set.config->delivery.max_per_domain == 5);
  CHECK(set.config->delivery.attempt_deadline == std::chrono::seconds(30));
  auto zero = parse("[delivery]\nmax_per_domain = 0\n");
  CHECK_FALSE(zero.config);
  CHECK(zero.error.find("key 'delivery.max_per_domain'") != std::string::npos);
  auto slow = parse("[delivery]\nattempt_deadline = 0\n");
  CHECK_FALSE(slow.config);
  CHECK(slow.error.find("t.toml:6: key 'delivery.attempt_deadline'") != std::string::npos);
}

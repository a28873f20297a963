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

TEST_CASE("config net: the smarthost by name, and its TLS verification keys") {
  auto by_name = parse("[delivery]\nmode = \"smarthost\"\nsmarthost = \"smtp.example.net:587\"\n");
  REQUIRE_MESSAGE(by_name.config, by_name.error);
  CHECK_FALSE(by_name.config->delivery.smarthost);
  CHECK(by_name.config->delivery.smarthost_host == "smtp.example.net");
  CHECK(by_name.config->delivery.smarthost_port == 587);

  auto by_address = parse("[delivery]\nmode = \"smarthost\"\nsmarthost = \"[2001:db8::25]:25\"\n");
  REQUIRE_MESSAGE(by_address.config, by_address.error);
  REQUIRE(by_address.config->delivery.smarthost);
  CHECK(by_address.config->delivery.smarthost->to_string() == "[2001:db8::25]:25");
  CHECK(by_address.config->delivery.smarthost_host.empty());

  for (const char* bad :
       {"smtp.example.net", "smtp.example.net:0", "smtp.example.net:65536", "smtp:25",
        "-bad-.example:25", "smtp.example.net:25x", ":25", "2001:db8::25:25"}) {
    CAPTURE(bad);
    auto r = parse(std::string("[delivery]\nsmarthost = \"") + bad + "\"\n");
    CHECK_FALSE(r.config);
    CHECK(r.error.find("key 'delivery.smarthost'") != std::string::npos);
  }

  auto tls = parse(
      "[delivery]\nsmarthost = \"192.0.2.1:587\"\nsmarthost_tls_ca_file = \"/etc/ca.pem\"\n"
      "smarthost_tls_name = \"smtp.example.net\"\nsmarthost_tls_fingerprint = "
      "\"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:"
      "45:67:89\"\n");
  REQUIRE_MESSAGE(tls.config, tls.error);
  CHECK(tls.config->delivery.smarthost_tls_ca_file == "/etc/ca.pem");
  CHECK(tls.config->delivery.smarthost_tls_name == "smtp.example.net");
  CHECK(tls.config->delivery.smarthost_tls_fingerprint ==
        "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");

  auto short_pin = parse("[delivery]\nsmarthost_tls_fingerprint = \"abcd\"\n");
  CHECK_FALSE(short_pin.config);
  CHECK(short_pin.error.find("t.toml:6: key 'delivery.smarthost_tls_fingerprint'") !=
        std::string::npos);
  auto bad_name = parse("[delivery]\nsmarthost_tls_name = \"not a name\"\n");
  CHECK_FALSE(bad_name.config);
  CHECK(bad_name.error.find("key 'delivery.smarthost_tls_name'") != std::string::npos);
}

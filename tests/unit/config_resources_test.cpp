// The config keys that bound resources (issue 12): the connection count's IPv6 prefix, the
// budget for message data, and the postmaster's limits. Defaults, loading, and refusals.
#include <doctest/doctest.h>

#include <string>

#include "config/config.hpp"

using namespace ipconfirm::config;

namespace {
const std::string kBase =
    "hostname = \"mx.example.test\"\ndomains = [\"example.test\"]\n"
    "[smtp]\nlisten = [\"127.0.0.1:2525\"]\n";
}

TEST_CASE("config: resource limits have safe defaults") {
  LoadResult r = parse_config(kBase, "t.toml");
  REQUIRE_MESSAGE(r.config, r.error);
  CHECK(r.config->smtp.ipv6_connection_prefix == 64);
  CHECK(r.config->smtp.max_message_memory == 64u * 1024 * 1024);
  CHECK(r.config->postmaster.max_per_ip_per_hour == 10);
  CHECK(r.config->postmaster.max_per_network_per_hour == 30);
  CHECK(r.config->postmaster.max_total_per_minute == 10);
  CHECK(r.config->postmaster.max_maildir_messages == 10000);
  CHECK(r.config->postmaster.max_maildir_bytes == 1024u * 1024 * 1024);
}

TEST_CASE("config: resource limits load, and out-of-range values name their key and line") {
  LoadResult r = parse_config(kBase +
                                  "ipv6_connection_prefix = 48\nmax_message_memory = 1048576\n"
                                  "[postmaster]\nmax_per_ip_per_hour = 0\n"
                                  "max_per_network_per_hour = 7\nmax_total_per_minute = 8\n"
                                  "max_maildir_messages = 9\nmax_maildir_bytes = 0\n",
                              "t.toml");
  REQUIRE_MESSAGE(r.config, r.error);
  CHECK(r.config->smtp.ipv6_connection_prefix == 48);
  CHECK(r.config->smtp.max_message_memory == 1048576);
  CHECK(r.config->postmaster.max_per_ip_per_hour == 0);
  CHECK(r.config->postmaster.max_per_network_per_hour == 7);
  CHECK(r.config->postmaster.max_total_per_minute == 8);
  CHECK(r.config->postmaster.max_maildir_messages == 9);
  CHECK(r.config->postmaster.max_maildir_bytes == 0);

  r = parse_config(kBase + "ipv6_connection_prefix = 8\n", "t.toml");
  CHECK_FALSE(r.config);
  CHECK(r.error == "t.toml:5: key 'smtp.ipv6_connection_prefix': must be between 16 and 128");
  r = parse_config(kBase + "max_message_memory = 1000\n", "t.toml");
  CHECK_FALSE(r.config);
  CHECK(r.error.find("smtp.max_message_memory") != std::string::npos);
  r = parse_config(kBase + "[postmaster]\nmax_maildir_size = 5\n", "t.toml");
  CHECK_FALSE(r.config);
  CHECK(r.error == "t.toml:6: key 'postmaster.max_maildir_size': unknown key");
}

// The [delivery] and [queue] keys of the queue and delivery code: defaults, values, mistakes.
#include <doctest/doctest.h>

#include <string>

#include "config/config.hpp"

using namespace ipconfirm::config;

namespace {
LoadResult parse_with(const std::string& tail) {
  return parse_config(
      "hostname = \"mx.example.test\"\ndomains = [\"example.test\"]\n"
      "[smtp]\nlisten = [\"127.0.0.1:2525\"]\n" +
          tail,
      "t.toml");
}
}  // namespace

TEST_CASE("config delivery: safe defaults") {
  LoadResult r = parse_with("");
  REQUIRE_MESSAGE(r.config, r.error);
  CHECK(r.config->delivery.smarthost_tls == SmarthostTls::opportunistic);
  CHECK(r.config->delivery.smarthost_user.empty());
  CHECK(r.config->delivery.smarthost_auth_file.empty());
  CHECK_FALSE(r.config->delivery.allow_private);
  CHECK(r.config->delivery.mx_port == 25);
  CHECK(r.config->queue.retry_first == 60);
  CHECK(r.config->queue.retry_max == 3600);
  CHECK(r.config->queue.lifetime == 5 * 86400);
}

TEST_CASE("config delivery: values are read") {
  LoadResult r = parse_with(
      "[delivery]\nmode = \"smarthost\"\nsmarthost = \"127.0.0.1:2526\"\n"
      "smarthost_tls = \"required\"\nsmarthost_user = \"u\"\nsmarthost_password = \"p:w\"\n"
      "allow_private = true\nmx_port = 2525\n"
      "[queue]\nretry_first = 1\nretry_max = 2\nlifetime = 30\n");
  REQUIRE_MESSAGE(r.config, r.error);
  CHECK(r.config->delivery.smarthost_tls == SmarthostTls::required);
  CHECK(r.config->delivery.smarthost_user == "u");
  CHECK(r.config->delivery.smarthost_password == "p:w");
  CHECK(r.config->delivery.allow_private);
  CHECK(r.config->delivery.mx_port == 2525);
  CHECK(r.config->queue.retry_first == 1);
  CHECK(r.config->queue.retry_max == 2);
  CHECK(r.config->queue.lifetime == 30);
}

TEST_CASE("config delivery: mistakes name the key and the line") {
  auto error_of = [](const std::string& tail) {
    LoadResult r = parse_with(tail);
    CHECK_FALSE(r.config);
    return r.error;
  };
  CHECK(error_of("[delivery]\nsmarthost_tls = \"maybe\"\n") ==
        "t.toml:6: key 'delivery.smarthost_tls': must be \"none\", \"opportunistic\" or "
        "\"required\"");
  CHECK(error_of("[delivery]\nallow_private = \"yes\"\n").find("delivery.allow_private") !=
        std::string::npos);
  CHECK(error_of("[delivery]\nmx_port = 0\n").find("t.toml:6: key 'delivery.mx_port'") == 0);
  CHECK(error_of("[delivery]\nsmarthost_user = \"u\"\nsmarthost_auth_file = \"f\"\n")
            .find("not both") != std::string::npos);
  CHECK(error_of("[queue]\nretry_first = 0\n").find("queue.retry_first") != std::string::npos);
  CHECK(error_of("[queue]\nretries = 3\n") == "t.toml:6: key 'queue.retries': unknown key");
}

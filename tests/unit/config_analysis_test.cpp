// The [analysis] table: which non-public peers the report treats as on the internet.
#include <doctest/doctest.h>

#include "config/config.hpp"
#include "core/embedded_files.hpp"

using namespace ipconfirm::config;

namespace {
const char* kMinimal =
    "hostname = \"mx.example.test\"\ndomains = [\"example.test\"]\n"
    "[smtp]\nlisten = [\"127.0.0.1:2525\"]\n";
}  // namespace

TEST_CASE("config: analysis.lab_networks") {
  // The built-in default treats no network as a lab: a loopback peer is a local test.
  LoadResult builtin =
      parse_config(ipconfirm::embedded_files().at("ipconfirm.toml"), "built-in default config");
  REQUIRE_MESSAGE(builtin.config, builtin.error);
  CHECK(builtin.config->analysis.lab_networks.empty());

  LoadResult r = parse_config(
      std::string(kMinimal) + "[analysis]\nlab_networks = [\"127.0.0.0/8\", \"::1\"]\n", "t.toml");
  REQUIRE_MESSAGE(r.config, r.error);
  REQUIRE(r.config->analysis.lab_networks.size() == 2);
  CHECK(r.config->analysis.lab_networks[0].prefix == 8);
  CHECK(r.config->analysis.lab_networks[1].prefix == 128);

  LoadResult bad = parse_config(
      std::string(kMinimal) + "[analysis]\nlab_networks = [\"localhost\"]\n", "t.toml");
  CHECK_FALSE(bad.config);
  CHECK(bad.error.find("t.toml:6: key 'analysis.lab_networks'") != std::string::npos);
  LoadResult unknown = parse_config(std::string(kMinimal) + "[analysis]\nlab = true\n", "t.toml");
  CHECK_FALSE(unknown.config);
  CHECK(unknown.error.find("key 'analysis.lab': unknown key") != std::string::npos);
}

// Domain-name syntax (core/domain.hpp): RFC 5321 Domain, ASCII and with 8-bit U-labels.
#include "core/domain.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace ipconfirm;

TEST_CASE("is_valid_domain") {
  struct Case {
    std::string d;
    bool ok;
  };
  const std::vector<Case> cases = {
      {"example.test", true},
      {"EXAMPLE.test", true},
      {"a", true},
      {"1.2.3.4", true},
      {"xn--bcher-kva.example", true},
      {"a-b.c-d", true},
      {std::string(63, 'a') + ".test", true},
      {std::string(64, 'a') + ".test", false},
      {"", false},
      {".", false},
      {"example.test.", false},
      {".example.test", false},
      {"a..b", false},
      {"-a.test", false},
      {"a-.test", false},
      {"a_b.test", false},
      {"a b.test", false},
      {"[192.0.2.1]", false},
      {"b\xc3\xbc.test", false},
      {std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
           std::string(63, 'd'),
       true},
      {std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
           std::string(63, 'd') + "e",
       false},
  };
  for (const auto& c : cases) {
    INFO("domain: ", c.d);
    CHECK(is_valid_domain(c.d) == c.ok);
  }
}

TEST_CASE("is_valid_domain with 8-bit labels") {
  CHECK(is_valid_domain("b\xc3\xbc.test", true));
  CHECK_FALSE(is_valid_domain("b\xc3\xbc.test"));
  CHECK_FALSE(is_valid_domain("-\xc3\xbc.test", true));
  CHECK_FALSE(is_valid_domain("a b.test", true));
}

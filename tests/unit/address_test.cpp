// RFC 5322 address lists: mailboxes, display names, quoted strings, comments, groups, the
// obsolete forms, and bad input.
#include "mime/address.hpp"

#include <doctest/doctest.h>

using namespace ipconfirm::mime;

namespace {

Mailbox one(std::string_view value) {
  const AddressList l = parse_address_list(value);
  CHECK_MESSAGE(l.well_formed, value << ": " << l.error);
  REQUIRE_MESSAGE(l.mailboxes.size() == 1, value);
  return l.mailboxes.front();
}

}  // namespace

TEST_CASE("address: the common forms of a From: field") {
  auto m = one("alice@example.org");
  CHECK(m.local_part == "alice");
  CHECK(m.domain == "example.org");
  CHECK(m.display_name.empty());

  m = one("Alice Example <alice@example.org>");
  CHECK(m.display_name == "Alice Example");
  CHECK(m.domain == "example.org");

  m = one("\"Example, Alice\" <alice@Example.ORG>");
  CHECK(m.display_name == "Example, Alice");
  CHECK(m.domain == "Example.ORG");

  m = one("<alice@example.org>");
  CHECK(m.display_name.empty());

  m = one("\"quoted \\\"local\\\"\"@example.org");
  CHECK(m.local_part == "\"quoted \\\"local\\\"\"");

  m = one("=?UTF-8?B?w4Rsw6Rj?= <a.b+tag@mail.example.org>");
  CHECK(m.display_name == "=?UTF-8?B?w4Rsw6Rj?=");  // encoded words are not decoded
  CHECK(m.local_part == "a.b+tag");

  m =
      one("J\xc3\xb6rg <j\xc3\xb6rg@b\xc3\xbc"
          "cher.example>");  // RFC 6532
  CHECK(m.domain ==
        "b\xc3\xbc"
        "cher.example");

  m = one("alice@[192.0.2.1]");
  CHECK(m.domain == "[192.0.2.1]");
}

TEST_CASE("address: comments and folding white space anywhere") {
  auto m = one("(boss) Alice (the (nested) one)\r\n <alice (x) @ (y) example . org> (z)");
  CHECK(m.display_name == "Alice");
  CHECK(m.local_part == "alice");
  CHECK(m.domain == "example.org");
  m = one("alice@example.org (Alice Example)");
  CHECK(m.display_name.empty());
}

TEST_CASE("address: obsolete forms RFC 5322 §4 asks a reader to accept") {
  auto m = one("John Q. Public <john@example.org>");  // obs-phrase
  CHECK(m.display_name == "John Q. Public");
  m = one("<@relay.example,@other.example:alice@example.org>");  // obs-route
  CHECK(m.domain == "example.org");
  m = one("alice . smith @ example . org");  // obs-local-part, obs-domain
  CHECK(m.local_part == "alice.smith");
  CHECK(m.domain == "example.org");
  const auto l = parse_address_list("a@x.example,, b@y.example ,");  // obs-addr-list
  CHECK(l.well_formed);
  CHECK(l.mailboxes.size() == 2);
}

TEST_CASE("address: lists and groups") {
  auto l = parse_address_list(
      "Team: alice@a.example, Bob <bob@B.example>;, carol@a.example, undisclosed-recipients:;");
  CHECK(l.well_formed);
  REQUIRE(l.mailboxes.size() == 3);
  CHECK(l.mailboxes[0].group == "Team");
  CHECK(l.mailboxes[1].group == "Team");
  CHECK(l.mailboxes[2].group.empty());
  CHECK(l.groups == 2);
  CHECK(distinct_domains(l) == std::vector<std::string>{"a.example", "b.example"});

  l = parse_address_list("undisclosed-recipients:;");
  CHECK(l.well_formed);
  CHECK(l.mailboxes.empty());
}

TEST_CASE("address: malformed values say what and where, and keep what parsed") {
  struct Bad {
    const char* value;
    const char* error;
  };
  const Bad bad[] = {
      {"", "no address at offset 0"},
      {"   ", "no address at offset 3"},
      {"alice", "expected an address at offset 5"},
      {"alice@", "expected a domain at offset 6"},
      {"alice@example.", "malformed domain at offset 14"},
      {"@example.org", "expected an address at offset 0"},
      {"Alice <alice@example.org", "expected '>' at offset 24"},
      {"\"Alice <alice@example.org>", "unterminated quoted string at offset 0"},
      {"Alice (comment <alice@example.org>", "unterminated comment at offset 6"},
      {"alice@[192.0.2.1", "unterminated domain literal at offset 6"},
      {"a..b@example.org", "malformed local part at offset 2"},
      {".a@example.org", "malformed local part at offset 0"},
      {"Team: a@example.org", "group without ';' at offset 19"},
      {"alice@example.org\x01", "unexpected character at offset 17"},
      {"alice@example.org bob@example.net", "expected ',' between addresses at offset 18"},
      {"T: a@example.org b@example.org;", "expected ',' or ';' at offset 17"},
  };
  for (const auto& b : bad) {
    const auto l = parse_address_list(b.value);
    CHECK_MESSAGE(!l.well_formed, std::string(b.value));
    CHECK_MESSAGE(l.error == std::string(b.error), std::string(b.value));
  }
  const auto l = parse_address_list("alice@example.org, @@, bob@example.net");
  CHECK_FALSE(l.well_formed);
  CHECK(l.mailboxes.size() == 2);  // recovery at the next comma
}

TEST_CASE("address: bounded and linear on hostile input") {
  std::string many;
  for (std::size_t i = 0; i <= kMaxAddresses; ++i) many += "a@b.example,";
  auto l = parse_address_list(many);
  CHECK(l.truncated);
  CHECK(l.mailboxes.size() == kMaxAddresses);
  CHECK_FALSE(l.well_formed);

  // Deep comments, long phrases and many dots: each a few hundred kilobytes, parsed at once.
  const std::string deep = std::string(200000, '(') + std::string(200000, ')') + "a@b.example";
  const std::string words =
      std::string(100000, 'w').append(" ").append(std::string(100000, '.')) + "<a@b.example>";
  std::string dots = "a";
  for (int i = 0; i < 100000; ++i) dots += ".a";
  dots += "@b.example";
  CHECK(parse_address_list(deep).well_formed);
  CHECK(parse_address_list(words).mailboxes.size() == 1);
  CHECK(parse_address_list(dots).well_formed);
}

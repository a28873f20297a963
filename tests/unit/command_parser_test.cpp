// Command parser: table-driven cases for the verb split, MAIL FROM, RCPT TO, domains and the
// minimal quoting of Mailbox::to_string().
#include "smtp/command_parser.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

using namespace ipconfirm::smtp;

namespace {

const char* name(PathError e) {
  switch (e) {
    case PathError::none:
      return "none";
    case PathError::syntax:
      return "syntax";
    case PathError::missing_brackets:
      return "missing_brackets";
    case PathError::source_route:
      return "source_route";
    case PathError::bad_local_part:
      return "bad_local_part";
    case PathError::bad_domain:
      return "bad_domain";
    case PathError::address_literal:
      return "address_literal";
    case PathError::too_long:
      return "too_long";
    case PathError::utf8_not_allowed:
      return "utf8_not_allowed";
    case PathError::bad_parameter:
      return "bad_parameter";
  }
  return "?";
}

std::string params_text(const std::vector<PathParam>& params) {
  std::string s;
  for (const auto& p : params) s += (s.empty() ? "" : " ") + p.keyword + "=" + p.value;
  return s;
}

struct PathCase {
  std::string arg;
  bool utf8;
  PathError error;
  const char* local;        // nullptr: no mailbox expected
  const char* domain;       // when local is set
  std::string params = {};  // "KEY=value KEY2=" as params_text prints them
};

void check_path(const PathResult& r, const PathCase& c) {
  INFO("arg: ", c.arg, " utf8=", c.utf8);
  CHECK_MESSAGE(r.error == c.error, "got ", name(r.error), " (", r.detail, ")");
  CHECK(r.detail.empty() == (r.error == PathError::none));
  if (c.local) {
    REQUIRE(r.mailbox.has_value());
    CHECK(r.mailbox->local == c.local);
    CHECK(r.mailbox->domain == c.domain);
  } else {
    CHECK_FALSE(r.mailbox.has_value());
  }
  CHECK(params_text(r.params) == c.params);
}

}  // namespace

TEST_CASE("parse_command splits at the first space and knows the verbs in any case") {
  struct Case {
    std::string_view line;
    Verb verb;
    std::string_view verb_text;
    std::string_view arg;
  };
  const std::vector<Case> cases = {
      {"EHLO client.example", Verb::ehlo, "EHLO", "client.example"},
      {"ehlo client.example", Verb::ehlo, "ehlo", "client.example"},
      {"HeLo x", Verb::helo, "HeLo", "x"},
      {"MAIL FROM:<a@b.test> SIZE=10", Verb::mail, "MAIL", "FROM:<a@b.test> SIZE=10"},
      {"RCPT TO:<a@b.test>", Verb::rcpt, "RCPT", "TO:<a@b.test>"},
      {"DATA", Verb::data, "DATA", ""},
      {"rset", Verb::rset, "rset", ""},
      {"NOOP ignored text", Verb::noop, "NOOP", "ignored text"},
      {"QUIT", Verb::quit, "QUIT", ""},
      {"VRFY postmaster", Verb::vrfy, "VRFY", "postmaster"},
      {"EXPN list", Verb::expn, "EXPN", "list"},
      {"HELP", Verb::help, "HELP", ""},
      {"StartTLS", Verb::starttls, "StartTLS", ""},
      {"AUTH PLAIN AGZvbwBiYXI=", Verb::auth, "AUTH", "PLAIN AGZvbwBiYXI="},
      {"BDAT 100 LAST", Verb::bdat, "BDAT", "100 LAST"},
      {"EHLO  two spaces", Verb::ehlo, "EHLO", " two spaces"},
      {"QUIT ", Verb::quit, "QUIT", ""},
      {"", Verb::unknown, "", ""},
      {" EHLO x", Verb::unknown, "", "EHLO x"},
      {"EHLOx", Verb::unknown, "EHLOx", ""},
      {"EHL", Verb::unknown, "EHL", ""},
      {"GET / HTTP/1.0", Verb::unknown, "GET", "/ HTTP/1.0"},
      {"MAIL\tFROM:<a@b>", Verb::unknown, "MAIL\tFROM:<a@b>", ""},
  };
  for (const auto& c : cases) {
    INFO("line: ", std::string(c.line));
    const Command cmd = parse_command(c.line);
    CHECK(cmd.verb == c.verb);
    CHECK(cmd.verb_text == c.verb_text);
    CHECK(cmd.arg == c.arg);
  }
}

TEST_CASE("parse_mail_from") {
  using E = PathError;
  const std::string long_local(64, 'l');
  const std::string label(63, 'd');
  const std::string long_domain = label + "." + label + "." + label + "." + label;  // 255
  const std::vector<PathCase> cases = {
      {"FROM:<a@example.test>", false, E::none, "a", "example.test"},
      {"from:<a@example.test>", false, E::none, "a", "example.test"},
      {"From:<First.Last@Example.TEST>", false, E::none, "First.Last", "Example.TEST"},
      {"FROM: <a@example.test>", false, E::none, "a", "example.test"},
      {"FROM:<>", false, E::none, nullptr, nullptr},
      {"FROM:<> BODY=8BITMIME", false, E::none, nullptr, nullptr, "BODY=8BITMIME"},
      {"FROM:<a@example.test> SIZE=12345 body=8BITMIME", false, E::none, "a", "example.test",
       "SIZE=12345 BODY=8BITMIME"},
      {"FROM:<a@example.test> RET=HDRS ENVID=QQ314159", false, E::none, "a", "example.test",
       "RET=HDRS ENVID=QQ314159"},
      {"FROM:<a@example.test> X-FLAG", false, E::none, "a", "example.test", "X-FLAG="},
      // quoted local parts, percent hacks, bang paths reach the session literally
      {"FROM:<\"a@b\"@example.test>", false, E::none, "a@b", "example.test"},
      {"FROM:<\"a b\\\"c\\\\d\"@example.test>", false, E::none, "a b\"c\\d", "example.test"},
      {"FROM:<\"\"@example.test>", false, E::none, "", "example.test"},
      {"FROM:<\"a>b\"@example.test>", false, E::none, "a>b", "example.test"},
      {"FROM:<user%other.test@example.test>", false, E::none, "user%other.test", "example.test"},
      {"FROM:<host!user@example.test>", false, E::none, "host!user", "example.test"},
      {"FROM:<a+tag=x/y{z}~@example.test>", false, E::none, "a+tag=x/y{z}~", "example.test"},
      {"FROM:<a@sub-1.example-2.test>", false, E::none, "a", "sub-1.example-2.test"},
      {"FROM:<a@localhost>", false, E::none, "a", "localhost"},
      // the command
      {"TO:<a@example.test>", false, E::syntax, nullptr, nullptr},
      {"FROM <a@example.test>", false, E::syntax, nullptr, nullptr},
      {"FROM:", false, E::syntax, nullptr, nullptr},
      {"FROM:  <a@example.test>", false, E::syntax, nullptr, nullptr},
      {"FROM:<a@example.test>\t", false, E::syntax, nullptr, nullptr},
      {std::string("FROM:<a\0b@example.test>", 23), false, E::syntax, nullptr, nullptr},
      {"FROM:<a@example.test>x", false, E::syntax, nullptr, nullptr},
      // brackets
      {"FROM:a@example.test", false, E::missing_brackets, nullptr, nullptr},
      {"FROM:<a@example.test", false, E::missing_brackets, nullptr, nullptr},
      {"FROM:<", false, E::missing_brackets, nullptr, nullptr},
      {"FROM:<\"unterminated@example.test>", false, E::missing_brackets, nullptr, nullptr},
      {"FROM:<a>", false, E::syntax, nullptr, nullptr},
      {"FROM:<Postmaster>", false, E::syntax, nullptr, nullptr},
      // source routes and address literals
      {"FROM:<@relay.test:a@example.test>", false, E::source_route, "a", "example.test"},
      {"FROM:<@r1.test,@r2.test:a@example.test>", false, E::source_route, "a", "example.test"},
      {"FROM:<@r1.test,r2.test:a@example.test>", false, E::syntax, nullptr, nullptr},
      {"FROM:<@r1.test>", false, E::syntax, nullptr, nullptr},
      {"FROM:<@r1.test:a..b@example.test>", false, E::source_route, nullptr, nullptr},
      {"FROM:<a@[192.0.2.1]>", false, E::address_literal, "a", "[192.0.2.1]"},
      {"FROM:<a@[IPv6:2001:db8::1]>", false, E::address_literal, "a", "[IPv6:2001:db8::1]"},
      {"FROM:<a@[x-tag:some-thing]>", false, E::bad_domain, nullptr, nullptr},
      {"FROM:<a@[192.0.2.300]>", false, E::bad_domain, nullptr, nullptr},
      {"FROM:<a@[2001:db8::1]>", false, E::bad_domain, nullptr, nullptr},
      {"FROM:<a@[192.0.2.1>", false, E::bad_domain, nullptr, nullptr},
      // local parts
      {"FROM:<.a@example.test>", false, E::bad_local_part, nullptr, nullptr},
      {"FROM:<a.@example.test>", false, E::bad_local_part, nullptr, nullptr},
      {"FROM:<a..b@example.test>", false, E::bad_local_part, nullptr, nullptr},
      {"FROM:<@example.test>", false, E::syntax, nullptr, nullptr},
      {"FROM:<a b@example.test>", false, E::bad_local_part, nullptr, nullptr},
      {"FROM:<a(b)@example.test>", false, E::bad_local_part, nullptr, nullptr},
      {"FROM:<a\"b\"@example.test>", false, E::bad_local_part, nullptr, nullptr},
      {"FROM:<\"a\"b@example.test>", false, E::bad_local_part, nullptr, nullptr},
      {"FROM:<a@b@example.test>", false, E::bad_domain, nullptr, nullptr},
      {"FROM:<" + long_local + "@example.test>", false, E::none, long_local.c_str(),
       "example.test"},
      {"FROM:<" + long_local + "l@example.test>", false, E::too_long, nullptr, nullptr},
      {"FROM:<\"" + long_local.substr(2) + "\"@example.test>", false, E::none,
       long_local.c_str() + 2, "example.test"},
      {"FROM:<\"" + long_local.substr(1) + "\"@example.test>", false, E::too_long, nullptr,
       nullptr},
      // domains
      {"FROM:<a@>", false, E::bad_domain, nullptr, nullptr},
      {"FROM:<a@-x.test>", false, E::bad_domain, nullptr, nullptr},
      {"FROM:<a@x-.test>", false, E::bad_domain, nullptr, nullptr},
      {"FROM:<a@x..test>", false, E::bad_domain, nullptr, nullptr},
      {"FROM:<a@example.test.>", false, E::bad_domain, nullptr, nullptr},
      {"FROM:<a@ex_ample.test>", false, E::bad_domain, nullptr, nullptr},
      {"FROM:<a@" + label + "d.test>", false, E::bad_domain, nullptr, nullptr},
      {"FROM:<a@" + long_domain + ">", false, E::too_long, nullptr, nullptr},  // path 259
      {"FROM:<a@" + long_domain + "x>", false, E::too_long, nullptr, nullptr},
      {"FROM:<" + long_local + "@" + label + "." + label + "." + label + "." + label.substr(0, 60) +
           ">",
       false, E::too_long, nullptr, nullptr},
      // UTF-8 (RFC 6531)
      {"FROM:<\xc3\xbc@example.test>", false, E::utf8_not_allowed, nullptr, nullptr},
      {"FROM:<\xc3\xbc@example.test> SMTPUTF8", true, E::none, "\xc3\xbc", "example.test",
       "SMTPUTF8="},
      {"FROM:<\xc3\xbc@example.test>", true, E::utf8_not_allowed, nullptr, nullptr},
      {"FROM:<a@b\xc3\xbc.test> SMTPUTF8", true, E::none, "a", "b\xc3\xbc.test", "SMTPUTF8="},
      {"FROM:<a@b\xc3\xbc.test> SMTPUTF8", false, E::utf8_not_allowed, nullptr, nullptr},
      {"FROM:<\"\xc3\xbc x\"@example.test> SMTPUTF8", true, E::none, "\xc3\xbc x", "example.test",
       "SMTPUTF8="},
      {"FROM:<\xc3@example.test> SMTPUTF8", true, E::bad_local_part, nullptr, nullptr},
      {"FROM:<\xc0\xaf@example.test> SMTPUTF8", true, E::bad_local_part, nullptr, nullptr},
      {"FROM:<\xed\xa0\x80@example.test> SMTPUTF8", true, E::bad_local_part, nullptr, nullptr},
      {"FROM:<a@\xff.test> SMTPUTF8", true, E::bad_domain, nullptr, nullptr},
      {"FROM:<a@example.test> SMTPUTF8", false, E::none, "a", "example.test", "SMTPUTF8="},
      // parameters
      {"FROM:<a@example.test> ", false, E::bad_parameter, "a", "example.test"},
      {"FROM:<a@example.test>  SIZE=1", false, E::bad_parameter, "a", "example.test"},
      {"FROM:<a@example.test> SIZE=1 ", false, E::bad_parameter, "a", "example.test"},
      {"FROM:<a@example.test> SIZE=", false, E::bad_parameter, "a", "example.test"},
      {"FROM:<a@example.test> SIZE=12k", false, E::bad_parameter, "a", "example.test"},
      {"FROM:<a@example.test> SIZE=123456789012345678901", false, E::bad_parameter, "a",
       "example.test"},
      {"FROM:<a@example.test> SMTPUTF8=yes", false, E::bad_parameter, "a", "example.test"},
      {"FROM:<a@example.test> =1", false, E::bad_parameter, "a", "example.test"},
      {"FROM:<a@example.test> -X=1", false, E::bad_parameter, "a", "example.test"},
      {"FROM:<a@example.test> X_Y=1", false, E::bad_parameter, "a", "example.test"},
      {"FROM:<a@example.test> X=a=b", false, E::bad_parameter, "a", "example.test"},
      {"FROM:<a@example.test> X=\xc3\xbc", false, E::bad_parameter, "a", "example.test"},
      {"FROM:<a@example.test> X=\xc3\xbc", true, E::none, "a", "example.test", "X=\xc3\xbc"},
      {"FROM:<@relay.test:a@example.test> SIZE=1", false, E::source_route, "a", "example.test",
       "SIZE=1"},
  };
  for (const auto& c : cases) check_path(parse_mail_from(c.arg, c.utf8), c);
}

TEST_CASE("parse_rcpt_to") {
  using E = PathError;
  const std::vector<PathCase> cases = {
      {"TO:<ipconfirm@example.test>", false, E::none, "ipconfirm", "example.test"},
      {"to: <IPConfirm@Example.Test>", false, E::none, "IPConfirm", "Example.Test"},
      {"TO:<ipconfirm@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b.test", false, E::none,
       "ipconfirm", "example.test", "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b.test"},
      {"TO:<Postmaster>", false, E::none, "Postmaster", ""},
      {"TO:<postmaster>", false, E::none, "postmaster", ""},
      {"TO:<postmaster@example.test>", false, E::none, "postmaster", "example.test"},
      {"TO:<postmasterx>", false, E::syntax, nullptr, nullptr},
      {"TO:<>", false, E::syntax, nullptr, nullptr},
      {"FROM:<a@example.test>", false, E::syntax, nullptr, nullptr},
      {"TO:ipconfirm@example.test", false, E::missing_brackets, nullptr, nullptr},
      {"TO:<\"ipconfirm@example.test\"@relay.test>", false, E::none, "ipconfirm@example.test",
       "relay.test"},
      {"TO:<ipconfirm%example.test@relay.test>", false, E::none, "ipconfirm%example.test",
       "relay.test"},
      {"TO:<example.test!ipconfirm@relay.test>", false, E::none, "example.test!ipconfirm",
       "relay.test"},
      {"TO:<@relay.test:ipconfirm@example.test>", false, E::source_route, "ipconfirm",
       "example.test"},
      {"TO:<ipconfirm@[192.0.2.1]>", false, E::address_literal, "ipconfirm", "[192.0.2.1]"},
      {"TO:<\xc3\xbc@example.test>", false, E::utf8_not_allowed, nullptr, nullptr},
      // in RCPT the transaction's SMTPUTF8 is what allows 8-bit
      {"TO:<\xc3\xbc@example.test>", true, E::none, "\xc3\xbc", "example.test"},
      {"TO:<ipconfirm@example.test>\r", false, E::syntax, nullptr, nullptr},
  };
  for (const auto& c : cases) check_path(parse_rcpt_to(c.arg, c.utf8), c);
}

TEST_CASE("path length counts the brackets: 256 octets at most") {
  // local 64 + "@" + domain 189 + "<>" = 256
  const std::string local(64, 'l');
  const std::string domain =
      std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(61, 'c');
  REQUIRE(domain.size() == 189);
  CHECK(parse_rcpt_to("TO:<" + local + "@" + domain + ">", false).error == PathError::none);
  CHECK(parse_rcpt_to("TO:<" + local + "@" + domain + "c>", false).error == PathError::too_long);
}

TEST_CASE("Mailbox::to_string quotes only where the grammar needs it and parses back") {
  struct Case {
    Mailbox mb;
    std::string text;
  };
  const std::vector<Case> cases = {
      {{"a", "example.test"}, "a@example.test"},
      {{"first.last", "example.test"}, "first.last@example.test"},
      {{"a@b", "example.test"}, "\"a@b\"@example.test"},
      {{"a b", "example.test"}, "\"a b\"@example.test"},
      {{"a\"b\\c", "example.test"}, "\"a\\\"b\\\\c\"@example.test"},
      {{"", "example.test"}, "\"\"@example.test"},
      {{".a", "example.test"}, "\".a\"@example.test"},
      {{"a..b", "example.test"}, "\"a..b\"@example.test"},
      {{"\xc3\xbc", "example.test"}, "\xc3\xbc@example.test"},
      {{"Postmaster", ""}, "Postmaster"},
  };
  for (const auto& c : cases) {
    INFO("text: ", c.text);
    CHECK(c.mb.to_string() == c.text);
    const auto back = parse_rcpt_to("TO:<" + c.text + ">", true);
    CHECK(back.error == PathError::none);
    REQUIRE(back.mailbox.has_value());
    CHECK(back.mailbox->local == c.mb.local);
    CHECK(back.mailbox->domain == c.mb.domain);
  }
}

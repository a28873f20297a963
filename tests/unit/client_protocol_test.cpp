#include "smtp/client_protocol.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace ipconfirm::smtp;

namespace {

// Feeds `chunks` one after another the way the client does (append, next(), drop `consumed`)
// and collects every reply until an error or the input runs out.
struct Feed {
  std::vector<Reply> replies;
  std::string error;
  std::string left;  // bytes received but not consumed at the end
};

Feed feed(const std::vector<std::string>& chunks) {
  ReplyReader reader;
  Feed out;
  for (const auto& chunk : chunks) {
    out.left += chunk;
    for (;;) {
      ReplyReader::Out o = reader.next(out.left);
      out.left.erase(0, o.consumed);
      if (o.status == ReplyReader::Status::error) {
        out.error = o.error;
        return out;
      }
      if (o.status == ReplyReader::Status::need_more) break;
      out.replies.push_back(std::move(o.reply));
    }
  }
  return out;
}

ReplyReader::Out read_one(std::string_view text) {
  ReplyReader reader;
  return reader.next(text);
}

}  // namespace

TEST_CASE("ReplyReader reads a single-line reply and reports what it consumed") {
  auto out = read_one("250 2.1.0 Ok\r\n");
  REQUIRE(out.status == ReplyReader::Status::reply);
  CHECK(out.consumed == 14);
  CHECK(out.reply.code == 250);
  CHECK(out.reply.enhanced.empty());
  REQUIRE(out.reply.lines.size() == 1);
  CHECK(out.reply.lines[0] == "2.1.0 Ok");
}

TEST_CASE("ReplyReader accepts a code with no text and a last line with empty text") {
  auto bare = read_one("250\r\n");
  REQUIRE(bare.status == ReplyReader::Status::reply);
  CHECK(bare.reply.code == 250);
  CHECK(bare.reply.lines == std::vector<std::string>{""});

  auto sink = read_one("250-sink.test\r\n250-PIPELINING\r\n250 \r\n");
  REQUIRE(sink.status == ReplyReader::Status::reply);
  CHECK(sink.reply.lines == std::vector<std::string>{"sink.test", "PIPELINING", ""});
}

TEST_CASE("ReplyReader reads a multi-line reply at every split point") {
  const std::string wire =
      "250-mx.example.test Hello\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
      "354 go ahead\r\n";
  const std::vector<std::string> lines{"mx.example.test Hello", "SIZE 10240000", "STARTTLS",
                                       "8BITMIME"};
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    CAPTURE(cut);
    Feed f = feed({wire.substr(0, cut), wire.substr(cut)});
    CHECK(f.error.empty());
    REQUIRE(f.replies.size() == 2);
    CHECK(f.replies[0].code == 250);
    CHECK(f.replies[0].lines == lines);
    CHECK(f.replies[1].code == 354);
    CHECK(f.left.empty());
  }
  // And one octet at a time.
  std::vector<std::string> octets;
  for (char c : wire) octets.emplace_back(1, c);
  Feed f = feed(octets);
  CHECK(f.error.empty());
  REQUIRE(f.replies.size() == 2);
  CHECK(f.replies[0].lines == lines);
}

TEST_CASE("ReplyReader consumes complete lines of an unfinished reply") {
  ReplyReader reader;
  auto out = reader.next("250-first\r\n250-sec");
  CHECK(out.status == ReplyReader::Status::need_more);
  CHECK(out.consumed == 11);
  out = reader.next("250-second\r\n250 last\r\n");
  REQUIRE(out.status == ReplyReader::Status::reply);
  CHECK(out.reply.lines == std::vector<std::string>{"first", "second", "last"});
}

TEST_CASE("ReplyReader stops after one reply so that the caller sees what follows") {
  // Response injection: the greeting and a reply nobody asked for arrive together.
  const std::string wire = "220 mx ESMTP\r\n250 injected\r\n";
  auto out = read_one(wire);
  REQUIRE(out.status == ReplyReader::Status::reply);
  CHECK(out.reply.code == 220);
  CHECK(out.consumed == 14);
  CHECK(wire.size() - out.consumed == 14);  // the client treats these as a protocol error
}

TEST_CASE("ReplyReader rejects malformed replies") {
  const char* bad[] = {
      "25 ok\r\n",                    // two digits
      "2500 ok\r\n",                  // four digits
      "abc ok\r\n",                   // not digits
      "250x ok\r\n",                  // bad separator
      "250_ok\r\n",                   // bad separator
      "150 ok\r\n",                   // no such reply class
      "650 ok\r\n",                   // no such reply class
      "\r\n",                         // empty line
      " 250 ok\r\n",                  // leading space
      "250 ok\n",                     // bare LF
      "250-a\n250 b\r\n",             // bare LF on a continuation line
      "250 o\rk\r\n",                 // bare CR
      "250-first\r\n251 second\r\n",  // the code changes
      "250-first\r\n550 second\r\n",  // the code changes class
  };
  for (const char* text : bad) {
    CAPTURE(text);
    auto out = read_one(text);
    CHECK(out.status == ReplyReader::Status::error);
    CHECK_FALSE(out.error.empty());
  }
  std::string nul = "250 a";
  nul += '\0';
  nul += "b\r\n";
  CHECK(read_one(nul).status == ReplyReader::Status::error);
  CHECK(read_one("250 a\x01"
                 "b\r\n")
            .status == ReplyReader::Status::error);
  CHECK(read_one("250 tab\tok\r\n").status == ReplyReader::Status::reply);
  CHECK(read_one("250 caf\xc3\xa9\r\n").status == ReplyReader::Status::reply);
}

TEST_CASE("ReplyReader errors are sticky") {
  ReplyReader reader;
  CHECK(reader.next("2x0 no\r\n").status == ReplyReader::Status::error);
  auto out = reader.next("250 fine\r\n");
  CHECK(out.status == ReplyReader::Status::error);
  CHECK(out.consumed == 0);
}

TEST_CASE("ReplyReader bounds line length and line count") {
  // A line of exactly 2048 octets with CRLF is fine, 2049 is not.
  std::string ok = "250 " + std::string(2048 - 6, 'a') + "\r\n";
  REQUIRE(ok.size() == 2048);
  CHECK(read_one(ok).status == ReplyReader::Status::reply);
  std::string too_long = "250 " + std::string(2048 - 5, 'a') + "\r\n";
  CHECK(read_one(too_long).status == ReplyReader::Status::error);
  // Without a line end the reader gives up as soon as the line cannot fit any more.
  CHECK(read_one(std::string(2047, '2')).status == ReplyReader::Status::need_more);
  CHECK(read_one(std::string(2048, '2')).status == ReplyReader::Status::error);

  std::string hundred;
  for (int i = 0; i < 99; ++i) hundred += "250-line\r\n";
  CHECK(read_one(hundred + "250 last\r\n").status == ReplyReader::Status::reply);
  CHECK(read_one(hundred + "250-one more\r\n250 last\r\n").status == ReplyReader::Status::error);
  // Fed in pieces, the bound holds across calls.
  std::vector<std::string> chunks(150, "250-line\r\n");
  Feed f = feed(chunks);
  CHECK_FALSE(f.error.empty());
  CHECK(f.replies.empty());
}

TEST_CASE("dot_stuff stuffs leading dots and normalises line ends to CRLF") {
  CHECK(dot_stuff("") == ".\r\n");
  CHECK(dot_stuff("a") == "a\r\n.\r\n");
  CHECK(dot_stuff("a\r\n") == "a\r\n.\r\n");
  CHECK(dot_stuff("a\nb\n") == "a\r\nb\r\n.\r\n");
  CHECK(dot_stuff("a\rb") == "a\r\nb\r\n.\r\n");
  CHECK(dot_stuff("a\n\rb") == "a\r\n\r\nb\r\n.\r\n");  // LF then CR: two line ends
  CHECK(dot_stuff(".") == "..\r\n.\r\n");
  CHECK(dot_stuff(".\r\n") == "..\r\n.\r\n");
  CHECK(dot_stuff("x\r\n.\r\ny") == "x\r\n..\r\ny\r\n.\r\n");
  CHECK(dot_stuff("x\n..hidden\n") == "x\r\n...hidden\r\n.\r\n");
  CHECK(dot_stuff("a.b\r\n .c") == "a.b\r\n .c\r\n.\r\n");  // only a dot at line start
  CHECK(dot_stuff("\r\n") == "\r\n.\r\n");
}

TEST_CASE("dot_stuff output has no bare CR or LF and no lone dot line before the end") {
  const std::string inputs[] = {"\n.\n", "\r.\r", ".\r\n.\n.\r.", "a\r\r\n\n.",
                                std::string(3, '.')};
  for (const auto& in : inputs) {
    CAPTURE(in);
    std::string out = dot_stuff(in);
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (out[i] == '\r') CHECK((i + 1 < out.size() && out[i + 1] == '\n'));
      if (out[i] == '\n') CHECK((i > 0 && out[i - 1] == '\r'));
    }
    CHECK(out.find("\r\n.\r\n") == out.size() - 5);
  }
}

TEST_CASE("has_8bit") {
  CHECK_FALSE(has_8bit("plain ascii\r\n"));
  CHECK(has_8bit("caf\xc3\xa9"));
  CHECK(has_8bit(std::string(1, '\x80')));
}

TEST_CASE("parse_ehlo reads the capabilities") {
  Reply r{250,
          "",
          {"mx.example.test greets STARTTLS", "pipelining", "SIZE 10240000", "8BITMIME", "SmtpUtf8",
           "AUTH plain LOGIN", "ENHANCEDSTATUSCODES", "DSN"}};
  Capabilities c = parse_ehlo(r);
  CHECK(c.starttls == false);  // "STARTTLS" in the greeting line is not a keyword
  CHECK(c.pipelining);
  CHECK(c.eightbitmime);
  CHECK(c.smtputf8);
  REQUIRE(c.size.has_value());
  CHECK(*c.size == 10240000);
  CHECK(c.auth == std::vector<std::string>{"PLAIN", "LOGIN"});

  Capabilities tls = parse_ehlo(Reply{250, "", {"mx", "STARTTLS"}});
  CHECK(tls.starttls);
  CHECK_FALSE(tls.size.has_value());
  CHECK(tls.auth.empty());
}

TEST_CASE("parse_ehlo: SIZE without or with a bad limit means no limit; old AUTH= form") {
  CHECK(parse_ehlo(Reply{250, "", {"mx", "SIZE"}}).size == std::optional<std::size_t>{0});
  CHECK(parse_ehlo(Reply{250, "", {"mx", "SIZE 12x"}}).size == std::optional<std::size_t>{0});
  CHECK(parse_ehlo(Reply{250, "", {"mx", "SIZE 99999999999999999999999"}}).size ==
        std::optional<std::size_t>{0});
  Capabilities c = parse_ehlo(Reply{250, "", {"mx", "AUTH=LOGIN PLAIN", "AUTH PLAIN CRAM-MD5"}});
  CHECK(c.auth == std::vector<std::string>{"LOGIN", "PLAIN", "CRAM-MD5"});
  CHECK(parse_ehlo(Reply{250, "", {"only the greeting"}}).auth.empty());
  CHECK(parse_ehlo(Reply{250, "", {}}).size == std::nullopt);
}

namespace {

// The address as MAIL FROM / RCPT TO carry it, or why it cannot go.
std::string wire(std::string_view address) {
  SmtpAddressResult r = smtp_address(address);
  return r.address ? r.address->text : "refused: " + r.error;
}

}  // namespace

TEST_CASE("addresses that cannot be carried are refused") {
  CHECK(wire("") == "");
  CHECK(wire("user@example.test") == "user@example.test");
  CHECK(smtp_address("b\xc3\xbc"
                     "cher@example.test")
            .address->utf8);
  CHECK_FALSE(smtp_address("user@example.test").address->utf8);
  CHECK_FALSE(smtp_address("user@example.test>\r\nRCPT TO:<other@example.test").address);
  CHECK_FALSE(smtp_address("user@example.test> SIZE=1").address);
  CHECK_FALSE(smtp_address("a b@example.test").address);
  CHECK_FALSE(smtp_address("a<b@example.test").address);
  CHECK_FALSE(smtp_address("a\tb@example.test").address);
  CHECK_FALSE(smtp_address("\"a\tb\"@example.test").address);  // no HT in a Quoted-string
  CHECK_FALSE(smtp_address("\"a\rb\"@example.test").address);
  CHECK_FALSE(smtp_address("\"unterminated@example.test").address);
  CHECK_FALSE(smtp_address("@relay.test:user@example.test").address);  // a source route
  CHECK_FALSE(smtp_address("user").address);
  CHECK_FALSE(smtp_address("b\xc3"
                           "@example.test")
                  .address);  // not UTF-8
  CHECK_FALSE(smtp_address(std::string(65, 'a') + "@example.test").address);
  CHECK(wire(std::string(64, 'a') + "@example.test") == std::string(64, 'a') + "@example.test");
  CHECK_FALSE(smtp_address("a@" + std::string(256, 'b')).address);
  CHECK(smtp_address("a@example.test").error.empty());
  CHECK(wire("a@[192.0.2.1]") == "a@[192.0.2.1]");
}

TEST_CASE("quoted local parts go out quoted (RFC 5321 §4.1.2), minimally") {
  CHECK(wire("\"john doe\"@example.org") == "\"john doe\"@example.org");
  CHECK(wire("\"john\"@example.org") == "john@example.org");          // needs no quotes
  CHECK(wire("\"a\\\"b\"@example.org") == "\"a\\\"b\"@example.org");  // quoted-pair for "
  CHECK(wire("\"a\\\\b\"@example.org") == "\"a\\\\b\"@example.org");  // and for backslash
  CHECK(wire("\"a@b\"@example.org") == "\"a@b\"@example.org");
  CHECK(wire("\"a>b\"@example.org") == "\"a>b\"@example.org");
  CHECK(wire("\"\"@example.org") == "\"\"@example.org");
  CHECK(wire("\"j\xc3\xb6rg d\"@example.org") == "\"j\xc3\xb6rg d\"@example.org");
  CHECK(smtp_address("\"j\xc3\xb6rg d\"@example.org").address->utf8);
  CHECK(rcpt_to_command(wire("\"john doe\"@example.org")) ==
        "RCPT TO:<\"john doe\"@example.org>\r\n");
}

TEST_CASE("HELO names that cannot be carried are refused") {
  CHECK(is_safe_helo_name("mail.example.test"));
  CHECK(is_safe_helo_name("[192.0.2.1]"));
  CHECK(is_safe_helo_name("[IPv6:2001:db8::1]"));
  CHECK_FALSE(is_safe_helo_name(""));
  CHECK_FALSE(is_safe_helo_name("mail example"));
  CHECK_FALSE(is_safe_helo_name("mail\r\nMAIL FROM:<x>"));
  CHECK_FALSE(is_safe_helo_name("a:b"));
  CHECK_FALSE(is_safe_helo_name("[192.0.2.1"));
  CHECK_FALSE(is_safe_helo_name("[]"));
}

TEST_CASE("envelope commands") {
  CHECK(mail_from_command("", {}) == "MAIL FROM:<>\r\n");
  CHECK(mail_from_command("a@example.test", {}) == "MAIL FROM:<a@example.test>\r\n");
  MailParameters p;
  p.size = 1234;
  p.body_8bitmime = true;
  p.smtputf8 = true;
  CHECK(mail_from_command("a@example.test", p) ==
        "MAIL FROM:<a@example.test> SIZE=1234 BODY=8BITMIME SMTPUTF8\r\n");
  CHECK(rcpt_to_command("b@example.test") == "RCPT TO:<b@example.test>\r\n");
}

TEST_CASE("base64 and AUTH PLAIN") {
  // RFC 4648 §10 test vectors.
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode("fooba") == "Zm9vYmE=");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64_encode(std::string("\xff\xfe\0a", 4)) == "//4AYQ==");
  // RFC 4616 §4 example: "\0tim\0tanstaaftanstaaf".
  CHECK(auth_plain_response("tim", "tanstaaftanstaaf") == "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
  CHECK_FALSE(auth_plain_response(std::string("a\0b", 3), "p").has_value());
  CHECK_FALSE(auth_plain_response("u", std::string("p\0", 2)).has_value());
}

TEST_CASE("describe gives one printable line") {
  Reply r{550, "", {"5.1.1 <x@example.test>: no such user", "second\x01line"}};
  CHECK(describe(r) == "550 5.1.1 <x@example.test>: no such user / second?line");
  CHECK(describe(r, 8) == "550 5.1.");
  CHECK(describe(Reply{421, "", {}}) == "421");
}

TEST_CASE("has_8bit finds a high byte at any position") {
  CHECK_FALSE(has_8bit(""));
  for (std::size_t len = 1; len <= 21; ++len) {
    const std::string ascii(len, 'a');
    CHECK_FALSE(has_8bit(ascii));
    for (std::size_t at = 0; at < len; ++at) {
      std::string s = ascii;
      s[at] = '\x80';
      CAPTURE(len);
      CAPTURE(at);
      CHECK(has_8bit(s));
    }
  }
}

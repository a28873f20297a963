// Reading a saved reply (ipconfirm show): the parts come back decoded, whatever the file's line
// ends or wrapping, and hostile files cost bounded work.
#include <doctest/doctest.h>

#include <string>

#include "mime/compose.hpp"
#include "mime/saved_reply.hpp"

using namespace ipconfirm::mime;

namespace {

const std::string kJson =
    "{\n  \"connection\": {\"ip\": \"192.0.2.7\"},\n  \"note\": \"caf\xc3\xa9\"\n}";

std::string reply() {
  OutgoingMessage m;
  m.from_address = "ipconfirm-response@example.test";
  m.to_address = "you@example.org";
  m.subject = "Your IP is 192.0.2.7 \xe2\x80\x94 r\xc3\xa9sum\xc3\xa9";
  m.date_epoch = 1700000000;
  m.extra_headers = {{"X-Ipconfirm-Queue-Id", "0017.1.2"}};
  m.text_body =
      "Your IP address is 192.0.2.7.\nA line that is long enough to be wrapped by "
      "quoted-printable encoding because it goes on and on past seventy-six "
      "characters, with caf\xc3\xa9.\n";
  m.html_body = "<p>Your IP address is <b>192.0.2.7</b>.</p>\n";
  m.attachments.push_back({"application/json", "ipconfirm.json", kJson});
  return compose(m);
}

std::string to_lf(const std::string& crlf) {
  std::string out;
  for (std::size_t i = 0; i < crlf.size(); ++i)
    if (!(crlf[i] == '\r' && i + 1 < crlf.size() && crlf[i + 1] == '\n')) out += crlf[i];
  return out;
}

void check_parts(const std::string& file) {
  std::string error;
  auto r = read_saved_reply(file, error);
  REQUIRE_MESSAGE(r, error);
  REQUIRE(r->json);
  CHECK(*r->json == kJson);
  REQUIRE(r->text);
  CHECK(r->text->find("Your IP address is 192.0.2.7.\nA line that is long") == 0);
  CHECK(r->text->find("past seventy-six characters, with caf\xc3\xa9.\n") != std::string::npos);
  REQUIRE(r->html);
  CHECK(*r->html == "<p>Your IP address is <b>192.0.2.7</b>.</p>\n");
  CHECK(r->subject == "Your IP is 192.0.2.7 \xe2\x80\x94 r\xc3\xa9sum\xc3\xa9");
  CHECK(r->queue_id == "0017.1.2");
}

}  // namespace

TEST_CASE("saved reply: a composed reply, as written (CRLF) and as saved with LF") {
  const std::string crlf = reply();
  REQUIRE(crlf.find("Content-Transfer-Encoding: base64") != std::string::npos);
  REQUIRE(crlf.find("Content-Transfer-Encoding: quoted-printable") != std::string::npos);
  check_parts(crlf);
  check_parts(to_lf(crlf));
}

TEST_CASE("saved reply: an mbox 'From ' line and a sink's envelope lines before the header") {
  check_parts("From MAILER-DAEMON Thu Nov 23 13:45:01 2026\n" + to_lf(reply()));
  check_parts("X-Client-Addr: 127.0.0.1\nX-Helo-Args: mx.example.test\nX-Mail-Args: \n" +
              to_lf(reply()));
}

TEST_CASE("saved reply: a file that is not a reply of ours") {
  std::string error;
  auto plain = read_saved_reply("Subject: hi\r\n\r\nhello\r\n", error);
  REQUIRE(plain);
  CHECK(!plain->json);
  CHECK(*plain->text == "hello\n");
  CHECK(!read_saved_reply("just some text\nwithout a header\n", error));
  CHECK(error.find("no mail header") != std::string::npos);
  CHECK(!read_saved_reply("", error));
  SavedReplyLimits small;
  small.max_bytes = 100;
  CHECK(!read_saved_reply(reply(), error, small));
  CHECK(error.find("larger than 100 bytes") != std::string::npos);
}

TEST_CASE("saved reply: a boundary only counts at the start of a line, and as a whole") {
  const std::string m =
      "Content-Type: multipart/mixed; boundary=b\n\n"
      "--b\nContent-Type: text/plain\n\nsee --b and --bx here\n--bx\nstill text\n"
      "--b\nContent-Type: application/json\nContent-Disposition: attachment; "
      "filename=\"ipconfirm.json\"\n\n{}\n--b--\nepilogue\n";
  std::string error;
  auto r = read_saved_reply(m, error);
  REQUIRE(r);
  CHECK(*r->text == "see --b and --bx here\n--bx\nstill text");
  CHECK(*r->json == "{}");
}

TEST_CASE("saved reply: nesting and part counts are bounded") {
  std::string nested;
  for (int i = 0; i < 20000; ++i)
    nested += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(i) + "\"\n\n--b" +
              std::to_string(i) + "\n";
  nested += "Content-Type: application/json\n\n{\"deep\": true}\n";
  std::string error;
  auto deep = read_saved_reply(nested, error);
  REQUIRE(deep);
  CHECK(!deep->json);  // past max_depth: never reached, and no stack overflow

  std::string many = "Content-Type: multipart/mixed; boundary=b\n\n";
  for (int i = 0; i < 5000; ++i) many += "--b\nContent-Type: image/png\n\nx\n";
  many += "--b\nContent-Type: application/json\n\n{}\n--b--\n";
  auto wide = read_saved_reply(many, error);
  REQUIRE(wide);
  CHECK(!wide->json);  // past max_parts
}

TEST_CASE("saved reply: base64 and quoted-printable decoding") {
  CHECK(decode_base64("aGVsbG8gd29ybGQ=") == "hello world");
  CHECK(decode_base64("aGVs\r\nbG8g\nd29y bGQ=") == "hello world");
  CHECK(decode_base64("aGVsbG8*!~gd29ybGQ=ignored") == "hello world");
  CHECK(decode_base64("") == "");
  CHECK(decode_quoted_printable("caf=C3=A9 =\r\nnext=\nline") == "caf\xc3\xa9 nextline");
  CHECK(decode_quoted_printable("a=3db =zz =4") == "a=b =zz =4");
  CHECK(decode_quoted_printable("soft =  \r\nbreak") == "soft break");
  CHECK(decode_quoted_printable("end=") == "end");
}

// Tests for mime/compose: every composed message is parsed back with mimetic and compared with
// what went in; hostile header values must not add fields, lines must stay within RFC limits.
#include "mime/compose.hpp"

#include <doctest/doctest.h>
#include <mimetic/mimetic.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "mime/date.hpp"
#include "mime/incoming.hpp"

using ipconfirm::mime::Attachment;
using ipconfirm::mime::compose;
using ipconfirm::mime::decode_rfc2047;
using ipconfirm::mime::is_msg_id;
using ipconfirm::mime::make_message_id;
using ipconfirm::mime::OutgoingMessage;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

OutgoingMessage basic() {
  OutgoingMessage m;
  m.from_address = "ipconfirm@example.test";
  m.from_display = "IP Confirm";
  m.to_address = "alice@sender.test";
  m.subject = "Re: Check my server";
  m.message_id = "<1700000000.abcdef@example.test>";
  m.in_reply_to = "<abc.123@sender.test>";
  m.references = "<first@sender.test> <abc.123@sender.test>";
  m.date_epoch = 1700000000;
  m.extra_headers = {{"Auto-Submitted", "auto-replied"}};
  m.text_body = "Your server looks fine.\r\n";
  return m;
}

// Checks the RFC 5322 §2.1.1 and §2.2 rules on the raw message and returns its header lines.
std::vector<std::string> check_wire_format(const std::string& msg, bool header_within_78 = true) {
  std::vector<std::string> header_lines;
  bool in_header = true;
  std::size_t start = 0;
  while (start < msg.size()) {
    const std::size_t crlf = msg.find("\r\n", start);
    REQUIRE(crlf != std::string::npos);  // every line, the last included, ends in CRLF
    const std::string line = msg.substr(start, crlf - start);
    CHECK(line.find('\r') == std::string::npos);
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.size() <= 998);
    if (in_header) {
      if (line.empty()) {
        in_header = false;
      } else {
        for (char c : line) {
          CHECK(static_cast<unsigned char>(c) >= 0x20);
          CHECK(static_cast<unsigned char>(c) < 0x7F);  // headers are ASCII only
        }
        if (header_within_78) CHECK(line.size() <= 78);
        CHECK(line.find_first_not_of(" \t") != std::string::npos);  // no blank folded line
        header_lines.push_back(line);
      }
    }
    start = crlf + 2;
  }
  CHECK_FALSE(in_header);
  return header_lines;
}

// The names of the top-level header fields, from the raw lines.
std::vector<std::string> field_names(const std::vector<std::string>& header_lines) {
  std::vector<std::string> names;
  for (const auto& l : header_lines) {
    if (l[0] == ' ' || l[0] == '\t') continue;
    names.push_back(lower(l.substr(0, l.find(':'))));
  }
  return names;
}

std::string field(const mimetic::MimeEntity& e, const std::string& name) {
  for (const auto& f : e.header()) {
    if (lower(f.name()) == lower(name)) return f.value();
  }
  return "";
}

// Unfolds a field value as mimetic gives it (it keeps the CRLF of folded lines).
std::string unfold(std::string v) {
  std::string out;
  for (char c : v) {
    if (c != '\r' && c != '\n') out.push_back(c);
  }
  const auto b = out.find_first_not_of(' ');
  return b == std::string::npos ? "" : out.substr(b);
}

std::string decoded_body(const mimetic::MimeEntity& e) {
  const std::string cte = lower(e.header().contentTransferEncoding().mechanism());
  const std::string& body = e.body();
  std::string out;
  if (cte == "base64") {
    mimetic::Base64::Decoder d;
    mimetic::decode(body.begin(), body.end(), d, std::back_inserter(out));
  } else if (cte == "quoted-printable") {
    mimetic::QP::Decoder d;
    mimetic::decode(body.begin(), body.end(), d, std::back_inserter(out));
  } else {
    out = body;
  }
  return out;
}

// Quoted-printable decoding that keeps the bytes exactly (soft breaks removed, CRLF kept).
std::string strict_qp_decode(const std::string& in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '=') {
      out.push_back(in[i]);
    } else if (in.compare(i + 1, 2, "\r\n") == 0) {
      i += 2;
    } else {
      out.push_back(static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    }
  }
  return out;
}

std::string crlf_to_lf(const std::string& in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\r' && i + 1 < in.size() && in[i + 1] == '\n') continue;
    out.push_back(in[i]);
  }
  return out;
}

// True if the part decodes to `expected`. mimetic's quoted-printable decoder turns encoded line
// breaks into LF, so there the exact bytes are checked with a strict decoder as well.
bool body_is(const mimetic::MimeEntity& e, const std::string& expected) {
  const std::string decoded = decoded_body(e);
  if (lower(e.header().contentTransferEncoding().mechanism()) == "quoted-printable") {
    CHECK(decoded == crlf_to_lf(expected));
    CHECK(strict_qp_decode(e.body()) == expected);
    return decoded == crlf_to_lf(expected) && strict_qp_decode(e.body()) == expected;
  }
  CHECK(decoded == expected);
  return decoded == expected;
}

std::string content_type(const mimetic::MimeEntity& e) {
  const auto& ct = e.header().contentType();
  return lower(ct.type() + "/" + ct.subtype());
}

std::vector<const mimetic::MimeEntity*> parts(const mimetic::MimeEntity& e) {
  std::vector<const mimetic::MimeEntity*> out;
  for (const auto* p : e.body().parts()) out.push_back(p);
  return out;
}

}  // namespace

TEST_CASE("compose: a text-only reply") {
  const OutgoingMessage in = basic();
  const std::string msg = compose(in);
  const auto lines = check_wire_format(msg);
  CHECK(field_names(lines) ==
        std::vector<std::string>{"date", "from", "to", "subject", "message-id", "in-reply-to",
                                 "references", "auto-submitted", "mime-version", "content-type"});
  const mimetic::MimeEntity e(msg.begin(), msg.end());
  CHECK(field(e, "Date") == "Tue, 14 Nov 2023 22:13:20 +0000");
  CHECK(field(e, "From") == "IP Confirm <ipconfirm@example.test>");
  CHECK(field(e, "To") == "<alice@sender.test>");
  CHECK(field(e, "Subject") == "Re: Check my server");
  CHECK(field(e, "Message-ID") == "<1700000000.abcdef@example.test>");
  CHECK(field(e, "In-Reply-To") == "<abc.123@sender.test>");
  CHECK(field(e, "References") == "<first@sender.test> <abc.123@sender.test>");
  CHECK(field(e, "Auto-Submitted") == "auto-replied");
  CHECK(field(e, "MIME-Version") == "1.0");
  CHECK(content_type(e) == "multipart/mixed");
  const auto p = parts(e);
  REQUIRE(p.size() == 1);
  CHECK(content_type(*p[0]) == "text/plain");
  CHECK(lower(p[0]->header().contentType().param("charset")) == "utf-8");
  CHECK(lower(p[0]->header().contentTransferEncoding().mechanism()) == "7bit");
  CHECK(body_is(*p[0], in.text_body));
}

TEST_CASE("compose: text, html and a JSON attachment") {
  OutgoingMessage in = basic();
  in.text_body = "Caf\xC3\xA9 report: \xF0\x9F\x8E\x89\r\nsecond line\r\n";
  in.html_body = "<html><body><p>Caf\xC3\xA9 = ok</p></body></html>\r\n";
  in.attachments.push_back(
      {"application/json", "ipconfirm.json", "{\n  \"ip\": \"192.0.2.25\",\n  \"ok\": true\n}\n"});
  in.attachments.push_back({"text/plain", "notes.txt", "plain notes\r\n"});
  const std::string msg = compose(in);
  check_wire_format(msg);
  const mimetic::MimeEntity e(msg.begin(), msg.end());
  CHECK(content_type(e) == "multipart/mixed");
  const auto top = parts(e);
  REQUIRE(top.size() == 3);
  CHECK(content_type(*top[0]) == "multipart/alternative");
  const auto alt = parts(*top[0]);
  REQUIRE(alt.size() == 2);
  CHECK(content_type(*alt[0]) == "text/plain");
  CHECK(content_type(*alt[1]) == "text/html");
  CHECK(lower(alt[0]->header().contentTransferEncoding().mechanism()) == "quoted-printable");
  CHECK(body_is(*alt[0], in.text_body));
  CHECK(body_is(*alt[1], in.html_body));

  CHECK(content_type(*top[1]) == "application/json");
  CHECK(lower(top[1]->header().contentDisposition().type()) == "attachment");
  CHECK(top[1]->header().contentDisposition().param("filename") == "ipconfirm.json");
  // LF line breaks in a non-text body would be changed by 7bit transport: base64 keeps them.
  CHECK(lower(top[1]->header().contentTransferEncoding().mechanism()) == "base64");
  CHECK(body_is(*top[1], in.attachments[0].body));

  CHECK(content_type(*top[2]) == "text/plain");
  CHECK(top[2]->header().contentDisposition().param("filename") == "notes.txt");
  CHECK(lower(top[2]->header().contentTransferEncoding().mechanism()) == "7bit");
  CHECK(body_is(*top[2], in.attachments[1].body));
}

TEST_CASE("compose: hostile subjects cannot add header fields") {
  const std::vector<std::string> hostile = {
      "x\r\nBcc: victim@example.net",
      "x\nBcc: victim@example.net",
      "x\rBcc: victim@example.net",
      "x\r\n\r\nbody injection",
      std::string("nul\0byte\r\nBcc: victim@example.net", 34),
      "tab\there\x7F\x1B[31m",
      "=?utf-8?Q?Bcc:_x?=",
      "\xFF\xFE invalid \xC0\xAF utf-8 \xED\xA0\x80",
      "Emoji \xF0\x9F\x8E\x89\xF0\x9F\x91\x8D and "
      "\xC3\xBC\xC3\xB1\xC3\xAF\xC3\xA7\xC3\xB8\xC3\xB0\xC3\xA9",
      std::string(5000, 'a'),
      std::string(3000, ' ') + "x",
      [] {
        std::string s;
        for (int i = 0; i < 600; ++i) s += "word" + std::to_string(i) + " ";
        return s;
      }(),
      [] {
        std::string s;
        for (int i = 0; i < 500; ++i) s += "\xF0\x9F\x98\x80\xC3\xA4x";
        return s;
      }(),
  };
  for (const auto& subject : hostile) {
    INFO(subject.substr(0, 60));
    OutgoingMessage in = basic();
    in.subject = subject;
    const std::string msg = compose(in);
    const auto lines = check_wire_format(msg);
    const auto names = field_names(lines);
    CHECK(std::count(names.begin(), names.end(), "bcc") == 0);
    CHECK(std::count(names.begin(), names.end(), "subject") == 1);
    CHECK(names.size() == 10);

    const mimetic::MimeEntity e(msg.begin(), msg.end());
    const std::string got = decode_rfc2047(unfold(field(e, "Subject")));
    // What should come back: valid UTF-8, white space and line breaks collapsed to one space,
    // other control characters gone.
    std::string expected;
    bool space = false;
    for (char c : ipconfirm::mime::to_valid_utf8(subject)) {
      const auto u = static_cast<unsigned char>(c);
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        space = true;
      } else if (u >= 0x20 && u != 0x7F) {
        if (space && !expected.empty()) expected.push_back(' ');
        space = false;
        expected.push_back(c);
      }
    }
    CHECK(got == expected);
    // Every encoded-word is at most 75 characters and holds whole characters.
    for (const auto& l : lines) {
      std::size_t pos = 0;
      while ((pos = l.find("=?", pos)) != std::string::npos) {
        const std::size_t end = l.find("?=", pos + 10);
        REQUIRE(end != std::string::npos);
        const std::string word = l.substr(pos, end + 2 - pos);
        CHECK(word.size() <= 75);
        const std::string text = decode_rfc2047(word);
        CHECK(text != word);
        CHECK(ipconfirm::mime::to_valid_utf8(text) == text);
        pos = end + 2;
      }
    }
    // The body is still where it should be.
    const auto p = parts(e);
    REQUIRE(p.size() == 1);
    CHECK(body_is(*p[0], in.text_body));
  }
}

TEST_CASE("compose: hostile addresses, ids and extra headers") {
  OutgoingMessage in = basic();
  in.to_address = "alice@sender.test>\r\nBcc: <victim@example.net";
  in.from_display = "Evil\r\nBcc: victim@example.net";
  in.in_reply_to = "<x@y>\r\nBcc: victim@example.net";
  in.references = "<ok1@a> junk <bad id@a> <ok2@b>\r\nBcc: <victim@example.net>";
  in.message_id = "not-an-id";
  in.extra_headers = {{"Bcc", "victim@example.net"},
                      {"X-Bad\r\nBcc", "v"},
                      {"Content-Type", "text/html"},
                      {"X-Note", "a\r\nBcc: victim@example.net"},
                      {"Auto-Submitted", "auto-replied"},
                      {"", "empty name"},
                      {"X Space", "v"}};
  const std::string msg = compose(in);
  const auto lines = check_wire_format(msg);
  const auto names = field_names(lines);
  CHECK(std::count(names.begin(), names.end(), "bcc") == 0);
  CHECK(std::count(names.begin(), names.end(), "content-type") == 1);
  CHECK(std::count(names.begin(), names.end(), "in-reply-to") == 0);
  const mimetic::MimeEntity e(msg.begin(), msg.end());
  CHECK(field(e, "To") == "<alice@sender.testBcc:victim@example.net>");
  CHECK(field(e, "From") == "\"Evil Bcc: victim@example.net\" <ipconfirm@example.test>");
  CHECK(unfold(field(e, "References")) == "<ok1@a> <ok2@b> <victim@example.net>");
  CHECK(field(e, "X-Note") == "a Bcc: victim@example.net");
  CHECK(field(e, "Auto-Submitted") == "auto-replied");
  // An invalid Message-ID is replaced by a fresh one in the sender's domain.
  const std::string id = field(e, "Message-ID");
  CHECK(is_msg_id(id));
  CHECK(id.find("@example.test>") != std::string::npos);
  CHECK(content_type(e) == "multipart/mixed");
}

TEST_CASE("compose: display names") {
  auto from = [](const std::string& display) {
    OutgoingMessage in = basic();
    in.from_display = display;
    const std::string msg = compose(in);
    check_wire_format(msg);
    const mimetic::MimeEntity e(msg.begin(), msg.end());
    return unfold(field(e, "From"));
  };
  CHECK(from("") == "<ipconfirm@example.test>");
  CHECK(from("IP Confirm") == "IP Confirm <ipconfirm@example.test>");
  CHECK(from("Confirm, Inc. \"IP\"") == "\"Confirm, Inc. \\\"IP\\\"\" <ipconfirm@example.test>");
  const std::string utf8 = from("V\xC3\xA9rification IP");
  CHECK(utf8.rfind("=?utf-8?", 0) == 0);
  CHECK(decode_rfc2047(utf8) == "V\xC3\xA9rification IP <ipconfirm@example.test>");
}

TEST_CASE("compose: body encodings") {
  auto round_trip = [](const std::string& text, const std::string& expect_cte) {
    OutgoingMessage in = basic();
    in.text_body = text;
    const std::string msg = compose(in);
    check_wire_format(msg);
    const mimetic::MimeEntity e(msg.begin(), msg.end());
    const auto p = parts(e);
    REQUIRE(p.size() == 1);
    CHECK(lower(p[0]->header().contentTransferEncoding().mechanism()) == expect_cte);
    if (expect_cte != "quoted-printable") return decoded_body(*p[0]);
    const std::string exact = strict_qp_decode(p[0]->body());
    CHECK(decoded_body(*p[0]) == crlf_to_lf(exact));
    return exact;
  };
  // Long lines go quoted-printable, with soft line breaks.
  const std::string long_line = std::string(5000, 'x') + "\r\n" + std::string(100, 'y') + "\r\n";
  CHECK(round_trip(long_line, "quoted-printable") == long_line);
  const std::string spaces = "trailing spaces   \r\n= sign and tab\t\r\n" + std::string(200, ' ');
  CHECK(round_trip(spaces, "quoted-printable") == spaces);
  const std::string utf8 = "\xC3\xA4\xC3\xB6\xC3\xBC \xF0\x9F\x8E\x89\r\n";
  CHECK(round_trip(utf8, "quoted-printable") == utf8);
  // Line breaks are made CRLF; invalid UTF-8 becomes U+FFFD; NUL survives as =00.
  CHECK(round_trip("a\nb\rc\r\n", "7bit") == "a\r\nb\r\nc\r\n");
  CHECK(round_trip("bad \xFF\r\n", "quoted-printable") == "bad \xEF\xBF\xBD\r\n");
  CHECK(round_trip(std::string("n\0l\r\n", 5), "quoted-printable") == std::string("n\0l\r\n", 5));
  // Text that looks like MIME structure stays text.
  const std::string tricky = "--=_ipconfirm_0000\r\n--=_ipconfirm_0000--\r\n.\r\nFrom x\r\n";
  CHECK(round_trip(tricky, "7bit") == tricky);
  CHECK(round_trip("", "7bit").empty());
  CHECK(round_trip("no final line break", "7bit") == "no final line break");
}

TEST_CASE("compose: attachments") {
  OutgoingMessage in = basic();
  std::string binary;
  for (int i = 0; i < 256 * 4; ++i) binary.push_back(static_cast<char>(i & 0xFF));
  in.attachments = {
      {"application/octet-stream", "data.bin", binary},
      {"application/json", "r\xC3\xA9sultat \xE2\x82\xAC.json", "{}\r\n"},
      {"text/plain", std::string(120, 'n') + ".txt", std::string(300, 'z') + "\n"},
      {"bad type\r\nBcc: x", "../../etc/passwd", "x"},
      {"image/png",
       "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE9\x95\xB7\xE3\x81\x84"
       "\xE5\x90\x8D\xE5\x89\x8D\xE3\x81\xAE\xE3\x83\x95\xE3\x82\xA1\xE3\x82\xA4"
       "\xE3\x83\xAB.png",
       "\x89PNG\r\n\x1A\n"},
      {"application/json", "", "[]"},
  };
  const std::string msg = compose(in);
  const auto lines = check_wire_format(msg, false);
  const mimetic::MimeEntity e(msg.begin(), msg.end());
  const auto p = parts(e);
  REQUIRE(p.size() == 7);
  CHECK(body_is(*p[0], in.text_body));

  CHECK(content_type(*p[1]) == "application/octet-stream");
  CHECK(lower(p[1]->header().contentTransferEncoding().mechanism()) == "base64");
  CHECK(body_is(*p[1], binary));

  // RFC 2231 file name: percent-encoded UTF-8.
  CHECK(msg.find("filename*=utf-8''r%C3%A9sultat%20%E2%82%AC.json") != std::string::npos);
  CHECK(lower(p[2]->header().contentTransferEncoding().mechanism()) == "7bit");
  CHECK(body_is(*p[2], "{}\r\n"));

  // A text attachment with a long line and a bare LF: quoted-printable, bytes unchanged.
  CHECK(lower(p[3]->header().contentTransferEncoding().mechanism()) == "quoted-printable");
  CHECK(body_is(*p[3], in.attachments[2].body));
  CHECK(p[3]->header().contentDisposition().param("filename") == std::string(120, 'n') + ".txt");

  // An invalid content type falls back; path separators leave the file name.
  CHECK(content_type(*p[4]) == "application/octet-stream");
  CHECK(p[4]->header().contentDisposition().param("filename") == ".._.._etc_passwd");

  // A long non-ASCII name is split into RFC 2231 sections that fit on a line.
  CHECK(msg.find("filename*0*=utf-8''%E6%97%A5") != std::string::npos);
  CHECK(msg.find("filename*1*=") != std::string::npos);
  CHECK(body_is(*p[5], in.attachments[4].body));
  CHECK(p[6]->header().contentDisposition().param("filename") == "attachment");
  CHECK(body_is(*p[6], "[]"));

  const auto names = field_names(lines);
  CHECK(std::count(names.begin(), names.end(), "bcc") == 0);
  // Header lines stay within 78 columns except the one long ASCII file name.
  for (const auto& l : lines) {
    if (l.find(std::string(120, 'n')) == std::string::npos) CHECK(l.size() <= 78);
  }
}

TEST_CASE("compose: base64 bodies of every length modulo 3 decode to the same bytes") {
  for (std::size_t n = 1; n <= 200; ++n) {
    INFO("length " << n);
    OutgoingMessage in = basic();
    std::string binary;
    for (std::size_t i = 0; i < n; ++i) binary.push_back(static_cast<char>((i * 37 + 1) & 0xFF));
    binary[0] = '\0';  // never 7bit
    in.attachments = {{"application/octet-stream", "data.bin", binary}};
    const std::string msg = compose(in);
    check_wire_format(msg, false);
    const mimetic::MimeEntity e(msg.begin(), msg.end());
    const auto p = parts(e);
    REQUIRE(p.size() == 2);
    CHECK(lower(p[1]->header().contentTransferEncoding().mechanism()) == "base64");
    CHECK(body_is(*p[1], binary));
  }
}

TEST_CASE("compose: boundaries are fresh and absent from the content") {
  std::set<std::string> boundaries;
  for (int i = 0; i < 20; ++i) {
    OutgoingMessage in = basic();
    in.html_body = "<p>x</p>";
    const std::string msg = compose(in);
    const mimetic::MimeEntity e(msg.begin(), msg.end());
    const std::string outer = e.header().contentType().param("boundary");
    const std::string inner = parts(e).at(0)->header().contentType().param("boundary");
    CHECK(outer.size() >= 40);
    CHECK(outer != inner);
    boundaries.insert(outer);
    boundaries.insert(inner);
  }
  CHECK(boundaries.size() == 40);
}

TEST_CASE("compose: message ids") {
  std::set<std::string> ids;
  for (int i = 0; i < 2000; ++i) {
    const std::string id = make_message_id("mx.example.test");
    CHECK(is_msg_id(id));
    ids.insert(id);
  }
  CHECK(ids.size() == 2000);
  const std::string id = make_message_id("mx.example.test");
  CHECK(id.find("@mx.example.test>") != std::string::npos);
  CHECK(id.find('.') < id.find('@'));
  CHECK(make_message_id("..Bad Host..\r\n>x").find("@badhost.x>") != std::string::npos);
  CHECK(make_message_id("").find("@localhost>") != std::string::npos);
  CHECK(is_msg_id(make_message_id("\xFF\xFE")));
}

TEST_CASE("compose: the composed reply reads back through read_incoming") {
  OutgoingMessage in = basic();
  in.subject = "Re: \xC3\xBC" + std::string(200, 'x');
  const auto m = ipconfirm::mime::read_incoming(compose(in));
  CHECK(m.subject == in.subject);
  CHECK(m.message_id == in.message_id);
  CHECK(m.date_epoch == in.date_epoch);
  CHECK(m.auto_submitted == "auto-replied");
  CHECK(m.references == "<first@sender.test> <abc.123@sender.test>");
}

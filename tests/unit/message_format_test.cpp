// The form of a received header (RFC 5322, RFC 6532): every finding with its field and line,
// what is not a finding, the end of the header, LF-only storage, and the bounds.
#include "responder/analysis/message_format.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace ipconfirm::responder;

namespace {

const std::string kGood =
    "Received: from mail.example.org (mail.example.org [192.0.2.7])\r\n"
    "\tby mx.example.test; Tue, 1 Dec 2026 10:00:00 +0000\r\n"
    "From: Alice <alice@example.org>\r\n"
    "To: ipconfirm@example.test\r\n"
    "Subject: test\r\n"
    "Date: Tue, 1 Dec 2026 10:00:00 +0000\r\n"
    "Message-ID: <1.2@example.org>\r\n"
    "\r\n"
    "body\r\n";

// The header with `line` (CRLF added) put in front of the blank line.
std::string with(const std::string& line, std::string base = kGood) {
  const auto end = base.find("\r\n\r\n");
  return base.insert(end + 2, line + "\r\n");
}

// The header without the field that starts with `name`.
std::string without(const std::string& name, std::string base = kGood) {
  const auto at = base.find(name);
  REQUIRE(at != std::string::npos);
  base.erase(at, base.find("\r\n", at) + 2 - at);
  return base;
}

const FormatFinding* find(const MessageFormat& m, const std::string& code) {
  for (const auto& f : m.findings)
    if (f.code == code) return &f;
  return nullptr;
}

std::size_t count(const MessageFormat& m, const std::string& code) {
  std::size_t n = 0;
  for (const auto& f : m.findings) n += f.code == code;
  return n;
}

}  // namespace

TEST_CASE("format: a well-formed header has no findings") {
  const MessageFormat m = check_message_format(kGood, false);
  CHECK(m.findings.empty());
  CHECK_FALSE(m.has_errors());
  CHECK(m.fields == 6);
  CHECK(m.lines == 7);
  CHECK(m.from_fields == 1);
  CHECK(m.from_mailboxes == 1);
  CHECK(m.from_well_formed);
  CHECK(m.message_id_valid);
  CHECK(m.message_id == "<1.2@example.org>");
  // Folding, an obsolete date form and comments are fine.
  const MessageFormat obs = check_message_format(
      "From: (the author) alice@example.org\r\nDate: 1 Dec 26 10:00 GMT\r\n"
      "Message-ID:\r\n <1.2@example.org>\r\nSubject: a\r\n  folded\r\n\tsubject\r\n\r\n",
      false);
  CHECK(obs.findings.empty());
}

TEST_CASE("format: every single-instance field of RFC 5322 §3.6 appears at most once") {
  for (std::string name : {"From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Message-ID",
                           "In-Reply-To", "References", "Subject", "Date"}) {
    CAPTURE(name);
    std::string value = name == "Date"         ? "Tue, 1 Dec 2026 10:00:00 +0000"
                        : name == "Message-ID" ? "<2@example.org>"
                        : name == "Subject"    ? "again"
                                               : "<x@example.org>";
    if (name == "From" || name == "Sender" || name == "Reply-To" || name == "To" || name == "Cc" ||
        name == "Bcc")
      value = "bob@example.org";
    std::string text = with(name + ": " + value);
    text = with(name + ": " + value, text);  // the base may already hold one
    const MessageFormat m = check_message_format(text, false);
    const FormatFinding* f = find(m, "duplicate-field");
    REQUIRE(f);
    CHECK(f->error);
    CHECK(f->field == name);
    CHECK(f->text.find(name + " field appears") != std::string::npos);
    CHECK(count(m, "duplicate-field") == 1);
  }
  // The finding names every line and sits at the second one.
  const MessageFormat m = check_message_format(with("Subject: again"), false);
  const FormatFinding* f = find(m, "duplicate-field");
  REQUIRE(f);
  CHECK(f->line == 8);
  CHECK(f->text.find("appears 2 times (lines 5 and 8)") != std::string::npos);
  // Fields that may repeat do not count.
  CHECK(check_message_format(with("Received: from a by b; Tue, 1 Dec 2026 10:00:00 +0000") + "",
                             false)
            .findings.empty());
  CHECK(check_message_format(with("Comments: one", with("Comments: two")), false).findings.empty());
}

TEST_CASE("format: missing From, Date and Message-ID") {
  MessageFormat m = check_message_format(without("From:"), false);
  REQUIRE(find(m, "missing-from"));
  CHECK(find(m, "missing-from")->error);
  CHECK(find(m, "missing-from")->line == 0);
  CHECK(find(m, "missing-from")->field == "From");
  CHECK(m.from_fields == 0);

  m = check_message_format(without("Date:"), false);
  REQUIRE(find(m, "missing-date"));
  CHECK(find(m, "missing-date")->error);

  // RFC 5322 says SHOULD for Message-ID: a note, not an error (Gmail's own rule judges it).
  m = check_message_format(without("Message-ID:"), false);
  REQUIRE(find(m, "missing-message-id"));
  CHECK_FALSE(find(m, "missing-message-id")->error);
  CHECK_FALSE(m.has_errors());
  CHECK_FALSE(m.message_id_valid);
  CHECK(m.message_id_fields == 0);

  // Missing fields come last, after the findings that have a line.
  m = check_message_format(with("Subject: x", without("Date:")), false);
  REQUIRE(m.findings.size() == 2);
  CHECK(m.findings[0].code == "duplicate-field");
  CHECK(m.findings[1].code == "missing-date");
}

TEST_CASE("format: From, Date and Message-ID must parse") {
  std::string text = kGood;
  text.replace(text.find("From: Alice <alice@example.org>"), 31, "From: Alice <alice@example.org");
  MessageFormat m = check_message_format(text, false);
  REQUIRE(find(m, "malformed-from"));
  CHECK(find(m, "malformed-from")->line == 3);
  CHECK_FALSE(m.from_well_formed);

  text = kGood;
  text.replace(text.find("From: Alice <alice@example.org>"), 31,
               "From: alice@example.org, bob@example.org");
  m = check_message_format(text, false);
  REQUIRE(find(m, "from-needs-sender"));
  CHECK(m.from_mailboxes == 2);
  // With a Sender, several authors are allowed by RFC 5322.
  CHECK_FALSE(find(check_message_format(with("Sender: alice@example.org", text), false),
                   "from-needs-sender"));

  text = kGood;
  text.replace(text.find("Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage"), 30, "yesterday at noon");
  m = check_message_format(text, false);
  REQUIRE(find(m, "malformed-date"));
  CHECK(find(m, "malformed-date")->text.find("'yesterday at noon'") != std::string::npos);

  text = kGood;
  text.replace(text.find("<1.2@example.org>"), 17, "1.2@example.org");
  m = check_message_format(text, false);
  REQUIRE(find(m, "malformed-message-id"));
  CHECK_FALSE(m.message_id_valid);
}

TEST_CASE("format: 8-bit header bytes need SMTPUTF8, and then valid UTF-8") {
  const std::string utf8 = with(
      "Subject: Gr\xc3\xbc\xc3\x9f"
      "e",
      without("Subject:"));
  MessageFormat m = check_message_format(utf8, false);
  REQUIRE(find(m, "8bit-header"));
  CHECK(find(m, "8bit-header")->field == "Subject");
  CHECK(find(m, "8bit-header")->line == 7);
  CHECK(count(m, "8bit-header") == 1);
  CHECK(check_message_format(utf8, true).findings.empty());

  const std::string latin1 = with(
      "Subject: Gr\xfc\xdf"
      "e",
      without("Subject:"));
  m = check_message_format(latin1, true);
  REQUIRE(find(m, "invalid-utf8"));
  CHECK(find(m, "8bit-header") == nullptr);
  // One finding per field, even when its continuation lines have 8-bit bytes too.
  m = check_message_format(with("X-Note: \xc3\xa9\r\n \xc3\xa9\r\n \xc3\xa9"), false);
  CHECK(count(m, "8bit-header") == 1);
}

TEST_CASE("format: lines over 998 bytes, bare CR and bare LF") {
  const std::string ok = with("X-Long: " + std::string(998 - 8, 'a'));
  CHECK(check_message_format(ok, false).findings.empty());
  MessageFormat m = check_message_format(with("X-Long: " + std::string(999 - 8, 'a')), false);
  REQUIRE(find(m, "line-too-long"));
  CHECK(find(m, "line-too-long")->field == "X-Long");
  CHECK(find(m, "line-too-long")->text.find("999 bytes") != std::string::npos);

  m = check_message_format(with("X-Cr: a\rb"), false);
  REQUIRE(find(m, "bare-cr"));
  CHECK(find(m, "bare-cr")->line == 8);

  m = check_message_format(with("X-Lf: a\nb: c"), false);
  REQUIRE(find(m, "bare-lf"));
  CHECK(find(m, "bare-lf")->field == "X-Lf");

  // A header stored with LF line ends only (a file on disk) is read with LF as the line end.
  std::string lf = kGood;
  for (std::size_t at; (at = lf.find("\r\n")) != std::string::npos;) lf.erase(at, 1);
  m = check_message_format(lf, false);
  CHECK(m.findings.empty());
  CHECK(m.fields == 6);
}

TEST_CASE("format: lines that are no field") {
  MessageFormat m = check_message_format(" continued nothing\r\n" + kGood, false);
  REQUIRE(find(m, "malformed-line"));
  CHECK(find(m, "malformed-line")->line == 1);
  CHECK(find(m, "malformed-line")->text.find("white space") != std::string::npos);

  m = check_message_format(with("this line has no colon"), false);
  REQUIRE(find(m, "malformed-line"));
  CHECK(find(m, "malformed-line")->line == 8);
  CHECK(find(m, "malformed-line")->text.find("no colon") != std::string::npos);

  // The continuation of a line that is no field is no field either.
  m = check_message_format(with("no colon\r\n continued"), false);
  CHECK(count(m, "malformed-line") == 2);

  m = check_message_format(with("Bad Name: x"), false);
  REQUIRE(find(m, "malformed-line"));
  CHECK(find(m, "malformed-line")->text.find("name") != std::string::npos);
}

TEST_CASE("format: reading stops at the end of the header; line numbers count folds") {
  // The body may hold anything.
  const std::string message =
      kGood + "From: another\r\n" + std::string(2000, 'x') + "\r\nbare\rcr\r\n";
  CHECK(check_message_format(message, false).findings.empty());
  // A field after two folded lines is on the right line.
  const std::string folded =
      "From: a@example.org\r\nSubject: one\r\n two\r\n three\r\nDate: x\r\n\r\n";
  const MessageFormat m = check_message_format(folded, false);
  REQUIRE(find(m, "malformed-date"));
  CHECK(find(m, "malformed-date")->line == 5);
  CHECK(m.lines == 5);
}

TEST_CASE("format: hostile headers are bounded") {
  // 3,000 fields: the first 2,000 are read, the rest reported as not checked.
  std::string many;
  for (int i = 0; i < 3000; ++i) many += "Subject: " + std::to_string(i) + "\r\n";
  MessageFormat m = check_message_format(many + "\r\n", false);
  CHECK(m.truncated);
  CHECK(m.fields == 2000);
  REQUIRE(find(m, "header-truncated"));
  CHECK_FALSE(find(m, "missing-from"));  // it may come after the bound
  REQUIRE(find(m, "duplicate-field"));
  CHECK(find(m, "duplicate-field")->text.find("appears 2000 times (lines 1, 2, 3, 4, ...)") !=
        std::string::npos);

  // Thousands of bad lines: at most kMaxFormatFindings findings, the rest counted.
  std::string bad;
  for (int i = 0; i < 5000; ++i) bad += "X-" + std::to_string(i) + ": a\rb\r\n";
  m = check_message_format(kGood.substr(0, kGood.find("\r\n\r\n") + 2) + bad + "\r\n", false);
  CHECK(m.findings.size() <= kMaxFormatFindings);
  CHECK(m.omitted > 0);
  std::size_t errors = 0;
  for (const auto& f : m.findings) errors += f.error;
  CHECK(m.error_count() == errors + m.omitted);
  CHECK(m.truncated);  // 5,000 fields are more than the bound

  // A single line of several MiB is read once, up to the header bound.
  const std::string huge = "X-Huge: " + std::string(4 << 20, 'a') + "\r\n\r\n";
  m = check_message_format(huge, false);
  CHECK(m.truncated);
  REQUIRE(find(m, "line-too-long"));

  // A header cut before it came here (the server keeps 256 KiB): what may come later is not
  // reported missing, and the last field read, perhaps incomplete, is not judged.
  m = check_message_format("Subject: a\r\nSubject: b\r\nDate: Tue, 1 Dec", false, true);
  CHECK(m.truncated);
  CHECK(find(m, "header-truncated"));
  CHECK(find(m, "duplicate-field"));
  CHECK_FALSE(find(m, "missing-from"));
  CHECK_FALSE(find(m, "missing-message-id"));
  CHECK_FALSE(find(m, "malformed-date"));
  // The same bytes, not cut: all three are findings.
  m = check_message_format("Subject: a\r\nSubject: b\r\nDate: Tue, 1 Dec\r\n\r\n", false);
  CHECK(find(m, "missing-from"));
  CHECK(find(m, "missing-message-id"));
  CHECK(find(m, "malformed-date"));

  // Nothing at all.
  m = check_message_format("", false);
  CHECK(m.fields == 0);
  CHECK(find(m, "missing-from"));
}

TEST_CASE("format: JSON") {
  const MessageFormat m = check_message_format(with("Subject: again"), false);
  const auto j = to_json(m);
  REQUIRE(j["findings"].size() == 1);
  CHECK(j["findings"][0]["code"] == "duplicate-field");
  CHECK(j["findings"][0]["field"] == "Subject");
  CHECK(j["findings"][0]["line"] == 8);
  CHECK(j["findings"][0]["error"] == true);
  CHECK(j["errors"] == 1);
  CHECK(j["omitted"] == 0);
  CHECK(j["fields"] == 7);
  CHECK(j["truncated"] == false);
  CHECK_NOTHROW((void)j.dump());
}

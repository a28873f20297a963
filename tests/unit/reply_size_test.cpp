// The overall bound on a reply's size: whatever the report holds, the mail stays under
// kMaxReplyBytes and says that it was cut.
#include <doctest/doctest.h>

#include <string>

#include "responder/reply/reply_mail.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;

namespace {

Observation observation() {
  Observation obs;
  obs.ip = *IpAddress::parse("192.0.2.7");
  obs.mail_from = "someone@example.org";
  obs.reply_domain = "example.test";
  obs.message.message_id = "<m1@example.org>";
  return obs;
}

}  // namespace

TEST_CASE("reply size: a normal reply is left as it is") {
  Rendered rendered{"subject", "a short text\n", "<p>short</p>"};
  nlohmann::ordered_json report = {{"ipconfirm", 1}, {"received", {{{"by", "x"}}}}};
  ReplyMail mail = build_reply_mail(observation(), rendered, report, "mx.example.test", 0);
  CHECK(mail.data.find("a short text") != std::string::npos);
  CHECK(mail.data.find("reply_truncated") == std::string::npos);
  CHECK(mail.data.find("\"by\": \"x\"") != std::string::npos);
}

TEST_CASE("reply size: a huge report is cut under the bound, and says so") {
  std::string text;
  for (int i = 0; text.size() < 900 * 1024; ++i)
    text += "line " + std::to_string(i) + " \xc3\xa9t\xc3\xa9\n";
  std::string html = "<p>" + std::string(900 * 1024, 'h') + "</p>";
  nlohmann::ordered_json report = {{"ipconfirm", 1},
                                   {"connection", {{"ip", "192.0.2.7"}}},
                                   {"received", nlohmann::ordered_json::array()}};
  for (int i = 0; i < 2000; ++i)
    report["received"].push_back({{"from_name", std::string(255, 'r')}, {"by", "x"}});
  ReplyMail mail = build_reply_mail(observation(), Rendered{"subject", text, html}, report,
                                    "mx.example.test", 0);
  CHECK(mail.data.size() <= kMaxReplyBytes);
  CHECK(mail.data.find("this report was cut here") != std::string::npos);
  CHECK(mail.data.find("\"reply_truncated\": true") != std::string::npos);
  CHECK(mail.data.find("\"ip\": \"192.0.2.7\"") != std::string::npos);
  CHECK(mail.data.find(std::string(255, 'r')) == std::string::npos);
  CHECK(mail.data.find("hhhhhhhhhh") == std::string::npos);
  CHECK(mail.recipient == "someone@example.org");
}

TEST_CASE("reply size: a text without line ends is cut on a character boundary") {
  std::string text;
  while (text.size() < 400 * 1024) text += "\xc3\xa9";  // é, two bytes each
  ReplyMail mail = build_reply_mail(observation(), Rendered{"s", text, ""},
                                    nlohmann::ordered_json{{"ipconfirm", 1}}, "mx.example.test", 0);
  CHECK(mail.data.size() <= kMaxReplyBytes);
  CHECK(mail.data.find("this report was cut here") != std::string::npos);
}

// Fuzz target for the reply's encoders: mime/compose (quoted-printable, base64, 7bit, the
// boundaries) and the report's JSON text (responder/analysis/report_json). The input, cut at
// NUL bytes, gives the subject, the text, the HTML and a JSON string. Checks that the message
// has CRLF line ends only and lines of at most 998 bytes, that reading it back
// (mime/saved_reply) gives the text and the HTML as sent (made valid UTF-8, line breaks LF),
// and that report_json_text writes what the JSON library's dump writes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "mime/compose.hpp"
#include "mime/incoming.hpp"
#include "mime/saved_reply.hpp"
#include "responder/analysis/report_json.hpp"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

// What a text body reads back as: valid UTF-8, every line break (CRLF, CR, LF) one LF.
std::string read_back(std::string_view sent) {
  const std::string valid = ipconfirm::mime::to_valid_utf8(sent);
  std::string out;
  for (std::size_t i = 0; i < valid.size(); ++i) {
    if (valid[i] == '\r') {
      out += '\n';
      if (i + 1 < valid.size() && valid[i + 1] == '\n') ++i;
    } else {
      out += valid[i];
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> fields;
  std::size_t pos = 0;
  while (fields.size() < 3) {
    const std::size_t nul = input.find('\0', pos);
    if (nul == std::string_view::npos) break;
    fields.emplace_back(input.substr(pos, nul - pos));
    pos = nul + 1;
  }
  fields.emplace_back(input.substr(pos));
  fields.resize(4);

  ipconfirm::mime::OutgoingMessage m;
  m.from_address = "ipconfirm-response@example.test";
  m.from_display = "ipconfirm";
  m.to_address = "sender@example.test";
  m.subject = fields[0];
  m.message_id = "<1.fuzz@example.test>";
  m.date_epoch = 1795000000;
  m.text_body = fields[1];
  m.html_body = fields[2];
  nlohmann::ordered_json j = {{"subject", fields[0]}, {"list", {fields[3], 1, nullptr}}};
  const std::string json = ipconfirm::responder::report_json_text(j);
  require(json == j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  m.attachments.push_back({"application/json", "ipconfirm.json", json});
  m.attachments.push_back({"text/plain", "raw.txt", fields[3]});

  const std::string message = ipconfirm::mime::compose(m);
  std::size_t line = 0;
  for (std::size_t i = 0; i < message.size(); ++i) {
    if (message[i] == '\r') {
      require(i + 1 < message.size() && message[i + 1] == '\n');
      line = 0;
      ++i;
    } else {
      require(message[i] != '\n');
      require(++line <= 998);
    }
  }
  std::string error;
  const auto back = ipconfirm::mime::read_saved_reply(message, error);
  require(back.has_value());
  require(back->text && *back->text == read_back(fields[1]));
  if (!fields[2].empty()) require(back->html && *back->html == read_back(fields[2]));
  return 0;
}

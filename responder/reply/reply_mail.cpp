#include "responder/reply/reply_mail.hpp"

#include <optional>
#include <string_view>

#include "mime/compose.hpp"
#include "responder/analysis/idna.hpp"
#include "responder/analysis/report_json.hpp"

namespace ipconfirm::responder {

namespace {

// The cut text and JSON: even as quoted-printable (3 bytes per byte) and base64 they fit.
constexpr std::size_t kCutTextBytes = 48 * 1024;

constexpr const char* kCutNote =
    "[ipconfirm: this report was cut here because it is larger than ipconfirm mails; the "
    "attached JSON leaves out the Received list.]";

// `text` cut at the last line end before kCutTextBytes, with the note.
std::string cut_text(const std::string& text) {
  std::string out = text.substr(0, kCutTextBytes);
  if (auto nl = out.rfind('\n'); nl != std::string::npos) {
    out.resize(nl + 1);
  } else if (out.size() < text.size()) {
    // No line end: cut before the character the limit fell into (UTF-8).
    while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
    if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
  }
  out += "\n";
  out += kCutNote;
  out += "\n";
  return out;
}

// The address the reply goes to: the envelope sender with a domain of U-labels written as
// A-labels (RFC 5890; the same domain, the form the DNS holds). An address whose local part is
// ASCII is then all ASCII and reaches a server without SMTPUTF8 (RFC 6531); one whose local
// part is UTF-8 still needs it. A domain that is not valid IDNA stays as it is.
std::string reply_address(const std::string& mail_from) {
  const std::size_t at = mail_from.rfind('@');
  if (at == std::string::npos) return mail_from;
  const std::string_view domain = std::string_view(mail_from).substr(at + 1);
  bool ascii = true;
  for (char c : domain) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) return mail_from;
  std::optional<std::string> a_labels = to_a_labels(domain);
  if (!a_labels) return mail_from;
  return mail_from.substr(0, at + 1) + *a_labels;
}

}  // namespace

ReplyMail build_reply_mail(const Observation& obs, const Rendered& rendered,
                           const nlohmann::ordered_json& report, const std::string& hostname,
                           std::int64_t now) {
  return build_reply_mail(obs, Rendered(rendered), report,
                          report_json_text(report, "\r\n") + "\r\n", hostname, now);
}

ReplyMail build_reply_mail(const Observation& obs, Rendered&& rendered,
                           const nlohmann::ordered_json& report, std::string json_part,
                           const std::string& hostname, std::int64_t now) {
  mime::OutgoingMessage m;
  m.from_address = "ipconfirm-response@" + obs.reply_domain;
  m.from_display = "ipconfirm";
  m.to_address = reply_address(obs.mail_from);
  m.subject = std::move(rendered.subject);
  m.message_id = mime::make_message_id(hostname);
  m.in_reply_to = obs.message.message_id;
  // RFC 5322 §3.6.4: References is the parent's References (if any) plus the parent's id.
  if (!obs.message.message_id.empty())
    m.references = obs.message.references.empty()
                       ? obs.message.message_id
                       : obs.message.references + " " + obs.message.message_id;
  m.date_epoch = now;
  m.extra_headers = {{"Auto-Submitted", "auto-replied"},
                     {"X-Auto-Response-Suppress", "All"},
                     {"Precedence", "auto_reply"},
                     {"X-Ipconfirm-IP", obs.ip.to_string()}};
  m.text_body = std::move(rendered.text);
  m.html_body = std::move(rendered.html);
  // The JSON part has CRLF line breaks, so that it could travel as 7bit text and stay readable
  // in the raw message (a part with bare LF would have to go as base64).
  m.attachments.push_back(
      mime::Attachment{"application/json", "ipconfirm.json", std::move(json_part)});
  ReplyMail r;
  r.sender = "";
  r.recipient = m.to_address;
  r.message_id = m.message_id;
  r.data = mime::compose(m);
  if (r.data.size() > kMaxReplyBytes) {
    m.text_body = cut_text(m.text_body);
    m.html_body = std::string("<!DOCTYPE html><html><body><p>") + kCutNote +
                  " See the text part.</p></body></html>\n";
    nlohmann::ordered_json smaller = report;
    smaller["received"] = nlohmann::ordered_json::array();
    smaller["reply_truncated"] = true;
    std::string json = report_json_text(smaller, "\r\n");
    if (json.size() > kCutTextBytes) {
      // Nothing else in the report is that large; keep what identifies the connection.
      nlohmann::ordered_json minimal;
      for (const char* key : {"ipconfirm", "reporter", "arrival", "connection", "envelope"})
        if (report.contains(key)) minimal[key] = report[key];
      minimal["reply_truncated"] = true;
      json = report_json_text(minimal, "\r\n");
    }
    m.attachments.clear();
    m.attachments.push_back(mime::Attachment{"application/json", "ipconfirm.json", json + "\r\n"});
    r.data = mime::compose(m);
  }
  return r;
}

}  // namespace ipconfirm::responder

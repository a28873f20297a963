#include "responder/reply/reply_mail.hpp"

#include "mime/compose.hpp"

namespace ipconfirm::responder {

namespace {

// The JSON part travels as 7bit text with CRLF line breaks, so that it stays readable in the
// raw message (a part with bare LF would have to go as base64).
std::string crlf(const std::string& text) {
  std::string out;
  out.reserve(text.size() + text.size() / 16 + 2);
  for (char c : text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  out += "\r\n";
  return out;
}

}  // namespace

ReplyMail build_reply_mail(const Observation& obs, const Rendered& rendered,
                           const nlohmann::ordered_json& report, const std::string& hostname,
                           std::int64_t now) {
  mime::OutgoingMessage m;
  m.from_address = "ipconfirm-response@" + obs.reply_domain;
  m.from_display = "ipconfirm";
  m.to_address = obs.mail_from;
  m.subject = rendered.subject;
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
  m.text_body = rendered.text;
  m.html_body = rendered.html;
  m.attachments.push_back(
      mime::Attachment{"application/json", "ipconfirm.json", crlf(report.dump(2))});
  ReplyMail r;
  r.sender = "";
  r.recipient = obs.mail_from;
  r.message_id = m.message_id;
  r.data = mime::compose(m);
  return r;
}

}  // namespace ipconfirm::responder

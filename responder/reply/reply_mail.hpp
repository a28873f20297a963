// Builds the reply mail from the rendered report: the RFC 3834 headers, the text and HTML
// alternatives and the JSON attachment (application/json, ipconfirm.json). Composition and
// every encoding decision are mime/compose's; this file only decides what goes in. Pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "responder/analysis/observation.hpp"
#include "responder/reply/render.hpp"

namespace ipconfirm::responder {

struct ReplyMail {
  std::string sender;     // envelope sender of the reply: always "" (<>), RFC 3834 §3.3
  std::string recipient;  // the original envelope sender (a U-label domain as A-labels)
  std::string message_id;
  std::string data;  // the whole message, CRLF endings
};

// The largest reply ipconfirm mails. A normal reply is about 12 KiB and every list in the
// report is bounded (10 PTR names, [reply] max_received hops, 255 bytes per Received field);
// the reply goes to whatever MAIL FROM said, often a forged third party, so it must never be
// an amplifier. A reply that would be larger is cut: the text part at a line end near 48 KiB
// with a note saying so, the HTML part replaced by that note, and the JSON part without its
// "received" list and with "reply_truncated": true.
inline constexpr std::size_t kMaxReplyBytes = 256 * 1024;

ReplyMail build_reply_mail(const Observation& obs, const Rendered& rendered,
                           const nlohmann::ordered_json& report, const std::string& hostname,
                           std::int64_t now);
// The same, with the parts moved in and the JSON attachment's body given: the report's JSON
// with CRLF line breaks and a final CRLF (report_json_text(report, "\r\n") + "\r\n", or
// with_crlf of the stored report's text; responder/analysis/report_json.hpp). The service has
// that text already when it stores the report: a reply's JSON is written only once.
ReplyMail build_reply_mail(const Observation& obs, Rendered&& rendered,
                           const nlohmann::ordered_json& report, std::string json_part,
                           const std::string& hostname, std::int64_t now);

}  // namespace ipconfirm::responder

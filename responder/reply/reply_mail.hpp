// Builds the reply mail from the rendered report: the RFC 3834 headers, the text and HTML
// alternatives and the JSON attachment (application/json, ipconfirm.json). Composition and
// every encoding decision are mime/compose's; this file only decides what goes in. Pure.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "responder/analysis/observation.hpp"
#include "responder/reply/render.hpp"

namespace ipconfirm::responder {

struct ReplyMail {
  std::string sender;     // envelope sender of the reply: always "" (<>), RFC 3834 §3.3
  std::string recipient;  // the original envelope sender
  std::string message_id;
  std::string data;  // the whole message, CRLF endings
};

ReplyMail build_reply_mail(const Observation& obs, const Rendered& rendered,
                           const nlohmann::ordered_json& report, const std::string& hostname,
                           std::int64_t now);

}  // namespace ipconfirm::responder

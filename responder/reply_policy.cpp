#include "responder/reply_policy.hpp"

#include <algorithm>
#include <cctype>

namespace ipconfirm::responder {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

}  // namespace

ReplyDecision decide_reply(const Observation& obs, const ReplyPolicy& policy) {
  const std::string sender = lower(obs.mail_from);
  if (sender.empty()) return {false, "null-sender"};
  auto at = sender.rfind('@');
  if (at == std::string::npos) return {false, "sender-without-domain"};
  const std::string local = sender.substr(0, at);
  const std::string domain = sender.substr(at + 1);
  // Postmasters testing their own servers often send as postmaster@ or root@: those get
  // replies. Daemons that never read mail do not.
  for (std::string_view daemon : {"mailer-daemon", "listserv", "majordomo", "nobody"}) {
    if (local == daemon) return {false, "daemon-sender"};
  }
  if (ends_with(local, "-request") || starts_with(local, "owner-") ||
      starts_with(local, "bounce") || ends_with(local, "-bounces"))
    return {false, "list-sender"};
  if (std::find(policy.domains.begin(), policy.domains.end(), domain) != policy.domains.end())
    return {false, "own-address"};
  const auto& m = obs.message;
  if (!m.auto_submitted.empty() && m.auto_submitted != "no") return {false, "auto-submitted"};
  for (std::string_view p : {"bulk", "list", "junk"})
    if (m.precedence == p) return {false, "precedence-" + std::string(p)};
  if (m.has_list_headers) return {false, "list-headers"};
  if (m.is_delivery_report) return {false, "delivery-report"};
  if (m.received_count > policy.max_received) return {false, "too-many-received"};
  return {true, ""};
}

}  // namespace ipconfirm::responder

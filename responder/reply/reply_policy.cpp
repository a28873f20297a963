#include "responder/reply/reply_policy.hpp"
#include "core/ascii.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace ipconfirm::responder {

namespace {

using ascii::lower;

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// The first word of a header value: "no" in "no (manual)" or "no; reason=x" (RFC 3834 §5.1
// allows comments and parameters after the keyword).
std::string_view keyword(std::string_view value) {
  std::size_t b = 0;
  while (b < value.size() && (value[b] == ' ' || value[b] == '\t')) ++b;
  std::size_t e = b;
  while (e < value.size() && value[e] != ' ' && value[e] != '\t' && value[e] != ';' &&
         value[e] != '(')
    ++e;
  return value.substr(b, e - b);
}

// The local part without its quotes and escapes: "\"owner-x\"@y" is owner-x.
std::string unquote_local(std::string_view local) {
  if (local.size() < 2 || local.front() != '"' || local.back() != '"') return std::string(local);
  std::string out;
  for (std::size_t i = 1; i + 1 < local.size(); ++i) {
    if (local[i] == '\\' && i + 2 < local.size()) ++i;
    out.push_back(local[i]);
  }
  return out;
}

}  // namespace

ReplyDecision decide_reply(const Observation& obs, const ReplyPolicy& policy) {
  const std::string sender = lower(obs.mail_from);
  if (sender.empty()) return {false, "null-sender"};
  auto at = sender.rfind('@');
  if (at == std::string::npos || at + 1 == sender.size()) return {false, "sender-without-domain"};
  const std::string local = unquote_local(std::string_view(sender).substr(0, at));
  std::string domain = sender.substr(at + 1);
  if (domain.front() == '[') return {false, "sender-address-literal"};
  if (domain.back() == '.') domain.pop_back();
  // Postmasters testing their own servers often send as postmaster@ or root@: those get
  // replies. Daemons that never read mail do not.
  for (std::string_view daemon : {"mailer-daemon", "listserv", "majordomo", "nobody"}) {
    if (local == daemon) return {false, "daemon-sender"};
  }
  if (ends_with(local, "-request") || starts_with(local, "owner-") ||
      starts_with(local, "bounce") || ends_with(local, "-bounces"))
    return {false, "list-sender"};
  // Every address at our domains or our host name is ours (ipconfirm@, ipconfirm-response@,
  // postmaster@ ...): a reply there would come straight back to us.
  if (std::find(policy.domains.begin(), policy.domains.end(), domain) != policy.domains.end() ||
      (!policy.hostname.empty() && domain == lower(policy.hostname)))
    return {false, "own-address"};
  const auto& m = obs.message;
  if (!m.auto_submitted.empty() && lower(keyword(m.auto_submitted)) != "no")
    return {false, "auto-submitted"};
  const std::string precedence = lower(keyword(m.precedence));
  for (std::string_view p : {"bulk", "list", "junk"})
    if (precedence == p) return {false, "precedence-" + std::string(p)};
  if (m.has_list_headers) return {false, "list-headers"};
  if (m.is_delivery_report) return {false, "delivery-report"};
  if (m.received_count > policy.max_received) return {false, "too-many-received"};
  return {true, ""};
}

}  // namespace ipconfirm::responder

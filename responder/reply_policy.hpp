// Whether a report may be mailed back at all (RFC 3834 §2, §3.1, §5).
//
// An automatic reply goes only to the envelope sender and never to: the null sender <>,
// MAILER-DAEMON and other daemon local parts (listserv, majordomo, nobody), list addresses
// (*-request, owner-*), any of ipconfirm's own addresses at our domains; and never for a message
// that is itself automatic (Auto-Submitted other than "no"), bulk or list mail (Precedence
// bulk/list/junk, any List-* header), a delivery or disposition report, or one with more Received
// headers than the loop limit. Suppressed replies are logged with the reason by the caller; the
// SMTP transcript still tells the sender its IP. Pure: no I/O.
#pragma once

#include <string>
#include <vector>

#include "responder/observation.hpp"

namespace ipconfirm::responder {

struct ReplyDecision {
  bool send = false;
  std::string reason;  // why not, a short token such as "null-sender" or "auto-submitted"
};

struct ReplyPolicy {
  std::vector<std::string> domains;  // ours, lower case
  std::size_t max_received = 30;     // a loop limit (RFC 5321 §6.3 suggests 100 hops)
};

ReplyDecision decide_reply(const Observation& obs, const ReplyPolicy& policy);

}  // namespace ipconfirm::responder

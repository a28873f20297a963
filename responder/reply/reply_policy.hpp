// Whether a report may be mailed back at all (RFC 3834 §2, §3.1, §5).
//
// An automatic reply goes only to the envelope sender and never to: the null sender <>,
// MAILER-DAEMON and other daemon local parts (listserv, majordomo, nobody), list and bounce
// addresses (*-request, owner-*, bounce*, *-bounces), any address at one of our domains or our
// host name (ipconfirm@, ipconfirm-response@, postmaster@ ours: a reply there would loop), an
// address without a domain or with an address literal as its domain; and never for a message
// that is itself automatic (Auto-Submitted other than "no"), bulk or list mail (Precedence
// bulk/list/junk, any List-* header), a delivery or disposition report, or one with more
// Received headers than the loop limit. The reply itself goes to exactly one recipient, once
// per message however many RCPTs it had (the caller sends one reply per message).
//
// This file decides only on what the message says about itself; the backscatter rate limits
// are responder/rate_limit.hpp's and the transcript-only mode is the caller's. Suppressed
// replies are logged with the reason by the caller; the SMTP transcript still tells the sender
// its IP. Pure: no I/O.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "responder/analysis/observation.hpp"

namespace ipconfirm::responder {

struct ReplyDecision {
  bool send = false;
  // Why not: a short token, safe for logs and the SMTP reply line: "null-sender",
  // "sender-without-domain", "sender-address-literal", "daemon-sender", "list-sender",
  // "own-address", "auto-submitted", "precedence-bulk", "precedence-list", "precedence-junk",
  // "list-headers", "delivery-report", "too-many-received".
  std::string reason;
};

struct ReplyPolicy {
  std::vector<std::string> domains;  // ours, lower case
  std::size_t max_received = 30;     // the loop limit: more Received fields, no reply
  std::string hostname;              // ours; its addresses are ours too ("" = none)
};

// The decision for one message. Case-insensitive on addresses and header values.
ReplyDecision decide_reply(const Observation& obs, const ReplyPolicy& policy);

}  // namespace ipconfirm::responder

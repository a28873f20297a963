// What the Received headers and the HELO say about the sender's mail path, as a careful
// postmaster would read them: which address the mail left from, which internal servers it
// passed, and whether the sending MTA sits behind NAT or a proxy.
//
// Pure: takes parsed hops (responder/received_parser.hpp), the connecting address and the HELO
// argument, returns values. Everything read from headers is a claim by the sender; it is used
// for advice in the report, never for a decision. Does not look anything up in DNS and does not
// judge whether the headers are forged.
//
// The rules, with `hops` in header order (hops[0] is the top, written by the sender's last MTA
// when it received the message; our own Received header is not among them):
//  1. The gateway is the connecting address: the last hop before us, the one the world sees.
//  2. The top hop is the first hop that names a "from" or "by"; companion lines that name no
//     hop above it (qmail's "(qmail N invoked ...)", qmail-scanner's two-"by" line) are skipped.
//     If an unreadable hop comes first, the top is unknown (a later hop describes an earlier
//     hand-over, not the last one). The top hop's from_ip is the host that handed the mail to
//     the sender's last MTA. When it is the connecting address itself, the header was written
//     by a relay after that host; otherwise, when it is non-public, an internal server hands
//     mail to the gateway; the note says which.
//  3. internal_hops lists, top first and without repeats, every claimed from_ip of a readable
//     hop that is private, CGNAT, link-local or otherwise reserved. Loopback and unspecified
//     addresses (local hand-overs such as a content filter on 127.0.0.1) are left out. At most
//     32 are kept, and at most 100 hops are looked at.
//  4. NAT / proxy evidence: the sender's last MTA believes it has an address that differs from
//     the connecting one. Evidence, in order of strength: an address-literal HELO
//     ("[192.168.1.10]") given to us, then an address in the top hop's "by" clause. Only an
//     address of the same family as the connecting one counts (a dual-stack host legitimately
//     receives over IPv6 and sends over IPv4), and the "by" address does not count when the
//     top hop's from_ip is the connecting address (rule 2: that header is a relay's). The first
//     such address is sender_believed_ip and sets behind_nat. A non-public believed address means
//     NAT; a public one means a proxy, an outbound relay or a host that sends from another address
//     than it receives on.
//  5. Notes are plain sentences for the human report; every claimed name in them is sanitised.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ip_address.hpp"
#include "responder/analysis/received_parser.hpp"

namespace ipconfirm::responder {

struct PathAnalysis {
  std::optional<IpAddress> gateway_ip;          // the connecting IP (the last hop before us)
  std::vector<IpAddress> internal_hops;         // claimed non-public from_ip of the sender's hops
  std::optional<IpAddress> sender_believed_ip;  // an address the sender's own last MTA thinks
                                                // it has or used, when it differs from the
                                                // connecting IP (NAT/proxy evidence)
  bool behind_nat = false;
  std::vector<std::string> notes;  // plain-English sentences for the report
};

// hops: in header order (top = most recent = added by the sender's last MTA before us).
// `helo` is the HELO/EHLO argument as the client sent it. Never throws.
PathAnalysis analyse_path(const std::vector<ReceivedHop>& hops, const IpAddress& connecting_ip,
                          std::string_view helo);

// {"gateway_ip","internal_hops":[..],"sender_believed_ip","behind_nat"}; addresses as strings,
// absent ones as null.
nlohmann::json to_json(const PathAnalysis& analysis);

}  // namespace ipconfirm::responder

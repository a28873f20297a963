// Parsing one Received header field body into a hop: who handed the message over (the HELO name,
// the name found by reverse DNS, the address), who took it (`by`), with which protocol, queue id,
// envelope recipient, TLS and date.
//
// Follows the trace grammar of RFC 5321 §4.4 ("time-stamp-line") and RFC 5322 §3.6.7, and the
// forms that real MTAs write, which often stray from it:
//   Postfix   from HELO (RDNS [IP]) (using TLSv1.3 with cipher C ...) by BY (Postfix) with ESMTPS
//             id ID for <RCPT>; DATE            RDNS is "unknown" when reverse DNS failed
//   Sendmail  from HELO (RDNS [IP] (may be forged)) by BY (8.x/8.x) with ESMTP id ID
//             (version=TLSv1.3 cipher=C bits=256 verify=NOT) for <RCPT>; DATE
//             ("from HELO ([IP])" when there is no reverse name, "user@RDNS" with ident)
//   Exim      from RDNS ([IP]:PORT helo=HELO) by BY with esmtps (TLS1.3) tls C (Exim 4.x)
//             (envelope-from <S>) id ID for RCPT; DATE   ("from [IP] (helo=HELO)" without RDNS;
//             helo= is left out when it equals RDNS; older Exims write "(TLSv1.2:C:256)")
//   qmail     from RDNS (HELO HELO) (IP) by BY with SMTP; DATE   ("unknown" without RDNS, HELO
//             left out when it equals RDNS), and "(qmail 1234 invoked by uid 0); DATE"
//   IronPort  from RDNS (HELO HELO) ([IP]) by BY with ESMTP/TLS/C; DATE   (qmail's layout)
//   ZMailer   from RDNS ([IP]:PORT "EHLO HELO" rhost-flags-OK-OK-OK-OK) by BY with ESMTP id ID
//             (ORCPT <rfc822;RCPT>); DATE
//   Exchange  from HELO (IP) by BY (IP) with Microsoft SMTP Server (version=TLS1_2, cipher=C)
//             id 15.20.x.y [via Frontend Transport]; DATE   (addresses may carry a zone id)
//   Gmail     from HELO (RDNS. [IP]) by mx.google.com with ESMTPS id ID for <RCPT>
//             (version=TLS1_3 cipher=C bits=256/256); DATE
//   Courier   from HELO (RDNS [::ffff:IP]) (AUTH: LOGIN user) by BY with esmtpa; DATE id ID
//             (RDNS "softdnserr" when reverse DNS failed)
//   Exim 2/3  from RDNS (HELO) [IP] by BY with esmtp (Exim 3.x)   (the HELO only when it differs)
//   GMX       from RDNS (EHLO x) [IP] by mail.gmx.net
//   webmail   from IP (SquirrelMail authenticated user x) by BY with HTTP, "from [IP] by BY"
//             (MessageLabs, Yahoo): no HELO, the address is the client's
//   fetchmail from SERVER [IP] by HOST with POP3 (fetchmail-6.x) for <x> (single-drop)
//   notes     "(qmail N invoked by uid N)", "(nullmailer pid N invoked ...)", qmail-scanner's
//             "from user by host by uid N with qmail-scanner": valid lines that name no hop
// So the word after "from" is the HELO name, except when an explicit HELO is written inside the
// comment (helo=, "HELO x", "EHLO x", even empty) or the header is Exim's or qmail's: then it is
// the reverse-DNS name. The word may be missing ("from (127.0.0.1) by"), and so may the host
// after "by" ("by (Postfix)"). A second "from" or "by" clause annotates the first (Exim's client
// certificate, "by authid <user>") when the line records an address, and otherwise makes the line
// a note that names no hop.
//
// Every value is a claim made by whoever wrote the header; use them for reporting only. All
// output strings are sanitised (no control characters, valid UTF-8, at most 255 bytes).
//
// Deliberately bounded: field bodies above 16 KiB, more than 512 tokens, parentheses nested
// deeper than 32 or unbalanced give parsed=false at once, in time linear in the input and with
// no recursion. Dates are kept as written (not converted; an id Courier writes after the date
// goes to id); "via" clauses are not kept.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/ip_address.hpp"

namespace ipconfirm::responder {

struct ReceivedHop {
  std::string from_helo;             // the name/literal the sender gave in HELO/EHLO ("from X")
  std::string from_name;             // the name the receiving MTA found by rDNS, if written
  std::optional<IpAddress> from_ip;  // the address the receiving MTA saw
  std::string by, with, id, for_addr, date;  // "for" clause in for_addr
  std::optional<IpAddress> by_ip;  // an address the receiving MTA wrote for itself in "by"
  std::string tls;      // e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384", or "" when none is stated
  bool parsed = false;  // false: could not make sense of it (fields stay empty)
};

// Parses one field body as it appears (folding CRLF/LF + WSP allowed). Never throws; returns a
// hop with parsed=false and every field empty when the text is not a Received trace line or
// exceeds the bounds above.
ReceivedHop parse_received(std::string_view value);

// {"from_name","from_helo","from_ip" (string or null),"from_ip_scope" (IpAddress::scope() or
//  null),"by","by_ip" (string or null),"with","id","for","tls" (string or null),"date","parsed"}
nlohmann::json to_json(const ReceivedHop& hop);

// Makes header text safe to report: control characters (C0, DEL, C1) become spaces, runs of
// white space collapse to one, the ends are trimmed, invalid UTF-8 bytes become '?', and the
// result is cut to at most `max_bytes` bytes on a character boundary.
std::string sanitise_header_text(std::string_view text, std::size_t max_bytes = 255);

}  // namespace ipconfirm::responder

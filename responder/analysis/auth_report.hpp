// The authentication part of the report: the JSON `auth` object (SPF, DKIM, DMARC and ARC, each
// in its check's own to_json form), the RFC 8601 Authentication-Results value a receiving MTA
// would add, the hints, and the few words the SMTP 250 line says about it.
//
// The Authentication-Results value (RFC 8601 §2.2) starts with our host name as authserv-id and
// has one resinfo per method, in this order:
//   spf=<result> smtp.mailfrom=<MAIL FROM domain>   (a null MAIL FROM: smtp.helo=<HELO name>)
//   dkim=<result> [reason="..."] header.d=<d> header.s=<s>   one per checked signature, or
//                                                          dkim=none
//   dmarc=<result> header.from=<From domain>
//   arc=<none|pass|fail>   (an ARC temperror has no RFC 8617 result and is left out)
//   iprev=<pass|fail|temperror|permerror> policy.iprev=<ip>   (no PTR at all is iprev fail)
// A property value that is not an RFC 2045 token is written as a quoted-string, and bytes
// outside printable ASCII as '?', so that the value is always one valid header field body.
//
// A local test (report.hpp) changes the SPF advice only: SPF judged the loopback or private
// address of the test, which is never the address the sender's mail leaves from, so the
// hints that tell what to add for that address give way to spf-local-test, which says what the
// result means. DKIM, DMARC and ARC do not depend on the connecting address and keep theirs.
//
// Pure: values in, JSON and strings out.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "responder/analysis/auth_verdicts.hpp"
#include "responder/analysis/hint.hpp"

namespace ipconfirm::responder {

struct AuthResultsContext {
  std::string authserv_id;  // our host name
  std::string ip;           // the connecting address
  std::string iprev;        // rdns.status: pass, fail, none, temperror, permerror ("" to omit)
  std::string mail_from;    // "" for the null path <>: SPF then names smtp.helo
};

// The Authentication-Results field body (without "Authentication-Results: ").
std::string authentication_results(const AuthVerdicts& verdicts, const AuthResultsContext& context);

// `auth`: {spf, spf_helo, dkim: [...], dmarc, arc, authentication_results}. A verdict that was
// not evaluated is null (dkim: an empty list).
nlohmann::ordered_json auth_to_json(const AuthVerdicts& verdicts,
                                    const std::string& authentication_results);

// Every check's hints (spf_hints, dkim_hints, dmarc_hints, arc_hints), adjusted for a local
// test as described above (hint code spf-local-test).
std::vector<Hint> auth_hints(const AuthVerdicts& verdicts, bool local_test, const std::string& ip);

// "spf=pass dkim=pass dmarc=pass" (the verdicts that were evaluated), for the SMTP 250 line:
// fixed words only.
std::string auth_summary(const AuthVerdicts& verdicts);

}  // namespace ipconfirm::responder

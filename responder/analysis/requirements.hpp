// Would Gmail, Yahoo and Microsoft (Outlook.com) accept this message? The providers' published
// sender rules (requirements_table.hpp, data in requirements.toml) checked one by one on what
// one message shows, and a verdict per provider and sender class.
//
// How the wiring calls it (values that exist once the authentication checks are complete):
//
//   const RequirementsTableLoad& rules = builtin_requirements_table();  // at start; refuse to
//   if (!rules.table) fail(rules.error);                                // start on an error
//   ...
//   RequirementsInput in;
//   in.spf = &spf_verdict;          // MAIL FROM identity (check_spf, SpfIdentity::mail_from)
//   in.dkim = &dkim_results;        // DkimCheck::verify
//   in.dmarc = &dmarc_verdict;      // check_dmarc
//   in.arc = &arc_result;           // DkimCheck::verify_arc
//   in.iprev = parse_iprev(report.json["rdns"]["status"].get<std::string>());  // RFC 8601 iprev
//   in.ptr_names = ...rdns.ptr...;  in.ip = obs.ip.to_string();
//   in.tls_version = obs.tls_version;
//   in.dnsbl_zones = config.dns.dnsbl;   // the configured lists count as "the major lists"
//   in.dnsbl = {DnsblResult per zone, as report.cpp builds them};
//   in.raw_header = <the header block exactly as received>;  in.header_cut = <it was cut>;
//   in.smtputf8 = <the session's envelope.smtputf8: MAIL FROM carried SMTPUTF8>;
//   RequirementsResult r = evaluate_requirements(*rules.table, in);
//   nlohmann::ordered_json j = to_json(r);      // requirements, verdicts, ... (see below)
//   report.json.get_ref<nlohmann::ordered_json::object_t&>().reserve(report.json.size() +
//   j.size()); for (auto& [key, value] : j.items()) report.json[key] = std::move(value);
//   (ordered_json deep-copies its members each time its member vector grows: reserve first.)
//   hints += requirements_hints(r);
//   rows = requirements_summary(r);   // the short table at the top of the text and HTML reply
//
// Each rule gets a status:
//   pass            the message shows the rule is met
//   fail            it shows the rule is not met (evidence says why)
//   unknown         it cannot tell: a DNS lookup failed or did not finish (temperror is never
//                   turned into a pass or a fail), a check was not run, or one message cannot
//                   show it at all (the spam-complaint rate, a link in the body)
//   not-applicable  the rule is about something the message is not: one-click unsubscribe for a
//                   message that does not look like bulk mail, ARC without an ARC chain, a
//                   DMARC policy rule for a domain without DMARC
// and each provider a verdict per sender class:
//   accept   no applicable rule fails (unknown and not-applicable rules do not count)
//   at-risk  a failing rule has severity at-risk (spam folder, rate limits, no support)
//   reject   a failing rule has severity reject (the provider documents refusing such mail)
// The "all" verdict uses the rules for every sender; the "bulk" verdict those plus the bulk
// rules, where a bulk rule with the same check as an "all" rule replaces it (Gmail's TLS rule
// is at-risk for every sender and reject for bulk senders). ipconfirm cannot know a sender's
// volume, so both verdicts are always given; a message with List-Unsubscribe or Precedence:
// bulk/list is reported as bulk-looking.
//
// What the checks look at (RequirementCheck, requirements_table.hpp):
//   spf-or-dkim-pass    SPF (MAIL FROM) pass, or any DKIM signature pass
//   spf-pass            SPF (MAIL FROM) pass
//   dkim-pass           any DKIM signature pass (RFC 8301 weak keys and rsa-sha1 are not)
//   dmarc-record        a DMARC policy record applies to the From domain (p=none is enough)
//   dmarc-aligned       From aligned with a passing SPF or DKIM domain (DMARC pass); without a
//                       DMARC record, relaxed alignment against the From domain's
//                       Organizational Domain as the DMARC walk found it
//   dmarc-policy-reject, dmarc-policy-quarantine
//                       DMARC fails and the disposition (p, sp or np, t=y lowering it) is
//                       reject / quarantine
//   not-impersonating-gmail  a gmail.com/googlemail.com From must pass DMARC
//   fcrdns              iprev pass (a PTR name resolves back to the IP)
//   reverse-dns         a PTR record with a valid host name (iprev pass or fail)
//   tls                 the message came over TLS
//   rfc5322-format      no error in message_format.hpp's findings
//   message-id          exactly one Message-ID, a valid msg-id
//   single-from-address exactly one From field with exactly one address
//   dnsbl-not-listed    the IP is listed on none of the configured zones
//   one-click-unsubscribe  RFC 8058: List-Unsubscribe with an https URI, List-Unsubscribe-Post:
//                       List-Unsubscribe=One-Click, both covered by a passing DKIM signature
//                       (RFC 8058 §4 requires it); not-applicable unless bulk-looking
//   list-unsubscribe    Yahoo's: one-click as above, or a mailto: URI; not-applicable unless
//                       bulk-looking
//   unsubscribe-link    Microsoft's visible link in the body: unknown (the body is not read)
//                       unless not bulk-looking (not-applicable)
//   arc-valid           ARC pass; not-applicable without an ARC chain
//   complaint-rate      always unknown: one message cannot show a complaint rate
//
// Pure: values in, values out, no DNS (the verdicts it reads did their lookups). Bounded by the
// table and the header bounds of message_format.hpp. Never throws.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "responder/analysis/arc.hpp"
#include "responder/analysis/dkim.hpp"
#include "responder/analysis/dmarc.hpp"
#include "responder/analysis/dnsbl.hpp"
#include "responder/analysis/hint.hpp"
#include "responder/analysis/list_unsubscribe.hpp"
#include "responder/analysis/message_format.hpp"
#include "responder/analysis/requirements_table.hpp"
#include "responder/analysis/spf.hpp"

namespace ipconfirm::responder {

// RFC 8601 iprev results, as the report's rdns.status gives them.
enum class IprevResult { pass, fail, none, temperror, permerror };
// "pass", "fail", "none", "temperror", "permerror" -> IprevResult; nullopt for anything else.
std::optional<IprevResult> parse_iprev(std::string_view status);

struct RequirementsInput {
  // Authentication verdicts; nullptr (or an incomplete verdict) means "not checked": the rules
  // that need it are unknown. They must outlive the call.
  const SpfVerdict* spf = nullptr;  // the MAIL FROM identity
  const DkimResults* dkim = nullptr;
  const DmarcVerdict* dmarc = nullptr;
  const ArcResult* arc = nullptr;

  // The connection.
  std::optional<IprevResult> iprev;        // rdns.status; nullopt: not known
  std::vector<std::string> ptr_names;      // rdns.ptr, for the evidence
  std::string ip;                          // connection.ip, for the evidence
  std::optional<std::string> tls_version;  // "TLSv1.3"; nullopt: the message came in plaintext
  // The peer is a loopback or private address (report.hpp's local test): what the internet
  // sees of the sender's connection (reverse DNS, TLS, blocklists) is not shown by this one,
  // so those rules are unknown ("local test"), never a pass or a fail.
  bool local_test = false;

  // Blocklists: the configured [dns] dnsbl zones are the lists that count, and each one's
  // result (a zone without a result is unknown).
  std::vector<std::string> dnsbl_zones;
  std::vector<DnsblResult> dnsbl;

  // The message: its header block exactly as received (CRLF line ends; it may run on into the
  // body, reading stops at the empty line), and whether MAIL FROM carried SMTPUTF8.
  std::string_view raw_header;
  bool header_cut = false;  // the header went on beyond raw_header (HeaderSplitter::header_cut)
  bool smtputf8 = false;
};

enum class RuleStatus { pass, fail, unknown, not_applicable };
std::string_view to_string(RuleStatus status);  // "pass", "fail", "unknown", "not-applicable"

enum class Acceptance { accept, at_risk, reject };
std::string_view to_string(Acceptance verdict);  // "accept", "at-risk", "reject"

// One check's outcome on this message (shared by every rule that uses the check).
struct RequirementOutcome {
  RuleStatus status = RuleStatus::unknown;
  std::string evidence;   // what the message showed, in plain English
  std::string brief;      // for fail and unknown: a few words for the short table
                          // ("missing DKIM", "SPF: DNS temperror")
  std::string fix;        // for fail: what to change, in plain English
  bool inherent = false;  // unknown because one message can never show it (or this server
                          // queries no blocklists): not listed as "not known" in the summary
};

struct RequirementResult {
  const RequirementRule* rule = nullptr;  // into the table given to evaluate_requirements
  const RequirementSource* source = nullptr;
  RequirementOutcome outcome;
};

struct ClassVerdict {
  Acceptance verdict = Acceptance::accept;
  std::vector<std::size_t> failing;  // indexes into RequirementsResult::rules, table order
  std::vector<std::size_t> unknown;  // applicable rules that are unknown (not inherent ones)
};

struct ProviderVerdict {
  MailboxProvider provider = MailboxProvider::gmail;
  ClassVerdict all, bulk;
};

struct RequirementsResult {
  std::vector<RequirementResult> rules;  // every rule of the table, in its order
  std::array<ProviderVerdict, kMailboxProviders.size()> verdicts;  // in kMailboxProviders order
  bool header_checked = false;  // a header was given (else `format` is about nothing)
  MessageFormat format;
  UnsubscribeFields unsubscribe;
  bool one_click_dkim_covered = false;  // a passing DKIM signature covers both unsubscribe fields
  std::string one_click_dkim_domain;    // its d=
};

// Evaluates every rule of `table` on `input`. The result points into `table`, which must
// outlive it (the built-in table lives as long as the program).
RequirementsResult evaluate_requirements(const RequirementsTable& table,
                                         const RequirementsInput& input);

// The report's JSON, top-level keys to merge into the report:
//   requirements: [{provider, rule, applies_to, status, evidence, source,          (contract)
//                   name, severity}]
//   requirements_sources: [{url, title, read}]   (each source once: the page and the date read)
//   verdicts: {gmail: {all, bulk}, yahoo: {all, bulk}, microsoft: {all, bulk}}     (contract)
//   verdicts_failing: {gmail: {all: [{rule, applies_to, severity, name}], bulk: [...]}, ...}
//   bulk_looking: bool, bulk_looking_reason: "List-Unsubscribe" | "Precedence: bulk" | ...
//   format: message_format.hpp's to_json (null when no header was given)
//   unsubscribe: {list_unsubscribe: [uris], https_uri, mailto_uri, list_unsubscribe_post,
//                 one_click_post, dkim_covered, dkim_domain}
//   requirements_summary: [{provider, name, all, bulk, text}]   (requirements_summary below)
nlohmann::ordered_json to_json(const RequirementsResult& result);

// Hints (codes are a contract, see hint.hpp):
//   provider-reject           a provider would refuse the message (per provider: the failing
//                             reject rules, what its page says, and what to change); "error"
//                             when it fails for every sender or the message looks like bulk
//                             mail, else "warning"
//   provider-at-risk          a failing at-risk rule (per provider); "warning"
//   no-one-click-unsubscribe  bulk-looking mail without working RFC 8058 one-click; "warning"
//   format-error              errors in the header's form, with field and line; "error"
std::vector<Hint> requirements_hints(const RequirementsResult& result);

// One row of the short table at the top of the reply, e.g.
//   {"gmail", "Gmail", accept, reject,
//    "would accept as a small sender; bulk: would reject (missing DKIM)"}
struct RequirementsSummaryRow {
  std::string provider;  // "gmail"
  std::string name;      // "Gmail"
  Acceptance all = Acceptance::accept;
  Acceptance bulk = Acceptance::accept;
  std::string text;  // plain ASCII, no markup: safe for the text part; HTML-escape like any value
};
std::vector<RequirementsSummaryRow> requirements_summary(const RequirementsResult& result);

}  // namespace ipconfirm::responder

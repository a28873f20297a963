// DMARC (RFC 9989): does the message pass for the domain in its From: header, which policy
// record applies, and what would a receiver do with it? Policy discovery and the
// Organizational Domain by the DNS Tree Walk of §4.10 (no public-suffix list), identifier
// alignment (§4.4, §4.10.2), the result (§5.3.5), the policy that applies (p, sp, np; §4.10.1)
// and the disposition, with t=y lowering it one step (§4.7). JSON (`auth.dmarc`) and hints.
//
// Pure, like spf.hpp: it runs against a DnsSource; a run that meets a question with no answer
// yet returns complete = false and every question it can know at that point in `needs` (all
// the names of a tree walk at once: they do not depend on each other's answers), and the
// caller asks them, puts the answers and runs it again. A temperror DnsResult is an answer.
//
// Inputs are plain values: the From: field values, the SPF result for the MAIL FROM identity
// and its domain, and each DKIM signature's result and d= domain. Nothing here depends on the
// SPF or DKIM code; from their verdicts, a caller fills DmarcInput as
//   in.from_fields = every From: field value of the message (unfolded or not);
//   in.spf_pass = spf.result == SpfResult::pass;  in.spf_domain = spf.domain;  (MAIL FROM
//   identity: for a null MAIL FROM that is the HELO name, as RFC 9989 §3.2.4 says)
//   in.dkim = {pass, d=} of every DKIM-Signature.
// The first round of questions (the Author Domain's walk and its existence) does not depend on
// the SPF and DKIM inputs: a caller may run check_dmarc() with only from_fields filled as soon
// as the header is read, to start those lookups while SPF and DKIM are still running.
//
// Decisions where RFC 9989 leaves room:
//   - Results: "none" when no policy record applies (none found; or a record whose p=, sp= or
//     np= is invalid and that has no valid rua=, §4.10.1: "no DMARC processing").
//     "permerror" when the message has no single Author Domain (§5.3.1: no From: field, more
//     than one, a From: that does not parse, addresses in more than one domain, or a domain
//     that is not a host name): DMARC is undefined for it, and receivers usually refuse such
//     mail. "temperror" when a DNS lookup the result depends on failed (§5.3.6).
//   - A p= that is absent is p=none (§4.7); one present with a bad value follows §4.10.1.
//   - Whether the Author Domain exists (for np=) is asked with an A query: NXDOMAIN means it
//     does not (RFC 8020); a failed lookup counts as existing (sp= or p=), with a problem noted.
//   - Relaxed alignment compares Organizational Domains found by a tree walk from each domain;
//     identical names align without one, names in different top-level domains never do.
//   - At most 10 DKIM domains are considered (a message with more is not normal mail).
//   - A U-label From domain is converted to A-labels first (§5.3.1).
// Not done: reports (rua/ruf), ARC, the local policy overrides of §5.4.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "responder/analysis/dmarc_record.hpp"
#include "responder/analysis/hint.hpp"
#include "responder/dns/dns_answers.hpp"

namespace ipconfirm::responder {

enum class DmarcResult { none, pass, fail, temperror, permerror };

// "none", "pass", "fail", "temperror", "permerror" (RFC 8601 names).
std::string_view to_string(DmarcResult result);

struct DmarcDkimInput {
  bool pass = false;   // the signature verified
  std::string domain;  // its d= domain
};

struct DmarcInput {
  std::vector<std::string> from_fields;  // the value of each From: field (RFC 5322: one)
  bool spf_pass = false;                 // SPF result of the MAIL FROM identity is pass
  std::string spf_domain;                // the domain SPF checked for MAIL FROM
  std::vector<DmarcDkimInput> dkim;      // every DKIM-Signature, verified or not
};

// One name the policy walk looked at, in order, and what it found.
struct DmarcWalkStep {
  std::string name;     // "_dmarc.example.org"
  std::string outcome;  // "record", "no record", "2 records (ignored)", "timeout", ...
};

struct DmarcVerdict {
  bool complete = false;  // false: ask `needs`, put the answers, run again
  DnsNeeds needs;

  DmarcResult result = DmarcResult::none;
  std::string from_domain;            // the Author Domain (A-labels, lower case); "" if none
  std::string policy_domain;          // where the applied record was found; "" if none
  std::string org_domain;             // Organizational Domain of from_domain; "" if it is unknown
  std::string record;                 // the applied record's text; "" if none
  std::optional<DmarcPolicy> policy;  // p, sp or np as it applies to this message
  std::string policy_tag;             // which: "p", "sp", "np" ("" without a record)
  bool testing = false;               // t=y: the policy is a test
  DmarcPolicy disposition = DmarcPolicy::none;  // what a receiver would do: fail only, t=y
                                                // lowering it one step
  bool spf_aligned = false;
  bool dkim_aligned = false;
  std::string aligned_dkim_domain;  // the d= that aligned, if any
  bool adkim_strict = false, aspf_strict = false;
  std::vector<DmarcWalkStep> walk;            // the policy walk from from_domain
  std::optional<bool> from_exists;            // asked when the record is a parent's (np=)
  std::string problem;                        // why none/temperror/permerror, or a DNS doubt
  std::vector<std::string> record_problems;   // ignored or defaulted parts of the record
  std::vector<std::string> removed_tags;      // pct, ri, rf in the applied record
  std::vector<std::string> multiple_records;  // names with 2+ DMARC records (all ignored)
  // The inputs, kept for the hints: SPF domain when SPF passed, passing DKIM domains.
  std::string spf_domain;
  bool spf_pass = false;
  std::vector<std::string> dkim_pass_domains;
  std::size_t from_addresses = 0;  // mailboxes in From:
};

// Evaluates DMARC. Never throws; see the decisions above for how bad input comes out.
DmarcVerdict check_dmarc(const DmarcInput& input, const DnsSource& dns);

// The JSON of auth.dmarc:
//   {result, from_domain, policy_domain, org_domain, policy, spf_aligned, dkim_aligned, record,
//    policy_tag, testing, disposition, alignment: {spf: "relaxed"|"strict", dkim: ...},
//    aligned_dkim_domain, walk: [{name, outcome}], from_exists, problem, record_problems}
// `policy` and `from_exists` are null when they do not apply; strings are "" when absent.
nlohmann::ordered_json to_json(const DmarcVerdict& verdict);

// Hints (codes are a contract, see hint.hpp): dmarc-none, dmarc-fail, dmarc-policy-none,
// dmarc-testing, dmarc-temperror, dmarc-permerror, dmarc-multiple-records,
// dmarc-invalid-record, dmarc-removed-tag. No hints for an incomplete verdict.
std::vector<Hint> dmarc_hints(const DmarcVerdict& verdict);

}  // namespace ipconfirm::responder

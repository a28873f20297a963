// SPF (RFC 7208): is the connecting address allowed to send for the MAIL FROM domain, and for
// the HELO name? The check_host() function of §4, for both identities of §2.3/§2.4, with every
// mechanism and modifier, the macros of §7 (exp= explanations included) and the limits of
// §4.6.4; its verdict as the report's JSON (`auth.spf`, `auth.spf_helo`) and as hints that say
// what to change in which record.
//
// Pure: it runs against a DnsSource (responder/dns/dns_answers.hpp) and never does I/O. A run
// that meets a question whose answer is not there returns complete = false and the questions
// in `needs`; the caller asks them (all at once), puts the answers into its DnsAnswers and
// runs the check again from the start. Each run gets further; a question is never asked twice.
// `needs` holds every question that can be known where the run stopped: all the address
// lookups of an mx or ptr at once, and the first lookup of each later DNS term of the records
// being evaluated (include/redirect targets, a, mx, exists) as long as they stay within the
// limit of 10 — so that a record with three includes takes one round, not three.
//
// Typical driver (the I/O side):
//   DnsAnswers answers;
//   for (;;) {
//     SpfVerdict v = check_spf(input, SpfIdentity::mail_from, answers);
//     if (v.complete) return v;
//     for (const auto& q : v.needs.questions()) answers.put(q.name, q.type, ask(q));  // parallel
//   }
// A question that cannot be answered in time must be put as a temperror DnsResult: that is
// an answer (SPF temperror where RFC 7208 says so), never "still missing".
//
// DNS outcomes, as RFC 7208 §5 and §4.4 say: NXDOMAIN and NODATA are "no records" (and count as
// void lookups, at most 2); any other failure of a record lookup or of a mechanism's lookup is
// temperror — except where the RFC says to skip (the address lookups of ptr and %{p}, the PTR
// lookup of ptr, and everything about exp=, which only loses the explanation).
//
// Decisions where RFC 7208 leaves room (as the OpenSPF suite prefers):
//   - A target name that a DNS query cannot carry (an empty label or one over 63 bytes, after
//     macro expansion) makes a, mx, ptr and exists not match, without a query, and is noted in
//     `problem`; for include and redirect it is a permerror (the target has no record).
//   - More than 10 MX hosts for one mx is a permerror (§4.6.4); of more than 10 PTR names,
//     only the first 10 are looked at.
//   - An MX answer is evaluated in order of preference.
//   - Names may hold any byte but '.', as the DNS allows ("foo:bar/baz.example.com"): the
//     resolver, not this check, decides how to send them.
//   - A MAIL FROM or HELO domain given as U-labels is converted to A-labels (RFC 8616).
//
// Not done here: the DNS itself, timing limits (§4.6.4's 20 seconds: the driver's deadline),
// and the Received-SPF / Authentication-Results header text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ip_address.hpp"
#include "responder/analysis/hint.hpp"
#include "responder/dns/dns_answers.hpp"

namespace ipconfirm::responder {

enum class SpfResult { none, neutral, pass, fail, softfail, temperror, permerror };

// "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror" (RFC 8601 names).
std::string_view to_string(SpfResult result);

// The two identities of RFC 7208 §2.3 and §2.4.
enum class SpfIdentity { mail_from, helo };

struct SpfInput {
  IpAddress ip;           // the connecting address (IPv4-mapped IPv6 is already IPv4)
  std::string mail_from;  // MAIL FROM address without the angle brackets; "" for <>
  std::string helo;       // HELO/EHLO argument as the client sent it
  std::string receiver;   // our host name, for the %{r} macro of explanations
  std::int64_t now = 0;   // seconds since the epoch, for the %{t} macro of explanations
};

// One SPF record the evaluation read, in the order it read them.
struct SpfRecordStep {
  std::string domain;  // where the record was found
  std::string record;  // its text
  std::string via;     // "" for the identity's own record, else the term that led there
                       // ("include:_spf.example.net", "redirect=_spf.example.org")
  int depth = 0;       // 0 for the identity's own record, +1 per include or redirect
};

// DNS lookups spent by one DNS term of the identity's own record (for the hint that tells
// which include to flatten when the limit is passed).
struct SpfTermCost {
  std::string term;
  int lookups = 0;  // the term itself and everything its include/redirect evaluated
};

struct SpfVerdict {
  bool complete = false;  // false: ask `needs`, put the answers, run again
  DnsNeeds needs;

  SpfIdentity identity = SpfIdentity::mail_from;
  SpfResult result = SpfResult::none;
  std::string ip;      // the connecting address as text
  std::string domain;  // the domain checked: MAIL FROM domain, or the HELO name (lower case)
  std::string sender;  // <sender> of check_host(): "postmaster@<helo>" for <> and for HELO
  std::string record;  // the SPF record of `domain`; "" when there is none
  // The term of `record` that decided ("-all", "ip4:192.0.2.0/24", "include:_spf.example.net",
  // "redirect=_spf.example.org"); "" for the default result (no term matched) and for errors.
  std::string mechanism;
  // Where the decision was really made: the innermost record and term (for a pass through an
  // include, the include's record and its matching ip4:). Empty when `mechanism` is.
  std::string matched_domain;
  std::string matched_term;
  int dns_lookups = 0;      // DNS terms evaluated (include a mx ptr exists redirect); limit 10
  int void_lookups = 0;     // lookups of those terms that found nothing; limit 2
  std::string explanation;  // the exp= text, expanded (result fail only), or ""
  // For none, temperror, permerror: what went wrong, naming the term, the domain and the
  // lookup ("'include:x.example': x.example publishes no SPF record"). "" otherwise.
  std::string problem;
  // Findings that did not decide the result (a term whose name no DNS query can carry).
  std::vector<std::string> notes;
  std::vector<SpfRecordStep> chain;     // every record read, in order
  std::vector<SpfTermCost> term_costs;  // DNS terms of `record` evaluated, with their cost
  bool lookup_limit_exceeded = false;   // permerror because of the 10-lookup limit
  bool void_limit_exceeded = false;     // permerror because of the 2-void-lookup limit
  int spf_records = 0;                  // SPF records found at `domain` (2+: permerror)
  bool domain_invalid = false;          // none because `domain` cannot have a record
};

// Evaluates SPF for one identity. Never throws; bad records and bad input become none or
// permerror with a `problem`, DNS failures temperror. Deterministic: the same answers give the
// same verdict.
SpfVerdict check_spf(const SpfInput& input, SpfIdentity identity, const DnsSource& dns);

// The JSON of auth.spf / auth.spf_helo:
//   {result, domain, record, mechanism, dns_lookups, void_lookups, explanation,
//    identity ("mail_from" | "helo"), sender, problem, notes: [..], matched: {domain, term},
//    chain: [{domain, record, via}]}
// Strings are "" when absent; bytes outside printable ASCII in records read '?'.
nlohmann::ordered_json to_json(const SpfVerdict& verdict);

// What the sender should change, as hints. Codes (a contract, see hint.hpp):
//   MAIL FROM identity: spf-none, spf-fail, spf-softfail, spf-neutral, spf-permerror,
//   spf-temperror, spf-pass-all (a record that lets every address pass);
//   HELO identity: spf-helo-fail, spf-helo-softfail, spf-helo-permerror (a missing or neutral
//   HELO record is common and harmless: no hint).
// No hints for a pass (other than spf-pass-all) or an incomplete verdict.
std::vector<Hint> spf_hints(const SpfVerdict& verdict);

}  // namespace ipconfirm::responder

// The report: from an Observation (values only) to the verdicts, the hints and the JSON that
// is ipconfirm's contract with its users' scripts.
//
// Every statement says where it comes from: the connecting IP from the socket (or a trusted
// PROXY header); Received values are labelled as claims; a DNS lookup that failed or did not
// finish is reported as temperror and never turned into a verdict. RFC 8601 iprev gives the
// rdns.status values: pass (a PTR name resolves back to the IP), fail (PTR names exist but none
// resolves back), none (no PTR is published), temperror (a lookup failed temporarily) and
// permerror (the PTR data cannot be used: a malformed answer or only invalid names).
//
// A peer on a non-public address (loopback, private, ...) is a local test, unless it is in
// options.lab_networks (config [analysis] lab_networks): the report says so
// (non-public-ip) and what a test over the internet would check, and leaves out the advice that
// is about how the internet sees a sender (PTR, HELO, blocklists, NAT, TLS); the facts stay in
// the JSON. The Date is compared with our clock (message.clock_skew_seconds) and with the
// earliest Received timestamp (message.first_received_skew_seconds): a Date that agrees with
// the sender's first server but not with us is delivery delay (delivery-delay), not a clock
// that is wrong (clock-skew).
//
// Sender authentication (auth_report.hpp): `auth` holds the SPF, DKIM, DMARC and ARC verdicts
// the Observation carries, with their hints and the Authentication-Results value; a verdict that
// was not evaluated is null. `dns_log` lists every DNS query behind the report (the connection's
// lookups and the authentication checks'), `dns_log_omitted` how many did not fit.
//
// The providers' rules (requirements.hpp) run on the same Observation: `requirements`,
// `verdicts` (gmail, yahoo, microsoft: all and bulk), `requirements_summary` (the short table at
// the top of the reply) and the rest of requirements.hpp's to_json are merged into the top
// level, and its hints (provider-reject, provider-at-risk, no-one-click-unsubscribe,
// format-error) join the others. On a local test the reverse DNS, TLS and blocklist rules are
// unknown: the test's connection is not the one the internet sees.
//
// The JSON field names and hint codes are a contract: later work adds to them, never renames.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "responder/analysis/hint.hpp"
#include "responder/analysis/observation.hpp"

namespace ipconfirm::responder {

struct Report {
  nlohmann::ordered_json json;
  std::vector<Hint> hints;
  std::string summary;  // one short, safe line for the SMTP 250 ("PTR x.example, confirmed")
};

struct ReportOptions {
  std::string reporter;               // our hostname
  std::int64_t max_clock_skew = 600;  // seconds of Date skew before we say so
  std::vector<config::Network> lab_networks =
      {};  // non-public peers reported as if on the internet
};

Report build_report(const Observation& obs, const ReportOptions& options);

}  // namespace ipconfirm::responder

// ARC (RFC 8617): validating the Authenticated Received Chain a message arrived with.
//
// Validation follows §5.2: no ARC field at all is `none`; otherwise the sets must be complete
// (one ARC-Authentication-Results, ARC-Message-Signature and ARC-Seal per instance, instances
// 1..N with no gap or repeat, N <= 50), the newest seal must not report cv=fail, seal 1 must say
// cv=none and every later seal cv=pass, the newest ARC-Message-Signature must verify (like a DKIM
// signature, with relaxed/relaxed as its default c=, and never over ARC-Seal), and every seal,
// newest first, must verify over the sets up to its own (AAR, AMS, AS of each instance in
// increasing order, relaxed, its own b= deleted). Anything else is `fail`, with the reason and the
// instance. Older ARC-Message-Signatures are not checked (a later hop may have changed what they
// signed; that is what ARC is for). rsa-sha1 and RSA keys under 1024 bits fail (RFC 8301).
//
// The result set is RFC 8601's for arc (none, pass, fail) plus `temperror` when a key lookup
// failed temporarily: a DNS timeout is never turned into a verdict.
//
// Pure: keys come from a DnsSource, the body hash from the message's DkimBodyHashers (the
// newest AMS registers its hasher there, next to the DKIM signatures', see dkim.hpp).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "responder/analysis/dkim_canon.hpp"
#include "responder/analysis/dkim_signature.hpp"
#include "responder/analysis/dkim_verify.hpp"
#include "responder/analysis/hint.hpp"
#include "responder/dns/dns_answers.hpp"

namespace ipconfirm::responder {

inline constexpr int kArcMaxInstances = 50;

// One instance of the chain as found in the header.
struct ArcSet {
  int instance = 0;
  std::size_t results_field = 0;  // indexes into the header's fields
  std::size_t message_field = 0;
  std::size_t seal_field = 0;
  DkimSignature message;    // the ARC-Message-Signature, parsed
  DkimSignature seal;       // the ARC-Seal, parsed
  std::string authserv_id;  // from the ARC-Authentication-Results
};

// The chain's structure, read once from the header (before the body arrives).
struct ArcChain {
  bool present = false;         // any ARC field at all
  std::string structure_error;  // non-empty: the sets are malformed (the result is fail)
  int failed_instance = 0;      // the instance the structure error is about, if any
  int instances = 0;            // N, the highest instance found
  std::vector<ArcSet> sets;     // sets[k - 1] is instance k, when the structure is valid
  std::optional<DkimBodyHashKey> body_key;  // what the newest AMS needs hashed
};

// Reads the ARC fields among `fields` (views into the header, which must outlive the chain).
ArcChain read_arc_chain(const std::vector<RawField>& fields,
                        const std::vector<std::string>& lower_names);

struct ArcSetResult {
  int instance = 0;
  std::string domain;       // the seal's d=
  std::string selector;     // the seal's s=
  std::string authserv_id;  // who wrote the ARC-Authentication-Results
  std::string cv;           // the seal's cv=
  std::string seal;         // "pass", "fail", "not checked"
  std::string message;      // the AMS: "pass", "fail" (newest only), "not checked"
};

struct ArcResult {
  bool complete = true;  // false: key lookups are missing (see needs); run again with answers
  DnsNeeds needs;
  std::string result = "none";  // none, pass, fail, temperror
  int instances = 0;
  std::string reason;              // why not pass (empty on pass and none)
  int failed_instance = 0;         // 0 when not about one instance
  std::vector<ArcSetResult> sets;  // newest first
};

// The keys a validation of `chain` uses (the newest AMS and every seal), found in `dns`; what is
// not there yet is added to `needs` (pending). Signatures that are malformed or use a refused
// algorithm are not looked up.
struct ArcKeys {
  DkimKeyOutcome message;             // the newest ARC-Message-Signature's
  std::vector<DkimKeyOutcome> seals;  // by instance - 1
  bool pending = false;
};
ArcKeys find_arc_keys(const ArcChain& chain, const DnsSource& dns, DnsNeeds& needs);

// Validates `chain`. `body` must be finished (DkimBodyHashers::finish) for the AMS body hash.
ArcResult verify_arc(const ArcChain& chain, const std::vector<RawField>& fields,
                     const std::vector<std::string>& lower_names, const DkimBodyHashers& body,
                     const DnsSource& dns);

// `auth.arc`: {result, instances, reason, failed_instance, sets: [...]}.
nlohmann::ordered_json to_json(const ArcResult& result);

// `arc-fail` (a chain that does not validate; a warning: it matters only to receivers that use
// ARC to override DMARC for mail that went through a list or forwarder).
std::vector<Hint> arc_hints(const ArcResult& result);

}  // namespace ipconfirm::responder

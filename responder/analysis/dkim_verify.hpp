// The steps DKIM (RFC 6376 §6.1) and ARC (RFC 8617 §5.2) share for one signature: finding and
// checking its key in DNS, and building the header data its b= signs.
//
// Pure: the key comes from a DnsSource (see responder/dns/dns_answers.hpp). When the answer is
// not there yet, the key's name goes into DnsNeeds and the outcome says `pending`; a temperror
// answer (timeout, SERVFAIL) is an answer: temperror, never pending.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "responder/analysis/dkim_crypto.hpp"
#include "responder/analysis/dkim_signature.hpp"
#include "responder/dns/dns_answers.hpp"

namespace ipconfirm::responder {

// RFC 8601 §2.7.1 results.
//   none:      no signature
//   pass:      the signature verifies and is acceptable
//   fail:      the signature or the body hash does not verify
//   policy:    it verifies, but we do not accept it: rsa-sha1 or an RSA key under 1024 bits
//              (RFC 8301), expired (x=), dated in the future (t=), an unsigned From field, or
//              one more signature than we check
//   neutral:   (not produced by this code; kept for completeness of the RFC 8601 set)
//   temperror: the key could not be fetched now (DNS timeout, SERVFAIL)
//   permerror: the signature or its key record is broken or missing
enum class DkimResultCode { none, pass, fail, policy, neutral, temperror, permerror };
std::string_view to_string(DkimResultCode code);

// `text` made safe for a report, a log line and JSON: valid UTF-8 (invalid bytes become U+FFFD),
// control characters replaced by '?', at most `max` bytes. Signature values are hostile input.
std::string report_text(std::string_view text, std::size_t max = 255);

// At most this many TXT records at a key name are tried (RFC 6376 §3.6.2.2 lets a verifier
// cycle through them).
inline constexpr std::size_t kDkimMaxKeyRecords = 4;

struct DkimKeyOutcome {
  bool pending = false;                        // no answer yet; the name was added to `needs`
  DkimResultCode code = DkimResultCode::pass;  // pass: `keys` holds at least one usable key
  std::string error;                           // for temperror/permerror
  std::string key_name;                        // <selector>._domainkey.<domain>
  std::vector<DkimPublicKey> keys;             // usable keys, in record order
  std::vector<DkimKeyRecord> records;          // the record of each key (flags, hashes)
};

// Finds the key for `sig`: asks DNS (via `needs`) for <s>._domainkey.<d> TXT, parses each record,
// and keeps the keys that fit the signature (k= matches a=, h= allows a='s hash, p= not empty,
// t=s satisfied by i=, a key that loads). NXDOMAIN/NODATA: permerror "no key published at ...";
// temperror answer: temperror; no record fits: permerror with the first record's reason.
DkimKeyOutcome find_dkim_keys(const DkimSignature& sig, const DnsSource& dns, DnsNeeds& needs);

// The header data a DKIM-Signature or ARC-Message-Signature signs (RFC 6376 §5.4.2, §3.7): for
// each name in h=, the last field of that name not yet used (bottom up; a name with no field left
// adds nothing), canonicalized per c=, then the signature field itself with its b= value deleted
// and no final CRLF. `lower_names` holds each field's name lower-cased (same indexes as
// `fields`). `signature_field` is the index of the signature's own field.
std::string signed_header_data(const std::vector<RawField>& fields,
                               const std::vector<std::string>& lower_names,
                               const DkimSignature& sig, std::size_t signature_field);

}  // namespace ipconfirm::responder

// DKIM verification of a received message (RFC 6376 §6, RFC 8301, RFC 8463), with its ARC chain
// (RFC 8617, see arc.hpp), as a pure check that runs on the header first and the body in chunks.
//
// How the server drives it, per message:
//
//   DkimCheck check(raw_header);          // at the end of the header: parses every signature
//   check.body().feed(chunk); ...         // each body chunk as it arrives (CRLF, dot-unstuffed)
//   check.end_body();                     // at the final dot
//   DnsAnswers answers;                   // then, like SPF and DMARC (dns_answers.hpp):
//   for (;;) {
//     DkimResults r = check.verify(answers, now);
//     ArcResult a = check.verify_arc(answers);
//     if (r.complete && a.complete) break;
//     ask r.needs and a.needs (all at once), put the answers (or temperror) into `answers`
//   }
//   to_json(r) -> auth.dkim, to_json(a) -> auth.arc, dkim_hints(r, from_domain), arc_hints(a)
//
// `check_message(whole_message)` does the first three steps for a message in memory (`ipconfirm
// check` on a stored file); it turns bare LF line ends into CRLF first.
//
// What is checked, per DKIM-Signature (at most DkimOptions::max_signatures; the next
// kDkimMaxListedUnchecked are reported as `policy`, "not checked", the rest only counted): the tag
// syntax and required tags (permerror); a= is rsa-sha256, ed25519-sha256 or rsa-sha1; h= includes
// From (permerror otherwise, §5.4); i= lies within d=; the key record (v, k, h, s, t, p; revoked,
// wrong k=, h= without the hash, t=s: all permerror; no record: permerror; DNS timeout: temperror);
// the body hash (fail, with both hashes); the header signature (fail). A signature that verifies is
// still not a pass (`policy`) when it uses rsa-sha1 or an RSA key under 1024 bits (RFC 8301), when
// x= is past or t= is in the future by more than the clock skew, or when the message has more From
// fields than the signature covers (an unsigned From could be the one displayed, §8.15). l= (body
// length) is a pass, reported as a risk. t=y (testing) is reported, not acted on.
//
// Pure: no I/O. Thread-safe once constructed: verify() and verify_arc() are const.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "responder/analysis/arc.hpp"
#include "responder/analysis/dkim_canon.hpp"
#include "responder/analysis/dkim_signature.hpp"
#include "responder/analysis/dkim_verify.hpp"
#include "responder/analysis/hint.hpp"
#include "responder/dns/dns_answers.hpp"

namespace ipconfirm::responder {

// Signatures beyond DkimOptions::max_signatures are listed as not checked up to this many; the
// rest are only counted (DkimResults::not_listed), so that the report stays bounded.
inline constexpr std::size_t kDkimMaxListedUnchecked = 10;

struct DkimOptions {
  std::size_t max_signatures = 10;  // DKIM-Signature fields verified; later ones: not checked
  std::int64_t clock_skew = 600;    // seconds of tolerance for t= in the future and x= past
};

// The result for one DKIM-Signature (the fields of auth.dkim[]).
struct DkimSignatureResult {
  DkimResultCode result = DkimResultCode::permerror;
  std::string domain;                       // d=
  std::string selector;                     // s=
  std::string identity;                     // i= (or "@" + d=)
  std::string algorithm;                    // a= as written
  int key_bits = 0;                         // 0: no key was loaded
  std::string canonicalization;             // "relaxed/simple"
  std::vector<std::string> signed_headers;  // h=, lower-cased, in order
  std::string body_hash_expected;           // bh= (base64)
  std::string body_hash_computed;           // what we hashed (base64); "" if not computed
  std::string error;                        // why not pass, in plain English ("" on pass)
  std::string key_name;                     // <selector>._domainkey.<domain>
  bool checked = true;                      // false: beyond max_signatures
  bool testing = false;                     // the key record has t=y
  std::optional<std::uint64_t> length;      // l=
  std::uint64_t body_length = 0;            // canonical body bytes (to compare with l=)
  std::optional<std::int64_t> timestamp;    // t=
  std::optional<std::int64_t> expiration;   // x=
  bool expired = false;                     // x= is past
  bool body_hash_ok = false;
  bool header_signature_ok = false;  // the b= signature verified (even if the body did not)
};

struct DkimResults {
  bool complete = true;  // false: key lookups are missing (see needs); run again with answers
  DnsNeeds needs;
  std::vector<DkimSignatureResult> signatures;  // header order; empty: not signed (none)
  std::size_t not_listed = 0;     // signatures beyond those in `signatures` (not checked either)
  bool header_truncated = false;  // the header was longer than the bounds; later fields unread

  // pass if any signature passes; else the first signature's result; none when unsigned.
  DkimResultCode overall() const;
};

class DkimCheck {
 public:
  // Parses the raw header block (exact bytes, CRLF line ends, folding kept; the empty line that
  // ends it may be included or not) and every DKIM-Signature and ARC field in it, and prepares
  // one body hasher per distinct (c=, a=, l=). Keeps its own copy of the header.
  explicit DkimCheck(std::string_view raw_header, const DkimOptions& options = {});
  ~DkimCheck();
  DkimCheck(DkimCheck&&) noexcept;
  DkimCheck& operator=(DkimCheck&&) noexcept;

  // Where the body goes, in chunks of any size.
  DkimBodyHashers& body();
  // The body is complete. Must be called before verify() and verify_arc(). Idempotent.
  void end_body();

  // Verifies every signature against the keys in `dns`; `now` is seconds since the epoch.
  DkimResults verify(const DnsSource& dns, std::int64_t now) const;
  // Validates the ARC chain.
  ArcResult verify_arc(const DnsSource& dns) const;
  // The key questions verify() and verify_arc() would ask with `dns`, without hashing or
  // verifying anything (no RSA, no Ed25519): what the DNS driver asks while the message is still
  // arriving, so that the signatures are verified once, after the body, off the event loop.
  // Empty once every key verify() and verify_arc() need is answered in `dns`.
  DnsNeeds key_needs(const DnsSource& dns) const;

  std::size_t signature_count() const;  // DKIM-Signature fields found
  bool has_arc() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A whole message in memory: bare LF line ends become CRLF, the header is parsed and the body
// fed and ended. Then call verify()/verify_arc().
DkimCheck check_message(std::string_view message, const DkimOptions& options = {});

// One entry of auth.dkim.
nlohmann::ordered_json to_json(const DkimSignatureResult& result);
// auth.dkim: the list (empty when the message is not signed).
nlohmann::ordered_json to_json(const DkimResults& results);

// Hints for the report: dkim-none, dkim-fail, dkim-weak-key, dkim-sha1, dkim-no-key,
// dkim-permerror, dkim-temperror, dkim-body-length, dkim-testing, dkim-expired. `from_domain`
// (the From address's domain, if known) makes dkim-none name where to publish a key and says
// when no signature is aligned with it.
std::vector<Hint> dkim_hints(const DkimResults& results, std::string_view from_domain = {});

}  // namespace ipconfirm::responder

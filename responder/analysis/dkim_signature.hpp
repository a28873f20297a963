// Reading what DKIM (RFC 6376) and ARC (RFC 8617) put into a message and into DNS: the raw header
// fields in order, tag=value lists (RFC 6376 §3.2), DKIM-Signature, ARC-Message-Signature and
// ARC-Seal values (§3.5; RFC 8617 §4.1), and DKIM key records (§3.6.1, RFC 8463 §4).
//
// Pure and bounded: bytes in, values out; nothing here hashes, verifies or asks DNS (see
// dkim_canon.hpp, dkim_crypto.hpp and dkim.hpp). Every parser takes hostile input: counts and
// sizes are capped (kDkimMax*), and a value that breaks the grammar yields ok = false with a
// short `error` in plain English, never an exception. Tag names and values are case-sensitive
// (§3.2); folding white space inside values is allowed where the grammar allows it and dropped
// from base64 values (§3.5 b=, bh=; §3.6.1 p=).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ipconfirm::responder {

// Bounds on hostile input.
inline constexpr std::size_t kDkimMaxHeaderBytes = 256 * 1024;  // raw header read
inline constexpr std::size_t kDkimMaxHeaderFields = 2000;       // fields read
inline constexpr std::size_t kDkimMaxTags = 64;                 // tags in one tag-list
inline constexpr std::size_t kDkimMaxSignedHeaders = 256;       // names in h=
inline constexpr std::size_t kDkimMaxSignatureBytes = 2048;     // decoded b= (8192-bit RSA: 1024)
inline constexpr std::size_t kDkimMaxBodyHashBytes = 64;        // decoded bh= (SHA-256: 32)
inline constexpr std::size_t kDkimMaxKeyBytes = 4096;           // decoded p=

// One header field exactly as it arrived.
struct RawField {
  std::string_view name;   // as written, white space before the colon dropped
  std::string_view value;  // everything after the colon, folding kept, without the final line end
  std::string_view raw;    // the whole field, "Name: value\r\n", line end included when present
};

struct RawHeader {
  std::vector<RawField> fields;   // in header order
  bool truncated = false;         // a bound was hit; fields after it are not read
  std::size_t skipped_lines = 0;  // lines that were neither a field nor a continuation
};

// Splits a raw header block (CRLF line ends; a bare LF is accepted as a line end too) into its
// fields. Stops at the first empty line (the end of the header), at the end of the input, or at
// a bound (header_truncated). A line that starts with white space continues the field before it;
// a line with no colon, or whose name has bytes outside %x21-7E, is skipped and counted. The
// views point into `header`, which must outlive the result.
RawHeader split_raw_header(std::string_view header, std::size_t max_bytes = kDkimMaxHeaderBytes,
                           std::size_t max_fields = kDkimMaxHeaderFields);

// The header block and the body of a whole message: the header ends with the first empty line
// (CRLF CRLF, or LF LF); the body is what follows that line. No empty line: all header, no body.
struct MessageParts {
  std::string_view header;  // including the line end of its last field
  std::string_view body;
  bool has_body = false;  // an empty line was found
};
MessageParts split_message(std::string_view message);

// One tag of a tag-list. `value` has its leading and trailing white space removed; `span_begin`
// and `span_end` are offsets into the parsed text of everything between the '=' and the next ';'
// (or the end), white space included: what RFC 6376 §3.7 deletes from b= when hashing.
struct DkimTag {
  std::string_view name;
  std::string_view value;
  std::size_t span_begin = 0;
  std::size_t span_end = 0;
};

struct DkimTagList {
  bool ok = false;
  std::string error;
  std::vector<DkimTag> tags;
  const DkimTag* find(std::string_view name) const;  // nullptr when absent
};

// Parses an RFC 6376 §3.2 tag-list. Invalid (ok = false): an empty tag-spec (";;"), a tag-spec
// with no '=', a tag name that is not ALPHA *(ALPHA / DIGIT / "_"), a repeated tag name, a control
// byte in a value, more than `max_tags` tags. A trailing ';' is allowed. CR and LF count as white
// space (folding).
DkimTagList parse_tag_list(std::string_view text, std::size_t max_tags = kDkimMaxTags);

// Strict base64 (RFC 4648 §4) with white space (SP, HTAB, CR, LF) ignored anywhere. Padding may
// be omitted; '=' only at the end. nullopt on any other byte, a lone trailing sextet, or a
// decoded size over `max_bytes`.
std::optional<std::string> decode_base64(std::string_view text, std::size_t max_bytes);

// Standard base64 with padding, no line breaks (for reports).
std::string encode_base64(std::string_view data);

enum class DkimAlgorithm { unknown, rsa_sha256, rsa_sha1, ed25519_sha256 };
enum class DkimHash { sha256, sha1 };
enum class DkimCanon { simple, relaxed };
enum class DkimKeyType { unknown, rsa, ed25519 };

std::string_view to_string(DkimCanon canon);       // "simple", "relaxed"
DkimHash hash_of(DkimAlgorithm algorithm);         // sha1 for rsa-sha1, else sha256
DkimKeyType key_type_of(DkimAlgorithm algorithm);  // rsa or ed25519
std::string_view hash_name(DkimHash hash);         // "sha256", "sha1"

// Which field a signature value comes from: their required tags and meanings differ.
//   dkim:        v=1 a b bh d h s required; i= is the identity (default "@" + d);
//   arc_message: i a b bh d h s required; i= is the ARC instance; c= defaults to relaxed/relaxed;
//                h= must not name ARC-Seal (RFC 8617 §4.1.2);
//   arc_seal:    i a b cv d s required; i= is the ARC instance; no h= allowed, no bh= (§4.1.3).
enum class DkimSignatureKind { dkim, arc_message, arc_seal };

struct DkimSignature {
  bool ok = false;
  std::string error;  // why not ok, e.g. "missing bh= tag"

  DkimTagList tags;  // the parsed tag-list (views into the value given to the parser)

  std::string algorithm_name;  // a= as written (also when unknown)
  DkimAlgorithm algorithm = DkimAlgorithm::unknown;
  DkimCanon header_canon = DkimCanon::simple;
  DkimCanon body_canon = DkimCanon::simple;
  std::string domain;                       // d=, as written
  std::string selector;                     // s=
  std::string identity;                     // DKIM i= (or "@" + d); empty for ARC
  std::vector<std::string> signed_headers;  // h= names, lower-cased, in order
  std::string body_hash;                    // bh= decoded
  std::string signature;                    // b= decoded
  std::optional<std::uint64_t> length;      // l=
  std::optional<std::int64_t> timestamp;    // t=
  std::optional<std::int64_t> expiration;   // x=
  int instance = 0;                         // ARC i= (1..50)
  std::string chain;                        // ARC-Seal cv=: "none", "pass", "fail"
};

// Parses the value of a DKIM-Signature, ARC-Message-Signature or ARC-Seal field (everything after
// the colon, folding kept). On a syntax error ok = false and `error` says which tag; the tags
// and whatever was read before the error are still filled in, so that a report can show d= and
// s=. The views in `tags` point into `value`.
DkimSignature parse_dkim_signature(std::string_view value,
                                   DkimSignatureKind kind = DkimSignatureKind::dkim);

// A DKIM key record (the TXT record at <selector>._domainkey.<domain>).
struct DkimKeyRecord {
  bool ok = false;
  std::string error;  // why not ok: "v= is not DKIM1", "unknown key type k=dsa", ...
  DkimKeyType key_type = DkimKeyType::rsa;  // k= (default rsa)
  std::string key_type_name = "rsa";
  std::vector<std::string> hashes;  // h= hash names as listed (empty: any)
  std::string public_key;           // p= decoded; empty when revoked
  bool revoked = false;             // p= is empty (RFC 6376 §3.6.1)
  bool testing = false;             // t=y
  bool strict = false;              // t=s: i= must be exactly d=, no subdomain
};

// Parses a key record. ok = false when: the tag-list is invalid; v= is present but not "DKIM1"
// or not the first tag; k= is neither rsa nor ed25519; s= names neither "email" nor "*"; p= is
// missing or not base64 (or over kDkimMaxKeyBytes). An empty p= is ok with revoked = true.
DkimKeyRecord parse_dkim_key(std::string_view txt);

// True if the domain part of a DKIM identity (after its last '@') is `domain` or a subdomain of
// it, compared case-insensitively (RFC 6376 §3.5 i=). With `strict`, only `domain` itself.
bool identity_within(std::string_view identity, std::string_view domain, bool strict = false);

}  // namespace ipconfirm::responder

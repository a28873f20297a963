// DKIM canonicalization (RFC 6376 §3.4) and the body hash (§3.7), computed incrementally.
//
// The server does not keep a message body in memory: it hands the body over in chunks as they
// arrive (dot-unstuffed, CRLF line ends). A DkimBodyHasher takes arbitrary chunks — a CRLF, a run
// of white space or a run of trailing empty lines may be split anywhere — and gives the same
// hash as the whole body would; it holds back only what canonicalization must still decide
// (trailing empty lines, a white-space run, a CR), as counts, in bounded memory. DkimBodyHashers
// is the set of hashers one message needs: signatures with the same (canonicalization, hash,
// l=) share one hasher, so N such signatures hash the body once; ARC-Message-Signatures use the
// same set.
//
// Body canonicalization follows RFC 6376 §3.4.3 and §3.4.4 as dkimpy reads them: simple drops
// the empty lines at the end and ends the body with exactly one CRLF (an empty body is "CRLF");
// relaxed drops white space before each CRLF, turns other runs of SP/HTAB into one SP, drops the
// empty lines at the end, and adds a CRLF to a non-empty body that does not end with one (an
// empty body stays empty, RFC 6376 erratum 1384). A CR not followed by LF is an ordinary byte.
// l= (§3.5) limits the bytes of canonical body that are hashed.
//
// Pure: OpenSSL's digests (no I/O); no exceptions across the interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "responder/analysis/dkim_signature.hpp"

namespace ipconfirm::responder {

// Appends one header field in canonical form to `out` (RFC 6376 §3.4.1, §3.4.2): simple keeps
// the bytes (and adds a CRLF to a field that has none); relaxed lower-cases the name, unfolds,
// turns runs of white space into one SP, drops white space at the ends of the value and around
// the colon, and ends with CRLF.
void canonicalize_header(std::string& out, const RawField& field, DkimCanon canon);

// The signature field itself as it is hashed (§3.7): the value of its b= tag deleted (everything
// between "b=" and the next ';' or the end, white space included), canonicalized, without the
// final CRLF. `b_span_begin`/`b_span_end` are the DkimTag offsets of b= within field.value.
std::string canonicalize_signature_field(const RawField& field, DkimCanon canon,
                                         std::size_t b_span_begin, std::size_t b_span_end);

// A message digest (SHA-256 or SHA-1) on OpenSSL's EVP interface.
class DkimDigest {
 public:
  explicit DkimDigest(DkimHash hash);
  ~DkimDigest();
  DkimDigest(DkimDigest&&) noexcept;
  DkimDigest& operator=(DkimDigest&&) noexcept;
  DkimDigest(const DkimDigest&) = delete;
  DkimDigest& operator=(const DkimDigest&) = delete;

  void update(std::string_view data);
  std::string final();  // raw digest bytes; empty if OpenSSL failed
  bool ok() const { return ctx_ != nullptr && ok_; }

 private:
  void* ctx_ = nullptr;  // EVP_MD_CTX
  bool ok_ = true;
};

// One-shot digest.
std::string dkim_digest(DkimHash hash, std::string_view data);

// What a body hasher is keyed by: signatures that agree on all three share one.
struct DkimBodyHashKey {
  DkimCanon canon = DkimCanon::simple;
  DkimHash hash = DkimHash::sha256;
  std::optional<std::uint64_t> limit;  // l=
  friend bool operator==(const DkimBodyHashKey&, const DkimBodyHashKey&) = default;
};

class DkimBodyHasher {
 public:
  explicit DkimBodyHasher(const DkimBodyHashKey& key);

  // Feeds the next bytes of the body (after the empty line that ends the header). Ignored after
  // finish().
  void feed(std::string_view chunk);
  // Ends the body: settles what was held back and computes the digest. Idempotent.
  void finish();

  const DkimBodyHashKey& key() const { return key_; }
  bool finished() const { return finished_; }
  const std::string& digest() const {
    return digest_;
  }                                                          // raw bytes, after finish(); empty
                                                             // if the digest failed
  std::uint64_t canonical_length() const { return total_; }  // the whole canonical body
  std::uint64_t hashed_length() const { return hashed_; }    // <= l= when l= is set

 private:
  void emit(const char* data, std::size_t size);
  void flush_held();
  void flush_buffer();

  DkimBodyHashKey key_;
  DkimDigest digest_ctx_;
  std::string digest_;
  bool finished_ = false;
  std::uint64_t held_crlf_ = 0;  // CRLFs seen but not yet known not to be trailing
  bool pending_cr_ = false;      // a CR whose next byte is not known yet
  bool pending_wsp_ = false;     // relaxed: a run of SP/HTAB not yet known to end the line
  std::uint64_t total_ = 0;
  std::uint64_t hashed_ = 0;
  std::string buffer_;  // canonical bytes not yet handed to the digest
};

// The hashers of one message.
class DkimBodyHashers {
 public:
  static constexpr std::size_t kMaxHashers = 64;

  // The index of the hasher for `key`, added if new; nullopt when kMaxHashers are in use.
  std::optional<std::size_t> add(const DkimBodyHashKey& key);
  // Feeds every hasher.
  void feed(std::string_view chunk);
  // Ends the body for every hasher. Idempotent.
  void finish();
  bool finished() const { return finished_; }

  std::size_t size() const { return hashers_.size(); }
  const DkimBodyHasher& at(std::size_t index) const { return hashers_.at(index); }
  // The hasher for `key`, or nullptr if none was added.
  const DkimBodyHasher* find(const DkimBodyHashKey& key) const;

 private:
  std::vector<DkimBodyHasher> hashers_;
  bool finished_ = false;
};

}  // namespace ipconfirm::responder

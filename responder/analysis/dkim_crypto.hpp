// The public-key half of DKIM and ARC on OpenSSL 3 (EVP): loading the key of a DKIM key record's
// p= tag and checking a b= signature over the canonical header data.
//
// RSA keys are read as SubjectPublicKeyInfo (what everybody publishes) or as a bare PKCS#1
// RSAPublicKey (what RFC 6376 §3.6.1 literally says); the signature is RSASSA-PKCS1-v1_5 with
// SHA-256 or SHA-1 (RFC 6376 §3.3). Ed25519 keys are the raw 32 bytes, and the signature is
// PureEdDSA over the SHA-256 digest of the header data (RFC 8463 §3). This file does not decide
// what is acceptable (key sizes, rsa-sha1: dkim.cpp does, following RFC 8301); it refuses only
// keys it will not spend work on (over kDkimMaxRsaBits).
//
// Pure: no I/O (a process-wide cache of loaded keys, see load()). OpenSSL's per-thread error queue
// is cleared after every failed call, so that a hostile key never leaves errors behind for the TLS
// code on the same thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "responder/analysis/dkim_signature.hpp"

namespace ipconfirm::responder {

inline constexpr int kDkimMaxRsaBits = 8192;

class DkimPublicKey {
 public:
  DkimPublicKey();
  ~DkimPublicKey();
  DkimPublicKey(DkimPublicKey&&) noexcept;
  DkimPublicKey& operator=(DkimPublicKey&&) noexcept;
  DkimPublicKey(const DkimPublicKey&) = delete;
  DkimPublicKey& operator=(const DkimPublicKey&) = delete;

  bool ok() const { return pkey_ != nullptr; }
  DkimKeyType type() const { return type_; }
  int bits() const { return bits_; }  // RSA modulus size; 256 for Ed25519

  // Loads the decoded p= bytes as a key of `type`. On failure ok() is false and `error` says why
  // ("not an RSA public key", "RSA key of 16384 bits: larger than 8192", ...). The last 256
  // distinct keys loaded (and refused) are cached in the process, so that the same key record
  // is decoded once, not for every message; safe from several threads.
  static DkimPublicKey load(std::string_view der, DkimKeyType type, std::string& error);

  // The keys in that cache (for tests).
  static std::size_t cached_keys();

  // True if `signature` is a valid signature of `data` (the canonical header data, not hashed
  // yet) under this key with `algorithm`'s hash. False on any mismatch or error.
  bool verify(DkimAlgorithm algorithm, std::string_view data, std::string_view signature) const;

 private:
  static DkimPublicKey load_uncached(std::string_view der, DkimKeyType type, std::string& error);

  void* pkey_ = nullptr;  // EVP_PKEY
  DkimKeyType type_ = DkimKeyType::unknown;
  int bits_ = 0;
};

}  // namespace ipconfirm::responder

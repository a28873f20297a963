// Test-only DKIM and ARC signing on OpenSSL: keys made at test time, signatures built with the
// canonicalization of responder/analysis/dkim_canon.hpp. It lets the unit tests produce signed
// messages for every policy case (rsa-sha1, small keys, x=, l=, t=y, ...). Canonicalization
// itself is proven independently (the RFC 8463 example, dkimpy's messages and the body-hash
// reference in dkim_test.cpp), so signing with it here is not circular for what these tests
// check.
#pragma once

// The tests name only the SignOptions they change ({.s = "s2"}); GCC's -Wextra would flag every
// member left to its default.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/ascii.hpp"
#include "responder/analysis/dkim.hpp"
#include "responder/analysis/dkim_canon.hpp"
#include "responder/analysis/dkim_signature.hpp"
#include "responder/analysis/dkim_verify.hpp"
#include "responder/dns/dns_answers.hpp"

namespace dkim_test {

using namespace ipconfirm::responder;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

struct TestKey {
  Pkey pkey;
  DkimKeyType type = DkimKeyType::rsa;
  std::string p;  // base64 for the key record's p=
};

inline std::string spki_base64(EVP_PKEY* pkey) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(pkey, &der);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return encode_base64(out);
}

inline TestKey make_rsa_key(unsigned bits) {
  TestKey k;
  k.pkey.reset(EVP_RSA_gen(bits));
  k.type = DkimKeyType::rsa;
  k.p = spki_base64(k.pkey.get());
  return k;
}

inline TestKey make_ed25519_key() {
  TestKey k;
  k.pkey.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  k.type = DkimKeyType::ed25519;
  unsigned char raw[32];
  std::size_t len = sizeof raw;
  EVP_PKEY_get_raw_public_key(k.pkey.get(), raw, &len);
  k.p = encode_base64(std::string(reinterpret_cast<const char*>(raw), len));
  return k;
}

// An RSA public key (no private half) with a random modulus of `bits` bits, for size limits.
inline std::string fake_rsa_public_key_base64(int bits) {
  BIGNUM* n = BN_new();
  BIGNUM* e = BN_new();
  BN_rand(n, bits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD);
  BN_set_word(e, 65537);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
  EVP_PKEY* pkey = nullptr;
  EVP_PKEY_fromdata_init(ctx);
  EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
  std::string out = spki_base64(pkey);
  EVP_PKEY_free(pkey);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(n);
  BN_free(e);
  return out;
}

inline std::string raw_sign(const TestKey& key, DkimAlgorithm algorithm, std::string_view data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::string input(data);
  const EVP_MD* md = nullptr;
  if (key.type == DkimKeyType::ed25519) {
    input = dkim_digest(DkimHash::sha256, data);
  } else {
    md = algorithm == DkimAlgorithm::rsa_sha1 ? EVP_sha1() : EVP_sha256();
  }
  EVP_DigestSignInit(ctx, nullptr, md, nullptr, key.pkey.get());
  std::size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  return sig;
}

inline std::string body_hash(std::string_view body, DkimCanon canon, DkimHash hash,
                             std::optional<std::uint64_t> limit = std::nullopt) {
  DkimBodyHasher h({canon, hash, limit});
  h.feed(body);
  h.finish();
  return encode_base64(h.digest());
}

struct SignOptions {
  std::string algorithm = "rsa-sha256";
  std::string c = "relaxed/relaxed";
  std::string d = "example.org";
  std::string s = "s1";
  std::string h = "from:to:subject:date";
  std::string extra;  // more tags, e.g. "l=10; t=123; "
  std::string field_name = "DKIM-Signature";
};

inline DkimAlgorithm algorithm_of(std::string_view a) {
  if (a == "rsa-sha1") return DkimAlgorithm::rsa_sha1;
  if (a == "ed25519-sha256") return DkimAlgorithm::ed25519_sha256;
  return DkimAlgorithm::rsa_sha256;
}

// Signs `message` (CRLF) and returns it with the new signature field on top.
inline std::string sign(const std::string& message, const TestKey& key, const SignOptions& o) {
  MessageParts parts = split_message(message);
  const DkimAlgorithm alg = algorithm_of(o.algorithm);
  DkimCanon hc = o.c.rfind("relaxed", 0) == 0 ? DkimCanon::relaxed : DkimCanon::simple;
  DkimCanon bc = o.c.find("/relaxed") != std::string::npos ? DkimCanon::relaxed : DkimCanon::simple;
  std::optional<std::uint64_t> limit;
  if (auto l = o.extra.find("l="); l != std::string::npos)
    limit = std::stoull(o.extra.substr(l + 2));
  std::string value = " v=1; a=" + o.algorithm + "; c=" + o.c + "; d=" + o.d + "; s=" + o.s +
                      ";\r\n " + o.extra + "h=" + o.h +
                      ";\r\n bh=" + body_hash(parts.body, bc, hash_of(alg), limit) + ";\r\n b=";
  // A placeholder b= lets the value parse; its span is deleted from the hashed data anyway.
  std::string header = o.field_name + ":" + value + "AAAA\r\n" + std::string(parts.header);
  RawHeader raw = split_raw_header(header);
  std::vector<std::string> lower;
  for (const auto& f : raw.fields) lower.push_back(ipconfirm::ascii::lower(f.name));
  DkimSignature sig = parse_dkim_signature(
      raw.fields[0].value,
      o.field_name == "DKIM-Signature" ? DkimSignatureKind::dkim : DkimSignatureKind::arc_message);
  sig.header_canon = hc;
  std::string data = signed_header_data(raw.fields, lower, sig, 0);
  std::string b = encode_base64(raw_sign(key, alg, data));
  return o.field_name + ":" + value + b + "\r\n" + message;
}

inline std::string key_record(const TestKey& key, std::string_view extra = "") {
  return std::string("v=DKIM1; k=") + (key.type == DkimKeyType::ed25519 ? "ed25519" : "rsa") +
         "; " + std::string(extra) + "p=" + key.p;
}

inline void put_txt(DnsAnswers& dns, std::string_view name, std::vector<std::string> texts) {
  DnsResult r;
  r.status = DnsStatus::ok;
  for (auto& t : texts) {
    DnsRecord rec;
    rec.type = RrType::txt;
    rec.name = std::string(name);
    rec.text = std::move(t);
    r.records.push_back(std::move(rec));
  }
  dns.put(name, RrType::txt, std::move(r));
}

inline void put_status(DnsAnswers& dns, std::string_view name, DnsStatus status,
                       std::string detail) {
  DnsResult r;
  r.status = status;
  r.detail = std::move(detail);
  dns.put(name, RrType::txt, std::move(r));
}

}  // namespace dkim_test

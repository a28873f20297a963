// libFuzzer target for the DKIM key record parser and key loading: any TXT record must parse or
// be refused with a reason, and a key that loads must refuse a signature made of the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "responder/analysis/dkim_crypto.hpp"
#include "responder/analysis/dkim_signature.hpp"

using namespace ipconfirm::responder;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  DkimKeyRecord key = parse_dkim_key(input);
  check(key.ok == key.error.empty());
  check(key.public_key.size() <= kDkimMaxKeyBytes);
  check(!key.revoked || key.public_key.empty());
  check(key.hashes.size() <= 16);

  // The raw input as DER (an RSA or Ed25519 key), and the record's p= when it parsed.
  for (std::string_view der : {input, std::string_view(key.public_key)}) {
    for (auto type : {DkimKeyType::rsa, DkimKeyType::ed25519}) {
      std::string error;
      DkimPublicKey pk = DkimPublicKey::load(der, type, error);
      check(pk.ok() == error.empty());
      if (!pk.ok()) continue;
      check(pk.type() == type);
      check(pk.bits() > 0 && pk.bits() <= kDkimMaxRsaBits);
      for (auto alg :
           {DkimAlgorithm::rsa_sha256, DkimAlgorithm::rsa_sha1, DkimAlgorithm::ed25519_sha256}) {
        // A signature equal to the signed data is never valid.
        check(!pk.verify(alg, input, input));
      }
    }
  }
  return 0;
}

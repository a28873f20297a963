#include "responder/analysis/dkim_crypto.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <deque>
#include <mutex>
#include <unordered_map>

#include "responder/analysis/dkim_canon.hpp"

namespace ipconfirm::responder {

namespace {

EVP_PKEY* as_pkey(void* p) {
  return static_cast<EVP_PKEY*>(p);
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// The keys loaded last, by key type and p= bytes: OpenSSL 3's decoders take far longer to read
// a key than to verify a signature with it, and a sender signs every message with the same
// key. A cached EVP_PKEY is only ever read after it is made (OpenSSL 3 allows that from many
// threads at once); each DkimPublicKey holds a reference of its own. Refusals are cached too,
// with their reason. Bounded: the oldest entry goes first.
class KeyCache {
 public:
  static constexpr std::size_t kMaxEntries = 256;

  struct Entry {
    EVP_PKEY* pkey = nullptr;  // one reference held by the cache; null for a refused key
    int bits = 0;
    std::string error;
  };

  // Copies the entry for `id` into `out` (with a new reference to its key); false if none.
  bool find(const std::string& id, Entry& out) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    out = it->second;
    if (out.pkey) EVP_PKEY_up_ref(out.pkey);
    return true;
  }

  // Stores a new reference to `entry`'s key under `id`, unless another thread did first.
  void add(const std::string& id, const Entry& entry) {
    std::lock_guard lock(mutex_);
    if (entries_.count(id)) return;
    while (entries_.size() >= kMaxEntries && !order_.empty()) {
      auto old = entries_.find(order_.front());
      if (old != entries_.end()) {
        EVP_PKEY_free(old->second.pkey);
        entries_.erase(old);
      }
      order_.pop_front();
    }
    Entry stored = entry;
    if (stored.pkey) EVP_PKEY_up_ref(stored.pkey);
    entries_.emplace(id, std::move(stored));
    order_.push_back(id);
  }

  std::size_t size() {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::string> order_;
};

// Never destroyed: keys may still be looked up while other statics are torn down at exit.
KeyCache& key_cache() {
  static KeyCache* cache = new KeyCache;
  return *cache;
}

}  // namespace

std::size_t DkimPublicKey::cached_keys() {
  return key_cache().size();
}

DkimPublicKey::DkimPublicKey() = default;

DkimPublicKey::~DkimPublicKey() {
  EVP_PKEY_free(as_pkey(pkey_));
}

DkimPublicKey::DkimPublicKey(DkimPublicKey&& other) noexcept
    : pkey_(other.pkey_), type_(other.type_), bits_(other.bits_) {
  other.pkey_ = nullptr;
}

DkimPublicKey& DkimPublicKey::operator=(DkimPublicKey&& other) noexcept {
  if (this != &other) {
    EVP_PKEY_free(as_pkey(pkey_));
    pkey_ = other.pkey_;
    type_ = other.type_;
    bits_ = other.bits_;
    other.pkey_ = nullptr;
  }
  return *this;
}

DkimPublicKey DkimPublicKey::load(std::string_view der, DkimKeyType type, std::string& error) {
  std::string id;
  id.reserve(der.size() + 1);
  id.push_back(static_cast<char>('0' + static_cast<int>(type)));
  id.append(der);
  DkimPublicKey key;
  KeyCache::Entry cached;
  if (key_cache().find(id, cached)) {
    if (!cached.pkey) {
      error = cached.error;
      return key;
    }
    key.pkey_ = cached.pkey;
    key.type_ = type;
    key.bits_ = cached.bits;
    return key;
  }
  std::string why;
  key = load_uncached(der, type, why);
  key_cache().add(id, KeyCache::Entry{as_pkey(key.pkey_), key.bits_, why});
  if (!key.ok()) error = why;
  return key;
}

DkimPublicKey DkimPublicKey::load_uncached(std::string_view der, DkimKeyType type,
                                           std::string& error) {
  DkimPublicKey key;
  if (type == DkimKeyType::ed25519) {
    if (der.size() != 32) {
      error = "the Ed25519 key in p= has " + std::to_string(der.size()) + " bytes, not 32";
      return key;
    }
    EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(der.data()), 32);
    if (!pkey) {
      ERR_clear_error();
      error = "p= is not a valid Ed25519 public key";
      return key;
    }
    key.pkey_ = pkey;
    key.type_ = DkimKeyType::ed25519;
    key.bits_ = 256;
    return key;
  }
  if (type != DkimKeyType::rsa) {
    error = "unknown key type";
    return key;
  }
  const auto* begin = reinterpret_cast<const unsigned char*>(der.data());
  const auto len = static_cast<long>(der.size());
  const unsigned char* p = begin;
  EVP_PKEY* pkey = d2i_PUBKEY(nullptr, &p, len);
  if (pkey && p != begin + len) {  // trailing bytes after the key
    EVP_PKEY_free(pkey);
    pkey = nullptr;
  }
  if (!pkey) {
    p = begin;
    pkey = d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, len);
    if (pkey && p != begin + len) {
      EVP_PKEY_free(pkey);
      pkey = nullptr;
    }
  }
  ERR_clear_error();
  if (!pkey) {
    error = "p= is not a valid RSA public key";
    return key;
  }
  if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
    EVP_PKEY_free(pkey);
    error = "p= holds a public key that is not RSA (k=rsa)";
    return key;
  }
  int bits = EVP_PKEY_get_bits(pkey);
  if (bits <= 0 || bits > kDkimMaxRsaBits) {
    EVP_PKEY_free(pkey);
    error = "RSA key of " + std::to_string(bits) + " bits: larger than " +
            std::to_string(kDkimMaxRsaBits) + " bits are refused";
    return key;
  }
  key.pkey_ = pkey;
  key.type_ = DkimKeyType::rsa;
  key.bits_ = bits;
  return key;
}

bool DkimPublicKey::verify(DkimAlgorithm algorithm, std::string_view data,
                           std::string_view signature) const {
  if (!ok() || key_type_of(algorithm) != type_) return false;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  const auto* sig = reinterpret_cast<const unsigned char*>(signature.data());
  int rc = 0;
  if (type_ == DkimKeyType::ed25519) {
    // RFC 8463 §3: Ed25519 signs the SHA-256 digest of the canonical header data.
    std::string digest = dkim_digest(DkimHash::sha256, data);
    if (digest.size() != 32) return false;
    if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, as_pkey(pkey_)) == 1)
      rc = EVP_DigestVerify(ctx.get(), sig, signature.size(),
                            reinterpret_cast<const unsigned char*>(digest.data()), digest.size());
  } else {
    const EVP_MD* md = algorithm == DkimAlgorithm::rsa_sha1 ? EVP_sha1() : EVP_sha256();
    if (EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, as_pkey(pkey_)) == 1)
      rc = EVP_DigestVerify(ctx.get(), sig, signature.size(),
                            reinterpret_cast<const unsigned char*>(data.data()), data.size());
  }
  if (rc != 1) ERR_clear_error();
  return rc == 1;
}

}  // namespace ipconfirm::responder

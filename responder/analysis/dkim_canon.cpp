#include "responder/analysis/dkim_canon.hpp"

#include <openssl/evp.h>

#include <cstring>

#include "core/ascii.hpp"

namespace ipconfirm::responder {

namespace {

constexpr std::size_t kBufferSize = 16 * 1024;

EVP_MD_CTX* as_ctx(void* p) {
  return static_cast<EVP_MD_CTX*>(p);
}

// Relaxed value: unfold (drop CR and LF), runs of SP/HTAB to one SP, no white space at the ends.
void append_relaxed_value(std::string& out, std::string_view value) {
  bool in_wsp = false;
  bool any = false;
  for (char c : value) {
    if (c == '\r' || c == '\n') continue;
    if (c == ' ' || c == '\t') {
      in_wsp = true;
      continue;
    }
    if (in_wsp && any) out.push_back(' ');
    in_wsp = false;
    any = true;
    out.push_back(c);
  }
}

}  // namespace

void canonicalize_header(std::string& out, const RawField& field, DkimCanon canon) {
  if (canon == DkimCanon::simple) {
    out.append(field.raw);
    if (field.raw.empty() || field.raw.back() != '\n') out.append("\r\n");
    return;
  }
  out.append(ascii::lower(field.name));
  out.push_back(':');
  append_relaxed_value(out, field.value);
  out.append("\r\n");
}

std::string canonicalize_signature_field(const RawField& field, DkimCanon canon,
                                         std::size_t b_span_begin, std::size_t b_span_end) {
  // Offsets of the value within the raw field.
  const std::size_t value_at = static_cast<std::size_t>(field.value.data() - field.raw.data());
  std::string raw(field.raw.substr(0, value_at + field.value.size()));  // no line end
  if (b_span_begin <= b_span_end && b_span_end <= field.value.size())
    raw.erase(value_at + b_span_begin, b_span_end - b_span_begin);
  std::string out;
  if (canon == DkimCanon::simple) {
    out = std::move(raw);
  } else {
    out.append(ascii::lower(field.name));
    out.push_back(':');
    append_relaxed_value(out, std::string_view(raw).substr(value_at));
  }
  return out;
}

DkimDigest::DkimDigest(DkimHash hash) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ctx_ = ctx;
  if (!ctx ||
      EVP_DigestInit_ex(ctx, hash == DkimHash::sha1 ? EVP_sha1() : EVP_sha256(), nullptr) != 1)
    ok_ = false;
}

DkimDigest::~DkimDigest() {
  EVP_MD_CTX_free(as_ctx(ctx_));
}

DkimDigest::DkimDigest(DkimDigest&& other) noexcept : ctx_(other.ctx_), ok_(other.ok_) {
  other.ctx_ = nullptr;
}

DkimDigest& DkimDigest::operator=(DkimDigest&& other) noexcept {
  if (this != &other) {
    EVP_MD_CTX_free(as_ctx(ctx_));
    ctx_ = other.ctx_;
    ok_ = other.ok_;
    other.ctx_ = nullptr;
  }
  return *this;
}

void DkimDigest::update(std::string_view data) {
  if (!ok() || data.empty()) return;
  if (EVP_DigestUpdate(as_ctx(ctx_), data.data(), data.size()) != 1) ok_ = false;
}

std::string DkimDigest::final() {
  if (!ok()) return {};
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(as_ctx(ctx_), md, &len) != 1) {
    ok_ = false;
    return {};
  }
  ok_ = false;  // a context is finished once
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string dkim_digest(DkimHash hash, std::string_view data) {
  DkimDigest d(hash);
  d.update(data);
  return d.final();
}

DkimBodyHasher::DkimBodyHasher(const DkimBodyHashKey& key) : key_(key), digest_ctx_(key.hash) {
  buffer_.reserve(kBufferSize);
}

void DkimBodyHasher::flush_buffer() {
  digest_ctx_.update(buffer_);
  buffer_.clear();
}

void DkimBodyHasher::emit(const char* data, std::size_t size) {
  total_ += size;
  std::size_t take = size;
  if (key_.limit) {
    std::uint64_t room = *key_.limit > hashed_ ? *key_.limit - hashed_ : 0;
    if (room < take) take = static_cast<std::size_t>(room);
  }
  if (take == 0) return;
  hashed_ += take;
  if (buffer_.size() + take > kBufferSize) flush_buffer();
  if (take >= kBufferSize) {
    digest_ctx_.update(std::string_view(data, take));
    return;
  }
  buffer_.append(data, take);
}

void DkimBodyHasher::flush_held() {
  // Held CRLFs are only ever emitted in front of more content, so their number is bounded by
  // what was fed; emit them in pieces to keep the buffer bounded.
  static constexpr char kCrlfs[] =
      "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";
  while (held_crlf_ > 0) {
    std::uint64_t n = held_crlf_ < 16 ? held_crlf_ : 16;
    emit(kCrlfs, static_cast<std::size_t>(n * 2));
    held_crlf_ -= n;
  }
}

void DkimBodyHasher::feed(std::string_view chunk) {
  if (finished_) return;
  const char* p = chunk.data();
  const char* end = p + chunk.size();
  const bool relaxed = key_.canon == DkimCanon::relaxed;
  while (p < end) {
    if (pending_cr_) {
      pending_cr_ = false;
      if (*p == '\n') {
        pending_wsp_ = false;  // white space before a line end is dropped (relaxed)
        ++held_crlf_;
        ++p;
        continue;
      }
      // A CR that does not start a line end is content.
      flush_held();
      if (pending_wsp_) emit(" ", 1);
      pending_wsp_ = false;
      emit("\r", 1);
    }
    char c = *p;
    if (c == '\r') {
      pending_cr_ = true;
      ++p;
      continue;
    }
    if (relaxed && (c == ' ' || c == '\t')) {
      pending_wsp_ = true;
      ++p;
      continue;
    }
    // A run of ordinary bytes, emitted at once.
    const char* run = p;
    if (relaxed) {
      // A lone SP between two ordinary bytes is already canonical: keep it in the run.
      for (;;) {
        while (p < end && *p != '\r' && *p != ' ' && *p != '\t') ++p;
        if (p + 1 < end && *p == ' ' && p[1] != '\r' && p[1] != ' ' && p[1] != '\t') {
          p += 2;
          continue;
        }
        break;
      }
    } else {
      const void* cr = std::memchr(p, '\r', static_cast<std::size_t>(end - p));
      p = cr ? static_cast<const char*>(cr) : end;
    }
    flush_held();
    if (pending_wsp_) emit(" ", 1);
    pending_wsp_ = false;
    emit(run, static_cast<std::size_t>(p - run));
  }
}

void DkimBodyHasher::finish() {
  if (finished_) return;
  if (pending_cr_) {
    pending_cr_ = false;
    flush_held();
    if (pending_wsp_) emit(" ", 1);
    pending_wsp_ = false;
    emit("\r", 1);
  }
  if (pending_wsp_) {
    // White space at the very end, with no CRLF after it: kept as one SP, then the CRLF below.
    flush_held();
    emit(" ", 1);
    pending_wsp_ = false;
  }
  held_crlf_ = 0;  // empty lines at the end are dropped
  if (key_.canon == DkimCanon::simple || total_ > 0) emit("\r\n", 2);
  flush_buffer();
  digest_ = digest_ctx_.final();
  finished_ = true;
}

std::optional<std::size_t> DkimBodyHashers::add(const DkimBodyHashKey& key) {
  for (std::size_t i = 0; i < hashers_.size(); ++i)
    if (hashers_[i].key() == key) return i;
  if (hashers_.size() >= kMaxHashers || finished_) return std::nullopt;
  hashers_.emplace_back(key);
  return hashers_.size() - 1;
}

void DkimBodyHashers::feed(std::string_view chunk) {
  for (auto& h : hashers_) h.feed(chunk);
}

void DkimBodyHashers::finish() {
  for (auto& h : hashers_) h.finish();
  finished_ = true;
}

const DkimBodyHasher* DkimBodyHashers::find(const DkimBodyHashKey& key) const {
  for (const auto& h : hashers_)
    if (h.key() == key) return &h;
  return nullptr;
}

}  // namespace ipconfirm::responder

#include "responder/reply/rate_limit.hpp"

#include <algorithm>
#include <cctype>

namespace ipconfirm::responder {

namespace {

constexpr double kHour = 3600.0;
// Keys longer than this are cut: an SMTP path is at most 256 bytes (RFC 5321 §4.5.3.1.3).
constexpr std::size_t kMaxKeyBytes = 320;

}  // namespace

RateLimiter::RateLimiter(std::size_t per_hour, std::size_t max_keys)
    : per_hour_(per_hour), max_keys_(std::max<std::size_t>(max_keys, 1)) {}

double RateLimiter::tokens_at(const Bucket& b, RateClock::time_point now) const {
  const double capacity = static_cast<double>(per_hour_);
  // A clock that went backwards (it cannot, for steady_clock, but tests pass any value) refills
  // nothing.
  const double seconds = std::max(0.0, std::chrono::duration<double>(now - b.updated).count());
  return std::min(capacity, b.tokens + seconds * capacity / kHour);
}

void RateLimiter::sweep(RateClock::time_point now) {
  if (swept_ && now - last_sweep_ < std::chrono::seconds(1)) return;
  swept_ = true;
  last_sweep_ = now;
  const double capacity = static_cast<double>(per_hour_);
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    if (tokens_at(it->second, now) >= capacity)
      it = buckets_.erase(it);
    else
      ++it;
  }
}

bool RateLimiter::has_token(const std::string& key, RateClock::time_point now) {
  if (per_hour_ == 0) return true;
  auto it = buckets_.find(key.substr(0, kMaxKeyBytes));
  if (it != buckets_.end()) return tokens_at(it->second, now) >= 1.0;
  if (buckets_.size() >= max_keys_) sweep(now);
  return buckets_.size() < max_keys_;
}

void RateLimiter::take(const std::string& key, RateClock::time_point now) {
  if (per_hour_ == 0) return;
  const std::string k = key.substr(0, kMaxKeyBytes);
  auto it = buckets_.find(k);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) return;  // has_token said no; nothing to count
    it = buckets_.emplace(k, Bucket{static_cast<double>(per_hour_), now}).first;
  }
  it->second.tokens = std::max(0.0, tokens_at(it->second, now) - 1.0);
  it->second.updated = now;
}

std::string network_key(const IpAddress& ip) {
  auto bytes = ip.bytes();
  if (ip.is_v4()) {
    const std::uint32_t v = static_cast<std::uint32_t>(bytes[0]) << 24 |
                            static_cast<std::uint32_t>(bytes[1]) << 16 |
                            static_cast<std::uint32_t>(bytes[2]) << 8;
    return IpAddress::from_v4(v).to_string() + "/24";
  }
  std::fill(bytes.begin() + 8, bytes.end(), std::uint8_t{0});
  return IpAddress::from_v6(bytes).to_string() + "/64";
}

ReplyLimiter::ReplyLimiter(const ReplyRateLimits& limits)
    : recipient_(limits.per_recipient, limits.max_keys),
      ip_(limits.per_ip, limits.max_keys),
      network_(limits.per_network, limits.max_keys) {}

std::string ReplyLimiter::admit(std::string_view recipient, const IpAddress& ip,
                                RateClock::time_point now) {
  std::string rcpt(recipient);
  for (auto& c : rcpt) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string ip_key = ip.to_string();
  const std::string net_key = network_key(ip);
  if (!recipient_.has_token(rcpt, now)) return "rate-limit-recipient";
  if (!ip_.has_token(ip_key, now)) return "rate-limit-ip";
  if (!network_.has_token(net_key, now)) return "rate-limit-network";
  recipient_.take(rcpt, now);
  ip_.take(ip_key, now);
  network_.take(net_key, now);
  return "";
}

std::size_t ReplyLimiter::keys() const {
  return recipient_.size() + ip_.size() + network_.size();
}

}  // namespace ipconfirm::responder

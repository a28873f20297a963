#include "responder/reply/rate_limit.hpp"

#include <algorithm>
#include <cctype>

namespace ipconfirm::responder {

namespace {

// Keys longer than this are cut: an SMTP path is at most 256 bytes (RFC 5321 §4.5.3.1.3).
constexpr std::size_t kMaxKeyBytes = 320;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

RateLimiter::RateLimiter(std::size_t per_period, std::size_t max_keys, std::chrono::seconds period)
    : per_period_(per_period),
      max_keys_(std::max<std::size_t>(max_keys, 1)),
      period_seconds_(static_cast<double>(std::max<std::chrono::seconds::rep>(period.count(), 1))) {
}

double RateLimiter::tokens_at(const Bucket& b, RateClock::time_point now) const {
  const double capacity = static_cast<double>(per_period_);
  // A clock that went backwards (it cannot, for steady_clock, but tests pass any value) refills
  // nothing.
  const double seconds = std::max(0.0, std::chrono::duration<double>(now - b.updated).count());
  return std::min(capacity, b.tokens + seconds * capacity / period_seconds_);
}

bool RateLimiter::has_token(const std::string& key, RateClock::time_point now) const {
  if (per_period_ == 0) return true;
  auto it = buckets_.find(key.substr(0, kMaxKeyBytes));
  return it == buckets_.end() || tokens_at(it->second, now) >= 1.0;
}

void RateLimiter::take(const std::string& key, RateClock::time_point now) {
  if (per_period_ == 0) return;
  const std::string k = key.substr(0, kMaxKeyBytes);
  auto it = buckets_.find(k);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      buckets_.erase(*used_.back());
      used_.pop_back();
    }
    it = buckets_.emplace(k, Bucket{static_cast<double>(per_period_), now, {}}).first;
    used_.push_front(&it->first);  // element addresses survive rehashing
    it->second.used = used_.begin();
  } else {
    used_.splice(used_.begin(), used_, it->second.used);
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

std::string site_key(const IpAddress& ip) {
  if (ip.is_v4()) return "";
  auto bytes = ip.bytes();
  std::fill(bytes.begin() + 6, bytes.end(), std::uint8_t{0});
  return IpAddress::from_v6(bytes).to_string() + "/48";
}

ReplyLimiter::ReplyLimiter(const ReplyRateLimits& limits)
    : recipient_(limits.per_recipient, limits.max_keys),
      domain_(limits.per_domain, limits.max_keys),
      ip_(limits.per_ip, limits.max_keys),
      network_(limits.per_network, limits.max_keys),
      site_(limits.per_site, limits.max_keys),
      total_(limits.total_per_minute, 1, std::chrono::minutes(1)) {}

std::string ReplyLimiter::admit(std::string_view recipient, const IpAddress& ip,
                                RateClock::time_point now) {
  const std::string rcpt = lower(recipient);
  const auto at = rcpt.rfind('@');
  const std::string domain = at == std::string::npos ? "" : rcpt.substr(at + 1);
  const std::string ip_key = ip.to_string();
  const std::string net_key = network_key(ip);
  const std::string site = site_key(ip);
  static const std::string total_key;
  if (!recipient_.has_token(rcpt, now)) return "rate-limit-recipient";
  if (!domain.empty() && !domain_.has_token(domain, now)) return "rate-limit-domain";
  if (!ip_.has_token(ip_key, now)) return "rate-limit-ip";
  if (!network_.has_token(net_key, now)) return "rate-limit-network";
  if (!site.empty() && !site_.has_token(site, now)) return "rate-limit-site";
  if (!total_.has_token(total_key, now)) return "rate-limit-total";
  recipient_.take(rcpt, now);
  if (!domain.empty()) domain_.take(domain, now);
  ip_.take(ip_key, now);
  network_.take(net_key, now);
  if (!site.empty()) site_.take(site, now);
  total_.take(total_key, now);
  return "";
}

std::size_t ReplyLimiter::keys() const {
  return recipient_.size() + domain_.size() + ip_.size() + network_.size() + site_.size();
}

}  // namespace ipconfirm::responder

// Backscatter defence: how many reply mails may go out, per recipient address, per sending IP
// address and per sending network (IPv4 /24, IPv6 /64), per hour.
//
// Each key has a token bucket that holds at most N tokens (N = the hourly limit) and refills at
// N per hour: a sender may get N replies at once, then one every 3600/N seconds. A reply is
// admitted only when all three buckets have a token, and only then are the tokens taken, so a
// refused reply costs nothing. A limit of 0 switches that limit off.
//
// Memory is bounded: at most `max_keys` keys per limit. When a table is full, keys whose bucket
// has refilled completely are dropped (they mean the same as an absent key), at most once per
// second of the given clock; if that frees nothing, a new key is refused ("fail closed"), so
// flooding the table with fresh addresses cannot reset the limits of the keys already in it.
//
// Pure: the clock is a parameter; no I/O, no threads (one caller at a time).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/ip_address.hpp"

namespace ipconfirm::responder {

using RateClock = std::chrono::steady_clock;

// One limit: a token bucket per key.
class RateLimiter {
 public:
  RateLimiter(std::size_t per_hour, std::size_t max_keys);

  // True if `key` has a token at `now` (and room in the table if it is new). Changes nothing
  // but may drop fully refilled keys to make room.
  bool has_token(const std::string& key, RateClock::time_point now);
  // Takes one token from `key`'s bucket (creating it full). Call after has_token said yes.
  void take(const std::string& key, RateClock::time_point now);

  std::size_t size() const { return buckets_.size(); }
  bool unlimited() const { return per_hour_ == 0; }

 private:
  struct Bucket {
    double tokens = 0;
    RateClock::time_point updated;
  };
  double tokens_at(const Bucket& b, RateClock::time_point now) const;
  void sweep(RateClock::time_point now);

  std::size_t per_hour_;
  std::size_t max_keys_;
  std::unordered_map<std::string, Bucket> buckets_;
  RateClock::time_point last_sweep_{};
  bool swept_ = false;
};

struct ReplyRateLimits {
  std::size_t per_recipient = 10;  // per recipient address (the envelope sender we reply to)
  std::size_t per_ip = 30;         // per connecting IP address
  std::size_t per_network = 60;    // per /24 (IPv4) or /64 (IPv6) of the connecting address
  std::size_t max_keys = 100000;   // per limit
};

// The three limits together.
class ReplyLimiter {
 public:
  explicit ReplyLimiter(const ReplyRateLimits& limits);

  // "" when a reply to `recipient` for a message from `ip` may go at `now` (it is counted), else
  // why not, a token safe for logs and the SMTP reply: "rate-limit-recipient", "rate-limit-ip",
  // "rate-limit-network" (the first limit that is reached, in that order). The recipient is
  // compared case-insensitively.
  std::string admit(std::string_view recipient, const IpAddress& ip, RateClock::time_point now);

  std::size_t keys() const;

 private:
  RateLimiter recipient_, ip_, network_;
};

// "192.0.2.0/24" for an IPv4 address, "2001:db8:1:2::/64" for an IPv6 one.
std::string network_key(const IpAddress& ip);

}  // namespace ipconfirm::responder

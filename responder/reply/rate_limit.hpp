// Backscatter defence: how many reply mails may go out, per recipient address, per recipient
// domain, per sending IP address, per sending network (IPv4 /24, IPv6 /64), per sending IPv6
// site (/48), per hour, and in total per minute.
//
// Each key has a token bucket that holds at most N tokens (N = the limit per period) and
// refills at N per period: a sender may get N replies at once, then one every period/N. A
// reply is admitted only when every bucket has a token, and only then are the tokens taken, so
// a refused reply costs nothing. A limit of 0 switches that limit off.
//
// Why so many: one IPv6 client usually holds a /64 and often a whole /48, so per address and
// per /64 alone, 300 forged messages from 300 /64s of one /48 made 300 replies; the /48 bucket
// ends that, the per-domain bucket ends the same from many networks against one victim domain,
// and the total per minute bounds what the whole service can be made to send.
//
// Memory is bounded: at most `max_keys` keys per limit. When a table is full, the key used
// least recently is forgotten to make room (its sender starts again with a full bucket):
// refusing every new key instead would let whoever fills the table stop all replies. Forgetting
// the least recently used key loses the least: its bucket has refilled the longest.
//
// Pure: the clock is a parameter; no I/O, no threads (one caller at a time).
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/ip_address.hpp"

namespace ipconfirm::responder {

using RateClock = std::chrono::steady_clock;

// One limit: a token bucket per key.
class RateLimiter {
 public:
  RateLimiter(std::size_t per_period, std::size_t max_keys,
              std::chrono::seconds period = std::chrono::hours(1));

  // True if `key` has a token at `now` (a key not in the table has a full bucket). Changes
  // nothing.
  bool has_token(const std::string& key, RateClock::time_point now) const;
  // Takes one token from `key`'s bucket (creating it full, and forgetting the least recently
  // used key if the table is full). Call after has_token said yes.
  void take(const std::string& key, RateClock::time_point now);

  std::size_t size() const { return buckets_.size(); }
  bool unlimited() const { return per_period_ == 0; }

 private:
  struct Bucket {
    double tokens = 0;
    RateClock::time_point updated;
    std::list<const std::string*>::iterator used;  // its place in used_
  };
  double tokens_at(const Bucket& b, RateClock::time_point now) const;

  std::size_t per_period_;
  std::size_t max_keys_;
  double period_seconds_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::list<const std::string*> used_;  // the keys of buckets_, most recently taken first
};

struct ReplyRateLimits {
  std::size_t per_recipient = 10;     // per recipient address (the envelope sender we reply to)
  std::size_t per_domain = 100;       // per recipient domain
  std::size_t per_ip = 30;            // per connecting IP address
  std::size_t per_network = 60;       // per /24 (IPv4) or /64 (IPv6) of the connecting address
  std::size_t per_site = 120;         // per /48 of a connecting IPv6 address
  std::size_t total_per_minute = 60;  // all replies together
  std::size_t max_keys = 100000;      // per limit
};

// The limits together.
class ReplyLimiter {
 public:
  explicit ReplyLimiter(const ReplyRateLimits& limits);

  // "" when a reply to `recipient` for a message from `ip` may go at `now` (it is counted), else
  // why not, a token safe for logs and the SMTP reply: "rate-limit-recipient",
  // "rate-limit-domain", "rate-limit-ip", "rate-limit-network", "rate-limit-site",
  // "rate-limit-total" (the first limit that is reached, in that order). The recipient and its
  // domain are compared case-insensitively.
  std::string admit(std::string_view recipient, const IpAddress& ip, RateClock::time_point now);

  std::size_t keys() const;

 private:
  RateLimiter recipient_, domain_, ip_, network_, site_, total_;
};

// "192.0.2.0/24" for an IPv4 address, "2001:db8:1:2::/64" for an IPv6 one.
std::string network_key(const IpAddress& ip);
// "2001:db8:1::/48" for an IPv6 address; "" for an IPv4 one (its /24 is its network).
std::string site_key(const IpAddress& ip);

}  // namespace ipconfirm::responder

// The retry schedule for replies that could not be delivered yet: exponential backoff with a
// cap, random jitter so that many entries failing together do not retry together, and a
// lifetime after which the reply is given up (RFC 5321 §4.5.4.1 asks for at least 4-5 days).
//
// Pure: no clock and no random source of its own; the caller passes `now` and a number in
// [0,1). It does not store anything (the spool does) and does not classify errors (a permanent
// 5xx failure is never retried; that decision belongs to the delivery code).
#pragma once

#include <cstdint>
#include <optional>

namespace ipconfirm::responder {

struct RetryPolicy {
  std::int64_t first = 60;            // seconds after the first failure. Default: 60.
  std::int64_t max_delay = 3600;      // the longest wait between attempts. Default: 1 hour.
  std::int64_t lifetime = 5 * 86400;  // give up this long after `created`. Default: 5 days.
  double jitter = 0.2;                // +-20 % of the delay. Default: 0.2; clamped to [0, 1].
};

// Seconds to wait after the n-th failed attempt (n = attempts >= 1; 0 or less counts as 1):
// first * 2^(n-1), capped at max_delay, then multiplied by 1 + jitter * (2 * random01 - 1) and
// capped again, so the result lies in [delay * (1 - jitter), min(delay * (1 + jitter),
// max_delay)] and is at least 1. A wait that would pass the deadline (created + lifetime) is
// shortened to end at it, so the last attempt is made at the deadline. Returns nullopt when
// now >= created + lifetime (give up). random01 outside [0,1) (or NaN) is clamped into it;
// non-positive first/max_delay count as 1.
std::optional<std::int64_t> next_retry(const RetryPolicy& policy, int attempts,
                                       std::int64_t created, std::int64_t now, double random01);

}  // namespace ipconfirm::responder

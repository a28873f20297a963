#include "responder/queue/retry.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ipconfirm::responder {

std::optional<std::int64_t> next_retry(const RetryPolicy& policy, int attempts,
                                       std::int64_t created, std::int64_t now, double random01) {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  const std::int64_t lifetime = std::max<std::int64_t>(policy.lifetime, 0);
  // Saturating: a created time near the int64 limit must not wrap the deadline.
  const std::int64_t deadline = created > kMax - lifetime ? kMax : created + lifetime;
  if (now >= deadline) return std::nullopt;

  const std::int64_t first = std::max<std::int64_t>(policy.first, 1);
  const std::int64_t cap = std::max<std::int64_t>(policy.max_delay, 1);
  std::int64_t delay = std::min(first, cap);
  // Doubling stops at the cap and never multiplies past it, so it cannot overflow.
  for (int n = 1; n < attempts && delay < cap; ++n) delay = delay > cap / 2 ? cap : delay * 2;

  double jitter = std::isnan(policy.jitter) ? 0.0 : std::clamp(policy.jitter, 0.0, 1.0);
  double r = std::isnan(random01) ? 0.5 : std::clamp(random01, 0.0, 1.0);
  double factor = 1.0 + jitter * (2.0 * r - 1.0);
  double jittered = std::round(static_cast<double>(delay) * factor);
  // Compared as double first: the cast of a value beyond the int64 range is undefined.
  std::int64_t wait = jittered >= static_cast<double>(cap)
                          ? cap
                          : std::max<std::int64_t>(static_cast<std::int64_t>(jittered), 1);

  return std::min(wait, deadline - now);
}

}  // namespace ipconfirm::responder

#include "responder/queue/retry.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

using namespace ipconfirm::responder;

namespace {
constexpr std::int64_t kCreated = 1700000000;
}

TEST_CASE("retry: exponential from first, capped at max_delay (no jitter at r = 0.5)") {
  RetryPolicy p;  // 60 s, 1 h cap, 5 days, 20 %
  const std::int64_t now = kCreated + 10;
  CHECK(next_retry(p, 1, kCreated, now, 0.5) == 60);
  CHECK(next_retry(p, 2, kCreated, now, 0.5) == 120);
  CHECK(next_retry(p, 3, kCreated, now, 0.5) == 240);
  CHECK(next_retry(p, 6, kCreated, now, 0.5) == 1920);
  CHECK(next_retry(p, 7, kCreated, now, 0.5) == 3600);
  CHECK(next_retry(p, 100, kCreated, now, 0.5) == 3600);
  CHECK(next_retry(p, std::numeric_limits<int>::max(), kCreated, now, 0.5) == 3600);
  // attempts below 1 count as the first failure.
  CHECK(next_retry(p, 0, kCreated, now, 0.5) == 60);
  CHECK(next_retry(p, -3, kCreated, now, 0.5) == 60);
}

TEST_CASE("retry: the schedule is monotone in attempts for a fixed random draw") {
  RetryPolicy p;
  for (double r : {0.0, 0.25, 0.5, 0.999}) {
    std::int64_t previous = 0;
    for (int n = 1; n <= 64; ++n) {
      auto d = next_retry(p, n, kCreated, kCreated, r);
      REQUIRE(d.has_value());
      INFO("r " << r << " n " << n);
      CHECK(*d >= previous);
      CHECK(*d <= p.max_delay);
      previous = *d;
    }
  }
}

TEST_CASE("retry: jitter stays within +-jitter of the delay and never passes the cap") {
  RetryPolicy p;
  CHECK(next_retry(p, 1, kCreated, kCreated, 0.0) == 48);   // 60 * 0.8
  CHECK(next_retry(p, 1, kCreated, kCreated, 0.75) == 66);  // 60 * 1.1
  CHECK(*next_retry(p, 1, kCreated, kCreated, 0.9999999) == 72);
  CHECK(next_retry(p, 20, kCreated, kCreated, 0.0) == 2880);     // 3600 * 0.8
  CHECK(next_retry(p, 20, kCreated, kCreated, 0.9999) == 3600);  // capped, not 4320
  bool saw_low = false, saw_high = false;
  for (int n = 1; n <= 10; ++n) {
    const double base = std::min(60.0 * std::pow(2.0, n - 1), 3600.0);
    for (int i = 0; i < 1000; ++i) {
      double r = i / 1000.0;
      auto d = next_retry(p, n, kCreated, kCreated, r);
      REQUIRE(d.has_value());
      INFO("n " << n << " r " << r << " -> " << *d);
      CHECK(static_cast<double>(*d) >= std::floor(base * 0.8));
      CHECK(static_cast<double>(*d) <= std::min(std::ceil(base * 1.2), 3600.0));
      if (n == 1 && *d < 55) saw_low = true;
      if (n == 1 && *d > 65) saw_high = true;
    }
  }
  CHECK(saw_low);
  CHECK(saw_high);
  p.jitter = 0;
  CHECK(next_retry(p, 1, kCreated, kCreated, 0.0) == 60);
  CHECK(next_retry(p, 1, kCreated, kCreated, 0.99) == 60);
}

TEST_CASE("retry: gives up after the lifetime; the last wait ends at the deadline") {
  RetryPolicy p;
  const std::int64_t deadline = kCreated + p.lifetime;
  CHECK_FALSE(next_retry(p, 50, kCreated, deadline, 0.5).has_value());
  CHECK_FALSE(next_retry(p, 50, kCreated, deadline + 86400, 0.5).has_value());
  CHECK(next_retry(p, 50, kCreated, deadline - 1, 0.5) == 1);
  CHECK(next_retry(p, 50, kCreated, deadline - 100, 0.5) == 100);
  CHECK(next_retry(p, 1, kCreated, deadline - 100, 0.5) == 60);
  p.lifetime = 0;
  CHECK_FALSE(next_retry(p, 1, kCreated, kCreated, 0.5).has_value());
}

TEST_CASE("retry: a whole schedule over the default five days") {
  RetryPolicy p;
  std::int64_t now = kCreated;
  int attempts = 0;
  std::int64_t last_attempt = now;
  for (int guard = 0; guard < 1000; ++guard) {
    ++attempts;  // an attempt at `now` failed
    last_attempt = now;
    auto wait = next_retry(p, attempts, kCreated, now, (attempts % 7) / 7.0);
    if (!wait) break;
    CHECK(*wait >= 1);
    now += *wait;
  }
  CHECK(last_attempt == kCreated + p.lifetime);  // one last try exactly at the deadline
  // 60+120+...+1920 (about 1 h) then about hourly for the rest of 5 days: 120 +- 25 attempts.
  CHECK(attempts > 100);
  CHECK(attempts < 150);
}

TEST_CASE("retry: odd inputs are clamped instead of misbehaving") {
  RetryPolicy p;
  CHECK(next_retry(p, 1, kCreated, kCreated, -5.0) == 48);
  CHECK(next_retry(p, 1, kCreated, kCreated, 7.0) == 72);
  CHECK(next_retry(p, 1, kCreated, kCreated, std::nan("")) == 60);
  RetryPolicy zero{0, 0, 86400, 0.2};
  CHECK(next_retry(zero, 5, kCreated, kCreated, 0.5) == 1);
  RetryPolicy wild{60, std::numeric_limits<std::int64_t>::max(),
                   std::numeric_limits<std::int64_t>::max(), 5.0};  // jitter clamped to 1
  auto d = next_retry(wild, 200, kCreated, kCreated, 0.9999);
  REQUIRE(d.has_value());
  CHECK(*d > 0);
  CHECK(next_retry(wild, 1, kCreated, kCreated, 0.0) == 1);  // 60 * 0, at least 1
  // The deadline saturates at the int64 limit instead of wrapping into the past.
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  CHECK(next_retry(p, 1, kMax - 10, kMax - 20, 0.5) == 20);
}

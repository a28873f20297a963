// The reply rate limits, with a clock that the test moves by hand.
#include <doctest/doctest.h>

#include <cstdio>

#include "responder/reply/rate_limit.hpp"

#include "config/config.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;
using std::chrono::seconds;

namespace {

IpAddress ip(const char* text) {
  auto a = IpAddress::parse(text);
  REQUIRE(a);
  return *a;
}

const RateClock::time_point t0 = RateClock::time_point{} + std::chrono::hours(1000);

// The three original limits; the newer ones (domain, site, total) off unless a test sets them.
ReplyRateLimits limits(std::size_t rcpt, std::size_t per_ip, std::size_t net,
                       std::size_t keys = 1000) {
  ReplyRateLimits l;
  l.per_recipient = rcpt;
  l.per_ip = per_ip;
  l.per_network = net;
  l.per_domain = 0;
  l.per_site = 0;
  l.total_per_minute = 0;
  l.max_keys = keys;
  return l;
}

}  // namespace

TEST_CASE("rate limit: a bucket gives N at once, then refills at N per hour") {
  RateLimiter r(3, 100);
  for (int i = 0; i < 3; ++i) {
    CHECK(r.has_token("k", t0));
    r.take("k", t0);
  }
  CHECK_FALSE(r.has_token("k", t0));
  CHECK_FALSE(r.has_token("k", t0 + seconds(1199)));  // one token takes 3600/3 s
  CHECK(r.has_token("k", t0 + seconds(1200)));
  r.take("k", t0 + seconds(1200));
  CHECK_FALSE(r.has_token("k", t0 + seconds(1200)));
  // Long idle: full again, never more than N.
  const auto later = t0 + std::chrono::hours(10);
  for (int i = 0; i < 3; ++i) {
    CHECK(r.has_token("k", later));
    r.take("k", later);
  }
  CHECK_FALSE(r.has_token("k", later));
  // Other keys are independent.
  CHECK(r.has_token("other", later));
}

TEST_CASE("rate limit: a limit of 0 is no limit") {
  RateLimiter r(0, 1);
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(r.has_token("k" + std::to_string(i), t0));
    r.take("k" + std::to_string(i), t0);
  }
  CHECK(r.size() == 0);
}

TEST_CASE("rate limit: per recipient address, case-insensitive") {
  ReplyLimiter l(limits(2, 0, 0));
  CHECK(l.admit("alice@sender.test", ip("192.0.2.1"), t0) == "");
  CHECK(l.admit("Alice@Sender.TEST", ip("192.0.2.2"), t0) == "");
  CHECK(l.admit("alice@sender.test", ip("198.51.100.1"), t0) == "rate-limit-recipient");
  CHECK(l.admit("bob@sender.test", ip("192.0.2.1"), t0) == "");
}

TEST_CASE("rate limit: per sending IP") {
  ReplyLimiter l(limits(0, 2, 0));
  CHECK(l.admit("a@x.test", ip("192.0.2.1"), t0) == "");
  CHECK(l.admit("b@x.test", ip("192.0.2.1"), t0) == "");
  CHECK(l.admit("c@x.test", ip("192.0.2.1"), t0) == "rate-limit-ip");
  CHECK(l.admit("c@x.test", ip("192.0.2.2"), t0) == "");
  CHECK(l.admit("d@x.test", ip("2001:db8::1"), t0) == "");
  CHECK(l.admit("e@x.test", ip("2001:db8::1"), t0) == "");
  CHECK(l.admit("f@x.test", ip("2001:db8::1"), t0) == "rate-limit-ip");
  CHECK(l.admit("f@x.test", ip("2001:db8::2"), t0) == "");
}

TEST_CASE("rate limit: per /24 and per IPv6 /64") {
  ReplyLimiter l(limits(0, 0, 3));
  CHECK(l.admit("a@x.test", ip("192.0.2.1"), t0) == "");
  CHECK(l.admit("a@x.test", ip("192.0.2.77"), t0) == "");
  CHECK(l.admit("a@x.test", ip("192.0.2.254"), t0) == "");
  CHECK(l.admit("a@x.test", ip("192.0.2.9"), t0) == "rate-limit-network");
  CHECK(l.admit("a@x.test", ip("192.0.3.9"), t0) == "");
  CHECK(l.admit("a@x.test", ip("2001:db8:1:2::1"), t0) == "");
  CHECK(l.admit("a@x.test", ip("2001:db8:1:2:ffff::5"), t0) == "");
  CHECK(l.admit("a@x.test", ip("2001:db8:1:2:1:2:3:4"), t0) == "");
  CHECK(l.admit("a@x.test", ip("2001:db8:1:2::99"), t0) == "rate-limit-network");
  CHECK(l.admit("a@x.test", ip("2001:db8:1:3::1"), t0) == "");
  CHECK(network_key(ip("192.0.2.77")) == "192.0.2.0/24");
  CHECK(network_key(ip("2001:db8:1:2:ffff::5")) == "2001:db8:1:2::/64");
}

TEST_CASE("rate limit: a refused reply takes no token from the other limits") {
  ReplyLimiter l(limits(1, 2, 0));
  CHECK(l.admit("a@x.test", ip("192.0.2.1"), t0) == "");
  // Refused by the recipient limit: the IP's second token stays.
  CHECK(l.admit("a@x.test", ip("192.0.2.1"), t0) == "rate-limit-recipient");
  CHECK(l.admit("a@x.test", ip("192.0.2.1"), t0) == "rate-limit-recipient");
  CHECK(l.admit("b@x.test", ip("192.0.2.1"), t0) == "");
  CHECK(l.admit("c@x.test", ip("192.0.2.1"), t0) == "rate-limit-ip");
}

TEST_CASE("rate limit: memory is bounded; a full table forgets the least recently used key") {
  ReplyLimiter l(limits(1, 0, 0, 100));
  for (int i = 0; i < 100; ++i)
    REQUIRE(l.admit("u" + std::to_string(i) + "@x.test", ip("192.0.2.1"), t0) == "");
  CHECK(l.keys() == 100);
  // A full table does not refuse everyone new (which would let whoever fills it stop every
  // reply): each new key pushes out the key used least recently.
  for (int i = 100; i < 1000; ++i)
    CHECK(l.admit("u" + std::to_string(i) + "@x.test", ip("192.0.2.1"), t0) == "");
  CHECK(l.keys() == 100);
  CHECK(l.admit("u999@x.test", ip("192.0.2.1"), t0) == "rate-limit-recipient");  // still known
  CHECK(l.admit("u0@x.test", ip("192.0.2.1"), t0) == "");  // forgotten long ago
  CHECK(l.keys() == 100);
}

TEST_CASE("rate limit: the key forgotten is the one used least recently, not the oldest") {
  RateLimiter r(2, 3);  // two tokens, one more per 1800 s
  r.take("a", t0);
  r.take("b", t0 + seconds(1));
  r.take("c", t0 + seconds(2));
  r.take("a", t0 + seconds(3));  // a, the oldest key, is now the most recently used
  r.take("d", t0 + seconds(4));  // the table is full: b goes
  CHECK(r.size() == 3);
  const auto t = t0 + seconds(5);
  CHECK_FALSE(r.has_token("a", t));  // both of a's tokens are used: remembered
  CHECK(r.has_token("b", t));        // forgotten: a full bucket again
  r.take("c", t);
  CHECK_FALSE(r.has_token("c", t));  // c's second token: c was remembered
}

TEST_CASE("rate limit: per IPv6 /48: 300 /64s of one site get the site's limit") {
  ReplyRateLimits lim = limits(10, 30, 60);
  lim.per_site = 20;
  lim.per_domain = 0;
  lim.total_per_minute = 0;
  ReplyLimiter l(lim);
  int sent = 0;
  for (int n = 0; n < 300; ++n) {
    char addr[64];
    std::snprintf(addr, sizeof addr, "2001:db8:1:%x::1", n);
    const std::string r = l.admit("u" + std::to_string(n) + "@victim.test", ip(addr), t0);
    if (r.empty()) ++sent;
    if (n >= 20) CHECK(r == "rate-limit-site");
  }
  CHECK(sent == 20);
  CHECK(l.admit("u@victim.test", ip("2001:db8:2::1"), t0) == "");  // another /48
  CHECK(l.admit("u@victim.test", ip("192.0.2.1"), t0) == "");      // IPv4 has no site level
  CHECK(site_key(ip("2001:db8:1:ffff:1::5")) == "2001:db8:1::/48");
  CHECK(site_key(ip("192.0.2.1")) == "");
}

TEST_CASE("rate limit: per recipient domain, from anywhere, case-insensitive") {
  ReplyRateLimits lim = limits(10, 30, 60);
  lim.per_domain = 3;
  ReplyLimiter l(lim);
  CHECK(l.admit("a@victim.test", ip("192.0.2.1"), t0) == "");
  CHECK(l.admit("b@Victim.TEST", ip("198.51.100.1"), t0) == "");
  CHECK(l.admit("c@victim.test", ip("2001:db8:5::1"), t0) == "");
  CHECK(l.admit("d@victim.test", ip("203.0.113.1"), t0) == "rate-limit-domain");
  CHECK(l.admit("d@sub.victim.test", ip("203.0.113.1"), t0) == "");  // another domain
  CHECK(l.admit("d@victim.test", ip("203.0.113.1"), t0 + std::chrono::minutes(20)) == "");
}

TEST_CASE("rate limit: a cap on all replies per minute") {
  ReplyRateLimits lim = limits(0, 0, 0);
  lim.per_domain = 0;
  lim.per_site = 0;
  lim.total_per_minute = 5;
  ReplyLimiter l(lim);
  for (int n = 0; n < 5; ++n)
    CHECK(l.admit("u@d" + std::to_string(n) + ".test", ip("192.0.2.1"), t0) == "");
  CHECK(l.admit("u@other.test", ip("198.51.100.1"), t0) == "rate-limit-total");
  CHECK(l.admit("u@other.test", ip("198.51.100.1"), t0 + seconds(12)) == "");  // one per 60/5 s
  CHECK(l.admit("v@other.test", ip("198.51.100.1"), t0 + seconds(12)) == "rate-limit-total");
}

TEST_CASE("rate limit: the reasons come in a fixed order, and a refusal takes nothing") {
  ReplyRateLimits lim = limits(1, 1, 1);
  lim.per_domain = 1;
  lim.per_site = 1;
  lim.total_per_minute = 1;
  ReplyLimiter l(lim);
  CHECK(l.admit("a@x.test", ip("2001:db8::1"), t0) == "");
  CHECK(l.admit("a@x.test", ip("2001:db8::1"), t0) == "rate-limit-recipient");
  CHECK(l.admit("b@x.test", ip("2001:db8::1"), t0) == "rate-limit-domain");
  CHECK(l.admit("b@y.test", ip("2001:db8::1"), t0) == "rate-limit-ip");
  CHECK(l.admit("b@y.test", ip("2001:db8::2"), t0) == "rate-limit-network");
  CHECK(l.admit("b@y.test", ip("2001:db8:0:1::2"), t0) == "rate-limit-site");
  CHECK(l.admit("b@y.test", ip("2001:db8:1::2"), t0) == "rate-limit-total");
}

TEST_CASE("rate limit: the [reply] keys load strictly, with safe defaults") {
  const std::string base =
      "hostname = \"mx.example.test\"\ndomains = [\"example.test\"]\n"
      "[smtp]\nlisten = [\"127.0.0.1:2525\"]\n";
  config::LoadResult r = config::parse_config(base, "t.toml");
  REQUIRE_MESSAGE(r.config, r.error);
  CHECK(r.config->reply.mode == config::ReplyMode::mail);
  CHECK(r.config->reply.max_received == 30);
  CHECK(r.config->reply.max_per_recipient_per_hour == 10);
  CHECK(r.config->reply.max_per_ip_per_hour == 30);
  CHECK(r.config->reply.max_per_network_per_hour == 60);
  CHECK(r.config->reply.max_per_domain_per_hour == 100);
  CHECK(r.config->reply.max_per_site_per_hour == 120);
  CHECK(r.config->reply.max_total_per_minute == 60);
  CHECK(r.config->reply.rate_limit_entries == 100000);

  r = config::parse_config(base +
                               "[reply]\nmode = \"transcript\"\nmax_received = 7\n"
                               "max_per_recipient_per_hour = 0\nmax_per_ip_per_hour = 5\n"
                               "max_per_network_per_hour = 9\nrate_limit_entries = 500\n"
                               "max_per_domain_per_hour = 11\nmax_per_site_per_hour = 0\n"
                               "max_total_per_minute = 13\n",
                           "t.toml");
  REQUIRE_MESSAGE(r.config, r.error);
  CHECK(r.config->reply.mode == config::ReplyMode::transcript);
  CHECK(r.config->reply.max_received == 7);
  CHECK(r.config->reply.max_per_recipient_per_hour == 0);
  CHECK(r.config->reply.max_per_ip_per_hour == 5);
  CHECK(r.config->reply.max_per_network_per_hour == 9);
  CHECK(r.config->reply.rate_limit_entries == 500);
  CHECK(r.config->reply.max_per_domain_per_hour == 11);
  CHECK(r.config->reply.max_per_site_per_hour == 0);
  CHECK(r.config->reply.max_total_per_minute == 13);

  r = config::parse_config(base + "[reply]\nmode = \"none\"\n", "t.toml");
  CHECK_FALSE(r.config);
  CHECK(r.error == "t.toml:6: key 'reply.mode': must be \"mail\" or \"transcript\"");
  r = config::parse_config(base + "[reply]\nmax_per_hour = 3\n", "t.toml");
  CHECK_FALSE(r.config);
  CHECK(r.error == "t.toml:6: key 'reply.max_per_hour': unknown key");
  r = config::parse_config(base + "[reply]\nmax_per_ip_per_hour = -1\n", "t.toml");
  CHECK_FALSE(r.config);
}

// What a reload changes: the parts it rebuilds, and the keys that wait for a restart.
#include <doctest/doctest.h>

#include "config/config.hpp"
#include "core/embedded_files.hpp"
#include "responder/reload.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;

namespace {
config::Config base() {
  auto r = config::parse_config(embedded_files().at("ipconfirm.toml"), "built-in");
  REQUIRE(r.config);
  return *r.config;
}
}  // namespace

TEST_CASE("reload plan: the same config rebuilds nothing") {
  auto running = base();
  auto loaded = base();
  auto plan = plan_reload(running, loaded);
  CHECK(plan.kept.empty());
  CHECK(!plan.new_resolver);
  CHECK(!plan.new_deliverer);
  CHECK(!plan.new_limiter);
}

TEST_CASE("reload plan: SMTP limits, listeners, TLS, templates and HTTP need no new parts") {
  auto running = base();
  auto loaded = base();
  loaded.smtp.max_recipients = 3;
  loaded.smtp.listen.pop_back();
  loaded.smtp.tls_cert = "/c.pem";
  loaded.smtp.tls_key = "/k.pem";
  loaded.reply.templates = "/t";
  loaded.reply.mode = config::ReplyMode::transcript;
  loaded.domains.push_back("example.org");
  loaded.http.listen.push_back(*config::parse_endpoint("127.0.0.1:8025"));
  auto plan = plan_reload(running, loaded);
  CHECK(plan.kept.empty());
  CHECK(!plan.new_resolver);
  CHECK(!plan.new_deliverer);
  CHECK(!plan.new_limiter);
  CHECK(loaded.smtp.max_recipients == 3);  // the loaded values stand
}

TEST_CASE("reload plan: [dns] gives a new resolver, and so a new deliverer (MX lookups)") {
  auto running = base();
  auto loaded = base();
  loaded.dns.servers = {"127.0.0.1:5353"};
  auto plan = plan_reload(running, loaded);
  CHECK(plan.new_resolver);
  CHECK(plan.new_deliverer);
  loaded = base();
  loaded.dns.dnsbl = {"bl.example.test"};
  CHECK(plan_reload(running, loaded).new_resolver);
}

TEST_CASE("reload plan: delivery, retry and hostname give a new deliverer only") {
  auto running = base();
  for (int i = 0; i < 3; ++i) {
    auto loaded = base();
    if (i == 0) loaded.delivery.smarthost_tls = config::SmarthostTls::required;
    if (i == 1) loaded.queue.retry_first = 5;
    if (i == 2) loaded.hostname = "mx2.example.test";
    auto plan = plan_reload(running, loaded);
    CHECK(plan.new_deliverer);
    CHECK(!plan.new_resolver);
    CHECK(!plan.new_limiter);
  }
}

TEST_CASE("reload plan: a reply rate limit starts the limits afresh") {
  auto running = base();
  auto loaded = base();
  loaded.reply.max_per_ip_per_hour = 1;
  CHECK(plan_reload(running, loaded).new_limiter);
  loaded = base();
  loaded.reply.rate_limit_entries = 500;
  CHECK(plan_reload(running, loaded).new_limiter);
}

TEST_CASE("reload plan: the spool's folder and size wait for a restart") {
  auto running = base();
  auto loaded = base();
  loaded.queue.dir = "/elsewhere";
  loaded.queue.max_entries = 5;
  loaded.smtp.max_recipients = 4;
  auto plan = plan_reload(running, loaded);
  REQUIRE(plan.kept.size() == 2);
  CHECK(plan.kept[0].key == "queue.dir");
  CHECK(plan.kept[0].running == "./spool");
  CHECK(plan.kept[0].loaded == "/elsewhere");
  CHECK(plan.kept[1].key == "queue.max_entries");
  CHECK(plan.kept[1].running == "10000");
  CHECK(plan.kept[1].loaded == "5");
  CHECK(loaded.queue.dir == "./spool");
  CHECK(loaded.queue.max_entries == 10000);
  CHECK(loaded.smtp.max_recipients == 4);
  CHECK(!plan.new_deliverer);  // the kept keys are not a change
}

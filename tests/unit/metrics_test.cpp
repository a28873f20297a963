// /metrics: the whole document follows the naming rules, carries the counters it is given, and
// the age of a spool entry is read from its id.
#include <doctest/doctest.h>

#include <ctime>
#include <set>
#include <sstream>

#include "responder/metrics.hpp"
#include "responder/queue/spool.hpp"
#include "spool_test_support.hpp"

using namespace ipconfirm::responder;

namespace {

// name -> type, from the # TYPE lines; every sample must belong to a declared family.
struct Parsed {
  std::map<std::string, std::string> types;
  std::map<std::string, std::string> samples;  // "name{labels}" -> value
  std::vector<std::string> problems;
};

Parsed parse(const std::string& text) {
  Parsed p;
  std::istringstream in(text);
  std::string line;
  std::set<std::string> helped;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      helped.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      auto name = line.substr(7, line.find(' ', 7) - 7);
      p.types[name] = line.substr(line.find(' ', 7) + 1);
      if (!helped.count(name)) p.problems.push_back("no HELP for " + name);
      continue;
    }
    auto space = line.rfind(' ');
    std::string key = line.substr(0, space);
    std::string name = key.substr(0, key.find('{'));
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (!p.types.count(family) && family.size() > std::string(suffix).size() &&
          family.substr(family.size() - std::string(suffix).size()) == suffix)
        family = family.substr(0, family.size() - std::string(suffix).size());
    if (!p.types.count(family)) p.problems.push_back("undeclared " + name);
    p.samples[key] = line.substr(space + 1);
  }
  return p;
}

}  // namespace

TEST_CASE("metrics: every family is declared, named by the conventions, and typed") {
  ServiceCounters c;
  c.messages_report = 5;
  c.replies_queued = 3;
  c.suppressed["auto-submitted"] = 2;
  c.tempfailed["queue_full"] = 1;
  c.rate_limited["ip"] = 4;
  c.delivered = 3;
  c.dot_to_250.observe(0.004);
  c.delivery.observe(0.2);
  c.reloads_failed = 1;
  c.last_reload_ok = false;
  MetricsSnapshot m;
  m.service = &c;
  m.version = "9.9.9";
  m.smtp.connections = 10;
  m.smtp.ended(ipconfirm::smtp::SessionEnd::quit);
  m.smtp.ended(ipconfirm::smtp::SessionEnd::connection_limit);
  m.smtp.starttls_ok = 2;
  m.dns_queries = 12;
  m.http.responses[200] = 6;
  m.queue_entries = 2;
  m.queue_capacity = 100;
  m.queue_oldest_age = 1.5;
  Parsed p = parse(render_metrics(m));
  CHECK(p.problems.empty());
  for (const auto& [name, type] : p.types) {
    CHECK_MESSAGE(name.rfind("ipconfirm_", 0) == 0, name);
    const bool total = name.size() > 6 && name.substr(name.size() - 6) == "_total";
    CHECK_MESSAGE(total == (type == "counter"), name);
    if (type == "histogram") CHECK_MESSAGE(name.substr(name.size() - 8) == "_seconds", name);
    for (char ch : name) CHECK_MESSAGE((std::islower(ch) || std::isdigit(ch) || ch == '_'), name);
  }
  CHECK(p.samples.at("ipconfirm_build_info{version=\"9.9.9\"}") == "1");
  CHECK(p.samples.at("ipconfirm_messages_accepted_total{kind=\"report\"}") == "5");
  CHECK(p.samples.at("ipconfirm_replies_queued_total") == "3");
  CHECK(p.samples.at("ipconfirm_replies_suppressed_total{reason=\"auto-submitted\"}") == "2");
  CHECK(p.samples.at("ipconfirm_messages_tempfailed_total{reason=\"queue_full\"}") == "1");
  CHECK(p.samples.at("ipconfirm_rate_limit_hits_total{limit=\"ip\"}") == "4");
  CHECK(p.samples.at("ipconfirm_rate_limit_hits_total{limit=\"recipient\"}") == "0");
  CHECK(p.samples.at("ipconfirm_rate_limit_hits_total{limit=\"connections\"}") == "1");
  CHECK(p.samples.at("ipconfirm_smtp_sessions_total{outcome=\"quit\"}") == "1");
  CHECK(p.samples.at("ipconfirm_smtp_sessions_total{outcome=\"timeout\"}") == "0");
  CHECK(p.samples.at("ipconfirm_smtp_tls_handshakes_total{mode=\"starttls\",result=\"ok\"}") ==
        "2");
  CHECK(p.samples.at("ipconfirm_smtp_dot_to_250_seconds_bucket{le=\"0.005\"}") == "1");
  CHECK(p.samples.at("ipconfirm_smtp_dot_to_250_seconds_bucket{le=\"0.0025\"}") == "0");
  CHECK(p.samples.at("ipconfirm_reply_delivery_seconds_count") == "1");
  CHECK(p.samples.at("ipconfirm_queue_oldest_age_seconds") == "1.5");
  CHECK(p.samples.at("ipconfirm_queue_capacity") == "100");
  CHECK(p.samples.at("ipconfirm_dns_queries_total") == "12");
  CHECK(p.samples.at("ipconfirm_http_responses_total{code=\"200\"}") == "6");
  CHECK(p.samples.at("ipconfirm_config_reloads_total{result=\"failed\"}") == "1");
  CHECK(p.samples.at("ipconfirm_config_last_reload_successful") == "0");
}

TEST_CASE("metrics: no counters yet still gives a valid document") {
  Parsed p = parse(render_metrics(MetricsSnapshot{}));
  CHECK(p.problems.empty());
  CHECK(p.samples.at("ipconfirm_replies_delivered_total") == "0");
  CHECK(p.samples.at("ipconfirm_smtp_dot_to_250_seconds_bucket{le=\"+Inf\"}") == "0");
}

TEST_CASE("metrics: a spool id tells when its entry was made") {
  auto t = spool_id_time("001796524565.612892.18341");
  REQUIRE(t);
  CHECK(*t == doctest::Approx(1796524565.612892));
  for (const char* bad : {"", "x", "1.2.3", "001796524565.61289.1", "a01796524565.612892.1",
                          ".612892.1", "001796524565"})
    CHECK_MESSAGE(!spool_id_time(bad), bad);
}

TEST_CASE("metrics: the ids the spool hands out read back as the time they were made") {
  test::TempDir dir;
  SpoolOpenReport report;
  std::string error;
  auto spool = Spool::open({dir.path() / "spool", 10}, report, error);
  REQUIRE_MESSAGE(spool, error);
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  std::vector<QueueEntry> one(1);
  one[0].recipient = "a@example.test";
  Spool::Batch b = spool->reserve(std::move(one), now);
  REQUIRE(b.results[0].error == SpoolError::none);
  auto t = spool_id_time(b.results[0].id);
  REQUIRE(t);
  CHECK(*t >= static_cast<double>(now));
  CHECK(*t < static_cast<double>(now + 1));
}

// The Prometheus text format: values, escapes, histogram buckets, and a whole small document.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "responder/http/prometheus.hpp"

using namespace ipconfirm::responder;

TEST_CASE("prometheus: sample values") {
  CHECK(format_metric_value(0) == "0");
  CHECK(format_metric_value(3) == "3");
  CHECK(format_metric_value(-2) == "-2");
  CHECK(format_metric_value(0.25) == "0.25");
  CHECK(format_metric_value(0.001) == "0.001");
  CHECK(format_metric_value(1796524564.4109433) == "1796524564.4109433");
  CHECK(format_metric_value(1e20) == "1e+20");
  CHECK(format_metric_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_metric_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(format_metric_value(std::nan("")) == "NaN");
}

TEST_CASE("prometheus: label values and help text are escaped") {
  CHECK(escape_label_value("plain") == "plain");
  CHECK(escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  CHECK(escape_help("a\\b\nc \"q\"") == "a\\\\b\\nc \"q\"");
}

TEST_CASE("prometheus: a histogram puts a value on its bound into that bucket") {
  Histogram h({0.1, 1, 10});
  for (double v : {0.05, 0.1, 0.5, 1.0, 10.0, 11.0, 1e9}) h.observe(v);
  CHECK(h.buckets() == std::vector<std::uint64_t>{2, 2, 1, 2});
  CHECK(h.count() == 7);
  CHECK(h.sum() == doctest::Approx(0.05 + 0.1 + 0.5 + 1 + 10 + 11 + 1e9));
}

TEST_CASE("prometheus: a document with a counter family, a gauge and a histogram") {
  PrometheusText out;
  out.family("x_requests_total", MetricType::counter, "Requests, by code.\nSecond line.");
  out.sample("x_requests_total", std::uint64_t{3}, {{"code", "200"}});
  out.sample("x_requests_total", std::uint64_t{1}, {{"code", "4\"04"}, {"path", "/a\\b"}});
  out.gauge("x_queue_entries", "Entries.", 7);
  Histogram h({0.5, 1});
  h.observe(0.25);
  h.observe(0.75);
  h.observe(2);
  out.family("x_wait_seconds", MetricType::histogram, "Waits.");
  out.histogram("x_wait_seconds", h, {{"kind", "a"}});
  CHECK(out.text() ==
        "# HELP x_requests_total Requests, by code.\\nSecond line.\n"
        "# TYPE x_requests_total counter\n"
        "x_requests_total{code=\"200\"} 3\n"
        "x_requests_total{code=\"4\\\"04\",path=\"/a\\\\b\"} 1\n"
        "# HELP x_queue_entries Entries.\n"
        "# TYPE x_queue_entries gauge\n"
        "x_queue_entries 7\n"
        "# HELP x_wait_seconds Waits.\n"
        "# TYPE x_wait_seconds histogram\n"
        "x_wait_seconds_bucket{kind=\"a\",le=\"0.5\"} 1\n"
        "x_wait_seconds_bucket{kind=\"a\",le=\"1\"} 2\n"
        "x_wait_seconds_bucket{kind=\"a\",le=\"+Inf\"} 3\n"
        "x_wait_seconds_sum{kind=\"a\"} 3\n"
        "x_wait_seconds_count{kind=\"a\"} 3\n");
}

TEST_CASE("prometheus: counters keep their full 64-bit value") {
  PrometheusText out;
  out.counter("x_total", "Big.", 18446744073709551615ull);
  CHECK(out.text().find("x_total 18446744073709551615\n") != std::string::npos);
}

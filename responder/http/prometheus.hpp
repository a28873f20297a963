// The Prometheus text exposition format (version 0.0.4, the one every Prometheus server and
// `promtool check metrics` read): `# HELP` and `# TYPE` lines, then one line per sample,
// `name{label="value",...} value`. And a histogram with fixed buckets that is cheap to observe.
//
// What this file does not do: it keeps no registry and no global state, and it is not
// thread-safe: the caller owns its counters (ipconfirm keeps them on the event loop) and writes
// them out on request. It does not check metric names beyond what a test can: the caller uses
// names that follow Prometheus's conventions (`ipconfirm_..._total` for counters, units such as
// `_seconds` in the name).
//
// Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ipconfirm::responder {

// Counts observations into buckets with fixed upper bounds (`le`, inclusive), as Prometheus
// histograms do. observe() is a short loop over the bounds and three additions.
class Histogram {
 public:
  // `upper_bounds` ascending and finite; the +Inf bucket is implied.
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);

  const std::vector<double>& bounds() const { return bounds_; }
  // Observations per bucket, not cumulative; one more than bounds() (the last is above them all).
  const std::vector<std::uint64_t>& buckets() const { return buckets_; }
  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> buckets_;
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

enum class MetricType { counter, gauge, histogram };

// Builds one exposition document. Call family() once per metric, then its samples.
class PrometheusText {
 public:
  // `# HELP name help` and `# TYPE name type`.
  void family(std::string_view name, MetricType type, std::string_view help);
  // One sample line. `name` is the family's name (plus `_total` etc. where the type wants it).
  void sample(std::string_view name, double value, const MetricLabels& labels = {});
  void sample(std::string_view name, std::uint64_t value, const MetricLabels& labels = {});
  // The `_bucket` (cumulative, with le="+Inf"), `_sum` and `_count` lines of a histogram family.
  void histogram(std::string_view name, const Histogram& h, const MetricLabels& labels = {});

  // Shorthands for a family with one unlabelled sample.
  void counter(std::string_view name, std::string_view help, std::uint64_t value);
  void gauge(std::string_view name, std::string_view help, double value);

  const std::string& text() const { return out_; }

 private:
  void line(std::string_view name, const MetricLabels& labels, std::string_view value);
  std::string out_;
};

// The media type of that document, for the Content-Type of /metrics.
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// A sample value: integers without a fraction, others in the shortest form that reads back to
// the same double, "+Inf", "-Inf" and "NaN" as the format wants.
std::string format_metric_value(double value);
// Label values escape backslash, double quote and newline; HELP text backslash and newline.
std::string escape_label_value(std::string_view value);
std::string escape_help(std::string_view text);

}  // namespace ipconfirm::responder

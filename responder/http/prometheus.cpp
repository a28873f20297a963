#include "responder/http/prometheus.hpp"

#include <charconv>
#include <cmath>

namespace ipconfirm::responder {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), buckets_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  std::size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++buckets_[i];
  ++count_;
  sum_ += value;
}

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Integral values below 2^53 print exactly as integers ("3", not "3e+00").
  if (std::trunc(value) == value && std::fabs(value) < 9007199254740992.0) {
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(value));
    return std::string(buf, end);
  }
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, end);
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string escape_help(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

void PrometheusText::family(std::string_view name, MetricType type, std::string_view help) {
  out_.append("# HELP ").append(name).append(" ").append(escape_help(help)).append("\n");
  out_.append("# TYPE ").append(name).append(" ");
  switch (type) {
    case MetricType::counter:
      out_.append("counter");
      break;
    case MetricType::gauge:
      out_.append("gauge");
      break;
    case MetricType::histogram:
      out_.append("histogram");
      break;
  }
  out_.append("\n");
}

void PrometheusText::line(std::string_view name, const MetricLabels& labels,
                          std::string_view value) {
  out_.append(name);
  if (!labels.empty()) {
    out_ += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out_ += ',';
      first = false;
      out_.append(k).append("=\"").append(escape_label_value(v)).append("\"");
    }
    out_ += '}';
  }
  out_.append(" ").append(value).append("\n");
}

void PrometheusText::sample(std::string_view name, double value, const MetricLabels& labels) {
  line(name, labels, format_metric_value(value));
}

void PrometheusText::sample(std::string_view name, std::uint64_t value,
                            const MetricLabels& labels) {
  line(name, labels, std::to_string(value));
}

void PrometheusText::histogram(std::string_view name, const Histogram& h,
                               const MetricLabels& labels) {
  const std::string bucket = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  MetricLabels with_le = labels;
  with_le.emplace_back("le", "");
  for (std::size_t i = 0; i < h.bounds().size(); ++i) {
    cumulative += h.buckets()[i];
    with_le.back().second = format_metric_value(h.bounds()[i]);
    line(bucket, with_le, std::to_string(cumulative));
  }
  with_le.back().second = "+Inf";
  line(bucket, with_le, std::to_string(h.count()));
  line(std::string(name) + "_sum", labels, format_metric_value(h.sum()));
  line(std::string(name) + "_count", labels, std::to_string(h.count()));
}

void PrometheusText::counter(std::string_view name, std::string_view help, std::uint64_t value) {
  family(name, MetricType::counter, help);
  sample(name, value);
}

void PrometheusText::gauge(std::string_view name, std::string_view help, double value) {
  family(name, MetricType::gauge, help);
  sample(name, value);
}

}  // namespace ipconfirm::responder

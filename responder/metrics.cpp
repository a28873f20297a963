#include "responder/metrics.hpp"

#include <charconv>

namespace ipconfirm::responder {

namespace {

using smtp::SessionEnd;

void counter_by(PrometheusText& out, std::string_view name, std::string_view help,
                std::string_view label,
                const std::map<std::string, std::uint64_t, std::less<>>& m) {
  out.family(name, MetricType::counter, help);
  for (const auto& [value, count] : m) out.sample(name, count, {{std::string(label), value}});
}

}  // namespace

std::string render_metrics(const MetricsSnapshot& m) {
  static const ServiceCounters none;
  const ServiceCounters& c = m.service ? *m.service : none;
  PrometheusText out;

  out.family("ipconfirm_build_info", MetricType::gauge, "The running version; always 1.");
  out.sample("ipconfirm_build_info", std::uint64_t{1}, {{"version", m.version}});
  out.gauge("ipconfirm_start_time_seconds", "When the server started, in seconds since the epoch.",
            c.start_time);

  out.family("ipconfirm_config_reloads_total", MetricType::counter,
             "Reloads (SIGHUP) by result; a failed one keeps the running settings.");
  out.sample("ipconfirm_config_reloads_total", c.reloads_ok, {{"result", "ok"}});
  out.sample("ipconfirm_config_reloads_total", c.reloads_failed, {{"result", "failed"}});
  out.gauge("ipconfirm_config_last_reload_successful",
            "1 when the last reload succeeded (or none was tried), 0 when it failed.",
            c.last_reload_ok ? 1 : 0);
  out.gauge("ipconfirm_config_last_reload_success_timestamp_seconds",
            "When the running settings were loaded, in seconds since the epoch.",
            c.last_reload_success);

  out.counter("ipconfirm_smtp_connections_total", "SMTP connections accepted.", m.smtp.connections);
  out.gauge("ipconfirm_smtp_open_connections", "SMTP connections open now.",
            static_cast<double>(m.smtp_open));
  out.family("ipconfirm_smtp_sessions_total", MetricType::counter,
             "SMTP connections that ended, by how they ended.");
  for (std::size_t i = 0; i < smtp::kSessionEnds; ++i) {
    const auto e = static_cast<SessionEnd>(i);
    out.sample("ipconfirm_smtp_sessions_total", m.smtp.ended_count(e),
               {{"outcome", std::string(smtp::to_string(e))}});
  }
  out.family("ipconfirm_smtp_tls_handshakes_total", MetricType::counter,
             "TLS handshakes of SMTP clients, by mode (starttls, implicit) and result.");
  const std::string_view tls = "ipconfirm_smtp_tls_handshakes_total";
  out.sample(tls, m.smtp.starttls_ok, {{"mode", "starttls"}, {"result", "ok"}});
  out.sample(tls, m.smtp.starttls_failed, {{"mode", "starttls"}, {"result", "failed"}});
  out.sample(tls, m.smtp.implicit_tls_ok, {{"mode", "implicit"}, {"result", "ok"}});
  out.sample(tls, m.smtp.implicit_tls_failed, {{"mode", "implicit"}, {"result", "failed"}});
  out.family("ipconfirm_smtp_dot_to_250_seconds", MetricType::histogram,
             "Time from the final dot of a message to its 250: DNS wait, report, reply, sync.");
  out.histogram("ipconfirm_smtp_dot_to_250_seconds", c.dot_to_250);

  out.family("ipconfirm_messages_accepted_total", MetricType::counter,
             "Messages answered 250, by kind (report: to ipconfirm@, postmaster: to postmaster@).");
  out.sample("ipconfirm_messages_accepted_total", c.messages_report, {{"kind", "report"}});
  out.sample("ipconfirm_messages_accepted_total", c.messages_postmaster, {{"kind", "postmaster"}});
  counter_by(out, "ipconfirm_messages_tempfailed_total",
             "Messages answered 451 after the final dot, by reason.", "reason", c.tempfailed);

  out.counter("ipconfirm_replies_queued_total", "Reply mails made durable in the spool.",
              c.replies_queued);
  counter_by(out, "ipconfirm_replies_suppressed_total",
             "Messages answered 250 without a reply mail, by reason (RFC 3834, rate limits, "
             "transcript mode).",
             "reason", c.suppressed);
  out.counter("ipconfirm_replies_delivered_total",
              "Queue entries (replies, postmaster forwards) their target accepted.", c.delivered);
  out.counter("ipconfirm_replies_deferred_total",
              "Delivery attempts that failed temporarily and will be retried.", c.deferred);
  out.counter("ipconfirm_replies_bounced_total", "Queue entries dropped after a permanent failure.",
              c.bounced);
  out.counter("ipconfirm_replies_expired_total",
              "Queue entries dropped because their lifetime ended.", c.expired);
  out.family("ipconfirm_reply_delivery_seconds", MetricType::histogram,
             "Time from a queue entry's creation to its target's acceptance.");
  out.histogram("ipconfirm_reply_delivery_seconds", c.delivery);

  out.family("ipconfirm_rate_limit_hits_total", MetricType::counter,
             "Limits that refused: reply mails per recipient, ip or network; SMTP connections; "
             "report page requests.");
  for (const char* limit : {"recipient", "ip", "network", "report_requests"}) {
    auto it = c.rate_limited.find(limit);
    out.sample("ipconfirm_rate_limit_hits_total", it == c.rate_limited.end() ? 0 : it->second,
               {{"limit", limit}});
  }
  out.sample("ipconfirm_rate_limit_hits_total", m.smtp.ended_count(SessionEnd::connection_limit),
             {{"limit", "connections"}});

  out.gauge("ipconfirm_queue_entries", "Entries waiting in the spool for delivery.",
            static_cast<double>(m.queue_entries));
  out.gauge("ipconfirm_queue_capacity", "The most entries the spool takes ([queue] max_entries).",
            static_cast<double>(m.queue_capacity));
  out.gauge("ipconfirm_queue_oldest_age_seconds",
            "Age of the oldest entry in the spool; 0 when it is empty.", m.queue_oldest_age);
  out.gauge("ipconfirm_reports_stored", "Reports stored for their web pages (GET /r/TOKEN).",
            static_cast<double>(m.reports_stored));

  out.counter("ipconfirm_dns_queries_total", "DNS queries sent to a server.", m.dns_queries);
  out.counter("ipconfirm_dns_cache_hits_total", "DNS lookups answered from the cache.",
              m.dns_cache_hits);
  out.counter("ipconfirm_dns_timeouts_total", "DNS queries that got no answer in all their tries.",
              m.dns_timeouts);

  out.counter("ipconfirm_http_connections_total", "HTTP connections accepted.", m.http.connections);
  out.gauge("ipconfirm_http_open_connections", "HTTP connections open now.",
            static_cast<double>(m.http_open));
  out.family("ipconfirm_http_responses_total", MetricType::counter,
             "HTTP responses, by status code.");
  for (const auto& [code, count] : m.http.responses)
    out.sample("ipconfirm_http_responses_total", count, {{"code", std::to_string(code)}});
  return out.text();
}

std::optional<double> spool_id_time(std::string_view id) {
  const auto dot = id.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  const auto dot2 = id.find('.', dot + 1);
  if (dot2 == std::string_view::npos || dot2 != dot + 7) return std::nullopt;
  long long seconds = 0, micros = 0;
  auto [end1, ec1] = std::from_chars(id.data(), id.data() + dot, seconds);
  auto [end2, ec2] = std::from_chars(id.data() + dot + 1, id.data() + dot2, micros);
  if (ec1 != std::errc{} || end1 != id.data() + dot || ec2 != std::errc{} ||
      end2 != id.data() + dot2 || seconds < 0 || micros < 0)
    return std::nullopt;
  return static_cast<double>(seconds) + static_cast<double>(micros) / 1e6;
}

}  // namespace ipconfirm::responder

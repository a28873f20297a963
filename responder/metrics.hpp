// What /metrics says: the service's counters and the other parts' figures, written in the
// Prometheus text format (responder/http/prometheus.hpp).
//
// Every counter is an integer touched only on the event loop (the SMTP sessions, the handling
// of a message around its worker step, delivery, DNS and the HTTP listener all run there), and
// /metrics is answered there too: no atomics and no locks on the hot path. The worker and
// committer threads count nothing.
//
// The metric names are a contract (extend, never rename); docs/flow.md lists them:
//   ipconfirm_build_info{version}, ipconfirm_start_time_seconds
//   ipconfirm_config_reloads_total{result}, ipconfirm_config_last_reload_successful,
//   ipconfirm_config_last_reload_success_timestamp_seconds
//   ipconfirm_smtp_connections_total, ipconfirm_smtp_open_connections,
//   ipconfirm_smtp_sessions_total{outcome}, ipconfirm_smtp_tls_handshakes_total{mode,result},
//   ipconfirm_smtp_dot_to_250_seconds (histogram)
//   ipconfirm_messages_accepted_total{kind}, ipconfirm_messages_tempfailed_total{reason}
//   ipconfirm_replies_queued_total, ipconfirm_replies_suppressed_total{reason},
//   ipconfirm_replies_delivered_total, ipconfirm_replies_deferred_total,
//   ipconfirm_replies_bounced_total, ipconfirm_replies_expired_total,
//   ipconfirm_reply_delivery_seconds (histogram)
//   ipconfirm_rate_limit_hits_total{limit}
//   ipconfirm_queue_entries, ipconfirm_queue_capacity, ipconfirm_queue_oldest_age_seconds
//   ipconfirm_dns_queries_total, ipconfirm_dns_cache_hits_total, ipconfirm_dns_timeouts_total
//   ipconfirm_http_connections_total, ipconfirm_http_open_connections,
//   ipconfirm_http_responses_total{code}
//
// Pure: no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "responder/http/http_router.hpp"
#include "responder/http/prometheus.hpp"
#include "smtp/server_stats.hpp"

namespace ipconfirm::responder {

// The service's own counters (responder/service.cpp), event loop only.
struct ServiceCounters {
  std::uint64_t messages_report = 0;      // ipconfirm@ mail answered 250 (reply mail or not)
  std::uint64_t messages_postmaster = 0;  // postmaster@ mail answered 250
  // 451s after the final dot, by reason: queue_full, queue_write_failed, mailbox_write_failed.
  std::map<std::string, std::uint64_t, std::less<>> tempfailed;
  std::uint64_t replies_queued = 0;  // reply mails made durable in the spool
  // Reply mails not sent, by reason: the RFC 3834 reasons of reply_policy.hpp
  // ("auto-submitted", "list-headers", ...), "transcript-mode", "rate-limit-*".
  std::map<std::string, std::uint64_t, std::less<>> suppressed;
  // Attempts of the deliverer, over every queue entry (replies and postmaster forwards).
  std::uint64_t delivered = 0, deferred = 0, bounced = 0, expired = 0;
  // Reply rate limits that refused a reply: recipient, ip, network; and report_requests, the
  // requests for report pages refused with 429.
  std::map<std::string, std::uint64_t, std::less<>> rate_limited;
  // From the final dot to the 250 (every message answered 250 that went through analysis).
  Histogram dot_to_250{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  // From the moment a queue entry got its id to the target's acceptance.
  Histogram delivery{{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 900, 3600, 14400, 86400}};
  std::uint64_t reloads_ok = 0, reloads_failed = 0;
  bool last_reload_ok = true;
  double last_reload_success = 0;  // epoch seconds of the start or the last good reload
  double start_time = 0;           // epoch seconds
};

// Everything /metrics writes, gathered on the event loop at the request.
struct MetricsSnapshot {
  const ServiceCounters* service = nullptr;
  std::string version;
  smtp::ServerStats smtp;
  std::size_t smtp_open = 0;
  std::uint64_t dns_queries = 0, dns_cache_hits = 0, dns_timeouts = 0;
  HttpStats http;
  std::size_t http_open = 0;
  std::size_t queue_entries = 0, queue_capacity = 0;
  double queue_oldest_age = 0;     // seconds; 0 when the queue is empty
  std::size_t reports_stored = 0;  // stored reports behind GET /r/TOKEN
};

std::string render_metrics(const MetricsSnapshot& snapshot);

// When a spool entry was made, from its id ("<seconds>.<microseconds>.<pid>", see
// Spool::new_id), in seconds since the epoch; nullopt for an id of another form.
std::optional<double> spool_id_time(std::string_view id);

}  // namespace ipconfirm::responder

#include "responder/service.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iterator>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>

#include "core/log.hpp"
#include "mime/date.hpp"
#include "mime/incoming.hpp"
#include "responder/analysis/auth_lookups.hpp"
#include "responder/analysis/lookups.hpp"
#include "responder/analysis/report.hpp"
#include "responder/analysis/report_json.hpp"
#include "responder/dns/dns_resolver.hpp"
#include "responder/health.hpp"
#include "responder/http/http_server.hpp"
#include "responder/metrics.hpp"
#include "responder/queue/delivery.hpp"
#include "responder/queue/maildir.hpp"
#include "responder/queue/report_store.hpp"
#include "responder/queue/spool.hpp"
#include "responder/queue/spool_segment.hpp"
#include "responder/reload.hpp"
#include "responder/reply/rate_limit.hpp"
#include "responder/reply/render.hpp"
#include "responder/reply/reply_mail.hpp"
#include "responder/reply/reply_policy.hpp"
#include "responder/report_pages.hpp"
#include "smtp/server.hpp"

namespace ipconfirm::responder {

namespace {

bool is_postmaster(const std::string& rcpt) {
  return rcpt.rfind("postmaster@", 0) == 0;
}

asio::ip::tcp::endpoint to_endpoint(const config::Endpoint& e) {
  const auto& b = e.address.bytes();
  if (e.address.is_v4()) return {asio::ip::address_v4({b[0], b[1], b[2], b[3]}), e.port};
  return {asio::ip::address_v6(b), e.port};
}

double epoch_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

smtp::ServerOptions smtp_options(const config::Config& c) {
  smtp::ServerOptions opts;
  opts.session.hostname = c.hostname;
  opts.session.domains = c.domains;
  opts.session.max_message_size = c.smtp.max_message_size;
  opts.max_message_memory = c.smtp.max_message_memory;
  opts.max_header = mime::IncomingLimits{}.max_header_bytes;  // what read_incoming reads
  opts.session.max_recipients = c.smtp.max_recipients;
  opts.session.max_errors = c.smtp.max_errors;
  opts.session.max_commands = c.smtp.max_commands;
  opts.max_connections = c.smtp.max_connections;
  opts.max_connections_per_ip = c.smtp.max_connections_per_ip;
  opts.ipv6_connection_prefix = c.smtp.ipv6_connection_prefix;
  opts.command_timeout = c.smtp.command_timeout;
  opts.connection_deadline = c.smtp.connection_deadline;
  for (const auto& l : c.smtp.listen) opts.listeners.push_back({to_endpoint(l)});
  for (const auto& l : c.smtp.implicit_tls_listen)
    opts.listeners.push_back({to_endpoint(l), true, false});
  for (const auto& l : c.smtp.proxy_protocol_listen)
    opts.listeners.push_back({to_endpoint(l), false, true});
  for (const auto& l : c.smtp.proxy_protocol_tls_listen)
    opts.listeners.push_back({to_endpoint(l), true, true});
  for (const auto& n : c.smtp.trusted_proxies)
    opts.trusted_proxies.push_back({n.address, n.prefix});
  opts.tls_cert = c.smtp.tls_cert;
  opts.tls_key = c.smtp.tls_key;
  return opts;
}

HttpServerOptions http_options(const config::Config& c) {
  HttpServerOptions opts;
  for (const auto& l : c.http.listen) opts.listen.push_back(to_endpoint(l));
  opts.max_connections = c.http.max_connections;
  opts.request_timeout = c.http.request_timeout;
  opts.max_request_size = c.http.max_request_size;
  opts.max_header_fields = c.http.max_header_fields;
  return opts;
}

DnsResolver::Options resolver_options(const config::Config& c,
                                      std::shared_ptr<DnsCounters> counters) {
  DnsResolver::Options dns;
  dns.servers = c.dns.servers;
  dns.timeout = c.dns.timeout;
  dns.tries = c.dns.tries;
  dns.cache_bytes = c.dns.cache_bytes;
  dns.counters = std::move(counters);
  return dns;
}

ReplyRateLimits reply_limits(const config::Config& c) {
  return ReplyRateLimits{c.reply.max_per_recipient_per_hour, c.reply.max_per_domain_per_hour,
                         c.reply.max_per_ip_per_hour,        c.reply.max_per_network_per_hour,
                         c.reply.max_per_site_per_hour,      c.reply.max_total_per_minute,
                         c.reply.rate_limit_entries};
}

// How long a stored report is kept, in whole seconds (at least one).
std::int64_t report_lifetime(const config::Config& c) {
  return std::max<std::int64_t>(1, std::llround(c.http.report_days * 86400.0));
}

// Requests for report pages are counted per IPv4 address and per IPv6 /64 (one client usually
// holds a whole /64).
std::unique_ptr<RateLimiter> report_limiter_for(const config::Config& c) {
  return std::make_unique<RateLimiter>(c.http.max_report_requests_per_ip_per_minute, 100000,
                                       std::chrono::seconds(60));
}

// Postmaster mail is limited like replies, per IP, per network (/24, /64 and /48 alike) and in
// total; never per recipient or domain (it is always the postmaster).
ReplyRateLimits postmaster_limits(const config::Config& c) {
  return ReplyRateLimits{0,
                         0,
                         c.postmaster.max_per_ip_per_hour,
                         c.postmaster.max_per_network_per_hour,
                         c.postmaster.max_per_network_per_hour,
                         c.postmaster.max_total_per_minute,
                         c.reply.rate_limit_entries};
}

}  // namespace

// One generation of what a reload replaces: the config, the templates read with it and the
// DNS resolver of its [dns]. Built whole, never changed after; a session keeps the one it
// started with, so that it finishes under the settings it began with.
struct Settings {
  config::Config config;
  Templates templates;
  std::shared_ptr<DnsResolver> resolver;
};

struct Service::Impl : std::enable_shared_from_this<Service::Impl> {
  Impl(asio::io_context& i, config::Config c) : io(i) {
    auto first = std::make_shared<Settings>();
    first->config = std::move(c);
    current = std::move(first);
  }

  asio::io_context& io;
  // What new sessions get; reload() replaces it.
  std::shared_ptr<const Settings> current;
  std::optional<Spool> spool;
  std::shared_ptr<Deliverer> deliverer;
  std::shared_ptr<const Settings> deliverer_settings;  // the config and resolver it uses
  std::unique_ptr<smtp::Server> server;
  std::unique_ptr<HttpServer> http;
  std::uint64_t suppressed = 0;
  bool stopping = false;
  // Backscatter limits; one io_context thread, so no lock. A reload that changes a limit
  // replaces it (the buckets start full).
  std::unique_ptr<ReplyLimiter> limiter;
  // Mail for postmaster@, limited like replies: per IP, per network (/24, /64, and /48 alike)
  // and in total; counted at DATA. Replaced like `limiter`.
  std::unique_ptr<ReplyLimiter> postmaster_limiter;
  // Metrics: event loop only (responder/metrics.hpp).
  ServiceCounters counters;
  std::shared_ptr<DnsCounters> dns_counters = std::make_shared<DnsCounters>();
  // /healthz probes the spool at most once a second.
  std::chrono::steady_clock::time_point last_probe{};
  std::string spool_problem;
  // The stored reports behind GET /r/TOKEN (responder/queue/report_store.hpp): which exist,
  // on the event loop; their files are written and unlinked by the committer. Pruned of
  // expired and surplus reports before each lookup and on a timer.
  std::optional<ReportIndex> reports;
  std::optional<asio::steady_timer> report_timer;
  std::unique_ptr<RateLimiter> report_limiter;  // GET /r/... per client per minute
  std::size_t report_limit = 0;                 // the limit report_limiter was made for

  asio::awaitable<smtp::QueueOutcome> deliver_postmaster(const config::Config& config,
                                                         const smtp::ConnectionInfo& info,
                                                         const smtp::Session& session,
                                                         std::string message);
  asio::awaitable<smtp::QueueOutcome> handle(std::shared_ptr<const Settings> settings,
                                             const smtp::ConnectionInfo& info,
                                             std::shared_ptr<Lookups> lookups,
                                             std::shared_ptr<AuthLookups> auth,
                                             const smtp::Session& session,
                                             smtp::ReceivedMessage message);

  std::shared_ptr<Deliverer> make_deliverer(const std::shared_ptr<const Settings>& s);
  // Keeps a replaced deliverer's settings (its config and resolver) until its attempts end.
  void retire(std::shared_ptr<Deliverer> old, std::shared_ptr<const Settings> used);
  void on_delivery(const QueueEntry& entry, Deliverer::Result result);
  std::shared_ptr<HttpRouter> make_router();
  HttpResponse report_route(const HttpRequest& request);
  void add_report(const std::string& name, const ReportPlace& place);
  void prune_reports();
  void schedule_report_prune();
  std::string metrics_text();
  HttpResponse health();
  bool reload(const config::LoadResult& loaded);

  // The suspended wait_committed of one reply, resumed by the handler that finished its batch
  // (already on the event loop), directly rather than through one more round of the loop.
  class Resumer {
   public:
    virtual ~Resumer() = default;
    virtual void resume() = 0;
  };
  template <typename Handler>
  class HandlerResumer final : public Resumer {
   public:
    explicit HandlerResumer(Handler h) : handler_(std::move(h)) {}
    void resume() override { std::move(handler_)(); }

   private:
    Handler handler_;
  };
  // Group commit: replies queued while one batch is being synced wait for the next batch, so
  // the cost of a sync is shared by every message that arrived in the meantime.
  struct PendingEnqueue {
    QueueEntry entry;  // reserved on the event loop; then the committer's until `finished`
    Spool::Enqueued result;
    bool has_entry = true;  // false: only a stored report (a reply not mailed)
    // The report to store with it, in the same batch and under the same sync; its failure is
    // the result's failure (and its entry is then not written).
    std::optional<StoredReport> report;
    ReportPlace report_place;         // where the committer wrote it
    bool finished = false;            // event loop only
    std::unique_ptr<Resumer> waiter;  // event loop only
  };
  // Stores the suspended coroutine's handler in the entry and lets go of the entry.
  struct WaitInitiation {
    std::shared_ptr<PendingEnqueue> p;
    template <typename Handler>
    void operator()(Handler handler) {
      std::shared_ptr<PendingEnqueue> strong = std::move(p);
      strong->waiter = std::make_unique<HandlerResumer<Handler>>(std::move(handler));
    }
  };
  // The hand-over to the committer thread: reserved entries wait here, and the committer
  // drains it batch after batch without waiting for the event loop in between.
  struct CommitQueue {
    std::mutex mutex;
    std::vector<std::shared_ptr<PendingEnqueue>> waiting;
    // Entries delivered, bounced, expired or deleted, marked done after each batch (a done
    // mark is one small append, a segment's unlink when it was its last live entry): the
    // replies waiting for their 250 go first; one left undone by a crash only sends that reply
    // again.
    std::vector<std::string> dones;
    // Entries whose new schedule is to be written (their index has it already; each moves into
    // a file of its own: a write and three syncs), taken a few after each batch, on the same
    // thread as the done marks, so that a rewrite never brings back an entry marked done.
    std::vector<Spool::Rewrite> rewrites;
    // Stored reports expired or pushed out (their index has forgotten them): the files of
    // those stored one per file, unlinked, and the segment of each one in a report segment
    // (ReportWriter::done, which unlinks a segment with its last report).
    std::vector<std::string> report_unlinks;
    std::vector<std::uint64_t> report_dones;
    bool draining = false;  // a drain is posted or running on the committer
  };
  std::shared_ptr<CommitQueue> commit_queue = std::make_shared<CommitQueue>();
  // One thread does the spool's disk work (appends, fdatasync, done marks, moves; stored
  // reports) so that the event loop
  // goes on reading while a batch is made durable; the messages that arrive meanwhile form the
  // next batch (group commit).
  std::unique_ptr<asio::thread_pool> committer = std::make_unique<asio::thread_pool>(1);
  // One thread builds the reports and reply mails (pure work, handle() below).
  std::unique_ptr<asio::thread_pool> worker = std::make_unique<asio::thread_pool>(1);
  // One thread writes into Maildirs (postmaster mail, and replies in delivery mode maildir):
  // a large message and its syncs can take a while, and neither the event loop nor the
  // committer (whose batches hold up the 250s) should wait for that.
  std::unique_ptr<asio::thread_pool> mailbox = std::make_unique<asio::thread_pool>(1);
  // A reply's way into the spool, in three steps:
  //  reserve_entry (event loop): its id, its times and its place under the cap; the result's
  //    error is `full` when there is no room;
  //  hand_to_committer (any thread, here the worker, once the entry is filled in): into the
  //    next batch;
  //  wait_committed (event loop): until the batch is durable and indexed; the entry comes back.
  std::shared_ptr<PendingEnqueue> reserve_entry();
  void hand_to_committer(std::shared_ptr<PendingEnqueue> p);
  void done_later(std::string id);  // any thread
  void unlink_reports_later(std::vector<std::string> names,
                            std::vector<std::uint64_t> segments);  // any thread
  void rewrite_later(Spool::Rewrite rewrite);                      // any thread
  // Adds to the committer's lists under their lock (`add`), and starts a drain unless one is
  // posted or running. Any thread.
  template <typename Add>
  void to_committer(Add add);
  asio::awaitable<Spool::Enqueued> wait_committed(std::shared_ptr<PendingEnqueue> p,
                                                  QueueEntry& entry);
  // On the committer thread. It holds no reference to the service (whose destructor joins
  // that thread): only the queue, the spool's folder and the event loop to come back to,
  // where the service may already be gone.
  static void drain_commits(std::shared_ptr<CommitQueue> queue, std::shared_ptr<SpoolWriter> writer,
                            std::shared_ptr<ReportWriter> report_writer, std::weak_ptr<Impl> weak,
                            asio::io_context::executor_type back);
};

std::shared_ptr<Service::Impl::PendingEnqueue> Service::Impl::reserve_entry() {
  auto p = std::make_shared<PendingEnqueue>();
  std::vector<QueueEntry> one(1);
  Spool::Batch reserved = spool->reserve(std::move(one), std::time(nullptr));
  p->entry = std::move(reserved.entries.front());
  p->result = std::move(reserved.results.front());
  return p;
}

template <typename Add>
void Service::Impl::to_committer(Add add) {
  bool post_drain = false;
  {
    std::lock_guard<std::mutex> lock(commit_queue->mutex);
    add(*commit_queue);
    post_drain = !std::exchange(commit_queue->draining, true);
  }
  if (post_drain) {
    asio::post(*committer,
               [queue = commit_queue, writer = spool->writer(), reports = reports->writer(),
                weak = weak_from_this(),
                back = io.get_executor()] { drain_commits(queue, writer, reports, weak, back); });
  }
}

void Service::Impl::hand_to_committer(std::shared_ptr<PendingEnqueue> p) {
  to_committer([&](CommitQueue& q) { q.waiting.push_back(std::move(p)); });
}

void Service::Impl::done_later(std::string id) {
  to_committer([&](CommitQueue& q) { q.dones.push_back(std::move(id)); });
}

void Service::Impl::rewrite_later(Spool::Rewrite rewrite) {
  to_committer([&](CommitQueue& q) { q.rewrites.push_back(std::move(rewrite)); });
}

void Service::Impl::unlink_reports_later(std::vector<std::string> names,
                                         std::vector<std::uint64_t> segments) {
  if (names.empty() && segments.empty()) return;
  to_committer([&](CommitQueue& q) {
    q.report_unlinks.insert(q.report_unlinks.end(), std::make_move_iterator(names.begin()),
                            std::make_move_iterator(names.end()));
    q.report_dones.insert(q.report_dones.end(), segments.begin(), segments.end());
  });
}

asio::awaitable<Spool::Enqueued> Service::Impl::wait_committed(std::shared_ptr<PendingEnqueue> p,
                                                               QueueEntry& entry) {
  auto self = shared_from_this();
  if (!p->finished) {
    // While suspended, only the committer's lists hold the entry (and through its waiter, this
    // coroutine): no cycle, so a shutdown that drops the lists frees everything.
    std::weak_ptr<PendingEnqueue> weak = p;
    // A named initiation object (GCC 12 destroys some temporaries of a co_await twice).
    WaitInitiation initiation{std::move(p)};
    co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(std::move(initiation),
                                                                          asio::use_awaitable);
    p = weak.lock();  // resumed by the batch's handler, which holds it
  }
  Spool::Enqueued result = std::move(p->result);
  entry = std::move(p->entry);
  co_return result;
}

void Service::Impl::drain_commits(std::shared_ptr<CommitQueue> commit_queue,
                                  std::shared_ptr<SpoolWriter> writer,
                                  std::shared_ptr<ReportWriter> report_writer,
                                  std::weak_ptr<Impl> weak, asio::io_context::executor_type back) {
  // Touches only the queue, the entries handed over, the spool's writer (this thread's alone)
  // and files under the spool's folder; the index is updated by commit() back on the event
  // loop.
  const std::filesystem::path& dir = writer->dir();
  // Per turn: rewrites and report unlinks can wait for the disk; a done mark is an append.
  static constexpr std::size_t kSlowPerTurn = 8, kDonesPerTurn = 256;
  auto take_some = [](auto& all, auto& some, std::size_t most) {
    const std::size_t n = std::min(all.size(), most);
    some.assign(std::make_move_iterator(all.begin()),
                std::make_move_iterator(all.begin() + static_cast<std::ptrdiff_t>(n)));
    all.erase(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
  };
  for (;;) {
    auto waiters = std::make_shared<std::vector<std::shared_ptr<PendingEnqueue>>>();
    std::vector<std::string> dones;
    std::vector<Spool::Rewrite> rewrites;
    std::vector<std::string> report_unlinks;
    std::vector<std::uint64_t> report_dones;
    {
      std::lock_guard<std::mutex> lock(commit_queue->mutex);
      if (commit_queue->waiting.empty() && commit_queue->dones.empty() &&
          commit_queue->rewrites.empty() && commit_queue->report_unlinks.empty() &&
          commit_queue->report_dones.empty()) {
        commit_queue->draining = false;
        return;
      }
      waiters->swap(commit_queue->waiting);
      take_some(commit_queue->rewrites, rewrites, kSlowPerTurn);
      take_some(commit_queue->dones, dones, kDonesPerTurn);
      take_some(commit_queue->report_unlinks, report_unlinks, kSlowPerTurn);
      take_some(commit_queue->report_dones, report_dones, kDonesPerTurn);
    }
    auto disk_work = [&] {
      // Rewrites first: one queued before the done mark of the same entry finds it still there
      // and is undone by the mark; one that comes after the mark (taken in a later turn) finds
      // the entry done and writes nothing.
      for (const auto& r : rewrites) {
        std::string detail = writer->rewrite(r);
        // The file keeps its older schedule: an earlier retry after a restart, no more.
        if (!detail.empty()) log_event("queue-error", {{"queue_id", r.id}, {"detail", detail}});
      }
      for (const auto& id : dones) {
        std::string detail = writer->done(id);
        // Still on disk: sent again after a restart (at-least-once), never lost.
        if (!detail.empty()) log_event("queue-error", {{"queue_id", id}, {"detail", detail}});
      }
      for (const auto& name : report_unlinks) {
        std::string detail = unlink_stored_report(dir, name);
        // Still on disk: pruned again after a restart; unreachable meanwhile (not indexed).
        if (!detail.empty()) log_event("report-error", {{"report", name}, {"detail", detail}});
      }
      for (std::uint64_t segment : report_dones) {
        std::string detail = report_writer->done(segment);
        // Still on disk: its reports are pruned again after a restart.
        if (!detail.empty())
          log_event("report-error", {{"report", segment_name(segment)}, {"detail", detail}});
      }
    };
    if (waiters->empty()) {
      disk_work();
      continue;
    }
    // Stored reports first, appended to the report segment and made durable with one
    // fdatasync before the entries are appended (report_store.hpp): a report that cannot be
    // written fails its message, whose entry is then not written either. The entries are
    // appended to the spool's segment and made durable with one fdatasync (spool.hpp).
    auto batch = std::make_shared<Spool::Batch>();
    std::vector<const StoredReport*> reports;
    std::vector<PendingEnqueue*> with_report;
    for (auto& w : *waiters) {
      if (w->report && w->result.error == SpoolError::none) {
        reports.push_back(&*w->report);
        with_report.push_back(w.get());
      }
    }
    if (!reports.empty()) {
      std::vector<ReportPlace> places;
      std::string detail = report_writer->write_batch(reports, places);
      for (std::size_t i = 0; i < with_report.size(); ++i) {
        if (detail.empty()) {
          with_report[i]->report_place = places[i];
        } else {
          with_report[i]->result.error = SpoolError::io;
          with_report[i]->result.detail = detail;
        }
      }
    }
    for (auto& w : *waiters) {
      if (w->has_entry) {
        batch->entries.push_back(std::move(w->entry));
        batch->results.push_back(std::move(w->result));
      }
    }
    writer->write_batch(*batch);
    asio::post(back, [batch, waiters, weak] {
      auto self = weak.lock();
      if (!self) return;
      std::vector<Spool::Enqueued> results = self->spool->commit(*batch);
      std::size_t k = 0;
      for (auto& w : *waiters) {
        if (w->has_entry) {
          w->result = std::move(results[k]);
          w->entry = std::move(batch->entries[k]);
          ++k;
        }
        if (w->report && w->result.error == SpoolError::none)
          self->add_report(w->report->name, w->report_place);
        w->report.reset();
        w->finished = true;
        if (auto waiter = std::move(w->waiter)) waiter->resume();
      }
    });
    disk_work();  // after the batch's results are on their way
  }
}

namespace {

class Handler : public smtp::ConnectionHandler {
 public:
  Handler(std::shared_ptr<Service::Impl> svc, smtp::ConnectionInfo info)
      : svc_(std::move(svc)), settings_(svc_->current), info_(std::move(info)) {
    lookups_ = std::make_shared<Lookups>(svc_->io.get_executor(), settings_->resolver);
    lookups_->start_ip(info_.ip, settings_->config.dns.dnsbl);
    log_event("connect", {{"session", info_.session_id},
                          {"ip", info_.ip.to_string()},
                          {"port", std::to_string(info_.port)}});
  }
  void on_helo(const std::string& helo) override {
    lookups_->start_helo(helo);
    log_event("helo", {{"session", info_.session_id}, {"helo", helo}});
  }

  // SPF for the MAIL FROM and HELO identities starts now, so that it runs while the client
  // sends RCPT and DATA (responder/analysis/auth_lookups.hpp); an earlier transaction's
  // lookups stop asking.
  void on_mail_from(const smtp::Envelope& envelope) override {
    if (auth_) auth_->cancel();
    auth_ = std::make_shared<AuthLookups>(svc_->io.get_executor(), settings_->resolver,
                                          AuthLookups::Options{settings_->config.hostname, {}});
    auth_->start_spf(info_.ip, envelope.mail_from, envelope.helo,
                     static_cast<std::int64_t>(std::time(nullptr)));
  }
  void on_transaction_reset() override {
    if (auth_) auth_->cancel();
    auth_.reset();
  }

  // DATA was accepted; the 354 has not gone out yet. A consumer of the body starts afresh here.
  smtp::DataStart on_data_start(const smtp::Session& session) override {
    const auto& rcpts = session.envelope().rcpt_to;
    if (std::none_of(rcpts.begin(), rcpts.end(), is_postmaster)) return {};
    // Mail for postmaster@ is kept whole (it goes to a Maildir or a forward), and is limited
    // like replies, here, before any of it is read.
    std::string limited = svc_->postmaster_limiter->admit("", info_.ip, RateClock::now());
    if (!limited.empty()) {
      log_event("postmaster-refused", {{"session", info_.session_id},
                                       {"ip", info_.ip.to_string()},
                                       {"from", session.envelope().mail_from},
                                       {"reason", limited}});
      return {false, smtp::reply(451, "4.7.1",
                                 "too much mail for the postmaster from your network, try "
                                 "again later")};
    }
    return {true, std::nullopt};
  }

  // The end of the header: its DKIM signatures and ARC sets are read and their key lookups and
  // DMARC's policy walk start (the header comes again, whole, with on_message).
  void on_header(std::string_view header, bool /*cut*/) override {
    if (auth_) auth_->start_header(header, static_cast<std::int64_t>(std::time(nullptr)));
  }

  // The body of the message being received, piece by piece as it arrives: unstuffed, CRLF
  // line ends, in order, cut anywhere (a consumer must not depend on where). The DKIM and ARC
  // body hashes run over it here, so that the body never has to be held. A message refused
  // before its end (552, 451) ends its transaction: on_transaction_reset drops what was
  // computed.
  void on_body(std::string_view piece) override {
    if (auth_) auth_->body(piece);
  }

  asio::awaitable<smtp::QueueOutcome> on_message(const smtp::Session& session,
                                                 smtp::ReceivedMessage message) override {
    std::shared_ptr<AuthLookups> auth = std::move(auth_);
    smtp::QueueOutcome out = co_await svc_->handle(settings_, info_, lookups_, std::move(auth),
                                                   session, std::move(message));
    co_return out;
  }
  void on_close(std::string_view reason) override {
    if (auth_) auth_->cancel();
    auth_.reset();
    log_event("disconnect", {{"session", info_.session_id}, {"reason", reason}});
  }

 private:
  std::shared_ptr<Service::Impl> svc_;
  std::shared_ptr<const Settings> settings_;  // the session's, even after a reload
  smtp::ConnectionInfo info_;
  std::shared_ptr<Lookups> lookups_;
  std::shared_ptr<AuthLookups> auth_;  // the current transaction's
};

}  // namespace

asio::awaitable<smtp::QueueOutcome> Service::Impl::handle(std::shared_ptr<const Settings> settings,
                                                          const smtp::ConnectionInfo& info,
                                                          std::shared_ptr<Lookups> lookups,
                                                          std::shared_ptr<AuthLookups> auth,
                                                          const smtp::Session& session,
                                                          smtp::ReceivedMessage message) {
  auto self = shared_from_this();
  const config::Config& config = settings->config;
  const auto& env = session.envelope();
  // Mail for postmaster@ (RFC 5321 §4.5.1) is kept or forwarded, never answered with a report;
  // when ipconfirm@ is among the recipients too, the postmaster gets a copy first. (Such mail
  // was kept whole: on_data_start asked for it.)
  if (std::any_of(env.rcpt_to.begin(), env.rcpt_to.end(), is_postmaster)) {
    const bool only = std::all_of(env.rcpt_to.begin(), env.rcpt_to.end(), is_postmaster);
    smtp::QueueOutcome pm =
        co_await deliver_postmaster(config, info, session, std::move(message.whole));
    if (pm.queue_id)
      ++counters.messages_postmaster;
    else
      ++counters.tempfailed[pm.failure == "queue write failed"        ? "queue_write_failed"
                            : pm.failure == "postmaster mailbox full" ? "mailbox_full"
                                                                      : "mailbox_write_failed"];
    if (only || !pm.queue_id) {
      if (auth) auth->cancel();  // no report: nothing waits for these lookups
      co_return pm;
    }
  }
  Observation obs;
  obs.ip = info.ip;
  obs.port = info.port;
  obs.proxied = info.proxied;
  if (session.tls()) {
    obs.tls_version = session.tls()->version;
    obs.tls_cipher = session.tls()->cipher;
  }
  obs.arrival = static_cast<std::int64_t>(std::time(nullptr));
  obs.helo = env.helo;
  obs.esmtp = env.esmtp;
  obs.mail_from = env.mail_from;
  obs.rcpt_to = env.rcpt_to;
  obs.reply_domain = env.rcpt_domains.empty() ? config.domains.front() : env.rcpt_domains.front();
  // The header alone, as the session kept it (at most IncomingLimits::max_header_bytes, the
  // same bound): `ipconfirm check` splits a stored message the same way.
  obs.message = mime::read_incoming(message.header, {}, message.header_cut);
  // The header block itself is read again by the providers' rules (its form, List-Unsubscribe)
  // when the report is built: it stays counted in the budget until then.
  obs.raw_header = std::move(message.header);
  obs.header_cut = message.header_cut;
  obs.smtputf8 = env.smtputf8;
  smtp::MemoryHold header_hold = std::move(message.hold);
  message = smtp::ReceivedMessage{};  // the rest goes back to the budget

  using SteadyClock = std::chrono::steady_clock;
  const auto t_dot = SteadyClock::now();
  co_await lookups->wait(t_dot + config.dns.report_deadline);
  lookups->fill(obs);
  // The authentication checks: their lookups started at MAIL FROM and at the end of the
  // header; the signatures are verified on the worker, off the event loop.
  if (auth) {
    co_await auth->finish(t_dot + config.dns.report_deadline, obs.arrival,
                          asio::any_io_executor(worker->get_executor()));
    obs.auth = auth->verdicts();
  }
  obs.dns_log =
      merge_dns_logs({&lookups->log(), auth ? &auth->log() : nullptr}, SteadyClock::now());
  const auto t_dns = SteadyClock::now();

  // RFC 3834 first (what the message says about itself), then the transcript-only mode, then
  // the rate limits, so that suppressed mail costs no tokens.
  ReplyDecision decision =
      decide_reply(obs, ReplyPolicy{config.domains, config.reply.max_received, config.hostname});
  if (decision.send && config.reply.mode == config::ReplyMode::transcript)
    decision = {false, "transcript-mode"};
  if (decision.send) {
    std::string limited = limiter->admit(obs.mail_from, obs.ip, RateClock::now());
    if (!limited.empty()) {
      const std::string_view prefix = "rate-limit-";
      if (limited.rfind(prefix, 0) == 0) ++counters.rate_limited[limited.substr(prefix.size())];
      decision = {false, std::move(limited)};
    }
  }
  // A reply gets its place in the queue first, so that a full queue costs no rendering.
  std::shared_ptr<PendingEnqueue> pending;
  if (decision.send) {
    pending = reserve_entry();
    if (pending->result.error != SpoolError::none) {
      log_event("queue-error", {{"session", info.session_id},
                                {"error", to_string(pending->result.error)},
                                {"detail", pending->result.detail}});
      ++counters.tempfailed["queue_full"];
      co_return smtp::QueueOutcome{std::nullopt, "", "queue full"};
    }
  }
  // With [http] public_url the report is stored for the web, whether or not a reply is
  // mailed; a reply not mailed goes through the committer for its report alone.
  const bool store_report = !config.http.public_url.empty() && reports.has_value();
  if (store_report && !pending) {
    pending = std::make_shared<PendingEnqueue>();
    pending->has_entry = false;
  }
  // The report and, for a reply, its rendering and MIME composition are pure and the heaviest
  // part of a message: they run on the worker thread, while the event loop goes on serving
  // the other connections, and the worker hands the reply straight to the committer. (Only
  // the worker renders, so the parsed templates are never used by two threads at once.)
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  // What the session and the log need of the report; the report itself (its JSON tree is some
  // thousand allocations) is freed on the worker, not on the event loop.
  struct Built {
    std::string summary, report_url, rdns_status;
    std::size_t hints = 0;
  };
  Built report = co_await asio::co_spawn(
      *worker,
      [&]() -> asio::awaitable<Built> {
        Report r;
        try {
          r = build_report(obs, ReportOptions{.reporter = config.hostname,
                                              .lab_networks = config.analysis.lab_networks});
          if (store_report) {
            // The page's address goes into the report itself, so the mail (text, HTML and
            // ipconfirm.json) and the stored JSON name it alike.
            const std::string token = new_report_token();
            r.json["report_url"] = config.http.public_url + std::string(kReportPathPrefix) + token;
            r.json["report_expires"] = mime::format_rfc5322_date(now + report_lifetime(config));
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
            pending->report = StoredReport{
                report_file_name(static_cast<std::int64_t>(us), report_token_digest(token)),
                report_json_text(r.json)};
            pending->report->json += '\n';
          }
          if (pending && pending->has_entry) {
            // The JSON is written once: the stored report's text is the reply's attachment.
            std::string json_part;
            if (store_report) {
              std::string_view stored = pending->report->json;
              stored.remove_suffix(1);  // the final line break
              json_part = with_crlf(stored);
            } else {
              json_part = report_json_text(r.json, "\r\n");
              json_part += "\r\n";
            }
            ReplyMail mail = build_reply_mail(obs, render_report(settings->templates, r.json),
                                              r.json, std::move(json_part), config.hostname, now);
            QueueEntry& entry = pending->entry;
            entry.recipient = std::move(mail.recipient);
            entry.sender = std::move(mail.sender);
            entry.data = std::move(mail.data);
            entry.origin = "ip " + obs.ip.to_string() + " msg " + obs.message.message_id;
          }
        } catch (...) {
          // Not written: commit() gives its place in the queue back; the session ends.
          if (pending) {
            pending->result.error = SpoolError::io;
            hand_to_committer(pending);
          }
          throw;
        }
        if (pending) hand_to_committer(pending);
        Built b{std::move(r.summary), "", r.json["rdns"]["status"].get<std::string>(),
                r.hints.size()};
        if (store_report) b.report_url = r.json["report_url"].get<std::string>();
        co_return b;
      },
      asio::use_awaitable);
  const auto t_built = SteadyClock::now();
  obs.raw_header = std::string();
  header_hold.release();  // the header's memory goes back to the budget

  // The 250 line ends with the page's address, when there is one; the PTR name in the summary
  // gives way to it (Session::on_queued keeps the line within 512 bytes).
  std::string link;
  if (store_report) {
    link = "report " + report.report_url;
    if (report.summary.size() > 150) report.summary = report.summary.substr(0, 147) + "...";
  }

  if (!decision.send) {
    if (pending) {  // its report alone, made durable before the 250 that names it
      QueueEntry none;
      Spool::Enqueued q = co_await wait_committed(std::move(pending), none);
      if (q.error != SpoolError::none) {
        log_event(
            "report-error",
            {{"session", info.session_id}, {"error", to_string(q.error)}, {"detail", q.detail}});
        ++counters.tempfailed["queue_write_failed"];
        co_return smtp::QueueOutcome{std::nullopt, "", "report write failed"};
      }
    }
    const auto t_stored = SteadyClock::now();
    ++suppressed;
    std::string id = info.session_id + "." + std::to_string(suppressed);
    log_event("suppressed", {{"session", info.session_id},
                             {"ip", obs.ip.to_string()},
                             {"from", obs.mail_from},
                             {"reason", decision.reason}});
    ++counters.messages_report;
    ++counters.suppressed[decision.reason];
    counters.dot_to_250.observe(std::chrono::duration<double>(t_stored - t_dot).count());
    co_return smtp::QueueOutcome{
        id, report.summary + "; no reply mail: " + decision.reason, "", std::nullopt, false, link};
  }

  QueueEntry entry;
  Spool::Enqueued q = co_await wait_committed(std::move(pending), entry);
  if (q.error != SpoolError::none) {
    log_event("queue-error",
              {{"session", info.session_id}, {"error", to_string(q.error)}, {"detail", q.detail}});
    std::string why = q.error == SpoolError::full ? "queue full" : "queue write failed";
    ++counters.tempfailed[q.error == SpoolError::full ? "queue_full" : "queue_write_failed"];
    co_return smtp::QueueOutcome{std::nullopt, "", why};
  }
  // Where the time between the final dot and the 250 went, in milliseconds, as Postfix's
  // delays=: waiting for DNS / building the report and the reply / making it durable.
  auto ms = [](SteadyClock::duration d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", std::chrono::duration<double, std::milli>(d).count());
    return std::string(buf);
  };
  const auto t_queued = SteadyClock::now();
  log_event("queued", {{"session", info.session_id},
                       {"queue_id", q.id},
                       {"ip", obs.ip.to_string()},
                       {"to", entry.recipient},
                       {"rdns", report.rdns_status},
                       {"spf", obs.auth.spf ? to_string(obs.auth.spf->result) : "-"},
                       {"dkim", obs.auth.dkim ? to_string(obs.auth.dkim->overall()) : "-"},
                       {"dmarc", obs.auth.dmarc ? to_string(obs.auth.dmarc->result) : "-"},
                       {"hints", std::to_string(report.hints)},
                       {"delays", ms(t_dns - t_dot) + "/" + ms(t_built - t_dns) + "/" +
                                      ms(t_queued - t_built)}});
  ++counters.messages_report;
  ++counters.replies_queued;
  counters.dot_to_250.observe(std::chrono::duration<double>(t_queued - t_dot).count());
  deliverer->submit(std::move(entry));
  co_return smtp::QueueOutcome{q.id, report.summary, "", std::nullopt, true, link};
}

asio::awaitable<smtp::QueueOutcome> Service::Impl::deliver_postmaster(
    const config::Config& config, const smtp::ConnectionInfo& info, const smtp::Session& session,
    std::string message) {
  auto self = shared_from_this();
  const auto& env = session.envelope();
  char date[64];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  // Trace fields first (RFC 5321 §4.4); the envelope values were checked by the session.
  std::string trace = "Return-Path: <" + env.mail_from +
                      ">\r\nDelivered-To: " + env.rcpt_to.front() + "\r\nReceived: from " +
                      env.helo + " ([" + info.ip.to_string() + "]) by " + config.hostname +
                      " with " + (session.tls() ? "ESMTPS" : "ESMTP") + " id " + info.session_id +
                      "; " + date + "\r\n";
  // Everything that touches the whole message (up to max_message_size: putting the trace
  // fields in front copies it, writing and syncing it waits for the disk) runs on the mailbox
  // thread or the committer; the event loop goes on serving the other sessions meanwhile.
  auto put_trace_in_front = [&]() -> asio::awaitable<void> {
    message.insert(0, trace);
    co_return;
  };
  std::string where;
  if (!config.postmaster.forward.empty()) {
    // First the copy, then the place in the queue: nothing can fail between taking the place
    // and handing it to the committer, which gives it back on any error.
    co_await asio::co_spawn(*mailbox, put_trace_in_front, asio::use_awaitable);
    std::shared_ptr<PendingEnqueue> pending = reserve_entry();
    if (pending->result.error != SpoolError::none) {
      log_event("queue-error", {{"session", info.session_id},
                                {"error", to_string(pending->result.error)},
                                {"detail", pending->result.detail}});
      co_return smtp::QueueOutcome{std::nullopt, "", "queue full"};
    }
    pending->entry.recipient = config.postmaster.forward;
    pending->entry.sender = "";  // a bounce of a forward must not come back here
    pending->entry.data = std::move(message);
    pending->entry.origin = "postmaster mail from ip " + info.ip.to_string();
    hand_to_committer(pending);
    QueueEntry entry;
    Spool::Enqueued q = co_await wait_committed(std::move(pending), entry);
    if (q.error != SpoolError::none) {
      log_event(
          "queue-error",
          {{"session", info.session_id}, {"error", to_string(q.error)}, {"detail", q.detail}});
      co_return smtp::QueueOutcome{std::nullopt, "", "queue write failed"};
    }
    deliverer->submit(std::move(entry));
    where = q.id;
  } else {
    std::string path;
    const MaildirLimits limits{config.postmaster.max_maildir_messages,
                               config.postmaster.max_maildir_bytes};
    const SpoolError e = co_await asio::co_spawn(
        *mailbox,
        [&]() -> asio::awaitable<SpoolError> {
          message.insert(0, trace);
          co_return deliver_to_maildir(config.postmaster.maildir, message, config.hostname, &path,
                                       limits);
        },
        asio::use_awaitable);
    if (e == SpoolError::full) {
      log_event("postmaster-refused", {{"session", info.session_id},
                                       {"ip", info.ip.to_string()},
                                       {"from", env.mail_from},
                                       {"reason", "maildir-full"}});
      co_return smtp::QueueOutcome{
          std::nullopt, "", "postmaster mailbox full",
          smtp::reply(452, "4.2.2",
                      "mailbox full: the postmaster's mailbox is full, try again later")};
    }
    if (e != SpoolError::none) {
      log_event("postmaster-error", {{"session", info.session_id},
                                     {"maildir", config.postmaster.maildir},
                                     {"error", to_string(e)}});
      co_return smtp::QueueOutcome{std::nullopt, "", "mailbox write failed"};
    }
    where = info.session_id + ".pm";
  }
  log_event("postmaster", {{"session", info.session_id},
                           {"ip", info.ip.to_string()},
                           {"from", env.mail_from},
                           {"to", config.postmaster.forward.empty() ? config.postmaster.maildir
                                                                    : config.postmaster.forward}});
  co_return smtp::QueueOutcome{where, "for the postmaster", ""};
}

Service::Service(asio::io_context& io, config::Config config)
    : impl_(std::make_shared<Impl>(io, std::move(config))) {}

Service::~Service() {
  stop();
  set_log_deferral(nullptr);  // writes what is gathered; from here on, one write per line
  // The event loop has stopped running (or never ran): let the three threads finish what they
  // hold now (the committer's done marks and rewrites are done, not dropped: a mark left
  // undone would send that reply again after a restart; a Maildir write under way completes),
  // while the io_context they post their results to is still alive. (The Impl itself may live
  // on in suspended coroutines until the io_context is destroyed; nothing posts to the threads
  // after this.)
  if (impl_) {
    impl_->worker->join();
    impl_->mailbox->join();
    impl_->committer->join();
  }
}

void Service::start(const std::function<void()>& after_bind) {
  auto& s = *impl_;
  auto settings = std::make_shared<Settings>();
  settings->config = s.current->config;
  const config::Config& c = settings->config;
  std::string error;
  auto templates = load_templates(c.reply.templates, error);
  if (!templates) throw std::runtime_error("templates: " + error);
  settings->templates = std::move(*templates);

  settings->resolver =
      std::make_shared<DnsResolver>(s.io.get_executor(), resolver_options(c, s.dns_counters));
  s.current = settings;
  s.limiter = std::make_unique<ReplyLimiter>(reply_limits(c));
  s.postmaster_limiter = std::make_unique<ReplyLimiter>(postmaster_limits(c));

  std::weak_ptr<Impl> weak = impl_;
  s.server = std::make_unique<smtp::Server>(
      s.io, smtp_options(c),
      [weak](const smtp::ConnectionInfo& info) -> std::unique_ptr<smtp::ConnectionHandler> {
        auto svc = weak.lock();
        if (!svc) throw std::runtime_error("service stopped");
        return std::make_unique<Handler>(svc, info);
      });
  s.server->start();
  // Report pages are read and rendered on the worker, like the reports they show.
  s.http = std::make_unique<HttpServer>(s.io, s.make_router(), s.worker->get_executor());
  s.http->commit(s.http->prepare(http_options(c)));
  // Bound, and the TLS key is read: from here on, as the unprivileged user, so that what the
  // spool and the Maildirs hold belongs to it.
  if (after_bind) after_bind();

  SpoolOpenReport report;
  s.spool = Spool::open(Spool::Options{c.queue.dir, c.queue.max_entries}, report, error);
  if (!s.spool) throw std::runtime_error("queue " + c.queue.dir + ": " + error);
  log_event("queue-open", {{"dir", c.queue.dir},
                           {"recovered", std::to_string(report.recovered)},
                           {"temp_removed", std::to_string(report.temp_removed)},
                           {"set_aside", std::to_string(report.set_aside)}});
  for (const auto& p : report.problems) log_event("queue-problem", {{"detail", p}});

  std::vector<std::string> report_problems;
  s.reports = ReportIndex::open(c.queue.dir, report_problems, error);
  if (!s.reports) throw std::runtime_error("queue " + c.queue.dir + ": " + error);
  for (const auto& p : report_problems) log_event("queue-problem", {{"detail", p}});
  s.report_limiter = report_limiter_for(c);
  s.report_limit = c.http.max_report_requests_per_ip_per_minute;
  s.report_timer.emplace(s.io);

  s.deliverer = s.make_deliverer(settings);
  s.deliverer_settings = settings;
  s.deliverer->start();
  s.prune_reports();  // those that expired while the server was down
  s.schedule_report_prune();
  s.counters.start_time = epoch_now();
  s.counters.last_reload_success = s.counters.start_time;
  // Started: from here on log lines are gathered and written once per round of the event loop
  // (core/log.hpp).
  set_log_deferral(
      [ex = s.io.get_executor()](std::function<void()> f) { asio::post(ex, std::move(f)); });
  log_event("started", {{"hostname", c.hostname},
                        {"version", IPCONFIRM_VERSION},
                        {"queued", std::to_string(s.spool->size())},
                        {"reports", std::to_string(s.reports->size())}});
}

bool Service::reload(const config::LoadResult& loaded) {
  if (!impl_ || !impl_->server || impl_->stopping) return false;
  return impl_->reload(loaded);
}

std::shared_ptr<Deliverer> Service::Impl::make_deliverer(const std::shared_ptr<const Settings>& s) {
  std::weak_ptr<Impl> weak = weak_from_this();
  Deliverer::DiskWork disk;
  disk.done = [weak](std::string id) {
    if (auto svc = weak.lock()) svc->done_later(std::move(id));
  };
  disk.rewrite = [weak](Spool::Rewrite rewrite) {
    if (auto svc = weak.lock()) svc->rewrite_later(std::move(rewrite));
  };
  disk.mailbox = mailbox->get_executor();
  auto d = std::make_shared<Deliverer>(io.get_executor(), std::move(disk), s->config, *spool,
                                       *s->resolver);
  d->set_observer([weak](const QueueEntry& entry, Deliverer::Result result) {
    if (auto svc = weak.lock()) svc->on_delivery(entry, result);
  });
  return d;
}

void Service::Impl::retire(std::shared_ptr<Deliverer> old, std::shared_ptr<const Settings> used) {
  if (old->in_flight() == 0 || stopping) return;  // `used` goes with this call
  auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::seconds(1));
  timer->async_wait(
      [weak = weak_from_this(), timer, old, used](const boost::system::error_code& ec) {
        auto svc = weak.lock();
        if (svc && !ec) svc->retire(old, used);
      });
}

void Service::Impl::on_delivery(const QueueEntry& entry, Deliverer::Result result) {
  switch (result) {
    case Deliverer::Result::delivered:
      ++counters.delivered;
      if (auto made = spool_id_time(entry.id))
        counters.delivery.observe(std::max(0.0, epoch_now() - *made));
      break;
    case Deliverer::Result::deferred:
      ++counters.deferred;
      break;
    case Deliverer::Result::bounced:
      ++counters.bounced;
      break;
    case Deliverer::Result::expired:
      ++counters.expired;
      break;
  }
}

std::shared_ptr<HttpRouter> Service::Impl::make_router() {
  auto router = std::make_shared<HttpRouter>();
  std::weak_ptr<Impl> weak = weak_from_this();
  router->add("/metrics", [weak](const HttpRequest&) {
    auto svc = weak.lock();
    if (!svc) return http_error(503);
    HttpResponse r;
    r.content_type = std::string(kPrometheusContentType);
    r.body = svc->metrics_text();
    return r;
  });
  router->add("/healthz", [weak](const HttpRequest&) {
    auto svc = weak.lock();
    if (!svc) return http_error(503);
    return svc->health();
  });
  // Everything under /r/, and /r/ itself: one answer for whatever is not a report.
  auto reports_route = [weak](const HttpRequest& request) {
    auto svc = weak.lock();
    if (!svc) return http_error(503);
    return svc->report_route(request);
  };
  router->add(std::string(kReportPathPrefix), reports_route);
  router->add_prefix(std::string(kReportPathPrefix), reports_route);
  return router;
}

// GET /r/TOKEN[.json|.txt], on the event loop: the rate limit, then the lookup; the file is
// read and the page rendered on the worker (the response's off_loop job).
HttpResponse Service::Impl::report_route(const HttpRequest& request) {
  // Every request under /r/ counts, found or not: guessing costs as much as reading.
  if (report_limiter && !report_limiter->unlimited()) {
    const std::string key =
        request.peer.is_v4() ? request.peer.to_string() : network_key(request.peer);
    const auto t = RateClock::now();
    if (!report_limiter->has_token(key, t)) {
      ++counters.rate_limited["report_requests"];
      const auto per_minute = static_cast<int>(std::max<std::size_t>(1, report_limit));
      return report_rate_limited(std::max(1, (60 + per_minute - 1) / per_minute));
    }
    report_limiter->take(key, t);
  }
  const std::optional<ReportRequest> wanted = parse_report_path(request.path);
  if (!wanted || !reports) return report_not_found();
  // Expired reports leave the index before the lookup, so that an expired token is looked up
  // exactly like one never issued.
  prune_reports();
  const std::optional<std::string> name = reports->find(wanted->token);
  if (!name) return report_not_found();
  HttpResponse r;
  r.off_loop = [dir = spool->dir(), name = *name, place = *reports->place(*name),
                form = wanted->form, settings = current] {
    const std::optional<std::string> json = read_stored_report(dir, name, place);
    if (!json) return report_not_found();  // pushed out meanwhile, or failing its checks
    if (form == ReportForm::json) return report_found(form, *json);
    const auto report = nlohmann::ordered_json::parse(*json, nullptr, false);
    if (report.is_discarded() || !report.is_object()) return report_not_found();
    return report_found(form, form == ReportForm::page ? render_page(settings->templates, report)
                                                       : render_text(settings->templates, report));
  };
  return r;
}

void Service::Impl::add_report(const std::string& name, const ReportPlace& place) {
  if (!reports) return;
  reports->add(name, place);
  prune_reports();  // over max_reports: the oldest go
}

void Service::Impl::prune_reports() {
  if (!reports) return;
  const config::Config& c = current->config;
  std::vector<std::uint64_t> segments;
  std::vector<std::string> files =
      reports->prune(static_cast<std::int64_t>(std::time(nullptr)), report_lifetime(c),
                     c.http.max_reports, &segments);
  unlink_reports_later(std::move(files), std::move(segments));
}

// Expired reports are deleted even when nobody asks for a page: every minute, or a second
// time within a report's lifetime when that is shorter.
void Service::Impl::schedule_report_prune() {
  if (!report_timer || stopping) return;
  const auto lifetime = std::chrono::seconds(report_lifetime(current->config));
  report_timer->expires_after(std::clamp<std::chrono::seconds>(
      lifetime / 2, std::chrono::seconds(1), std::chrono::seconds(60)));
  report_timer->async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto svc = weak.lock();
    if (!svc || ec || svc->stopping) return;
    svc->prune_reports();
    svc->schedule_report_prune();
  });
}

std::string Service::Impl::metrics_text() {
  MetricsSnapshot m;
  m.service = &counters;
  m.version = IPCONFIRM_VERSION;
  if (server) {
    m.smtp = server->stats();
    m.smtp_open = server->connections();
  }
  m.dns_queries = dns_counters->queries;
  m.dns_cache_hits = dns_counters->cache_hits;
  m.dns_timeouts = dns_counters->timeouts;
  if (http) {
    m.http = http->stats();
    m.http_open = http->connections();
  }
  m.queue_capacity = current->config.queue.max_entries;
  if (reports) m.reports_stored = reports->size();
  if (spool) {
    m.queue_entries = spool->size();
    // Ids sort by creation: the first one due at the end of time is the oldest.
    auto oldest = spool->due(std::numeric_limits<std::int64_t>::max(), 1);
    if (!oldest.empty())
      if (auto made = spool_id_time(oldest.front()))
        m.queue_oldest_age = std::max(0.0, epoch_now() - *made);
  }
  return render_metrics(m);
}

HttpResponse Service::Impl::health() {
  const auto now = std::chrono::steady_clock::now();
  if (spool && now - last_probe >= std::chrono::seconds(1)) {
    last_probe = now;
    spool_problem = probe_writable(spool->dir() / "segments");
    if (spool_problem.empty()) spool_problem = probe_writable(spool->dir() / "tmp");
  }
  HealthFacts facts;
  facts.stopping = stopping;
  facts.smtp_listening = server && server->listening();
  facts.spool_problem = spool ? spool_problem : "not open";
  facts.queue_entries = spool ? spool->size() : 0;
  facts.queue_capacity = current->config.queue.max_entries;
  Health h = judge_health(facts);
  HttpResponse r;
  r.status = h.ok ? 200 : 503;
  r.body = std::move(h.text);
  return r;
}

bool Service::Impl::reload(const config::LoadResult& loaded) {
  auto failed = [&](const std::string& why) {
    ++counters.reloads_failed;
    counters.last_reload_ok = false;
    log_event("reload-failed", {{"error", why}, {"detail", "the running settings stay"}});
    return false;
  };
  if (!loaded.config) return failed(loaded.error);
  config::Config next = *loaded.config;
  const ReloadPlan plan = plan_reload(current->config, next);
  try {
    // Build everything the new settings need; nothing running changes until all of it worked.
    auto settings = std::make_shared<Settings>();
    settings->config = std::move(next);
    const config::Config& c = settings->config;
    std::string error;
    auto templates = load_templates(c.reply.templates, error);
    if (!templates) throw std::runtime_error("templates: " + error);
    settings->templates = std::move(*templates);
    settings->resolver =
        plan.new_resolver
            ? std::make_shared<DnsResolver>(io.get_executor(), resolver_options(c, dns_counters))
            : current->resolver;
    std::shared_ptr<Deliverer> next_deliverer;
    if (plan.new_deliverer) next_deliverer = make_deliverer(settings);
    auto smtp_change = server->prepare(smtp_options(c));
    auto http_change = http->prepare(http_options(c));

    // Switch. Nothing below throws.
    server->commit(std::move(smtp_change));
    http->commit(std::move(http_change));
    if (next_deliverer) {
      std::shared_ptr<Deliverer> old = std::move(deliverer);
      old->stop();
      next_deliverer->take_over(old);
      next_deliverer->start();
      deliverer = std::move(next_deliverer);
      retire(std::move(old), std::move(deliverer_settings));
      deliverer_settings = settings;
    }
    if (plan.new_limiter) limiter = std::make_unique<ReplyLimiter>(reply_limits(c));
    if (plan.new_postmaster_limiter)
      postmaster_limiter = std::make_unique<ReplyLimiter>(postmaster_limits(c));
    if (c.http.max_report_requests_per_ip_per_minute != report_limit) {
      report_limiter = report_limiter_for(c);
      report_limit = c.http.max_report_requests_per_ip_per_minute;
    }
    current = settings;
  } catch (const std::exception& e) {
    return failed(e.what());
  }
  for (const auto& k : plan.kept)
    log_event("reload-kept", {{"key", k.key},
                              {"running", k.running},
                              {"ignored", k.loaded},
                              {"detail", "takes a restart to change"}});
  ++counters.reloads_ok;
  counters.last_reload_ok = true;
  counters.last_reload_success = epoch_now();
  const auto& c = current->config;
  log_event("reloaded", {{"hostname", c.hostname},
                         {"smtp_listeners",
                          std::to_string(c.smtp.listen.size() + c.smtp.implicit_tls_listen.size() +
                                         c.smtp.proxy_protocol_listen.size() +
                                         c.smtp.proxy_protocol_tls_listen.size())},
                         {"http_listeners", std::to_string(c.http.listen.size())},
                         {"tls", c.smtp.tls_cert.empty() ? "off" : "reloaded"},
                         {"dns", plan.new_resolver ? "new" : "unchanged"},
                         {"delivery", plan.new_deliverer ? "new" : "unchanged"},
                         {"rate_limits", plan.new_limiter ? "new" : "unchanged"}});
  return true;
}

void Service::stop() {
  if (!impl_) return;
  auto& s = *impl_;
  s.stopping = true;
  if (s.server) s.server->stop();
  if (s.http) s.http->stop();
  if (s.report_timer) s.report_timer->cancel();
  if (s.deliverer) s.deliverer->stop();
  if (s.current && s.current->resolver) s.current->resolver->cancel_all();
}

}  // namespace ipconfirm::responder

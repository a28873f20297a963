#include "responder/queue/delivery.hpp"

#include <algorithm>
#include <fstream>
#include <random>
#include <stdexcept>

#include "core/log.hpp"
#include "responder/queue/maildir.hpp"

namespace ipconfirm::responder {

namespace {

using Outcome = smtp::DeliveryOutcome;
using Kind = smtp::DeliveryOutcome::Kind;

std::int64_t now_seconds() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

asio::ip::tcp::endpoint to_endpoint(const IpAddress& ip, std::uint16_t port) {
  if (ip.is_v4()) {
    const auto& b = ip.bytes();
    return {asio::ip::address_v4({b[0], b[1], b[2], b[3]}), port};
  }
  return {asio::ip::address_v6(ip.bytes()), port};
}

// The first line of `path`, "user:password", split at the first colon.
std::pair<std::string, std::string> read_auth_file(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line))
    throw std::runtime_error("delivery.smarthost_auth_file " + path + ": cannot read it");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  auto colon = line.find(':');
  if (colon == std::string::npos || colon == 0)
    throw std::runtime_error("delivery.smarthost_auth_file " + path +
                             ": the first line must be user:password");
  return {line.substr(0, colon), line.substr(colon + 1)};
}

// What submit() may hold in memory: replies are a few tens of KiB, so a few hundred of them.
constexpr std::size_t kMaxSubmittedBytes = 8 * 1024 * 1024;

double random01() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

}  // namespace

Deliverer::Deliverer(asio::any_io_executor ex, UnlinkLater unlink_later,
                     const config::Config& config, Spool& spool, DnsResolver& resolver)
    : ex_(ex),
      unlink_later_(std::move(unlink_later)),
      config_(config),
      spool_(spool),
      resolver_(resolver),
      signal_(ex),
      tls_(asio::ssl::context::tls_client) {
  client_.helo_name = config.hostname;
  client_.tls = smtp::ClientOptions::Tls::opportunistic;
  client_.connect_timeout = std::chrono::seconds(30);
  tls_.set_verify_mode(asio::ssl::verify_none);
  retry_.first = config.queue.retry_first;
  retry_.max_delay = config.queue.retry_max;
  retry_.lifetime = config.queue.lifetime;

  smarthost_client_ = client_;
  switch (config.delivery.smarthost_tls) {
    case config::SmarthostTls::none:
      smarthost_client_.tls = smtp::ClientOptions::Tls::none;
      break;
    case config::SmarthostTls::opportunistic:
      smarthost_client_.tls = smtp::ClientOptions::Tls::opportunistic;
      break;
    case config::SmarthostTls::required:
      smarthost_client_.tls = smtp::ClientOptions::Tls::required;
      break;
  }
  if (!config.delivery.smarthost_auth_file.empty())
    smarthost_client_.auth = read_auth_file(config.delivery.smarthost_auth_file);
  else if (!config.delivery.smarthost_user.empty())
    smarthost_client_.auth =
        std::make_pair(config.delivery.smarthost_user, config.delivery.smarthost_password);
  if (config.delivery.mode == config::DeliveryMode::smarthost && config.delivery.smarthost) {
    const auto& sh = *config.delivery.smarthost;
    // Up to max_parallel_ sessions stay open while replies keep coming, each QUIT after 5 s
    // idle, 100 replies or 5 minutes (as Postfix's connection cache does).
    smtp::ReuseLimits limits;
    limits.max_idle = max_parallel_;
    smarthost_pool_ = std::make_unique<smtp::ClientPool>(ex_, to_endpoint(sh.address, sh.port),
                                                         smarthost_client_, tls_, limits);
  }
}

void Deliverer::start() {
  asio::co_spawn(
      ex_, [self = shared_from_this()]() { return self->run(); }, asio::detached);
}

void Deliverer::wake() {
  signal_.cancel();
}

void Deliverer::submit(QueueEntry entry) {
  const std::size_t bytes = entry.data.size();
  if (submitted_bytes_ + bytes <= kMaxSubmittedBytes) {
    std::string id = entry.id;
    auto [it, inserted] = submitted_.try_emplace(std::move(id), std::move(entry));
    if (inserted) submitted_bytes_ += bytes;
  }
  wake();
}

std::optional<QueueEntry> Deliverer::take_submitted(const std::string& id) {
  auto it = submitted_.find(id);
  if (it == submitted_.end()) return std::nullopt;
  submitted_bytes_ -= it->second.data.size();
  std::optional<QueueEntry> entry = std::move(it->second);
  submitted_.erase(it);
  return entry;
}

void Deliverer::remove_entry(const std::string& id) {
  if (spool_.forget(id) != SpoolError::none) return;
  unlink_later_(id);
}

void Deliverer::take_over(std::shared_ptr<Deliverer> previous) {
  for (auto& [id, entry] : previous->submitted_) {
    if (previous->in_flight_.count(id)) continue;
    submitted_bytes_ += entry.data.size();
    submitted_.emplace(id, std::move(entry));
  }
  previous->submitted_.clear();
  previous->submitted_bytes_ = 0;
  held_until_.merge(previous->held_until_);
  previous_ = std::move(previous);
}

void Deliverer::stop() {
  stopping_ = true;
  signal_.cancel();
  // Idle sessions would keep the event loop busy until their idle timeout.
  if (smarthost_pool_) smarthost_pool_->close_idle();
}

asio::awaitable<void> Deliverer::run() {
  auto self = shared_from_this();
  while (!stopping_) {
    std::int64_t now = now_seconds();
    // control/ is read at most once a second, not on every wake (each queued or delivered
    // reply wakes this loop).
    if (now != requests_checked_) {
      requests_checked_ = now;
      apply_requests(now);
    }
    if (previous_ && previous_->in_flight_.empty()) previous_.reset();
    const std::size_t theirs = previous_ ? previous_->in_flight_.size() : 0;
    for (const auto& id :
         spool_.due(now, in_flight_.size() + theirs + held_until_.size() + max_parallel_)) {
      if (in_flight_.size() >= max_parallel_) break;
      if (in_flight_.count(id)) continue;
      if (previous_ && previous_->in_flight_.count(id)) continue;
      if (auto held = held_until_.find(id); held != held_until_.end()) {
        if (held->second > now) continue;
        held_until_.erase(held);
      }
      in_flight_.insert(id);
      asio::co_spawn(
          ex_, [self, id]() { return self->deliver_entry(id); }, asio::detached);
    }
    // Sleep until woken (a new entry, a finished delivery) or a second passes: due times are in
    // whole seconds.
    signal_.expires_after(std::chrono::seconds(1));
    boost::system::error_code ec;
    co_await signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void Deliverer::apply_requests(std::int64_t now) {
  std::vector<std::string> problems;
  for (const std::string& text : spool_.take_requests(problems)) {
    if (text == "flush\n") {
      held_until_.clear();
      std::size_t n = spool_.flush(now);
      log_event("queue-flush", {{"due_now", std::to_string(n)}});
    } else if (text.rfind("delete ", 0) == 0 && text.size() > 8 && text.back() == '\n') {
      std::string id = text.substr(7, text.size() - 8);
      SpoolError err = spool_.remove(id);
      held_until_.erase(id);
      take_submitted(id);
      // An entry being delivered right now may still reach its target; its delivery then
      // finds the entry gone and leaves it so.
      log_event("queue-delete", {{"queue_id", id}, {"result", to_string(err)}});
    } else {
      problems.push_back("unknown queue request: " + text.substr(0, 80));
    }
  }
  for (const auto& p : problems) log_event("queue-problem", {{"detail", p}});
}

asio::awaitable<void> Deliverer::deliver_entry(std::string id) {
  auto self = shared_from_this();
  SpoolError err = SpoolError::none;
  std::optional<QueueEntry> entry = take_submitted(id);
  if (!entry) entry = spool_.load(id, &err);
  if (!entry) {
    log_event("delivery-error", {{"queue_id", id}, {"error", to_string(err)}});
    in_flight_.erase(id);
    co_return;
  }
  Outcome out = co_await transport(*entry);
  std::int64_t now = now_seconds();
  ++entry->attempts;
  const std::string attempts = std::to_string(entry->attempts);
  held_until_.erase(id);
  if (out.kind == Kind::ok) {
    remove_entry(id);
    log_event("delivered", {{"queue_id", id},
                            {"to", entry->recipient},
                            {"attempts", attempts},
                            {"detail", out.detail}});
    if (observer_) observer_(*entry, Result::delivered);
  } else if (out.kind == Kind::permanent) {
    remove_entry(id);
    log_event("bounced", {{"queue_id", id},
                          {"to", entry->recipient},
                          {"detail", out.detail},
                          {"note", "dropped: the reply has a null sender"}});
    if (observer_) observer_(*entry, Result::bounced);
  } else {
    auto delay = next_retry(retry_, entry->attempts, entry->created, now, random01());
    if (!delay) {
      remove_entry(id);
      log_event("expired", {{"queue_id", id}, {"to", entry->recipient}, {"detail", out.detail}});
      if (observer_) observer_(*entry, Result::expired);
    } else {
      entry->next_attempt = now + *delay;
      entry->last_error = out.detail;
      if (SpoolError e = spool_.update(*entry);
          e != SpoolError::none && e != SpoolError::not_found) {
        // The entry keeps its old (due) schedule on disk; keep the new one in memory so that a
        // full disk does not turn the retries into a loop.
        held_until_[id] = entry->next_attempt;
        log_event("queue-error", {{"queue_id", id}, {"detail", spool_.last_detail()}});
      }
      log_event("deferred", {{"queue_id", id},
                             {"to", entry->recipient},
                             {"attempts", attempts},
                             {"retry_in", std::to_string(*delay) + "s"},
                             {"detail", out.detail}});
      if (observer_) observer_(*entry, Result::deferred);
    }
  }
  in_flight_.erase(id);
  signal_.cancel();
}

asio::awaitable<Outcome> Deliverer::transport(const QueueEntry& stored) {
  // The queue id travels in a header of its own, so that a reply can be traced back to the
  // "queued as" of the message that caused it.
  std::string data;
  data.reserve(stored.id.size() + stored.data.size() + 24);
  data.append("X-Ipconfirm-Queue-Id: ").append(stored.id).append("\r\n").append(stored.data);
  switch (config_.delivery.mode) {
    case config::DeliveryMode::maildir: {
      std::string path;
      SpoolError e = deliver_to_maildir(config_.delivery.maildir, data, config_.hostname, &path);
      if (e == SpoolError::none) co_return Outcome{Kind::ok, "maildir " + path};
      co_return Outcome{Kind::temporary, "maildir: " + std::string(to_string(e))};
    }
    case config::DeliveryMode::smarthost: {
      if (!smarthost_pool_) co_return Outcome{Kind::temporary, "no smarthost configured"};
      Outcome out =
          co_await smarthost_pool_->deliver(stored.sender, stored.recipient, std::move(data));
      co_return out;
    }
    case config::DeliveryMode::mx: {
      Outcome out = co_await via_mx(stored, data);
      co_return out;
    }
  }
  co_return Outcome{Kind::permanent, "unknown delivery mode"};
}

asio::awaitable<Outcome> Deliverer::via_mx(const QueueEntry& entry, const std::string& data) {
  auto at = entry.recipient.rfind('@');
  if (at == std::string::npos) co_return Outcome{Kind::permanent, "recipient has no domain"};
  std::string domain = entry.recipient.substr(at + 1);
  if (!domain.empty() && domain.front() == '[')
    co_return Outcome{Kind::permanent, "address literals are not delivered to"};

  // RFC 5321 §5.1: MX hosts by preference; with no MX, the domain itself.
  std::vector<std::string> hosts;
  DnsResult mx = co_await resolver_.query(domain, RrType::mx);
  if (mx.status == DnsStatus::temperror)
    co_return Outcome{Kind::temporary, "MX lookup: " + mx.detail};
  if (mx.status == DnsStatus::nxdomain) co_return Outcome{Kind::permanent, "domain does not exist"};
  if (mx.status == DnsStatus::ok) {
    auto records = mx.records;
    std::stable_sort(records.begin(), records.end(), [](const DnsRecord& a, const DnsRecord& b) {
      return a.preference < b.preference;
    });
    for (const auto& r : records) {
      std::string host = r.text;
      if (!host.empty() && host.back() == '.') host.pop_back();
      // RFC 7505: a single MX with the root as exchange means "this domain takes no mail".
      if (host.empty() || host == ".") co_return Outcome{Kind::permanent, "null MX (RFC 7505)"};
      hosts.push_back(host);
    }
  } else {
    hosts.push_back(domain);
  }

  Outcome last{Kind::temporary, "no usable address for " + domain};
  std::size_t tried = 0;
  for (const auto& host : hosts) {
    for (RrType type : {RrType::aaaa, RrType::a}) {
      DnsResult addrs = co_await resolver_.query(host, type);
      if (addrs.status != DnsStatus::ok) continue;
      for (const auto& r : addrs.records) {
        if (!r.address || tried >= 10) continue;
        if (r.address->is_non_public() && !config_.delivery.allow_private) {
          last = Outcome{Kind::temporary, host + " has the non-public address " +
                                              r.address->to_string() + ": not used"};
          continue;
        }
        ++tried;
        smtp::ClientOptions opts = client_;
        opts.tls_server_name = host;
        last = co_await smtp::deliver(ex_, to_endpoint(*r.address, config_.delivery.mx_port), opts,
                                      tls_, entry.sender, entry.recipient, data);
        if (last.kind != Kind::temporary) co_return last;
      }
    }
  }
  co_return last;
}

}  // namespace ipconfirm::responder

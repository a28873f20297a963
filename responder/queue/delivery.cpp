#include "responder/queue/delivery.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>

#include "core/log.hpp"
#include "core/special_purpose.hpp"
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

// The addresses of this host's interfaces, now (they change: DHCP, a new VPN). A reply must
// not be delivered to ourselves: our own public address would reach our own port 25, or another
// local service on the MX port.
std::vector<IpAddress> own_addresses() {
  std::vector<IpAddress> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      out.push_back(IpAddress::from_v4(ntohl(sin->sin_addr.s_addr)));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      std::array<std::uint8_t, 16> bytes{};
      std::memcpy(bytes.data(), &sin6->sin6_addr, 16);
      out.push_back(IpAddress::from_v6(bytes));
    }
  }
  ::freeifaddrs(list);
  return out;
}

// Why an MX host's address must not be connected to, or nullopt (see core/special_purpose.hpp).
std::optional<std::string> refuse_destination(const IpAddress& ip,
                                              const std::vector<IpAddress>& own) {
  if (auto why = why_not_a_destination(ip)) return why;
  if (std::find(own.begin(), own.end(), ip) != own.end())
    return std::string("this host's own address");
  return std::nullopt;
}

double random01() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

}  // namespace

Deliverer::Deliverer(asio::any_io_executor ex, DiskWork disk, const config::Config& config,
                     Spool& spool, DnsResolver& resolver)
    : ex_(ex),
      disk_(std::move(disk)),
      config_(config),
      spool_(spool),
      resolver_(resolver),
      signal_(ex),
      tls_(asio::ssl::context::tls_client),
      smarthost_tls_(asio::ssl::context::tls_client) {
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
  // The smarthost's certificate: against a CA file or the system's store, for its host name
  // (or smarthost_tls_name), or a pin. "required" means verified, not only encrypted.
  const auto& d = config.delivery;
  smarthost_tls_.set_options(asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  if (!d.smarthost_tls_ca_file.empty()) {
    boost::system::error_code ec;
    smarthost_tls_.load_verify_file(d.smarthost_tls_ca_file, ec);
    if (ec)
      throw std::runtime_error("delivery.smarthost_tls_ca_file " + d.smarthost_tls_ca_file +
                               ": cannot load it: " + ec.message());
    smarthost_client_.tls_trust = "file";
  } else {
    smarthost_tls_.set_default_verify_paths();
    smarthost_client_.tls_trust = "system";
  }
  smarthost_client_.tls_server_name =
      d.smarthost_host.empty() ? d.smarthost_tls_name : d.smarthost_host;
  if (!d.smarthost_tls_fingerprint.empty()) {
    std::array<std::uint8_t, 32> pin{};
    for (std::size_t i = 0; i < pin.size(); ++i)
      pin[i] = static_cast<std::uint8_t>(
          std::stoi(d.smarthost_tls_fingerprint.substr(2 * i, 2), nullptr, 16));
    smarthost_client_.tls_pin = pin;
  }
  smarthost_client_.verify_peer = d.smarthost_tls == config::SmarthostTls::required;
  if (d.mode == config::DeliveryMode::smarthost &&
      (smarthost_client_.auth || smarthost_client_.verify_peer) &&
      smarthost_client_.tls_server_name.empty() && !smarthost_client_.tls_pin) {
    log_event("config-warning",
              {{"detail",
                "the smarthost is given by address, with credentials or smarthost_tls = "
                "\"required\", but with neither smarthost_tls_name nor "
                "smarthost_tls_fingerprint: its certificate cannot be verified, so replies "
                "will wait"}});
  }
  if (d.mode == config::DeliveryMode::smarthost && d.smarthost)
    smarthost_pool_ = make_smarthost_pool(to_endpoint(d.smarthost->address, d.smarthost->port));
}

std::unique_ptr<smtp::ClientPool> Deliverer::make_smarthost_pool(
    const asio::ip::tcp::endpoint& endpoint) {
  // Up to max_parallel_ sessions stay open while replies keep coming, each QUIT after 5 s
  // idle, 100 replies or 5 minutes (as Postfix's connection cache does).
  smtp::ReuseLimits limits;
  limits.max_idle = max_parallel_;
  return std::make_unique<smtp::ClientPool>(ex_, endpoint, smarthost_client_, smarthost_tls_,
                                            limits);
}

asio::awaitable<std::optional<std::string>> Deliverer::resolve_smarthost() {
  const auto& d = config_.delivery;
  if (d.smarthost_host.empty()) co_return std::nullopt;
  // The first address of the name, IPv4 first; the resolver's cache keeps it for its TTL.
  std::optional<IpAddress> address;
  std::string failure;
  for (RrType type : {RrType::a, RrType::aaaa}) {
    DnsResult r = co_await resolver_.query(d.smarthost_host, type);
    for (const auto& record : r.records)
      if (record.address && !address) address = record.address;
    if (address) break;
    if (failure.empty() || r.status != DnsStatus::nodata) failure = r.detail;
  }
  if (!address) co_return "smarthost " + d.smarthost_host + ": no address (" + failure + ")";
  const auto endpoint = to_endpoint(*address, d.smarthost_port);
  if (!smarthost_pool_ || smarthost_endpoint_ != endpoint) {
    // The name now points elsewhere: new sessions go there; deliveries on the old pool finish.
    if (smarthost_pool_) smarthost_pool_->close_idle();
    smarthost_pool_ = make_smarthost_pool(endpoint);
    smarthost_endpoint_ = endpoint;
  }
  co_return std::nullopt;
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
  disk_.done(id);
}

void Deliverer::take_over(std::shared_ptr<Deliverer> previous) {
  for (auto& [id, entry] : previous->submitted_) {
    if (previous->in_flight_.count(id)) continue;
    submitted_bytes_ += entry.data.size();
    submitted_.emplace(id, std::move(entry));
  }
  previous->submitted_.clear();
  previous->submitted_bytes_ = 0;
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
    const auto started = std::chrono::steady_clock::now();
    for (const auto& id :
         spool_.due(now, in_flight_.size() + theirs + parked_ids_.size() + max_parallel_)) {
      if (!slot_free(started)) break;
      if (in_flight_.count(id) || parked_ids_.count(id)) continue;
      if (previous_ && previous_->in_flight_.count(id)) continue;
      in_flight_.emplace(id, started);
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

bool Deliverer::slot_free(std::chrono::steady_clock::time_point now) const {
  if (config_.delivery.mode != config::DeliveryMode::mx) return in_flight_.size() < max_parallel_;
  std::size_t fast = 0;
  for (const auto& [id, started] : in_flight_) fast += now - started < kSlowAfter;
  return fast < max_parallel_ && in_flight_.size() < max_parallel_ + kMaxSlow;
}

void Deliverer::park(const std::string& domain, QueueEntry entry) {
  parked_[domain].push_back(entry.id);
  parked_ids_.insert(entry.id);
  // Keep its contents in memory if the budget allows, as submit() would have.
  const std::size_t bytes = entry.data.size();
  if (submitted_bytes_ + bytes <= kMaxSubmittedBytes) {
    std::string id = entry.id;
    if (submitted_.try_emplace(std::move(id), std::move(entry)).second) submitted_bytes_ += bytes;
  }
}

void Deliverer::finish_domain(const std::string& domain) {
  if (auto it = domain_in_flight_.find(domain); it != domain_in_flight_.end() && --it->second == 0)
    domain_in_flight_.erase(it);
  if (auto it = parked_.find(domain); it != parked_.end()) {
    parked_ids_.erase(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) parked_.erase(it);
  }
}

void Deliverer::apply_requests(std::int64_t now) {
  std::vector<std::string> problems;
  for (const std::string& text : spool_.take_requests(problems)) {
    if (text == "flush\n") {
      // Due now in the index at once; the files are rewritten off the event loop.
      std::size_t n = 0;
      for (const auto& id : spool_.due(std::numeric_limits<std::int64_t>::max())) {
        if (spool_.reschedule(id, now) != SpoolError::none) continue;
        disk_.rewrite({id, now, std::nullopt, std::nullopt});
        ++n;
      }
      log_event("queue-flush", {{"due_now", std::to_string(n)}});
    } else if (text.rfind("delete ", 0) == 0 && text.size() > 8 && text.back() == '\n') {
      std::string id = text.substr(7, text.size() - 8);
      SpoolError err = spool_.forget(id);
      if (err == SpoolError::none) disk_.done(id);  // after any rewrite of it, on one thread
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
  // MX mode: at most max_per_domain replies to one domain at once; this one waits its turn.
  std::string domain;
  if (config_.delivery.mode == config::DeliveryMode::mx) {
    domain = entry->recipient.substr(entry->recipient.rfind('@') + 1);
    for (auto& c : domain) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (domain_in_flight_[domain] >= config_.delivery.max_per_domain) {
      park(domain, std::move(*entry));
      in_flight_.erase(id);
      co_return;
    }
    ++domain_in_flight_[domain];
  }
  Outcome out = co_await transport(*entry);
  if (!domain.empty()) finish_domain(domain);
  std::int64_t now = now_seconds();
  ++entry->attempts;
  const std::string attempts = std::to_string(entry->attempts);
  // In smarthost mode each line says what the session's TLS was.
  std::vector<LogField> tls_fields;
  if (config_.delivery.mode == config::DeliveryMode::smarthost) {
    switch (out.tls.state) {
      case smtp::TlsSummary::State::none:
        tls_fields = {{"tls", "none"}};
        break;
      case smtp::TlsSummary::State::unverified:
        tls_fields = {{"tls", "unverified"}, {"tls_reason", out.tls.reason}};
        break;
      case smtp::TlsSummary::State::verified:
        tls_fields = {{"tls", "verified"}};
        if (!out.tls.name.empty()) tls_fields.emplace_back("tls_name", out.tls.name);
        tls_fields.emplace_back("tls_ca", out.tls.ca);
        break;
    }
  }
  auto log_with_tls = [&](std::string_view event, std::initializer_list<LogField> fields) {
    std::vector<LogField> all(fields);
    all.insert(all.end(), tls_fields.begin(), tls_fields.end());
    log_event(event, std::span<const LogField>(all));
  };
  if (out.kind == Kind::ok) {
    remove_entry(id);
    log_with_tls("delivered", {{"queue_id", id},
                               {"to", entry->recipient},
                               {"attempts", attempts},
                               {"detail", out.detail}});
    if (observer_) observer_(*entry, Result::delivered);
  } else if (out.kind == Kind::permanent) {
    remove_entry(id);
    log_with_tls("bounced", {{"queue_id", id},
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
      // The index has the new schedule at once (so a disk that refuses the rewrite cannot turn
      // the retries into a loop); the file gets it off the event loop. An entry deleted
      // meanwhile is left deleted.
      if (spool_.reschedule(id, entry->next_attempt) == SpoolError::none)
        disk_.rewrite({id, entry->next_attempt, entry->attempts, entry->last_error});
      const std::string retry_in = std::to_string(*delay) + "s";
      log_with_tls("deferred", {{"queue_id", id},
                                {"to", entry->recipient},
                                {"attempts", attempts},
                                {"retry_in", retry_in},
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
      // The write and its syncs wait for the disk: on the mailbox thread, not the event loop.
      std::string path;
      const SpoolError e = co_await asio::co_spawn(
          disk_.mailbox,
          [&]() -> asio::awaitable<SpoolError> {
            co_return deliver_to_maildir(config_.delivery.maildir, data, config_.hostname, &path);
          },
          asio::use_awaitable);
      if (e == SpoolError::none) co_return Outcome{Kind::ok, "maildir " + path};
      co_return Outcome{Kind::temporary, "maildir: " + std::string(to_string(e))};
    }
    case config::DeliveryMode::smarthost: {
      std::optional<std::string> unresolved = co_await resolve_smarthost();
      if (unresolved) co_return Outcome{Kind::temporary, *unresolved};
      if (!smarthost_pool_) co_return Outcome{Kind::temporary, "no smarthost configured"};
      // Taken from the pool before the wait: another delivery may replace the pool meanwhile.
      auto delivery = smarthost_pool_->deliver(stored.sender, stored.recipient, std::move(data));
      Outcome out = co_await std::move(delivery);
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
  // A domain of valid U-labels was written as A-labels when the reply was made; one that still
  // has non-ASCII octets is not valid IDNA and has no name in the DNS.
  if (std::any_of(domain.begin(), domain.end(), [](char c) { return (c & 0x80) != 0; }))
    co_return Outcome{Kind::permanent, "the recipient's domain is not a valid IDNA name"};

  const auto deadline = std::chrono::steady_clock::now() + config_.delivery.attempt_deadline;
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

  // A hostile domain can publish hundreds of MX records: look up the first kMaxMxHosts.
  std::string note;
  if (hosts.size() > kMaxMxHosts) {
    note = " (" + std::to_string(kMaxMxHosts) + " of " + std::to_string(hosts.size() + mx.omitted) +
           " MX hosts looked up)";
    hosts.resize(kMaxMxHosts);
  }
  Outcome last{Kind::temporary, "no usable address for " + domain};
  std::size_t tried = 0;
  const std::vector<IpAddress> own =
      config_.delivery.allow_private ? std::vector<IpAddress>{} : own_addresses();
  const std::string deadline_text = "attempt deadline (" +
                                    std::to_string(config_.delivery.attempt_deadline.count()) +
                                    " s) passed";
  for (const auto& host : hosts) {
    for (RrType type : {RrType::aaaa, RrType::a}) {
      if (std::chrono::steady_clock::now() >= deadline)
        co_return Outcome{Kind::temporary, deadline_text + "; last: " + last.detail + note};
      DnsResult addrs = co_await resolver_.query(host, type);
      if (addrs.status != DnsStatus::ok) continue;
      for (const auto& r : addrs.records) {
        if (!r.address || tried >= kMaxAddresses) continue;
        if (std::chrono::steady_clock::now() >= deadline)
          co_return Outcome{Kind::temporary, deadline_text + "; last: " + last.detail + note};
        std::optional<std::string> refusal;
        if (!config_.delivery.allow_private) refusal = refuse_destination(*r.address, own);
        if (refusal) {
          last = Outcome{Kind::temporary, host + " has the non-public address " +
                                              r.address->to_string() + " (" + *refusal +
                                              "): not used"};
          continue;
        }
        ++tried;
        smtp::ClientOptions opts = client_;
        opts.tls_server_name = host;
        opts.deadline = deadline;
        last = co_await smtp::deliver(ex_, to_endpoint(*r.address, config_.delivery.mx_port), opts,
                                      tls_, entry.sender, entry.recipient, data);
        if (last.kind != Kind::temporary) co_return last;
        if (std::chrono::steady_clock::now() >= deadline)
          co_return Outcome{Kind::temporary, deadline_text + ": " + last.detail};
      }
    }
  }
  last.detail += note;
  co_return last;
}

}  // namespace ipconfirm::responder

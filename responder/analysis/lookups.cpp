#include "responder/analysis/lookups.hpp"

#include "responder/analysis/helo_check.hpp"
#include "responder/analysis/rdns_heuristics.hpp"

namespace ipconfirm::responder {

namespace {
constexpr std::size_t kMaxForwardNames = 10;
}

Lookups::Lookups(asio::any_io_executor ex, DnsResolver& resolver)
    : ex_(ex), resolver_(resolver), signal_(ex) {
  signal_.expires_at(std::chrono::steady_clock::time_point::max());
}

Lookups::Lookups(asio::any_io_executor ex, std::shared_ptr<DnsResolver> resolver)
    : ex_(ex), keep_(std::move(resolver)), resolver_(*keep_), signal_(ex) {
  signal_.expires_at(std::chrono::steady_clock::time_point::max());
}

void Lookups::end() {
  if (--outstanding_ == 0) signal_.cancel();
}

void Lookups::start_ip(const IpAddress& ip, const std::vector<std::string>& dnsbl_zones) {
  auto self = shared_from_this();
  begin();
  asio::co_spawn(
      ex_, [self, ip]() -> asio::awaitable<void> { co_await self->run_ptr(ip); }, asio::detached);
  for (const auto& zone : dnsbl_zones) {
    auto d = std::make_unique<DnsblLookup>();
    d->zone = zone;
    std::string name = ip.dnsbl_name(zone);
    for (auto [slot, type] : {std::pair{&d->a, RrType::a}, std::pair{&d->txt, RrType::txt}}) {
      begin();
      asio::co_spawn(
          ex_,
          [self, slot = slot, name, type = type]() -> asio::awaitable<void> {
            co_await self->run_one(slot, name, type);
          },
          asio::detached);
    }
    dnsbl_.push_back(std::move(d));
  }
}

void Lookups::start_helo(const std::string& helo) {
  HeloFacts facts = classify_helo(helo);
  if (facts.kind != HeloKind::fqdn) return;
  auto self = shared_from_this();
  for (auto [slot, type] : {std::pair{&helo_a_, RrType::a}, std::pair{&helo_aaaa_, RrType::aaaa}}) {
    begin();
    asio::co_spawn(
        ex_,
        // The client chose this name: its answers are not kept for anyone else.
        [self, slot = slot, name = facts.name, type = type]() -> asio::awaitable<void> {
          co_await self->run_one(slot, name, type, DnsResolver::Caching::no_store);
        },
        asio::detached);
  }
}

asio::awaitable<void> Lookups::run_one(Lookup* slot, std::string name, RrType type,
                                       DnsResolver::Caching caching) {
  const auto ticket = log_.start(name, type, DnsLog::Clock::now());
  DnsResult r = co_await resolver_.query(std::move(name), type, caching);
  if (ticket) log_.finish(*ticket, r, DnsLog::Clock::now());
  static_cast<DnsResult&>(*slot) = std::move(r);
  slot->done = true;
  end();
}

asio::awaitable<void> Lookups::run_ptr(IpAddress ip) {
  const auto ticket = log_.start(ip.reverse_name(), RrType::ptr, DnsLog::Clock::now());
  DnsResult r = co_await resolver_.ptr(ip);
  if (ticket) log_.finish(*ticket, r, DnsLog::Clock::now());
  static_cast<DnsResult&>(ptr_) = r;
  ptr_.done = true;
  if (r.status == DnsStatus::ok) {
    auto self = shared_from_this();
    for (const auto& rec : r.records) {
      if (forward_.size() >= kMaxForwardNames) break;
      auto name = normalise_ptr_name(rec.text);
      if (!name) continue;
      bool seen = false;
      for (const auto& f : forward_) seen = seen || f->name == *name;
      if (seen) continue;
      auto f = std::make_unique<ForwardLookup>();
      f->name = *name;
      Lookup* slot = ip.is_v4() ? &f->a : &f->aaaa;
      begin();
      asio::co_spawn(
          ex_,
          [self, slot, n = *name, v4 = ip.is_v4()]() -> asio::awaitable<void> {
            co_await self->run_one(slot, n, v4 ? RrType::a : RrType::aaaa);
          },
          asio::detached);
      forward_.push_back(std::move(f));
    }
  }
  end();
}

asio::awaitable<void> Lookups::wait(std::chrono::steady_clock::time_point deadline) {
  if (outstanding_ == 0) co_return;
  // signal_ is cancelled when the last lookup ends; the deadline bounds the wait.
  asio::steady_timer limit(ex_, deadline);
  auto self = shared_from_this();
  limit.async_wait([self](const boost::system::error_code& ec) {
    if (!ec) self->signal_.cancel();
  });
  boost::system::error_code ec;
  while (outstanding_ > 0 && std::chrono::steady_clock::now() < deadline) {
    signal_.expires_at(std::chrono::steady_clock::time_point::max());
    co_await signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  limit.cancel();
}

void Lookups::fill(Observation& obs) const {
  obs.ptr = ptr_;
  obs.forward.clear();
  for (const auto& f : forward_) obs.forward.push_back(*f);
  obs.helo_a = helo_a_;
  obs.helo_aaaa = helo_aaaa_;
  obs.dnsbl.clear();
  for (const auto& d : dnsbl_) obs.dnsbl.push_back(*d);
}

}  // namespace ipconfirm::responder

// Delivers queued replies: takes due entries from the spool, hands each to the configured
// transport (a Maildir, one smarthost, or the recipient domain's MX hosts), and removes an
// entry only after its target accepted it (at-least-once: a crash after the target's 250 but
// before the removal delivers that reply twice, never zero times). Temporary failures are
// retried with backoff and jitter (responder/retry.hpp) until the lifetime ends; permanent
// failures are dropped and logged: the reply has the null sender, so there is nobody to bounce
// to (RFC 3834 §3.3, RFC 5321 §4.5.5).
//
// MX mode follows RFC 5321 §5.1 (MX by preference, then the A/AAAA fallback) and RFC 7505
// (a null MX means the domain takes no mail: permanent). It never connects to loopback,
// private, link-local or other non-public addresses unless the config allows it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "config/config.hpp"
#include "core/asio.hpp"
#include "responder/dns/dns_resolver.hpp"
#include "responder/queue/retry.hpp"
#include "responder/queue/spool.hpp"
#include "smtp/client.hpp"

namespace ipconfirm::responder {

class Deliverer : public std::enable_shared_from_this<Deliverer> {
 public:
  // `unlink_later(id)` removes a finished entry's file off the event loop (the service hands
  // it to the spool's committer); the entry has already left the spool's index.
  using UnlinkLater = std::function<void(std::string id)>;
  Deliverer(asio::any_io_executor ex, UnlinkLater unlink_later, const config::Config& config,
            Spool& spool, DnsResolver& resolver);
  void start();
  // A new entry is in the spool: look at it now rather than at the next scheduled time.
  void wake();
  // wake() for an entry just committed, handing over its contents so that its first attempt
  // need not read the file back. Held in memory up to a fixed budget; beyond it, or after a
  // restart, the entry is read from the spool as usual.
  void submit(QueueEntry entry);
  void stop();
  std::size_t in_flight() const { return in_flight_.size(); }

  // How an attempt ended, for the metrics: told on the event loop after the entry's log line.
  enum class Result { delivered, deferred, bounced, expired };
  using Observer = std::function<void(const QueueEntry& entry, Result result)>;
  void set_observer(Observer observer) { observer_ = std::move(observer); }

  // A reload that changes the delivery settings replaces the deliverer; the new one takes over
  // from `previous` (call before start(), after previous->stop()): the replies it held in
  // memory and its retry holds. The entries `previous` is still attempting stay with it: this
  // one leaves them alone until previous has finished them.
  void take_over(std::shared_ptr<Deliverer> previous);

 private:
  asio::awaitable<void> run();
  // Applies the requests `ipconfirm queue flush|delete` left in the spool's control/ folder.
  void apply_requests(std::int64_t now);
  asio::awaitable<void> deliver_entry(std::string id);
  asio::awaitable<smtp::DeliveryOutcome> transport(const QueueEntry& entry);
  asio::awaitable<smtp::DeliveryOutcome> via_mx(const QueueEntry& entry, const std::string& data);
  // The entry submit() holds for `id`, taken out of the budget; nullopt if it holds none.
  std::optional<QueueEntry> take_submitted(const std::string& id);
  // Drops a finished entry from the spool: the index now, the file off the event loop.
  void remove_entry(const std::string& id);

  asio::any_io_executor ex_;
  UnlinkLater unlink_later_;
  const config::Config& config_;
  Spool& spool_;
  DnsResolver& resolver_;
  asio::steady_timer signal_;
  asio::ssl::context tls_;
  smtp::ClientOptions client_;            // MX hosts: opportunistic TLS, no AUTH
  smtp::ClientOptions smarthost_client_;  // the smarthost: TLS and AUTH as configured
  // Sessions to the smarthost kept open between replies (mode smarthost only).
  std::unique_ptr<smtp::ClientPool> smarthost_pool_;
  RetryPolicy retry_;
  std::set<std::string> in_flight_;
  std::map<std::string, std::int64_t> held_until_;  // new schedule of entries update() failed on
  std::map<std::string, QueueEntry> submitted_;     // handed over by submit(), not yet attempted
  std::size_t submitted_bytes_ = 0;
  std::int64_t requests_checked_ = -1;  // the second control/ was last read
  bool stopping_ = false;
  std::size_t max_parallel_ = 20;
  Observer observer_;
  std::shared_ptr<Deliverer> previous_;  // see take_over()
};

}  // namespace ipconfirm::responder

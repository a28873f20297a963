// Delivers queued replies: takes due entries from the spool, hands each to the configured
// transport (a Maildir, one smarthost, or the recipient domain's MX hosts), and removes an
// entry only after its target accepted it (at-least-once: a crash after the target's 250 but
// before the removal delivers that reply twice, never zero times). Temporary failures are
// retried with backoff and jitter (responder/retry.hpp) until the lifetime ends; permanent
// failures are dropped and logged: the reply has the null sender, so there is nobody to bounce
// to (RFC 3834 §3.3, RFC 5321 §4.5.5).
//
// MX mode follows RFC 5321 §5.1 (MX by preference, then the A/AAAA fallback) and RFC 7505
// (a null MX means the domain takes no mail: permanent). It never connects to an address that
// is not a public destination (core/special_purpose.hpp) or is this host's own, unless the
// config allows it. Slow or hostile destinations cannot hold up the rest: at most
// max_per_domain replies to one domain are in flight (the others wait without a slot), an
// attempt that has run for kSlowAfter no longer counts against the max_parallel slots (at most
// kMaxSlow such attempts), every attempt ends by attempt_deadline, and one attempt looks up at
// most kMaxMxHosts MX hosts (1 + 2 x 10 queries) and connects to at most kMaxAddresses
// addresses.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
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
  // MX mode: an attempt running this long is "slow" (a healthy server has answered the whole
  // dialogue by then) and leaves its slot to a new one; at most kMaxSlow attempts are slow.
  static constexpr std::chrono::seconds kSlowAfter{10};
  static constexpr std::size_t kMaxSlow = 100;
  // MX mode, per attempt: MX hosts looked up (by preference) and addresses connected to.
  static constexpr std::size_t kMaxMxHosts = 10;
  static constexpr std::size_t kMaxAddresses = 5;

  // The disk work a Deliverer leaves to other threads (the service's), so that the event loop
  // never waits for the disk.
  struct DiskWork {
    // Marks a finished or deleted entry done on disk (SpoolWriter::done); the entry has already
    // left the index.
    std::function<void(std::string id)> done;
    // Stores an entry's new schedule (and attempts, last error) in its own file
    // (SpoolWriter::rewrite); the index has it already. Run on the thread of `done`, so that a
    // rewrite never brings back an entry marked done.
    std::function<void(Spool::Rewrite rewrite)> rewrite;
    // Where Maildir deliveries (mode maildir) run: their writes and syncs wait for the disk.
    asio::any_io_executor mailbox;
  };
  Deliverer(asio::any_io_executor ex, DiskWork disk, const config::Config& config, Spool& spool,
            DnsResolver& resolver);
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
  // Whether another attempt may start now (the fast slots, and in MX mode the slow ones).
  bool slot_free(std::chrono::steady_clock::time_point now) const;
  // MX mode: the entry's domain has max_per_domain replies in flight; it waits, without a slot,
  // until one of them ends (finish_domain lets the first waiting one go).
  void park(const std::string& domain, QueueEntry entry);
  void finish_domain(const std::string& domain);
  // The entry submit() holds for `id`, taken out of the budget; nullopt if it holds none.
  std::optional<QueueEntry> take_submitted(const std::string& id);
  // Drops a finished entry from the spool: the index now, the file off the event loop.
  void remove_entry(const std::string& id);
  std::unique_ptr<smtp::ClientPool> make_smarthost_pool(const asio::ip::tcp::endpoint& endpoint);
  // Smarthost by name: looks it up and points the pool at its (first) address; an error text
  // when it has none. Nothing to do for a smarthost given by address.
  asio::awaitable<std::optional<std::string>> resolve_smarthost();

  asio::any_io_executor ex_;
  DiskWork disk_;
  const config::Config& config_;
  Spool& spool_;
  DnsResolver& resolver_;
  asio::steady_timer signal_;
  asio::ssl::context tls_;                // MX hosts: opportunistic TLS, nothing verified
  asio::ssl::context smarthost_tls_;      // the smarthost: its CA file or the system's store
  smtp::ClientOptions client_;            // MX hosts: opportunistic TLS, no AUTH
  smtp::ClientOptions smarthost_client_;  // the smarthost: TLS and AUTH as configured
  // Sessions to the smarthost kept open between replies (mode smarthost only); for a smarthost
  // by name, to the address it had at the last lookup (smarthost_endpoint_).
  std::unique_ptr<smtp::ClientPool> smarthost_pool_;
  asio::ip::tcp::endpoint smarthost_endpoint_;
  RetryPolicy retry_;
  std::map<std::string, std::chrono::steady_clock::time_point> in_flight_;  // id -> started
  std::map<std::string, std::size_t> domain_in_flight_;                     // MX mode
  std::map<std::string, std::deque<std::string>> parked_;                   // domain -> ids
  std::set<std::string> parked_ids_;
  std::map<std::string, QueueEntry> submitted_;  // handed over by submit(), not yet attempted
  std::size_t submitted_bytes_ = 0;
  std::int64_t requests_checked_ = -1;  // the second control/ was last read
  bool stopping_ = false;
  std::size_t max_parallel_ = 20;
  Observer observer_;
  std::shared_ptr<Deliverer> previous_;  // see take_over()
};

}  // namespace ipconfirm::responder

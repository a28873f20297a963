// Asynchronous DNS lookups for the analysis: c-ares 1.18 driven by the Asio event loop, with a
// small cache.
//
// I/O. c-ares sends the queries and handles retries, server rotation and the TCP retry of a
// truncated UDP answer; its sockets are watched by the io_context (ARES_OPT_SOCK_STATE_CB plus
// non-owning descriptors) and its timeouts by one steady_timer, so there is no thread per lookup
// and everything runs on the executor's thread. The raw answer is parsed by our own bounded
// parser (responder/dns_message.hpp), not by c-ares' helpers, so TTLs and hostile names survive.
//
// Against off-path forgery (RFC 5452) a query carries a random ID from the kernel's CSPRNG,
// leaves from a UDP socket (so a random source port) of its own rather than c-ares' one socket
// per server, and spells its name in random letter case (0x20); only an answer that repeats
// ID, port and question exactly is read, so a forged one is dropped and the real one still
// counts. A server that does not repeat the question's case is not believed (temperror).
//
// Not thread-safe: use one resolver from the thread that runs its executor. It does not do
// DNSSEC, search domains or /etc/hosts, and it does not validate the names it returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/asio.hpp"
#include "core/ip_address.hpp"
#include "responder/dns/dns_message.hpp"

namespace ipconfirm::responder {

// What resolvers count, for the metrics. Several resolvers (one per reload that changes [dns])
// may count into one; all run on the same event loop, so plain integers do.
struct DnsCounters {
  std::uint64_t queries = 0;     // sent to a server (not answered from the cache or shared)
  std::uint64_t cache_hits = 0;  // answered from the cache
  std::uint64_t timeouts = 0;    // queries that got no answer in all their tries
};

class DnsResolver {
 public:
  struct Options {
    // "127.0.0.1:5353", "[::1]:53", "192.0.2.1" (port 53). Empty: the system resolver
    // (/etc/resolv.conf).
    std::vector<std::string> servers;
    // Per try. c-ares doubles it after each round over all servers, so one lookup lasts at
    // most servers * timeout * (2^tries - 1): 4.5 s with one server and the defaults.
    std::chrono::milliseconds timeout{1500};
    int tries = 2;
    std::size_t cache_entries = 4096;  // 0: no cache
    // The cache's budget in bytes (memory_bytes() of each answer plus its key and bookkeeping);
    // the oldest entries go first when a new one does not fit. 0: no cache. An answer larger
    // than a sixteenth of the budget (at most 64 KiB) is never cached.
    std::size_t cache_bytes = 16 * 1024 * 1024;
    std::uint32_t max_ttl = 3600;           // seconds; caps every cached answer
    std::shared_ptr<DnsCounters> counters;  // optional
  };

  // Whether an answer may be kept for other lookups. no_store is for names a client chose
  // (its HELO name): nobody else needs them, and an attacker who controls a zone could fill
  // the cache with answers under it. A no_store lookup is still answered from the cache.
  enum class Caching { store, no_store };

  // Throws std::runtime_error with a clear message when c-ares cannot be initialised or a
  // server is not an IP address with an optional port.
  DnsResolver(asio::any_io_executor ex, const Options& opts);
  // Completes every pending lookup with temperror (the coroutines resume later, on the
  // executor, never inside the destructor).
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  // Looks up `name` (a trailing dot is fine). An invalid name (see normalise_query_name) is a
  // permerror without any query. Answers from the cache are returned with their remaining TTL.
  // The coroutine resumes exactly once, with temperror if the lookup is cancelled or the
  // resolver destroyed.
  asio::awaitable<DnsResult> query(std::string name, RrType type, Caching caching = Caching::store);
  // query(ip.reverse_name(), RrType::ptr).
  asio::awaitable<DnsResult> ptr(const IpAddress& ip);
  // Completes every pending lookup with temperror (used at shutdown). New lookups still work.
  void cancel_all();

  // Entries now in the cache, and the bytes they are counted for (for tests and statistics).
  std::size_t cache_size() const;
  std::size_t cache_bytes() const;

 private:
  struct Impl;
  struct Initiation;
  std::shared_ptr<Impl> impl_;
};

}  // namespace ipconfirm::responder

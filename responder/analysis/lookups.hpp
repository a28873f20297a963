// Runs the DNS lookups of one report concurrently inside the event loop: PTR of the connecting
// IP, then A/AAAA of each valid PTR name (forward confirmation), the DNSBL zones (A and TXT),
// and A/AAAA of the HELO name. The IP lookups start when the client connects and the HELO
// lookups when it says HELO, so they are usually finished by the final dot. wait() returns when
// all are done or the report deadline passes; unfinished lookups stay marked not done and the
// report calls them temperror. Every query goes into log() (the report's dns_log).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/asio.hpp"
#include "responder/analysis/dns_log.hpp"
#include "responder/analysis/observation.hpp"
#include "responder/dns/dns_resolver.hpp"

namespace ipconfirm::responder {

class Lookups : public std::enable_shared_from_this<Lookups> {
 public:
  Lookups(asio::any_io_executor ex, DnsResolver& resolver);
  // The same, keeping `resolver` alive while lookups run (a reload may replace the service's
  // resolver while a session's lookups are in flight).
  Lookups(asio::any_io_executor ex, std::shared_ptr<DnsResolver> resolver);

  void start_ip(const IpAddress& ip, const std::vector<std::string>& dnsbl_zones);
  void start_helo(const std::string& helo);
  // Resumes when every started lookup finished, or at `deadline`.
  asio::awaitable<void> wait(std::chrono::steady_clock::time_point deadline);
  // Copies the results (finished or not) into `obs`.
  void fill(Observation& obs) const;
  // The queries made so far, with their outcomes.
  const DnsLog& log() const { return log_; }

 private:
  asio::awaitable<void> run_ptr(IpAddress ip);
  asio::awaitable<void> run_one(Lookup* slot, std::string name, RrType type,
                                DnsResolver::Caching caching = DnsResolver::Caching::store);
  void begin() { ++outstanding_; }
  void end();

  asio::any_io_executor ex_;
  std::shared_ptr<DnsResolver> keep_;  // may be empty
  DnsResolver& resolver_;
  asio::steady_timer signal_;
  int outstanding_ = 0;
  Lookup ptr_;
  std::vector<std::unique_ptr<ForwardLookup>> forward_;
  Lookup helo_a_, helo_aaaa_;
  std::vector<std::unique_ptr<DnsblLookup>> dnsbl_;
  DnsLog log_;
};

}  // namespace ipconfirm::responder

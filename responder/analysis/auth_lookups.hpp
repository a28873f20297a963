// Runs the sender authentication checks of one transaction on the c-ares resolver inside the
// event loop: SPF for the MAIL FROM and HELO identities from the moment MAIL FROM is accepted,
// the DKIM and ARC key lookups and DMARC's policy walk from the end of the header, the body hash
// while the body arrives, and at the final dot the signatures' verification and DMARC's verdict.
//
// Each check is pure (spf.hpp, dkim.hpp, arc.hpp, dmarc.hpp) and driven the same way, one
// coroutine per check ("driver"), no thread per lookup:
//   loop { run the check; if it is complete, stop; take the questions it needs that nobody has
//          asked yet (auth_dns.hpp) and ask them all at once (the resolver shares a query two
//          sessions make at the same time, and caches); wait until every question it needs
//          has an answer; }
// Bounded: at most kMaxAuthRounds rounds per check (further questions are answered temperror,
// "too many rounds"), and by the report's deadline, set at the final dot (`[dns]
// report_deadline_ms` after it): every question still open then is answered temperror
// ("timeout"), as is any question asked after it, and the check runs once more, so that its
// verdict is temperror, never a guess.
//
// So that the lookups DMARC needs once SPF and DKIM have their verdicts are mostly done by the
// final dot, DMARC is first run with every identifier taken to pass (dmarc_prefetch_input): that
// asks every name the real run can need. The real run at the dot then usually asks nothing.
//
// The signatures are verified once, at the dot, after every key lookup has its answer: on
// `heavy` when given (the service's worker thread: RSA and Ed25519 verification of up to 10
// signatures and 50 ARC seals stay off the event loop) while the answers are sealed (a late
// answer is dropped, never written while another thread reads), or inline (`ipconfirm check`).
//
// I/O. Not thread-safe: everything but the verification runs on `ex`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/asio.hpp"
#include "core/ip_address.hpp"
#include "responder/analysis/auth_dns.hpp"
#include "responder/analysis/auth_verdicts.hpp"
#include "responder/dns/dns_resolver.hpp"

namespace ipconfirm::responder {

inline constexpr int kMaxAuthRounds = 24;

class AuthLookups : public std::enable_shared_from_this<AuthLookups> {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::string receiver;  // our host name: SPF's %{r}
    DkimOptions dkim;
  };

  AuthLookups(asio::any_io_executor ex, std::shared_ptr<DnsResolver> resolver, Options options);
  ~AuthLookups();

  // MAIL FROM was accepted: starts SPF for the MAIL FROM identity (`mail_from` "" for <>) and
  // the HELO identity. `now`: seconds since the epoch (%{t}). Call once.
  void start_spf(const IpAddress& ip, std::string mail_from, std::string helo, std::int64_t now);
  // The message's header has ended (as the session kept it: at most its first 256 KiB):
  // parses its DKIM signatures and ARC sets and starts their key lookups and DMARC's. Call once.
  void start_header(std::string_view header, std::int64_t now);
  // The next piece of the body (unstuffed, CRLF line ends, cut anywhere): into the body
  // hashes.
  void body(std::string_view piece);
  // At the final dot: ends the body, waits for the lookups until `deadline`, verifies the
  // signatures and finishes DMARC; verdicts() holds every verdict afterwards. Resumes on `ex`.
  asio::awaitable<void> finish(Clock::time_point deadline, std::int64_t now,
                               std::optional<asio::any_io_executor> heavy);
  // No further questions are asked (RSET, a new transaction, the connection closed); answers
  // of those in flight are kept, nothing waits for them.
  void cancel();

  const AuthVerdicts& verdicts() const { return verdicts_; }
  const DnsLog& log() const { return dns_.log(); }

 private:
  // Runs a check once: nullptr when its verdict is complete, else the questions it needs.
  using Run = std::function<const DnsNeeds*()>;
  void spawn_driver(Run run, DnsResolver::Caching caching);
  asio::awaitable<void> drive(Run run, DnsResolver::Caching caching);
  asio::awaitable<void> ask(DnsQuestion question, DnsResolver::Caching caching);
  asio::awaitable<void> wait_for_drivers();
  void expire();
  void verify_signatures(std::int64_t now);

  asio::any_io_executor ex_;
  std::shared_ptr<DnsResolver> resolver_;
  Options options_;
  AuthDns dns_;
  AuthVerdicts verdicts_;

  // Wakes every waiting driver (cancelled, never re-armed: its expiry stays at the far end).
  asio::steady_timer signal_;
  asio::steady_timer deadline_;
  int running_ = 0;         // drivers not finished
  bool cancelled_ = false;  // no more questions
  bool expired_ = false;    // the deadline passed: no more questions
  bool sealed_ = false;     // another thread reads the answers: late answers are dropped

  // SPF.
  bool spf_started_ = false;
  SpfInput spf_input_;
  SpfVerdict spf_run_, spf_helo_run_;
  // DKIM and ARC.
  std::unique_ptr<DkimCheck> check_;
  DnsNeeds key_needs_;
  // DMARC.
  bool have_header_ = false;
  std::vector<std::string> from_fields_;
  std::vector<std::string> dkim_domains_;
  DmarcInput dmarc_in_;
  DmarcVerdict dmarc_run_;
};

}  // namespace ipconfirm::responder

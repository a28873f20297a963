// The outbound SMTP client: connects to one endpoint (a smarthost or an MX chosen by the
// caller), delivers one message to one recipient, and says whether it was accepted; either on a
// connection of its own (deliver()) or on sessions kept open between messages (ClientPool).
//
// Follows RFC 5321 (the dialogue, §4.5.3.2 timeouts, §4.1.4 a new MAIL after the final 250 or
// after RSET), RFC 3207 (STARTTLS, EHLO again after the handshake), RFC 4954 (AUTH PLAIN, AUTH
// LOGIN), RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 2920 (PIPELINING), RFC 6531 (SMTPUTF8: asked
// for when an address has UTF-8; without the server's SMTPUTF8 such an address fails
// permanently). Addresses go out in RFC 5321 §4.1.2 form, a local part such as "john doe"
// quoted (smtp_address() in smtp/client_protocol.hpp).
// It is strict: CRLF only on the wire, every step under a deadline, replies read with
// ReplyReader, and any byte the server sends before it was asked (response injection, e.g.
// commands smuggled after "220 Ready to start TLS") ends the session as a temporary failure.
// When the server's EHLO offers PIPELINING, MAIL FROM, RCPT TO and DATA go in one write and
// exactly three replies are expected; EHLO, STARTTLS, AUTH, RSET and QUIT are never pipelined.
//
// Not here: MX lookup, retries and the queue (responder/delivery), choosing the endpoint,
// DSN, several recipients, SMTPUTF8 downgrading (responder/reply writes a U-label domain as
// A-labels before the reply is queued). Credentials are sent only on a session whose
// server certificate was verified (ClientOptions: a pinned fingerprint that matches, or a
// chain to tls_ctx's trusted CAs for tls_server_name), never in clear, unless
// ClientOptions::auth_without_tls says so (tests).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "core/asio.hpp"

namespace ipconfirm::smtp {

struct ClientOptions {
  std::string helo_name;  // our name in EHLO; must pass is_safe_helo_name()
  // none: never STARTTLS. opportunistic: STARTTLS when offered, carry on in clear if the
  // server refuses it. required: fail (temporary) unless the session is encrypted.
  enum class Tls { none, opportunistic, required } tls = Tls::opportunistic;
  // After the handshake the server's certificate is judged (TlsSummary): with tls_pin, it is
  // verified when the SHA-256 of the certificate (DER) or of its public key (SPKI) equals the
  // pin, whatever its chain and names; otherwise when its chain leads to a CA that tls_ctx
  // trusts and it names tls_server_name (RFC 6125 DNS-ID; no partial wildcards).
  // verify_peer: a session that is not verified fails (temporary) right after the handshake,
  // before any command. Without it the session goes on encrypted but carries no AUTH.
  bool verify_peer = false;
  std::string tls_server_name;  // SNI and the name verified
  std::optional<std::array<std::uint8_t, 32>> tls_pin;
  std::string tls_trust = "system";  // where tls_ctx's CAs come from, for TlsSummary::ca
  std::optional<std::pair<std::string, std::string>> auth;  // user, password: AUTH PLAIN or LOGIN
  bool auth_without_tls = false;  // tests only: send credentials even unverified or in clear
  std::chrono::seconds connect_timeout{30}, command_timeout{60}, data_timeout{180};
  // The whole delivery ends by then: each step's timeout is cut to it (a slow server cannot
  // hold a session for the sum of all timeouts). max(): no deadline.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

// What the session's TLS was, for the log.
struct TlsSummary {
  enum class State { none, unverified, verified } state = State::none;
  std::string name;    // verified: the name the certificate was checked for ("" with a pin)
  std::string ca;      // verified: "pin", or ClientOptions::tls_trust ("system", "file")
  std::string reason;  // unverified: why ("hostname mismatch", "self-signed certificate", ...)
};

struct DeliveryOutcome {
  enum class Kind { ok, temporary, permanent };
  DeliveryOutcome() = default;
  DeliveryOutcome(Kind k, std::string d, TlsSummary t = {})
      : kind(k), detail(std::move(d)), tls(std::move(t)) {}

  Kind kind = Kind::temporary;
  std::string detail;  // printable: the step and the server's reply, or what went wrong
  TlsSummary tls;      // of the session that carried (or failed to carry) the message
};

// Connects to `endpoint`, delivers one message (MAIL FROM:<sender> — "" = <>; one RCPT), QUITs
// (not after a 421, after which the server closes, nor once the stream is untrusted).
// 2xx after the final dot -> ok; 4xx, timeouts, refused connections, protocol errors ->
// temporary; 5xx at any step -> permanent, except a refused AUTH, which is temporary (the
// credentials are ours to fix; the replies must wait for that, not be dropped). An address the
// protocol cannot carry is permanent; a local misconfiguration (bad helo_name, verify_peer without
// a name) is temporary. Never throws; every failure is an outcome. `opts` and `tls_ctx` must
// outlive the coroutine. The executor must not run the coroutine on several threads at once (use a
// strand or a single-threaded io_context): the deadline timer and the dialogue share the socket.
asio::awaitable<DeliveryOutcome> deliver(asio::any_io_executor ex, asio::ip::tcp::endpoint endpoint,
                                         const ClientOptions& opts, asio::ssl::context& tls_ctx,
                                         std::string sender, std::string recipient,
                                         std::string message);

// When a ClientPool keeps a session open, and for how long.
struct ReuseLimits {
  std::size_t max_idle = 20;             // idle sessions kept open at most
  std::chrono::seconds idle_timeout{5};  // an idle session is QUIT after this
  std::size_t max_messages = 100;        // transactions per session, then QUIT
  std::chrono::seconds max_age{300};     // per session (from the connect), then QUIT
};

// Deliveries to ONE endpoint over kept-open sessions. deliver() takes the most recently used
// idle session (LIFO) or opens a new one (connect, EHLO, STARTTLS, AUTH as ClientOptions say),
// runs one transaction, and then:
//  - 2xx after the final dot, stream clean: the session goes back to the idle list, unless it
//    reached max_messages or max_age, or max_idle sessions are idle already (then QUIT);
//  - 4xx/5xx at MAIL, RCPT, DATA or after the dot: RSET, and back to the idle list only if RSET
//    gets 250, else QUIT; a 421 closes the session;
//  - timeouts, I/O errors, protocol errors, injected bytes: the connection is closed.
// An idle session is checked before reuse (pending bytes, such as a 421 sent while idle, or a
// closed connection: dropped), and QUIT after idle_timeout. If a reused session fails at its
// first step (MAIL FROM: I/O error, EOF, timeout or 421), the server has accepted nothing and
// the delivery is retried once on a new session; never once the message content was sent.
//
// Threading: like deliver(), everything runs on `ex`, which must not run the pool's handlers on
// several threads at once (a single-threaded io_context or a strand); call the pool's functions
// from that executor too. `opts` is copied; `tls_ctx` must outlive the pool and every delivery
// started on it. Destroy the pool before its io_context.
// Lifetime: the pool may be destroyed while sessions are idle (they are closed, and their
// timers hold only a weak reference) and while deliveries run (each holds the shared state; it
// finishes with the same outcome, and its session is then closed instead of kept).
class ClientPool {
 public:
  ClientPool(asio::any_io_executor ex, asio::ip::tcp::endpoint endpoint, const ClientOptions& opts,
             asio::ssl::context& tls_ctx, ReuseLimits limits = {});
  ~ClientPool();  // closes idle sessions (no QUIT)
  ClientPool(const ClientPool&) = delete;
  ClientPool& operator=(const ClientPool&) = delete;

  // Same contract and outcomes as the free deliver(); several may run at once, each on its own
  // session. Never throws.
  asio::awaitable<DeliveryOutcome> deliver(std::string sender, std::string recipient,
                                           std::string message);
  // Takes every idle session off the list and QUITs it (best effort, bounded by the command
  // timeout, at most 10 s) in the background.
  void close_idle();
  std::size_t idle() const;
  // Connections the pool has started (each connect attempt counts), for tests and logs.
  std::uint64_t sessions_opened() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace ipconfirm::smtp

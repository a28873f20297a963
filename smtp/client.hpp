// The outbound SMTP client: connects to one endpoint (a smarthost or an MX chosen by the
// caller), delivers one message to one recipient, and says whether it was accepted.
//
// Follows RFC 5321 (the dialogue, §4.5.3.2 timeouts), RFC 3207 (STARTTLS, EHLO again after the
// handshake), RFC 4954 (AUTH PLAIN, AUTH LOGIN), RFC 1870 (SIZE), RFC 6152 (8BITMIME).
// It is strict: CRLF only on the wire, every step under a deadline, replies read with
// ReplyReader, and any byte the server sends before it was asked (response injection, e.g.
// commands smuggled after "220 Ready to start TLS") ends the session as a temporary failure.
// The client does not pipeline.
//
// Not here: MX lookup, retries and the queue (responder/delivery), choosing the endpoint,
// DSN, several recipients, SMTPUTF8 downgrading. Credentials are never sent in clear unless
// ClientOptions::auth_without_tls says so.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "smtp/asio.hpp"

namespace ipconfirm::smtp {

struct ClientOptions {
  std::string helo_name;  // our name in EHLO; must pass is_safe_helo_name()
  // none: never STARTTLS. opportunistic: STARTTLS when offered, carry on in clear if the
  // server refuses it. required: fail (temporary) unless the session is encrypted.
  enum class Tls { none, opportunistic, required } tls = Tls::opportunistic;
  bool verify_peer = false;     // verify the certificate chain and name; needs a CA in tls_ctx
  std::string tls_server_name;  // SNI and the name verified; required when verify_peer is set
  std::optional<std::pair<std::string, std::string>> auth;  // user, password: AUTH PLAIN or LOGIN
  bool auth_without_tls = false;  // refuse to send credentials in clear unless set
  std::chrono::seconds connect_timeout{30}, command_timeout{60}, data_timeout{180};
};

struct DeliveryOutcome {
  enum class Kind { ok, temporary, permanent } kind = Kind::temporary;
  std::string detail;  // printable: the step and the server's reply, or what went wrong
};

// Connects to `endpoint`, delivers one message (MAIL FROM:<sender> — "" = <>; one RCPT), QUITs.
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

}  // namespace ipconfirm::smtp

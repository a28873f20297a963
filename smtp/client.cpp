#include "smtp/client.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <memory>
#include <string_view>
#include <vector>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "smtp/client_protocol.hpp"

// With optimisation GCC 12 reports -Wmismatched-new-delete for the frame allocator of Boost
// 1.74's awaitable (awaitable_frame_base's operator new and delete do match): a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace ipconfirm::smtp {

namespace {

using tcp = asio::ip::tcp;
using Kind = DeliveryOutcome::Kind;
using Seconds = std::chrono::seconds;
using error_code = boost::system::error_code;

DeliveryOutcome temporary(std::string detail) {
  return {Kind::temporary, std::move(detail)};
}
DeliveryOutcome permanent(std::string detail) {
  return {Kind::permanent, std::move(detail)};
}

// The outcome of a reply the dialogue did not want: 5xx is permanent, 4xx temporary, and any
// other code at this point is a protocol error, also temporary.
DeliveryOutcome refused(std::string_view step, const Reply& r) {
  std::string detail = std::string(step) + ": " + describe(r);
  if (r.code >= 500) return permanent(std::move(detail));
  if (r.code >= 400) return temporary(std::move(detail));
  return temporary(std::string(step) + ": protocol error: unexpected reply " + describe(r));
}

// The socket, the TLS layer once STARTTLS succeeded, and the deadline timer. The timer's
// handler holds only a weak reference, so a pending wait never keeps the connection alive.
struct Connection {
  explicit Connection(const asio::any_io_executor& ex) : socket(ex), timer(ex) {}

  tcp::socket socket;
  std::optional<asio::ssl::stream<tcp::socket>> tls;
  asio::steady_timer timer;
  bool timed_out = false;

  tcp::socket& lowest() { return tls ? tls->next_layer() : socket; }
};

class Session {
 public:
  Session(const asio::any_io_executor& ex, const ClientOptions& opts)
      : conn_(std::make_shared<Connection>(ex)), opts_(opts) {}

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  ~Session() {
    error_code ignored;
    conn_->lowest().close(ignored);
  }

  bool encrypted() const { return conn_->tls.has_value(); }
  // False once the stream is in an unknown state (I/O error, timeout, protocol error).
  bool usable() const { return usable_; }
  const DeliveryOutcome& failure() const { return failure_; }

  asio::awaitable<bool> connect(const tcp::endpoint& endpoint) {
    error_code ec;
    arm(opts_.connect_timeout);
    co_await conn_->socket.async_connect(endpoint, asio::redirect_error(asio::use_awaitable, ec));
    disarm();
    if (ec) {
      std::string where =
          endpoint.address().to_string() + " port " + std::to_string(endpoint.port());
      co_return fail_io(conn_->timed_out ? "connect to " + where + ": timeout"
                                         : "connect to " + where + ": " + ec.message());
    }
    co_return true;
  }

  // What bytes after a reply mean. reject: response injection, the session fails (one command
  // at a time, the server has no reason to send more). pipelined: the replies to the next
  // pipelined commands, kept for the next read. tolerate: the reply stands, but the stream is no
  // longer trusted (no QUIT, no reuse).
  enum class Trailing { reject, pipelined, tolerate };

  // Reads one reply within `timeout`.
  asio::awaitable<std::optional<Reply>> read_reply(std::string_view step, Seconds timeout,
                                                   Trailing trailing = Trailing::reject) {
    arm(timeout);
    for (;;) {
      ReplyReader::Out out = reader_.next(inbuf_);
      inbuf_.erase(0, out.consumed);
      if (out.status == ReplyReader::Status::reply) {
        disarm();
        if (!inbuf_.empty()) {
          if (trailing == Trailing::reject) {
            fail(std::string(step) +
                 ": protocol error: server sent data it was not asked for (response injection)");
            co_return std::nullopt;
          }
          if (trailing == Trailing::tolerate) usable_ = false;
        }
        co_return std::move(out.reply);
      }
      if (out.status == ReplyReader::Status::error) {
        disarm();
        fail(std::string(step) + ": protocol error: " + out.error);
        co_return std::nullopt;
      }
      error_code ec;
      std::size_t n = 0;
      if (conn_->tls) {
        n = co_await conn_->tls->async_read_some(asio::buffer(chunk_),
                                                 asio::redirect_error(asio::use_awaitable, ec));
      } else {
        n = co_await conn_->socket.async_read_some(asio::buffer(chunk_),
                                                   asio::redirect_error(asio::use_awaitable, ec));
      }
      if (ec) {
        disarm();
        if (conn_->timed_out) {
          fail_io(std::string(step) + ": timeout waiting for the reply");
        } else if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
          fail_io(std::string(step) + ": connection closed by the server");
        } else {
          fail_io(std::string(step) + ": " + ec.message());
        }
        co_return std::nullopt;
      }
      inbuf_.append(chunk_.data(), n);
    }
  }

  asio::awaitable<bool> write(std::string_view step, std::string_view data, Seconds timeout) {
    // Before TLS we can also see bytes that arrived after the last reply was read. (Inside TLS
    // the socket may legitimately hold records that carry no data, such as session tickets.)
    if (!conn_->tls) {
      error_code ec;
      std::size_t pending = conn_->socket.available(ec);
      if (!ec && pending > 0) {
        co_return fail(std::string(step) +
                       ": protocol error: server sent data it was not asked for "
                       "(response injection)");
      }
    }
    error_code ec;
    arm(timeout);
    if (conn_->tls) {
      co_await asio::async_write(*conn_->tls, asio::buffer(data.data(), data.size()),
                                 asio::redirect_error(asio::use_awaitable, ec));
    } else {
      co_await asio::async_write(conn_->socket, asio::buffer(data.data(), data.size()),
                                 asio::redirect_error(asio::use_awaitable, ec));
    }
    disarm();
    if (ec) {
      co_return fail_io(conn_->timed_out ? std::string(step) + ": timeout sending"
                                         : std::string(step) + ": " + ec.message());
    }
    co_return true;
  }

  // Sends one command line and reads its reply, both under the command timeout.
  // (Results of co_await go into named variables throughout: with GCC 12 and Boost 1.74,
  // "if (!co_await a) co_return x; co_return co_await b;" here resumed a dead frame.)
  asio::awaitable<std::optional<Reply>> command(std::string_view step, std::string line) {
    bool written = co_await write(step, line, opts_.command_timeout);
    if (!written) co_return std::nullopt;
    std::optional<Reply> reply = co_await read_reply(step, opts_.command_timeout);
    co_return reply;
  }

  // RFC 3207: the handshake replaces the plain stream; nothing read before it survives.
  asio::awaitable<bool> start_tls(asio::ssl::context& ctx) {
    conn_->tls.emplace(std::move(conn_->socket), ctx);
    SSL* ssl = conn_->tls->native_handle();
    if (!opts_.tls_server_name.empty()) {
      // SNI, and the name OpenSSL's chain verification checks the certificate for.
      if (SSL_set_tlsext_host_name(ssl, opts_.tls_server_name.c_str()) != 1 ||
          SSL_set1_host(ssl, opts_.tls_server_name.c_str()) != 1) {
        co_return fail("STARTTLS: cannot set the server name");
      }
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    // The handshake goes on whatever the certificate; it is judged afterwards (judge_tls), so
    // that an unverified session can say why and still carry mail without credentials.
    error_code ec;
    conn_->tls->set_verify_mode(asio::ssl::verify_none, ec);
    if (ec) co_return fail("STARTTLS: " + ec.message());
    arm(opts_.command_timeout);
    co_await conn_->tls->async_handshake(asio::ssl::stream_base::client,
                                         asio::redirect_error(asio::use_awaitable, ec));
    disarm();
    if (ec) {
      co_return fail(conn_->timed_out ? "STARTTLS: handshake timeout"
                                      : "STARTTLS: handshake failed: " + ec.message());
    }
    judge_tls(ssl);
    if (opts_.verify_peer && tls_.state != TlsSummary::State::verified) {
      co_return fail("STARTTLS: the server's certificate is not verified: " + tls_.reason);
    }
    inbuf_.clear();
    reader_ = ReplyReader{};
    co_return true;
  }

  const TlsSummary& tls_summary() const { return tls_; }
  bool verified() const { return tls_.state == TlsSummary::State::verified; }

  // Best effort: the outcome is already decided.
  asio::awaitable<void> quit() {
    Seconds timeout = std::min(opts_.command_timeout, Seconds{10});
    bool written = co_await write("QUIT", "QUIT\r\n", timeout);
    if (written) co_await read_reply("QUIT", timeout);
  }

  // Records a failure that leaves the stream unusable; returns false for `co_return fail(...)`.
  bool fail(std::string detail) {
    failure_ = temporary(std::move(detail));
    usable_ = false;
    return false;
  }
  // The same for a failure of the transport (connect, read or write error, EOF, timeout), as
  // opposed to a protocol error: on a reused session it may just mean the server had closed it.
  bool fail_io(std::string detail) {
    io_failed_ = true;
    return fail(std::move(detail));
  }
  bool io_failed() const { return io_failed_; }

  // The stream stays in a known state but must not be used again, not even for QUIT (after a
  // 421 the server closes the connection).
  void discard() { usable_ = false; }

  // Whether an idle session can carry another transaction: nothing unread, the connection
  // neither closed nor holding bytes we did not ask for (a 421 the server sent while we were
  // idle, its TLS close_notify, anything else). Does not block.
  bool fit_for_reuse() {
    if (!usable_ || conn_->timed_out || !inbuf_.empty()) return false;
    tcp::socket& sock = conn_->lowest();
    if (!sock.is_open()) return false;
    if (conn_->tls) {
      SSL* ssl = conn_->tls->native_handle();
      if (SSL_pending(ssl) > 0 || BIO_ctrl_pending(SSL_get_rbio(ssl)) > 0) return false;
    }
    char c = 0;
    ssize_t n = ::recv(sock.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n >= 0) return false;  // 0: the server closed the connection; > 0: unread bytes
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }

 private:
  void arm(Seconds timeout) {
    const auto now = asio::steady_timer::clock_type::now();
    conn_->timer.expires_at(opts_.deadline - now < timeout ? opts_.deadline : now + timeout);
    conn_->timer.async_wait([weak = std::weak_ptr<Connection>(conn_)](error_code ec) {
      if (ec) return;
      auto conn = weak.lock();
      // Re-armed (or disarmed) after this wait had already completed: not our deadline.
      if (!conn || conn->timer.expiry() > asio::steady_timer::clock_type::now()) return;
      conn->timed_out = true;
      error_code ignored;
      conn->lowest().close(ignored);
    });
  }

  void disarm() { conn_->timer.expires_at(asio::steady_timer::time_point::max()); }

  // After the handshake: is the server the one we meant (ClientOptions::tls_pin, or the chain
  // and tls_server_name)?
  void judge_tls(SSL* ssl) {
    tls_ = TlsSummary{};
    tls_.state = TlsSummary::State::unverified;
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (cert == nullptr) {
      tls_.reason = "the server sent no certificate";
      return;
    }
    if (opts_.tls_pin) {
      // The certificate's DER, and its SubjectPublicKeyInfo's DER (what DANE's "1 1" and
      // HPKP pins hash; X509_pubkey_digest would hash only the key's bits).
      std::array<std::uint8_t, 32> der{}, spki{};
      unsigned der_length = 0, spki_length = 0;
      unsigned char* spki_der = nullptr;
      const int spki_size = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &spki_der);
      const bool hashed = X509_digest(cert, EVP_sha256(), der.data(), &der_length) == 1 &&
                          spki_size > 0 &&
                          EVP_Digest(spki_der, static_cast<std::size_t>(spki_size), spki.data(),
                                     &spki_length, EVP_sha256(), nullptr) == 1 &&
                          der_length == 32 && spki_length == 32;
      OPENSSL_free(spki_der);
      if (hashed && (der == *opts_.tls_pin || spki == *opts_.tls_pin)) {
        tls_.state = TlsSummary::State::verified;
        tls_.ca = "pin";
      } else {
        tls_.reason =
            "the certificate matches neither the pinned SHA-256 fingerprint of a "
            "certificate nor of a public key";
      }
      return;
    }
    if (opts_.tls_server_name.empty()) {
      tls_.reason = "no name to check the certificate against";
      return;
    }
    const long result = SSL_get_verify_result(ssl);
    if (result != X509_V_OK) {
      tls_.reason = X509_verify_cert_error_string(result);
      return;
    }
    tls_.state = TlsSummary::State::verified;
    tls_.name = opts_.tls_server_name;
    tls_.ca = opts_.tls_trust;
  }

  std::shared_ptr<Connection> conn_;
  const ClientOptions& opts_;
  ReplyReader reader_;
  std::string inbuf_;
  std::array<char, 4096> chunk_{};
  DeliveryOutcome failure_;
  TlsSummary tls_;
  bool usable_ = true;
  bool io_failed_ = false;
};

// EHLO, or HELO when the server does not know EHLO (RFC 5321 §4.1.4: 500/502). Sets `caps`;
// on failure returns the outcome.
asio::awaitable<std::optional<DeliveryOutcome>> greet(Session& s, const ClientOptions& opts,
                                                      bool allow_helo, Capabilities& caps) {
  auto r = co_await s.command("EHLO", "EHLO " + opts.helo_name + "\r\n");
  if (!r) co_return s.failure();
  if (r->code == 250) {
    caps = parse_ehlo(*r);
    co_return std::nullopt;
  }
  if (!allow_helo || (r->code != 500 && r->code != 502)) co_return refused("EHLO", *r);
  r = co_await s.command("HELO", "HELO " + opts.helo_name + "\r\n");
  if (!r) co_return s.failure();
  if (r->code != 250) co_return refused("HELO", *r);
  caps = Capabilities{};
  co_return std::nullopt;
}

// A refused AUTH is temporary whatever its code (as Postfix's smtp_sasl_auth_soft_bounce): it
// means our credentials or the relay's setup are wrong, and once that is fixed the queued
// replies must still go out rather than having been dropped one by one.
DeliveryOutcome auth_refused(std::string_view step, const Reply& r) {
  return temporary(std::string(step) + ": " + describe(r));
}

asio::awaitable<std::optional<DeliveryOutcome>> authenticate(Session& s, const ClientOptions& opts,
                                                             const Capabilities& caps) {
  const auto& [user, password] = *opts.auth;
  if (!s.encrypted() && !opts.auth_without_tls) {
    co_return temporary("AUTH: refusing to send credentials without TLS");
  }
  if (!s.verified() && !opts.auth_without_tls) {
    // Whoever sits between us and the server would get them.
    co_return temporary(
        "AUTH: not sending credentials: the server's certificate is not "
        "verified (" +
        s.tls_summary().reason + ")");
  }
  auto offers = [&](std::string_view m) {
    return std::find(caps.auth.begin(), caps.auth.end(), m) != caps.auth.end();
  };
  if (offers("PLAIN")) {
    std::optional<std::string> response = auth_plain_response(user, password);
    if (!response) co_return temporary("AUTH: credentials contain NUL");
    auto r = co_await s.command("AUTH PLAIN", "AUTH PLAIN " + *response + "\r\n");
    if (!r) co_return s.failure();
    if (r->code != 235) co_return auth_refused("AUTH PLAIN", *r);
    co_return std::nullopt;
  }
  if (offers("LOGIN")) {
    auto r = co_await s.command("AUTH LOGIN", "AUTH LOGIN\r\n");
    if (!r) co_return s.failure();
    if (r->code != 334) co_return auth_refused("AUTH LOGIN", *r);
    r = co_await s.command("AUTH LOGIN", base64_encode(user) + "\r\n");
    if (!r) co_return s.failure();
    if (r->code != 334) co_return auth_refused("AUTH LOGIN", *r);
    r = co_await s.command("AUTH LOGIN", base64_encode(password) + "\r\n");
    if (!r) co_return s.failure();
    if (r->code != 235) co_return auth_refused("AUTH LOGIN", *r);
    co_return std::nullopt;
  }
  co_return temporary("AUTH: the server offers neither PLAIN nor LOGIN");
}

// Connect, greeting, EHLO, STARTTLS and EHLO again, AUTH: everything before the first
// transaction. Sets `caps`; on failure returns the outcome.
asio::awaitable<std::optional<DeliveryOutcome>> open_session(Session& s,
                                                             const tcp::endpoint& endpoint,
                                                             const ClientOptions& opts,
                                                             asio::ssl::context& tls_ctx,
                                                             Capabilities& caps) {
  bool connected = co_await s.connect(endpoint);
  if (!connected) co_return s.failure();

  auto greeting = co_await s.read_reply("greeting", opts.command_timeout);
  if (!greeting) co_return s.failure();
  if (greeting->code != 220) co_return refused("greeting", *greeting);

  std::optional<DeliveryOutcome> failed = co_await greet(s, opts, true, caps);
  if (failed) co_return failed;

  if (opts.tls != ClientOptions::Tls::none && caps.starttls) {
    auto r = co_await s.command("STARTTLS", "STARTTLS\r\n");
    if (!r) co_return s.failure();
    if (r->code == 220) {
      bool secured = co_await s.start_tls(tls_ctx);
      if (!secured) co_return s.failure();
      failed = co_await greet(s, opts, false, caps);
      if (failed) co_return failed;
    } else if (opts.tls == ClientOptions::Tls::required) {
      co_return refused("STARTTLS", *r);
    }
    // Opportunistic: the server declined, the session goes on in clear.
  }
  if (opts.tls == ClientOptions::Tls::required && !s.encrypted()) {
    co_return temporary("STARTTLS: TLS is required but the server does not offer it");
  }

  if (opts.auth) {
    failed = co_await authenticate(s, opts, caps);
    if (failed) co_return failed;
  }
  co_return std::nullopt;
}

// What may follow a transaction on the same session.
enum class After {
  next,   // a new MAIL may follow directly (RFC 5321 §4.1.4)
  reset,  // the transaction failed with a reply: RSET first
  quit,   // no more transactions (QUIT if the session is still usable)
};

struct Transaction {
  DeliveryOutcome outcome;
  After after = After::quit;
  bool started = false;  // MAIL FROM was sent
  // The session failed at MAIL FROM (I/O error, EOF, timeout, 421) before the server took
  // anything: on a reused session another one may try again.
  bool retryable = false;
};

// One transaction: MAIL FROM, RCPT TO, DATA (in one write when the server offers PIPELINING,
// RFC 2920), the message, the reply after the final dot.
asio::awaitable<Transaction> transaction(Session& s, const Capabilities& caps,
                                         const ClientOptions& opts, const std::string& sender,
                                         const std::string& recipient, const std::string& message) {
  using Trailing = Session::Trailing;
  Transaction t;
  // The refusal of a step; after a 421 the server closes the connection.
  auto refuse = [&s](std::string_view step, const Reply& r) {
    if (r.code == 421) s.discard();
    return refused(step, r);
  };

  std::string payload = dot_stuff(message);
  // RFC 1870 §3: the declared size is the message with CRLF line ends, without the final dot.
  std::size_t size = payload.size() - 3;
  if (caps.size && *caps.size > 0 && size > *caps.size) {
    t.outcome = permanent("SIZE: the message (" + std::to_string(size) +
                          " octets) exceeds the server's limit of " + std::to_string(*caps.size));
    t.after = After::next;  // nothing was sent
    co_return t;
  }
  MailParameters params;
  if (caps.size) params.size = size;
  // Without 8BITMIME an 8-bit message goes as it is, as most MTAs do; converting it to 7 bits
  // would mean re-encoding MIME parts, which this client does not do.
  params.body_8bitmime = caps.eightbitmime && has_8bit(message);
  // RFC 6531 §3.4: an address with UTF-8 needs SMTPUTF8; without it the address cannot be
  // carried at all (its domain, if it had U-labels, was written as A-labels already: only a
  // UTF-8 local part is left, which has no ASCII form). A UTF-8 header field (RFC 6532) asks
  // for it too where the server offers it.
  const bool sender_utf8 = has_8bit(sender), recipient_utf8 = has_8bit(recipient);
  if (sender_utf8 || recipient_utf8) {
    if (!caps.smtputf8) {
      t.outcome = permanent(
          std::string(recipient_utf8 ? "RCPT TO: the recipient's" : "MAIL FROM: the sender's") +
          " address has non-ASCII characters and the server does not offer "
          "SMTPUTF8 (RFC 6531)");
      t.after = After::next;
      co_return t;
    }
    params.smtputf8 = true;
  } else if (caps.smtputf8) {
    const std::size_t header_end = message.find("\r\n\r\n");
    params.smtputf8 = has_8bit(std::string_view(message).substr(0, header_end));
  }

  t.started = true;
  std::string mail = mail_from_command(sender, params);
  std::string rcpt = rcpt_to_command(recipient);
  std::optional<Reply> data;
  if (caps.pipelining) {
    bool written = co_await s.write("MAIL FROM", mail + rcpt + "DATA\r\n", opts.command_timeout);
    if (!written) {
      t.outcome = s.failure();
      t.retryable = s.io_failed();
      co_return t;
    }
    // The three replies in order; bytes after the third one are injection.
    auto mail_reply = co_await s.read_reply("MAIL FROM", opts.command_timeout, Trailing::pipelined);
    if (!mail_reply) {
      t.outcome = s.failure();
      t.retryable = s.io_failed();
      co_return t;
    }
    if (mail_reply->code == 421) {
      t.outcome = refuse("MAIL FROM", *mail_reply);
      t.retryable = true;
      co_return t;
    }
    auto rcpt_reply = co_await s.read_reply("RCPT TO", opts.command_timeout, Trailing::pipelined);
    if (!rcpt_reply) {
      t.outcome = s.failure();
      co_return t;
    }
    if (rcpt_reply->code == 421) {
      t.outcome = refuse("RCPT TO", *rcpt_reply);
      co_return t;
    }
    data = co_await s.read_reply("DATA", opts.command_timeout, Trailing::reject);
    if (!data) {
      t.outcome = s.failure();
      co_return t;
    }
    bool mail_ok = mail_reply->code / 100 == 2;
    if (!mail_ok || rcpt_reply->code / 100 != 2) {
      t.outcome = mail_ok ? refuse("RCPT TO", *rcpt_reply) : refuse("MAIL FROM", *mail_reply);
      t.after = After::reset;
      if (data->code == 421) s.discard();
      if (data->code == 354) {
        // A broken server: DATA accepted without a valid envelope. End the (empty) message
        // without content and do not trust the session with another transaction.
        t.after = After::quit;
        bool ended = co_await s.write("end of data", ".\r\n", opts.data_timeout);
        if (ended) {
          auto ignored =
              co_await s.read_reply("end of data", opts.data_timeout, Trailing::tolerate);
          (void)ignored;
        }
      }
      co_return t;
    }
  } else {
    auto r = co_await s.command("MAIL FROM", mail);
    if (!r) {
      t.outcome = s.failure();
      t.retryable = s.io_failed();
      co_return t;
    }
    if (r->code / 100 != 2) {
      t.outcome = refuse("MAIL FROM", *r);
      t.retryable = r->code == 421;
      t.after = After::reset;
      co_return t;
    }
    r = co_await s.command("RCPT TO", rcpt);
    if (!r) {
      t.outcome = s.failure();
      co_return t;
    }
    if (r->code / 100 != 2) {
      t.outcome = refuse("RCPT TO", *r);
      t.after = After::reset;
      co_return t;
    }
    data = co_await s.command("DATA", "DATA\r\n");
    if (!data) {
      t.outcome = s.failure();
      co_return t;
    }
  }
  if (data->code != 354) {
    t.outcome = refuse("DATA", *data);
    t.after = After::reset;
    co_return t;
  }

  bool written = co_await s.write("message", payload, opts.data_timeout);
  if (!written) {
    t.outcome = s.failure();
    co_return t;
  }
  // Once the server has said 250 it owns the message, so data it sends after that reply does
  // not undo the delivery (reporting it as failed would only make us send it twice); it does
  // make the stream untrustworthy, so the session ends without QUIT.
  auto r = co_await s.read_reply("end of data", opts.data_timeout, Trailing::tolerate);
  if (!r) {
    t.outcome = s.failure();
    co_return t;
  }
  if (r->code / 100 != 2) {
    t.outcome = refuse("end of data", *r);
    t.after = After::reset;
    co_return t;
  }
  t.outcome = DeliveryOutcome{Kind::ok, describe(*r)};
  t.after = After::next;
  co_return t;
}

// The checks made before any connection. `sender` and `recipient` become the forms MAIL FROM
// and RCPT TO carry (a quoted local part quoted as RFC 5321 §4.1.2 wants it).
std::optional<DeliveryOutcome> check_request(const ClientOptions& opts, std::string& sender,
                                             std::string& recipient) {
  if (!is_safe_helo_name(opts.helo_name)) {
    return temporary("configuration: helo_name is not a valid host name");
  }
  SmtpAddressResult from = smtp_address(sender);
  if (!from.address) return permanent("MAIL FROM: invalid sender address: " + from.error);
  SmtpAddressResult to = smtp_address(recipient);
  if (recipient.empty() || !to.address) {
    return permanent("RCPT TO: invalid recipient address" +
                     (to.error.empty() ? std::string() : ": " + to.error));
  }
  sender = std::move(from.address->text);
  recipient = std::move(to.address->text);
  return std::nullopt;
}

}  // namespace

asio::awaitable<DeliveryOutcome> deliver(asio::any_io_executor ex, asio::ip::tcp::endpoint endpoint,
                                         const ClientOptions& opts, asio::ssl::context& tls_ctx,
                                         std::string sender, std::string recipient,
                                         std::string message) {
  std::optional<DeliveryOutcome> bad = check_request(opts, sender, recipient);
  if (bad) co_return *bad;
  DeliveryOutcome outcome;
  try {
    Session session(ex, opts);
    Capabilities caps;
    std::optional<DeliveryOutcome> failed =
        co_await open_session(session, endpoint, opts, tls_ctx, caps);
    if (failed) {
      outcome = std::move(*failed);
    } else {
      Transaction t = co_await transaction(session, caps, opts, sender, recipient, message);
      outcome = std::move(t.outcome);
    }
    outcome.tls = session.tls_summary();
    if (session.usable()) co_await session.quit();
  } catch (const std::exception& e) {
    outcome = temporary(std::string("internal error: ") + e.what());
  }
  co_return outcome;
}

// ---------------------------------------------------------------------------------------------
// ClientPool

namespace {

using Clock = std::chrono::steady_clock;

// A session with what the pool knows about it. Not movable (the Session is not): held by
// unique_ptr.
struct PooledSession {
  PooledSession(const asio::any_io_executor& ex, const ClientOptions& opts, std::uint64_t id_)
      : session(ex, opts), idle_timer(ex), id(id_) {}

  Session session;
  Capabilities caps;
  asio::steady_timer idle_timer;
  Clock::time_point opened = Clock::now();
  std::size_t messages = 0;  // transactions started
  std::uint64_t id;
};

}  // namespace

// Shared by the pool, its deliveries and its background QUITs. Idle timers hold a weak_ptr.
struct ClientPool::State : std::enable_shared_from_this<ClientPool::State> {
  State(asio::any_io_executor ex_, tcp::endpoint endpoint_, const ClientOptions& opts_,
        asio::ssl::context& tls_ctx_, ReuseLimits limits_)
      : ex(std::move(ex_)), endpoint(endpoint_), opts(opts_), tls_ctx(&tls_ctx_), limits(limits_) {}

  asio::any_io_executor ex;
  tcp::endpoint endpoint;
  ClientOptions opts;
  asio::ssl::context* tls_ctx;
  ReuseLimits limits;
  std::vector<std::unique_ptr<PooledSession>> idle;  // the most recently used at the back
  std::uint64_t opened = 0;
  std::uint64_t next_id = 0;
  bool closed = false;  // the pool is gone: sessions coming back are closed

  bool worn_out(const PooledSession& ps) const {
    return ps.messages >= limits.max_messages || Clock::now() - ps.opened >= limits.max_age;
  }

  std::unique_ptr<PooledSession> fresh() {
    ++opened;
    return std::make_unique<PooledSession>(ex, opts, next_id++);
  }

  // The most recently used idle session that can still carry a transaction, or null. Stale
  // sessions are closed; worn-out ones are QUIT.
  std::unique_ptr<PooledSession> take() {
    while (!idle.empty()) {
      std::unique_ptr<PooledSession> ps = std::move(idle.back());
      idle.pop_back();
      ps->idle_timer.cancel();
      if (!ps->session.fit_for_reuse()) continue;  // dropped: the socket closes
      if (worn_out(*ps)) {
        retire(std::move(ps));
        continue;
      }
      return ps;
    }
    return nullptr;
  }

  // A session that is ready for a new MAIL: idle list, or QUIT when over a limit.
  void release(std::unique_ptr<PooledSession> ps) {
    if (closed) return;
    if (worn_out(*ps) || idle.size() >= limits.max_idle) {
      retire(std::move(ps));
      return;
    }
    ps->idle_timer.expires_after(limits.idle_timeout);
    ps->idle_timer.async_wait(
        [weak = std::weak_ptr<State>(shared_from_this()), id = ps->id](error_code ec) {
          if (ec) return;
          std::shared_ptr<State> state = weak.lock();
          if (state) state->expire(id);
        });
    idle.push_back(std::move(ps));
  }

  // The idle timer of session `id` went off.
  void expire(std::uint64_t id) {
    auto it = std::find_if(idle.begin(), idle.end(), [id](const auto& ps) { return ps->id == id; });
    if (it == idle.end()) return;
    // Taken and put back after this wait had completed: a newer deadline.
    if ((*it)->idle_timer.expiry() > Clock::now()) return;
    std::unique_ptr<PooledSession> ps = std::move(*it);
    idle.erase(it);
    retire(std::move(ps));
  }

  // QUIT (best effort, bounded by the session's own deadlines) in the background, then close.
  void retire(std::unique_ptr<PooledSession> ps);
};

namespace {

asio::awaitable<void> quit_session(std::shared_ptr<ClientPool::State> state,
                                   std::unique_ptr<PooledSession> ps) {
  if (ps->session.usable()) co_await ps->session.quit();
  ps.reset();
  state.reset();
}

// After a transaction: keep the session, reset it, or end it.
asio::awaitable<void> settle(std::shared_ptr<ClientPool::State> state,
                             std::unique_ptr<PooledSession> ps, After after) {
  if (!ps->session.usable()) co_return;  // closed with `ps`
  if (after == After::reset) {
    auto r = co_await ps->session.command("RSET", "RSET\r\n");
    if (r && r->code == 250) {
      after = After::next;
    } else {
      after = After::quit;
      if (r && r->code == 421) ps->session.discard();
    }
  }
  if (!ps->session.usable()) co_return;
  if (after == After::next) {
    state->release(std::move(ps));
  } else if (state->closed) {
    co_return;
  } else {
    state->retire(std::move(ps));
  }
}

asio::awaitable<DeliveryOutcome> pool_deliver(std::shared_ptr<ClientPool::State> state,
                                              std::string sender, std::string recipient,
                                              std::string message) {
  std::optional<DeliveryOutcome> bad = check_request(state->opts, sender, recipient);
  if (bad) co_return *bad;
  DeliveryOutcome outcome;
  try {
    // At most two rounds: a reused session, then (if it had gone stale) a fresh one.
    for (int round = 0; round < 2; ++round) {
      std::unique_ptr<PooledSession> ps;
      if (round == 0) ps = state->take();
      bool reused = ps != nullptr;
      if (!ps) {
        ps = state->fresh();
        std::optional<DeliveryOutcome> failed = co_await open_session(
            ps->session, state->endpoint, state->opts, *state->tls_ctx, ps->caps);
        if (failed) {
          outcome = std::move(*failed);
          outcome.tls = ps->session.tls_summary();
          if (ps->session.usable() && !state->closed) state->retire(std::move(ps));
          break;
        }
      }
      Transaction t =
          co_await transaction(ps->session, ps->caps, state->opts, sender, recipient, message);
      if (t.started) ++ps->messages;
      if (reused && t.retryable) continue;  // the stale session closes with `ps`
      outcome = std::move(t.outcome);
      outcome.tls = ps->session.tls_summary();
      co_await settle(state, std::move(ps), t.after);
      break;
    }
  } catch (const std::exception& e) {
    outcome = temporary(std::string("internal error: ") + e.what());
  }
  co_return outcome;
}

}  // namespace

void ClientPool::State::retire(std::unique_ptr<PooledSession> ps) {
  asio::co_spawn(ex, quit_session(shared_from_this(), std::move(ps)), [](std::exception_ptr) {});
}

ClientPool::ClientPool(asio::any_io_executor ex, asio::ip::tcp::endpoint endpoint,
                       const ClientOptions& opts, asio::ssl::context& tls_ctx, ReuseLimits limits)
    : state_(std::make_shared<State>(std::move(ex), endpoint, opts, tls_ctx, limits)) {}

ClientPool::~ClientPool() {
  state_->closed = true;
  state_->idle.clear();  // closes the sockets and cancels the idle timers
}

asio::awaitable<DeliveryOutcome> ClientPool::deliver(std::string sender, std::string recipient,
                                                     std::string message) {
  // Not a coroutine itself: the shared state is taken now, so the delivery does not depend on
  // the pool object once it has been created.
  return pool_deliver(state_, std::move(sender), std::move(recipient), std::move(message));
}

void ClientPool::close_idle() {
  std::vector<std::unique_ptr<PooledSession>> all = std::move(state_->idle);
  state_->idle.clear();
  for (auto& ps : all) {
    ps->idle_timer.cancel();
    state_->retire(std::move(ps));
  }
}

std::size_t ClientPool::idle() const {
  return state_->idle.size();
}

std::uint64_t ClientPool::sessions_opened() const {
  return state_->opened;
}

}  // namespace ipconfirm::smtp

#include "smtp/client.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <string_view>

#include <openssl/ssl.h>

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
      co_return fail(conn_->timed_out ? "connect to " + where + ": timeout"
                                      : "connect to " + where + ": " + ec.message());
    }
    co_return true;
  }

  // Reads one reply within `timeout`. Unless `allow_trailing`, bytes after the reply are
  // response injection: with no pipelining the server has no reason to send anything else.
  asio::awaitable<std::optional<Reply>> read_reply(std::string_view step, Seconds timeout,
                                                   bool allow_trailing = false) {
    arm(timeout);
    for (;;) {
      ReplyReader::Out out = reader_.next(inbuf_);
      inbuf_.erase(0, out.consumed);
      if (out.status == ReplyReader::Status::reply) {
        disarm();
        if (!inbuf_.empty()) {
          if (!allow_trailing) {
            fail(std::string(step) +
                 ": protocol error: server sent data it was not asked for (response injection)");
            co_return std::nullopt;
          }
          usable_ = false;
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
          fail(std::string(step) + ": timeout waiting for the reply");
        } else if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
          fail(std::string(step) + ": connection closed by the server");
        } else {
          fail(std::string(step) + ": " + ec.message());
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
      co_return fail(conn_->timed_out ? std::string(step) + ": timeout sending"
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
    if (opts_.verify_peer && opts_.tls_server_name.empty()) {
      co_return fail("STARTTLS: verify_peer is set but tls_server_name is empty");
    }
    conn_->tls.emplace(std::move(conn_->socket), ctx);
    SSL* ssl = conn_->tls->native_handle();
    if (!opts_.tls_server_name.empty() &&
        SSL_set_tlsext_host_name(ssl, opts_.tls_server_name.c_str()) != 1) {
      co_return fail("STARTTLS: cannot set the server name");
    }
    error_code ec;
    if (opts_.verify_peer) {
      conn_->tls->set_verify_mode(asio::ssl::verify_peer, ec);
      if (!ec) {
        conn_->tls->set_verify_callback(asio::ssl::host_name_verification(opts_.tls_server_name),
                                        ec);
      }
    } else {
      conn_->tls->set_verify_mode(asio::ssl::verify_none, ec);
    }
    if (ec) co_return fail("STARTTLS: " + ec.message());
    arm(opts_.command_timeout);
    co_await conn_->tls->async_handshake(asio::ssl::stream_base::client,
                                         asio::redirect_error(asio::use_awaitable, ec));
    disarm();
    if (ec) {
      co_return fail(conn_->timed_out ? "STARTTLS: handshake timeout"
                                      : "STARTTLS: handshake failed: " + ec.message());
    }
    inbuf_.clear();
    reader_ = ReplyReader{};
    co_return true;
  }

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

 private:
  void arm(Seconds timeout) {
    conn_->timer.expires_after(timeout);
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

  std::shared_ptr<Connection> conn_;
  const ClientOptions& opts_;
  ReplyReader reader_;
  std::string inbuf_;
  std::array<char, 4096> chunk_{};
  DeliveryOutcome failure_;
  bool usable_ = true;
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

asio::awaitable<DeliveryOutcome> dialogue(Session& s, const tcp::endpoint& endpoint,
                                          const ClientOptions& opts, asio::ssl::context& tls_ctx,
                                          const std::string& sender, const std::string& recipient,
                                          const std::string& message) {
  bool connected = co_await s.connect(endpoint);
  if (!connected) co_return s.failure();

  auto greeting = co_await s.read_reply("greeting", opts.command_timeout);
  if (!greeting) co_return s.failure();
  if (greeting->code != 220) co_return refused("greeting", *greeting);

  Capabilities caps;
  std::optional<DeliveryOutcome> failed = co_await greet(s, opts, true, caps);
  if (failed) co_return *failed;

  if (opts.tls != ClientOptions::Tls::none && caps.starttls) {
    auto r = co_await s.command("STARTTLS", "STARTTLS\r\n");
    if (!r) co_return s.failure();
    if (r->code == 220) {
      bool secured = co_await s.start_tls(tls_ctx);
      if (!secured) co_return s.failure();
      failed = co_await greet(s, opts, false, caps);
      if (failed) co_return *failed;
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
    if (failed) co_return *failed;
  }

  std::string payload = dot_stuff(message);
  // RFC 1870 §3: the declared size is the message with CRLF line ends, without the final dot.
  std::size_t size = payload.size() - 3;
  if (caps.size && *caps.size > 0 && size > *caps.size) {
    co_return permanent("SIZE: the message (" + std::to_string(size) +
                        " octets) exceeds the server's limit of " + std::to_string(*caps.size));
  }
  MailParameters params;
  if (caps.size) params.size = size;
  // Without 8BITMIME an 8-bit message goes as it is, as most MTAs do; converting it to 7 bits
  // would mean re-encoding MIME parts, which this client does not do.
  params.body_8bitmime = caps.eightbitmime && has_8bit(message);
  if (has_8bit(sender) || has_8bit(recipient)) {
    if (!caps.smtputf8) {
      co_return permanent("MAIL FROM: the address needs SMTPUTF8, which the server lacks");
    }
    params.smtputf8 = true;
  }

  auto r = co_await s.command("MAIL FROM", mail_from_command(sender, params));
  if (!r) co_return s.failure();
  if (r->code / 100 != 2) co_return refused("MAIL FROM", *r);

  r = co_await s.command("RCPT TO", rcpt_to_command(recipient));
  if (!r) co_return s.failure();
  if (r->code / 100 != 2) co_return refused("RCPT TO", *r);

  r = co_await s.command("DATA", "DATA\r\n");
  if (!r) co_return s.failure();
  if (r->code != 354) co_return refused("DATA", *r);

  bool written = co_await s.write("message", payload, opts.data_timeout);
  if (!written) co_return s.failure();
  // Once the server has said 250 it owns the message, so data it sends after that reply does
  // not undo the delivery (reporting it as failed would only make us send it twice); it does
  // make the stream untrustworthy, so the session ends without QUIT.
  r = co_await s.read_reply("end of data", opts.data_timeout, true);
  if (!r) co_return s.failure();
  if (r->code / 100 != 2) co_return refused("end of data", *r);
  co_return DeliveryOutcome{Kind::ok, describe(*r)};
}

}  // namespace

asio::awaitable<DeliveryOutcome> deliver(asio::any_io_executor ex, asio::ip::tcp::endpoint endpoint,
                                         const ClientOptions& opts, asio::ssl::context& tls_ctx,
                                         std::string sender, std::string recipient,
                                         std::string message) {
  if (!is_safe_helo_name(opts.helo_name)) {
    co_return temporary("configuration: helo_name is not a valid host name");
  }
  if (!is_safe_address(sender)) co_return permanent("MAIL FROM: invalid sender address");
  if (recipient.empty() || !is_safe_address(recipient)) {
    co_return permanent("RCPT TO: invalid recipient address");
  }
  DeliveryOutcome outcome;
  try {
    Session session(ex, opts);
    outcome = co_await dialogue(session, endpoint, opts, tls_ctx, sender, recipient, message);
    if (session.usable()) co_await session.quit();
  } catch (const std::exception& e) {
    outcome = temporary(std::string("internal error: ") + e.what());
  }
  co_return outcome;
}

}  // namespace ipconfirm::smtp

#include "smtp/server.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "core/log.hpp"
#include "smtp/proxy_protocol.hpp"
#include "smtp/session_pump.hpp"

namespace ipconfirm::smtp {

namespace {

using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::redirect_error;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

IpAddress to_ip(const asio::ip::address& a) {
  if (a.is_v4()) return IpAddress::from_v4(a.to_v4().to_uint());
  return IpAddress::from_v6(a.to_v6().to_bytes());
}

std::string make_session_id() {
  static std::atomic<std::uint32_t> counter{0};
  static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
  std::uint64_t v =
      (static_cast<std::uint64_t>(std::time(nullptr)) << 20) | (counter.fetch_add(1) & 0xfffff);
  std::string out;
  while (v) {
    out.insert(out.begin(), digits[v & 31]);
    v >>= 5;
  }
  return "S" + out;
}

// TLS 1.2 and later only (RFC 8996, RFC 8314 §4.1), with the given certificate chain and key.
std::shared_ptr<asio::ssl::context> make_tls_context(const std::string& cert,
                                                     const std::string& key) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  boost::system::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                   ec);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  if (!ec) ctx->use_certificate_chain_file(cert, ec);
  if (ec) throw std::runtime_error("TLS certificate " + cert + ": " + ec.message());
  ctx->use_private_key_file(key, asio::ssl::context::pem, ec);
  if (ec) throw std::runtime_error("TLS key " + key + ": " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    throw std::runtime_error("TLS key " + key + " does not match the certificate " + cert);
  return ctx;
}

constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kMaxReadPerWake = 64 * 1024;
constexpr std::size_t kMaxPendingOutput = 64 * 1024;
// How long, and how much, a connection we close reads on before it closes (see
// close_after_draining).
constexpr std::chrono::seconds kDrainTime{2};
constexpr std::size_t kMaxDrain = 256 * 1024;

}  // namespace

// One listening address and its kind; a reload may change the kind in place or close it.
struct ListenerSlot {
  explicit ListenerSlot(asio::io_context& io) : acceptor(io) {}
  tcp::acceptor acceptor;
  Listener listener;
  bool closed = false;
};

// Shared by the server and every connection coroutine; lives as long as any of them.
struct Server::State : std::enable_shared_from_this<Server::State> {
  State(asio::io_context& i, ServerOptions o, HandlerFactory f)
      : io(i), initial(std::move(o)), factory(std::move(f)), memory(initial.max_message_memory) {}

  asio::io_context& io;
  ServerOptions initial;  // until start()
  // What a new connection gets; each connection keeps the one it started with.
  std::shared_ptr<const ServerOptions> options = std::make_shared<ServerOptions>();
  HandlerFactory factory;
  MessageMemory memory;  // message data held by all connections
  std::vector<std::shared_ptr<ListenerSlot>> slots;
  std::unordered_map<std::string, std::size_t> per_ip;
  std::size_t total = 0;
  std::set<tcp::socket*> live;
  bool stopping = false;
  ServerStats stats;
};

struct Server::Change {
  std::shared_ptr<const ServerOptions> options;
  // Every listener after the change, with the kind it gets; `added` were bound by prepare().
  std::vector<std::pair<std::shared_ptr<ListenerSlot>, Listener>> slots;
  std::vector<std::shared_ptr<ListenerSlot>> added;
  bool committed = false;
  ~Change() {
    if (committed) return;
    boost::system::error_code ignored;
    for (auto& s : added) s->acceptor.close(ignored);
  }
};

namespace {

// One client connection: the socket, the TLS layer once STARTTLS succeeded, and the timer that
// bounds every read and write.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket s, std::shared_ptr<const ServerOptions> o)
      : socket(std::move(s)), timer(socket.get_executor()), options(std::move(o)) {
    deadline = Clock::now() + options->connection_deadline;
    boost::system::error_code ignored;
    socket.non_blocking(true, ignored);
  }

  tcp::socket socket;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls;
  asio::steady_timer timer;
  std::shared_ptr<const ServerOptions> options;
  Clock::time_point deadline;
  bool timed_out = false;
  std::vector<char> tls_chunk;        // the read buffer, once TLS is on
  std::array<char, 512> small_chunk;  // the read buffer of a plaintext connection

  // Arms the timer for the next I/O step: the command timeout, capped by the deadline.
  void arm(std::chrono::seconds limit) {
    auto when = std::min(Clock::now() + limit, deadline);
    timer.expires_at(when);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      self->timed_out = true;
      boost::system::error_code ignored;
      self->socket.cancel(ignored);
    });
  }

  // Appends what the client sent to `in`. A plaintext connection waits with a small buffer of
  // its own (a command line fits), so that an idle connection costs no 16 KiB; when that fills,
  // the rest of what the client sent (message data) is read at once, without waiting, into one
  // buffer shared by all connections (the server runs on one thread). (An async_wait for
  // readability instead would cost an epoll_ctl per read: Asio re-arms the descriptor for it.)
  awaitable<std::size_t> read_some(std::string& in, boost::system::error_code& ec) {
    arm(options->command_timeout);
    std::size_t n = 0;
    if (tls) {
      if (tls_chunk.empty()) tls_chunk.resize(kReadChunk);
      n = co_await tls->async_read_some(asio::buffer(tls_chunk), redirect_error(use_awaitable, ec));
      if (!ec) in.append(tls_chunk.data(), n);
    } else {
      static std::vector<char> shared_chunk(kReadChunk);
      n = co_await socket.async_read_some(asio::buffer(small_chunk),
                                          redirect_error(use_awaitable, ec));
      if (!ec) {
        in.append(small_chunk.data(), n);
        // At most kMaxReadPerWake per wake-up, so that one fast client cannot starve the
        // others; an error here (would_block: all read) is left for the next read to see.
        if (n == small_chunk.size()) {
          while (n < kMaxReadPerWake) {
            boost::system::error_code rec;
            std::size_t m = socket.read_some(asio::buffer(shared_chunk), rec);  // non-blocking
            if (rec || m == 0) break;
            in.append(shared_chunk.data(), m);
            n += m;
            if (m < shared_chunk.size()) break;
          }
        }
      }
    }
    timer.cancel();
    co_return n;
  }

  awaitable<void> write_all(std::string_view data, boost::system::error_code& ec) {
    arm(options->command_timeout);
    if (tls)
      co_await asio::async_write(*tls, asio::buffer(data.data(), data.size()),
                                 redirect_error(use_awaitable, ec));
    else
      co_await asio::async_write(socket, asio::buffer(data.data(), data.size()),
                                 redirect_error(use_awaitable, ec));
    timer.cancel();
  }

  // `already`: bytes of the handshake read before it began (a ClientHello that arrived in the
  // same read as the PROXY header before it).
  awaitable<void> handshake(asio::ssl::context& ctx, boost::system::error_code& ec,
                            std::string_view already = {}) {
    tls = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket, ctx);
    arm(options->command_timeout);
    if (already.empty()) {
      co_await tls->async_handshake(asio::ssl::stream_base::server,
                                    redirect_error(use_awaitable, ec));
    } else {
      co_await tls->async_handshake(asio::ssl::stream_base::server,
                                    asio::buffer(already.data(), already.size()),
                                    redirect_error(use_awaitable, ec));
    }
    timer.cancel();
  }

  void close() {
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  // Closing while the client still sends: closing a socket with unread bytes makes the kernel
  // answer with a reset, which may drop our last reply (the one saying why) before the client
  // reads it. So the write side is shut first (a FIN after that reply), and what the client
  // still sends is read and dropped for a moment (bounded in time and bytes), then closed.
  awaitable<void> close_after_draining() {
    boost::system::error_code ec;
    socket.shutdown(tcp::socket::shutdown_send, ec);
    deadline = Clock::now() + kDrainTime;
    std::size_t drained = 0;
    while (!ec && drained < kMaxDrain) {
      arm(std::chrono::duration_cast<std::chrono::seconds>(kDrainTime));
      std::size_t n = co_await socket.async_read_some(asio::buffer(small_chunk),
                                                      redirect_error(use_awaitable, ec));
      timer.cancel();
      drained += n;
    }
    close();
  }
};

// What max_connections_per_ip counts: an IPv4 address, or the IPv6 network of `prefix` bits
// an address belongs to ("2001:db8:1:2::/64"), since one IPv6 client usually holds a /64.
std::string client_key(const IpAddress& ip, int prefix) {
  if (ip.is_v4() || prefix >= 128) return ip.to_string();
  auto bytes = ip.bytes();
  for (int bit = std::max(prefix, 0); bit < 128; ++bit)
    bytes[static_cast<std::size_t>(bit / 8)] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  return IpAddress::from_v6(bytes).to_string() + "/" + std::to_string(prefix);
}

bool trusted_proxy(const std::vector<TrustedNetwork>& nets, const IpAddress& ip) {
  for (const auto& n : nets)
    if (n.address.is_v4() == ip.is_v4() && ip.same_network(n.address, n.prefix)) return true;
  return false;
}

// Reads the PROXY protocol header that must open a connection on a proxy listener, within the
// command timeout and at most `max` bytes. Bytes after the header stay in `in`.
awaitable<ProxyParse> read_proxy_header(Connection& conn, std::string& in, std::size_t max) {
  for (;;) {
    ProxyParse p = parse_proxy_header(in);
    if (p.status != ProxyStatus::need_more) co_return p;
    if (in.size() >= max) co_return ProxyParse{ProxyStatus::invalid, 0, {}, "header too long"};
    boost::system::error_code ec;
    std::size_t n = co_await conn.read_some(in, ec);
    if (ec || n == 0) {
      std::string why = conn.timed_out ? "no header in time" : "read: " + ec.message();
      co_return ProxyParse{ProxyStatus::invalid, 0, {}, why};
    }
  }
}

awaitable<void> serve_connection(std::shared_ptr<Server::State> st, tcp::socket raw,
                                 Listener listener) {
  boost::system::error_code ec;
  auto remote = raw.remote_endpoint(ec);
  if (ec) co_return;
  // The options of this connection until it ends, whatever a reload changes meanwhile.
  const std::shared_ptr<const ServerOptions> opts = st->options;
  ++st->stats.connections;
  auto conn = std::make_shared<Connection>(std::move(raw), opts);
  const IpAddress peer = to_ip(remote.address());
  IpAddress ip = peer;
  std::uint16_t port = remote.port();
  const std::string sid = make_session_id();
  std::string in;
  in.reserve(kReadChunk);

  // Connection accounting, undone however this coroutine ends. The per-IP count is taken once
  // the client's address is known (after a PROXY header).
  st->live.insert(&conn->socket);
  ++st->total;
  struct Release {
    Server::State* st;
    std::string ip;
    tcp::socket* sock;
    ~Release() {
      st->live.erase(sock);
      --st->total;
      if (ip.empty()) return;
      auto it = st->per_ip.find(ip);
      if (it != st->per_ip.end() && --it->second == 0) st->per_ip.erase(it);
    }
  } release{st.get(), "", &conn->socket};

  bool proxied = false;
  if (listener.proxy_protocol) {
    // Only a trusted load balancer may say who the client is; anyone else is closed without a
    // word, since a greeting would tell a scanner it found an SMTP server.
    if (!trusted_proxy(opts->trusted_proxies, peer)) {
      st->stats.ended(SessionEnd::proxy_refused);
      log_event("proxy-refused",
                {{"session", sid}, {"peer", peer.to_string()}, {"reason", "untrusted peer"}});
      conn->close();
      co_return;
    }
    ProxyParse p = co_await read_proxy_header(*conn, in, opts->max_proxy_header);
    conn->timed_out = false;
    if (p.status != ProxyStatus::ok) {
      st->stats.ended(SessionEnd::proxy_refused);
      log_event("proxy-refused",
                {{"session", sid}, {"peer", peer.to_string()}, {"reason", p.error}});
      conn->close();
      co_return;
    }
    in.erase(0, p.consumed);
    if (!p.header.local && p.header.source) {
      ip = *p.header.source;
      port = p.header.source_port;
      proxied = true;
    }
  }
  const std::string ip_text = ip.to_string();
  release.ip = client_key(ip, opts->ipv6_connection_prefix);
  std::size_t& mine = st->per_ip[release.ip];
  ++mine;

  SessionConfig sc = opts->session;
  sc.starttls_available = opts->tls != nullptr && !listener.implicit_tls;
  Session session(std::move(sc), ip, port);

  if (st->total > opts->max_connections || mine > opts->max_connections_per_ip) {
    st->stats.ended(SessionEnd::connection_limit);
    log_event("reject", {{"session", sid}, {"ip", ip_text}, {"reason", "connection limit"}});
    // On an implicit TLS listener a plaintext 421 would be noise to the client: just close.
    if (!listener.implicit_tls) co_await conn->write_all(session.busy().format(), ec);
    conn->close();
    co_return;
  }

  if (listener.implicit_tls) {
    // Behind a PROXY header the client's first TLS bytes may have come with it.
    boost::system::error_code hec;
    co_await conn->handshake(*opts->tls, hec, in);
    in.clear();
    if (hec) {
      ++st->stats.implicit_tls_failed;
      st->stats.ended(SessionEnd::tls_failed);
      log_event("tls-failed", {{"session", sid}, {"ip", ip_text}, {"error", hec.message()}});
      conn->close();
      co_return;
    }
    ++st->stats.implicit_tls_ok;
    SSL* ssl = conn->tls->native_handle();
    session.on_tls_started(TlsInfo{SSL_get_version(ssl), SSL_get_cipher_name(ssl)});
  }

  auto handler = st->factory(ConnectionInfo{ip, port, sid, proxied});
  std::string close_reason = "client closed";
  SessionEnd end = SessionEnd::client_closed;
  std::string out = session.greeting().format();
  SessionPump pump(session,
                   SessionPump::Limits{opts->max_line, opts->max_text_line, opts->max_header},
                   handler.get(), &st->memory);
  bool closing = false;
  bool drain = false;  // we close: let the client's last bytes go before the socket does

  auto flush = [&]() -> awaitable<bool> {
    if (out.empty()) co_return true;
    boost::system::error_code wec;
    co_await conn->write_all(out, wec);
    out.clear();
    co_return !wec;
  };

  try {
    while (!closing) {
      // Turn every complete line (or the message data) in the buffer into replies.
      bool need_read = false;
      while (!closing && !need_read) {
        const bool was_fresh = session.envelope().helo.empty();
        const std::uint64_t transactions = session.transactions();
        const bool in_transaction = session.in_transaction();
        Step step = pump.next(in);
        if (pump.need_more()) {
          need_read = true;
          continue;
        }
        if (was_fresh && !session.envelope().helo.empty())
          handler->on_helo(session.envelope().helo);
        if (session.transactions() != transactions)
          handler->on_mail_from(session.envelope());
        else if (in_transaction && !session.in_transaction())
          handler->on_transaction_reset();
        if (step.action == Action::queue) {
          QueueOutcome q = co_await handler->on_message(session, pump.take_message());
          if (!q.queue_id && q.refusal)
            step = session.refuse(std::move(*q.refusal));
          else
            step = session.on_queued(q.queue_id, q.summary, q.failure, q.queued, q.link);
        }
        if (!step.reply.empty()) out += step.reply.format();
        switch (step.action) {
          case Action::none:
          case Action::queue:
            break;
          case Action::close:
            closing = true;
            end = session_end_for_close(step.reply.code);
            close_reason = "closed by us: " +
                           (step.reply.lines.empty() ? std::string("") : step.reply.lines[0]);
            break;
          case Action::start_data: {
            bool flushed = co_await flush();  // the 354 must leave now
            closing = !flushed;
          } break;
          case Action::start_tls: {
            bool flushed = co_await flush();
            closing = !flushed;
            if (closing) break;
            boost::system::error_code hec;
            co_await conn->handshake(*opts->tls, hec);
            if (hec) {
              ++st->stats.starttls_failed;
              closing = true;
              end = SessionEnd::tls_failed;
              close_reason = "TLS handshake failed: " + hec.message();
              out.clear();
              break;
            }
            ++st->stats.starttls_ok;
            SSL* ssl = conn->tls->native_handle();
            session.on_tls_started(TlsInfo{SSL_get_version(ssl), SSL_get_cipher_name(ssl)});
            pump.restart_lines();
            log_event("tls", {{"session", sid},
                              {"version", session.tls()->version},
                              {"cipher", session.tls()->cipher}});
            break;
          }
        }
        if (out.size() > kMaxPendingOutput) {
          bool flushed = co_await flush();
          closing = closing || !flushed;
        }
      }
      bool sent = co_await flush();
      if (!sent) break;
      if (closing) {
        drain = !conn->tls;  // inside TLS the raw bytes cannot be skipped over like this
        break;
      }

      // Read more.
      boost::system::error_code rec;
      if (in.empty() && in.capacity() > 4096) std::string().swap(in);  // idle: give it back
      std::size_t n = co_await conn->read_some(in, rec);
      if (rec) {
        if (st->stopping) {
          out = reply(421, "4.3.2", "service shutting down, try again later").format();
          conn->deadline = Clock::now() + std::chrono::seconds(2);
          co_await flush();
          close_reason = "shutdown";
          end = SessionEnd::shutdown;
        } else if (conn->timed_out) {
          conn->timed_out = false;
          out = session.on_timeout().format();
          conn->deadline = Clock::now() + std::chrono::seconds(10);
          co_await flush();
          close_reason = "timeout";
          end = SessionEnd::timeout;
        } else if (rec != asio::error::eof) {
          close_reason = "read error: " + rec.message();
          end = SessionEnd::io_error;
        }
        break;
      }
      (void)n;
    }
  } catch (const std::exception& e) {
    close_reason = std::string("internal error: ") + e.what();
    end = SessionEnd::internal_error;
    log_event("error", {{"session", sid}, {"what", e.what()}});
  }
  st->stats.ended(end);
  handler->on_close(close_reason);
  if (drain)
    co_await conn->close_after_draining();
  else
    conn->close();
}

awaitable<void> accept_loop(std::shared_ptr<Server::State> st, std::shared_ptr<ListenerSlot> slot) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket s = co_await slot->acceptor.async_accept(redirect_error(use_awaitable, ec));
    if (st->stopping || slot->closed) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of file descriptors or a transient error: pause instead of spinning.
      log_event("accept-error", {{"error", ec.message()}});
      asio::steady_timer t(st->io, std::chrono::milliseconds(100));
      co_await t.async_wait(redirect_error(use_awaitable, ec));
      continue;
    }
    // The listener's kind as it is now (a reload may have changed it).
    asio::co_spawn(st->io, serve_connection(st, std::move(s), slot->listener), asio::detached);
  }
}

std::string endpoint_text(const tcp::endpoint& e) {
  std::ostringstream out;
  out << e;
  return out.str();
}

}  // namespace

Server::Server(asio::io_context& io, ServerOptions options, HandlerFactory factory)
    : state_(std::make_shared<State>(io, std::move(options), std::move(factory))) {}

Server::~Server() {
  stop();
}

void Server::start() {
  commit(prepare(std::move(state_->initial)));
}

std::shared_ptr<Server::Change> Server::prepare(ServerOptions o) {
  auto change = std::make_shared<Change>();
  if (!o.tls && !o.tls_cert.empty()) o.tls = make_tls_context(o.tls_cert, o.tls_key);
  for (const auto& l : o.listeners) {
    if (l.implicit_tls && !o.tls)
      throw std::runtime_error("implicit TLS on " + endpoint_text(l.endpoint) +
                               " needs a certificate and key");
    std::shared_ptr<ListenerSlot> slot;
    for (const auto& s : state_->slots)
      if (!s->closed && s->listener.endpoint == l.endpoint) slot = s;
    for (const auto& [s, kind] : change->slots)
      if (s->listener.endpoint == l.endpoint || kind.endpoint == l.endpoint) slot = s;
    if (slot) {
      bool listed = false;
      for (const auto& entry : change->slots) listed = listed || entry.first == slot;
      if (!listed) change->slots.emplace_back(slot, l);
      continue;
    }
    slot = std::make_shared<ListenerSlot>(state_->io);
    slot->listener = l;
    auto& acc = slot->acceptor;
    boost::system::error_code ec;
    acc.open(l.endpoint.protocol(), ec);
    if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
    // "[::]" alone takes IPv4 too (as IPv4-mapped addresses, reported as IPv4); any other IPv6
    // address is IPv6 only.
    if (!ec && l.endpoint.address().is_v6())
      acc.set_option(asio::ip::v6_only(!l.endpoint.address().is_unspecified()), ec);
    if (!ec) acc.bind(l.endpoint, ec);
    if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)  // ~Change closes what this change bound so far
      throw std::runtime_error("cannot listen on " + endpoint_text(l.endpoint) + ": " +
                               ec.message());
    change->added.push_back(slot);
    change->slots.emplace_back(slot, l);
  }
  change->options = std::make_shared<const ServerOptions>(std::move(o));
  return change;
}

void Server::commit(std::shared_ptr<Change> change) {
  auto& st = *state_;
  if (st.stopping) return;
  change->committed = true;
  st.options = change->options;
  st.memory.set_limit(st.options->max_message_memory);
  boost::system::error_code ignored;
  for (auto& old : st.slots) {
    bool kept = false;
    for (const auto& entry : change->slots) kept = kept || entry.first == old;
    if (kept) continue;
    old->closed = true;
    old->acceptor.close(ignored);
    log_event("unlisten", {{"address", endpoint_text(old->listener.endpoint)}});
  }
  st.slots.clear();
  for (auto& [slot, kind] : change->slots) {
    slot->listener = kind;
    st.slots.push_back(slot);
  }
  for (auto& slot : change->added) {
    boost::system::error_code ec;
    log_event("listen", {{"address", endpoint_text(slot->acceptor.local_endpoint(ec))}});
    asio::co_spawn(st.io, accept_loop(state_, slot), asio::detached);
  }
}

bool Server::listening() const {
  if (state_->stopping) return false;
  for (const auto& s : state_->slots)
    if (!s->closed) return true;
  return false;
}

const ServerStats& Server::stats() const {
  return state_->stats;
}

void Server::stop() {
  if (!state_ || state_->stopping) return;
  state_->stopping = true;
  boost::system::error_code ignored;
  for (auto& slot : state_->slots) {
    slot->closed = true;
    slot->acceptor.close(ignored);
  }
  for (auto* s : state_->live) s->cancel(ignored);
}

std::size_t Server::connections() const {
  return state_->total;
}

}  // namespace ipconfirm::smtp

#include "responder/dns/dns_resolver.hpp"

#include <ares.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <map>
#include <random>
#include <stdexcept>
#include <unordered_map>
#include <vector>

namespace ipconfirm::responder {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kClassIn = 1;

// Bound on the extra reads after one readiness event (see Impl::on_readable).
constexpr int kMaxDrainRounds = 64;

// How a lookup's coroutine is resumed from a c-ares callback: asio::async_initiate hands us the
// coroutine's completion handler, which we keep, type-erased, in the heap state of the query
// (Pending) until c-ares calls back. c-ares calls every query's callback exactly once (answer,
// error, ares_cancel or ares_destroy), and complete() moves the handler out and posts it, so the
// coroutine resumes exactly once and never inside c-ares' own call stack.
class Completion {
 public:
  virtual ~Completion() = default;
  virtual void complete(DnsResult result) = 0;
};

template <typename Handler>
class HandlerCompletion final : public Completion {
 public:
  HandlerCompletion(Handler handler, asio::any_io_executor fallback)
      : handler_(std::move(handler)), fallback_(std::move(fallback)) {}

  void complete(DnsResult result) override {
    auto ex = asio::get_associated_executor(handler_, fallback_);
    asio::post(ex, [handler = std::move(handler_), result = std::move(result)]() mutable {
      std::move(handler)(std::move(result));
    });
  }

 private:
  Handler handler_;
  asio::any_io_executor fallback_;
};

DnsResult error_result(DnsStatus status, std::string detail) {
  return DnsResult{status, {}, std::move(detail)};
}

// The outcome of a query that ended without an answer to parse.
DnsResult from_ares_status(int status) {
  switch (status) {
    case ARES_ENOTFOUND:
      return error_result(DnsStatus::nxdomain, "NXDOMAIN");
    case ARES_ENODATA:
      return error_result(DnsStatus::nodata, "no records");
    case ARES_ETIMEOUT:
      return error_result(DnsStatus::temperror, "timeout");
    case ARES_ECONNREFUSED:
      return error_result(DnsStatus::temperror, "connection refused or REFUSED");
    case ARES_ESERVFAIL:
      return error_result(DnsStatus::temperror, "SERVFAIL");
    case ARES_EREFUSED:
      return error_result(DnsStatus::temperror, "REFUSED");
    case ARES_ECANCELLED:
      return error_result(DnsStatus::temperror, "cancelled");
    case ARES_EDESTRUCTION:
      return error_result(DnsStatus::temperror, "resolver shut down");
    case ARES_EFORMERR:
      return error_result(DnsStatus::permerror, "FORMERR");
    case ARES_ENOTIMP:
      return error_result(DnsStatus::permerror, "NOTIMP");
    case ARES_EBADNAME:
      return error_result(DnsStatus::permerror, "invalid query name");
    case ARES_EBADRESP:
      return error_result(DnsStatus::permerror, "malformed answer");
    default:
      return error_result(DnsStatus::temperror, ares_strerror(status));
  }
}

// Turns one Options::servers entry into c-ares' CSV form ("192.0.2.1:53", "[2001:db8::1]:53"),
// or nullopt. We check the syntax ourselves so that no unchecked text reaches c-ares' parser.
std::optional<std::string> server_entry(std::string_view text) {
  std::string_view host = text;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    const auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
  } else if (text.find(':') == text.rfind(':') && text.find(':') != std::string_view::npos) {
    host = text.substr(0, text.find(':'));  // exactly one colon: IPv4 with a port
    port = text.substr(text.find(':') + 1);
    if (port.empty()) return std::nullopt;
  }
  const auto ip = IpAddress::parse(host);
  if (!ip) return std::nullopt;
  unsigned long number = 53;
  if (!port.empty()) {
    if (port.size() > 5) return std::nullopt;
    number = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return std::nullopt;
      number = number * 10 + static_cast<unsigned long>(c - '0');
    }
    if (number == 0 || number > 65535) return std::nullopt;
  }
  const auto address = ip->to_string();
  return (ip->is_v4() ? address : "[" + address + "]") + ":" + std::to_string(number);
}

// A fresh query ID. ares_send sends the ID that is in the buffer (only ares_query picks one),
// so we draw it from the kernel's CSPRNG; an off-path attacker must guess it (RFC 5452 §9.2).
unsigned short random_query_id() {
  unsigned short id = 0;
  if (::getrandom(&id, sizeof id, GRND_NONBLOCK) == static_cast<ssize_t>(sizeof id)) return id;
  static std::mt19937 fallback(std::random_device{}());
  return static_cast<unsigned short>(fallback());
}

// Random bytes for 0x20; the same fallback as the query ID.
void random_bytes(std::uint8_t* out, std::size_t n) {
  if (::getrandom(out, n, GRND_NONBLOCK) == static_cast<ssize_t>(n)) return;
  static std::mt19937 fallback(std::random_device{}());
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(fallback());
}

// UDP sockets one server's queries are spread over at most (each is a file descriptor; queries
// beyond share the newest socket, as all of them did before).
constexpr std::size_t kMaxUdpSocketsPerServer = 256;

// Source-port randomisation per query (RFC 5452 §9.2). c-ares 1.18 opens one UDP socket per
// server and sends every query over it while any is outstanding, so under load every query
// leaves from the same port and an off-path attacker only has to guess the 16-bit ID. Through
// ares_set_socket_functions we give c-ares, for each UDP "socket" it asks for, an epoll
// descriptor instead (it is what c-ares and the event loop watch); each datagram c-ares sends
// on it goes out on a new UDP socket of its own, connected to the server, so the kernel gives
// it a random ephemeral port. Reading the epoll descriptor reads whichever of those sockets has
// a datagram, and hands c-ares only an exact answer to the query sent on that socket (ID and
// question, letter case included: 0x20); anything else is dropped there, so a spoofed answer
// cannot end the lookup, and the real one still can. A socket is closed once its answer came,
// or when it is older than a whole lookup may take.
struct UdpFanout {
  struct Sent {
    int fd = -1;
    std::vector<std::vector<std::uint8_t>> queries;  // the datagrams sent on it, unanswered
    Clock::time_point opened;
  };
  int epoll_fd = -1;
  int family = AF_INET;
  sockaddr_storage server{};
  socklen_t server_len = 0;
  std::map<int, Sent> sockets;  // by fd
};

void init_library_once() {
  static const int status = ares_library_init(ARES_LIB_INIT_ALL);
  if (status != ARES_SUCCESS)
    throw std::runtime_error(std::string("DNS resolver: c-ares initialisation failed: ") +
                             ares_strerror(status));
}

}  // namespace

struct DnsResolver::Impl : std::enable_shared_from_this<DnsResolver::Impl> {
  // One socket c-ares asked us to watch. The descriptor does not own the fd: c-ares closes it,
  // after telling us (readable = writable = 0), and we release() it then.
  struct Socket {
    explicit Socket(asio::posix::stream_descriptor d) : descriptor(std::move(d)) {}
    asio::posix::stream_descriptor descriptor;
    bool want_read = false, want_write = false;
    bool read_waiting = false, write_waiting = false;
  };

  // The heap state of one query in flight; c-ares owns the pointer until its callback.
  struct Pending {
    Impl* impl = nullptr;
    std::string key;
    std::string qname;
    std::string wire_name;  // qname as sent: its letters in random case (0x20)
    RrType type = RrType::a;
    bool store = true;  // keep the answer in the cache (any of the joined lookups wants it)
    std::unique_ptr<Completion> completion;
    // Lookups of the same name and type that arrived while this one was in flight: they share
    // its answer instead of sending the same query again (a burst of connections from one
    // address asks for the same PTR, A and blocklist names at once).
    std::vector<std::unique_ptr<Completion>> joined;
  };

  struct CacheEntry {
    DnsResult result;
    Clock::time_point stored, expires;
    std::list<std::string>::iterator age;  // position in `cache_order`
    std::size_t bytes = 0;                 // what it counts against opts.cache_bytes
  };

  Impl(asio::any_io_executor executor, const Options& options)
      : ex(std::move(executor)), opts(options), timer(ex) {}

  ~Impl() { shutdown(); }

  void init() {
    init_library_once();
    std::string csv;
    for (const auto& server : opts.servers) {
      auto entry = server_entry(server);
      if (!entry)
        throw std::runtime_error("DNS resolver: bad server \"" + server +
                                 "\" (expected IP, IPv4:port or [IPv6]:port)");
      if (!csv.empty()) csv += ',';
      csv += *entry;
    }
    if (opts.timeout.count() <= 0 || opts.timeout.count() > 60000)
      throw std::runtime_error("DNS resolver: timeout must be between 1 ms and 60 s");
    if (opts.tries < 1 || opts.tries > 10)
      throw std::runtime_error("DNS resolver: tries must be between 1 and 10");

    ares_options options{};
    options.timeout = static_cast<int>(opts.timeout.count());
    options.tries = opts.tries;
    options.sock_state_cb = &Impl::on_sock_state;
    options.sock_state_cb_data = this;
    const int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
    int status = ares_init_options(&channel, &options, mask);
    if (status != ARES_SUCCESS) {
      channel = nullptr;
      throw std::runtime_error(std::string("DNS resolver: c-ares initialisation failed: ") +
                               ares_strerror(status));
    }
    static const ares_socket_functions kSocketFunctions = {
        &Impl::socket_open, &Impl::socket_close, &Impl::socket_connect, &Impl::socket_recvfrom,
        &Impl::socket_sendv};
    ares_set_socket_functions(channel, &kSocketFunctions, this);
    // A datagram socket older than a whole lookup (every try, each twice as long as the one
    // before) can only receive a late answer that nobody waits for any more.
    udp_max_age = opts.timeout * (1 << std::min(opts.tries, 10));
    if (!csv.empty()) {
      status = ares_set_servers_ports_csv(channel, csv.c_str());
      if (status != ARES_SUCCESS) {
        shutdown();
        throw std::runtime_error("DNS resolver: cannot use servers \"" + csv +
                                 "\": " + ares_strerror(status));
      }
    }
  }

  // --- The socket functions (see UdpFanout). Called from C: nothing may escape; errors are
  // returned as -1 with errno, as the system calls they stand for.

  static ares_socket_t socket_open(int family, int type, int protocol, void* data) noexcept {
    auto* impl = static_cast<Impl*>(data);
    if (type != SOCK_DGRAM) {
      const int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
      if (fd >= 0 && type == SOCK_STREAM) {
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      return fd < 0 ? ARES_SOCKET_BAD : fd;
    }
    try {
      auto fanout = std::make_unique<UdpFanout>();
      fanout->family = family;
      fanout->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
      if (fanout->epoll_fd < 0) return ARES_SOCKET_BAD;
      const int fd = fanout->epoll_fd;
      impl->fanouts.emplace(fd, std::move(fanout));
      return fd;
    } catch (...) {
      errno = ENOMEM;
      return ARES_SOCKET_BAD;
    }
  }

  static int socket_close(ares_socket_t fd, void* data) noexcept {
    auto* impl = static_cast<Impl*>(data);
    if (auto it = impl->fanouts.find(fd); it != impl->fanouts.end()) {
      for (auto& [socket_fd, sent] : it->second->sockets) ::close(socket_fd);
      impl->fanouts.erase(it);
    }
    return ::close(fd);
  }

  static int socket_connect(ares_socket_t fd, const sockaddr* address, ares_socklen_t length,
                            void* data) noexcept {
    auto* impl = static_cast<Impl*>(data);
    if (auto it = impl->fanouts.find(fd); it != impl->fanouts.end()) {
      if (length > sizeof(sockaddr_storage)) {
        errno = EINVAL;
        return -1;
      }
      std::memcpy(&it->second->server, address, length);
      it->second->server_len = length;
      return 0;
    }
    return ::connect(fd, address, length);
  }

  static ares_ssize_t socket_sendv(ares_socket_t fd, const iovec* vec, int count,
                                   void* data) noexcept {
    auto* impl = static_cast<Impl*>(data);
    auto it = impl->fanouts.find(fd);
    if (it == impl->fanouts.end()) {
      msghdr message{};
      message.msg_iov = const_cast<iovec*>(vec);
      message.msg_iovlen = static_cast<std::size_t>(count);
      return ::sendmsg(fd, &message, MSG_NOSIGNAL);
    }
    try {
      std::vector<std::uint8_t> datagram;
      for (int i = 0; i < count; ++i) {
        const auto* base = static_cast<const std::uint8_t*>(vec[i].iov_base);
        datagram.insert(datagram.end(), base, base + vec[i].iov_len);
      }
      return impl->fanout_send(*it->second, std::move(datagram));
    } catch (...) {
      errno = ENOMEM;
      return -1;
    }
  }

  static ares_ssize_t socket_recvfrom(ares_socket_t fd, void* buffer, std::size_t length, int flags,
                                      sockaddr* from, ares_socklen_t* from_length,
                                      void* data) noexcept {
    auto* impl = static_cast<Impl*>(data);
    auto it = impl->fanouts.find(fd);
    if (it == impl->fanouts.end()) return ::recvfrom(fd, buffer, length, flags, from, from_length);
    return fanout_receive(*it->second, static_cast<std::uint8_t*>(buffer), length, from,
                          from_length);
  }

  // Sends one query on a new socket of its own (or, at the cap, on the newest one).
  ares_ssize_t fanout_send(UdpFanout& fanout, std::vector<std::uint8_t> datagram) {
    const auto now = Clock::now();
    for (auto i = fanout.sockets.begin(); i != fanout.sockets.end();) {
      if (now - i->second.opened > udp_max_age) {
        ::close(i->first);
        i = fanout.sockets.erase(i);
      } else {
        ++i;
      }
    }
    int fd = -1;
    if (fanout.sockets.size() >= kMaxUdpSocketsPerServer) {
      fd = std::max_element(
               fanout.sockets.begin(), fanout.sockets.end(),
               [](const auto& a, const auto& b) { return a.second.opened < b.second.opened; })
               ->first;
    } else {
      fd = ::socket(fanout.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) return -1;
      // connect() binds the socket to a port the kernel picks at random from its ephemeral
      // range, and makes it take datagrams from the server's address and port only.
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.fd = fd;
      if (::connect(fd, reinterpret_cast<const sockaddr*>(&fanout.server), fanout.server_len) !=
              0 ||
          ::epoll_ctl(fanout.epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        const int error = errno;
        ::close(fd);
        errno = error;
        return -1;
      }
      fanout.sockets[fd].fd = fd;
      fanout.sockets[fd].opened = now;
    }
    const ssize_t sent = ::send(fd, datagram.data(), datagram.size(), MSG_NOSIGNAL);
    if (sent < 0) return -1;
    fanout.sockets[fd].queries.push_back(std::move(datagram));
    return sent;
  }

  // The next datagram that answers a query exactly, or -1 with EAGAIN (nothing more to read) or
  // the socket's error (a refused port: c-ares then gives up on this server, as it would have).
  static ares_ssize_t fanout_receive(UdpFanout& fanout, std::uint8_t* buffer, std::size_t length,
                                     sockaddr* from, ares_socklen_t* from_length) {
    // Bounded, so that a flood of forged datagrams cannot hold the event loop here; what is
    // left is read on the next round (the descriptor stays readable).
    for (int dropped = 0; dropped < 256;) {
      epoll_event events[16];
      const int ready = ::epoll_wait(fanout.epoll_fd, events, 16, 0);
      if (ready <= 0) break;
      for (int e = 0; e < ready; ++e) {
        const int fd = events[e].data.fd;
        auto sent = fanout.sockets.find(fd);
        if (sent == fanout.sockets.end()) continue;
        const ssize_t n = ::recvfrom(fd, buffer, length, MSG_DONTWAIT, from, from_length);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
          return -1;
        }
        auto& queries = sent->second.queries;
        const std::span<const std::uint8_t> answer(buffer, static_cast<std::size_t>(n));
        auto match = std::find_if(queries.begin(), queries.end(),
                                  [&](const auto& query) { return answers_query(query, answer); });
        if (match == queries.end()) {
          ++dropped;  // not an answer to what we asked on this port: forged, or stray
          continue;
        }
        queries.erase(match);
        if (queries.empty()) {
          ::close(fd);
          fanout.sockets.erase(sent);
        }
        return n;
      }
    }
    errno = EAGAIN;
    return -1;
  }

  // Ends every query (their callbacks run with ARES_EDESTRUCTION) and lets go of the sockets.
  void shutdown() {
    if (channel != nullptr) {
      ares_channel doomed = channel;
      ares_destroy(doomed);
      channel = nullptr;
    }
    for (auto& entry : sockets) (void)entry.second->descriptor.release();
    sockets.clear();
    timer.cancel();
  }

  template <typename Handler>
  void start(Handler handler, std::string key, std::string qname, RrType type, bool store) {
    auto pending = std::make_unique<Pending>();
    pending->impl = this;
    pending->key = std::move(key);
    pending->qname = std::move(qname);
    pending->type = type;
    pending->store = store;
    pending->completion = std::make_unique<HandlerCompletion<Handler>>(std::move(handler), ex);
    if (channel == nullptr) {
      pending->completion->complete(error_result(DnsStatus::temperror, "resolver shut down"));
      return;
    }
    if (auto it = inflight.find(pending->key); it != inflight.end()) {
      it->second->joined.push_back(std::move(pending->completion));
      it->second->store = it->second->store || store;
      return;
    }
    std::uint8_t bits[32];
    random_bytes(bits, sizeof bits);
    pending->wire_name = mix_case(pending->qname, bits);
    unsigned char* query = nullptr;
    int length = 0;
    const int status =
        ares_create_query(pending->wire_name.c_str(), kClassIn, static_cast<int>(pending->type),
                          random_query_id(), 1, &query, &length, 0);
    if (status != ARES_SUCCESS) {
      pending->completion->complete(from_ares_status(status));
      return;
    }
    // From here c-ares owns `pending` and hands it back to on_answer exactly once (possibly
    // from inside ares_send, which is why it is in `inflight` first).
    inflight.emplace(pending->key, pending.get());
    if (opts.counters) ++opts.counters->queries;
    ares_send(channel, query, length, &Impl::on_answer, pending.release());
    ares_free_string(query);
    update_timer();
  }

  static void on_answer(void* arg, int status, int, unsigned char* abuf, int alen) {
    std::unique_ptr<Pending> pending(static_cast<Pending*>(arg));
    DnsResult result;
    std::optional<std::uint32_t> negative_ttl;
    if (status == ARES_SUCCESS && abuf != nullptr && alen > 0) {
      std::vector<std::uint8_t> answer(abuf, abuf + alen);
      // Datagrams were checked when they were read; this also covers answers over TCP.
      if (!question_is(answer, pending->wire_name, pending->type)) {
        result = error_result(DnsStatus::temperror,
                              "the answer does not repeat the question's letter case (0x20)");
      } else {
        // Names compressed against the question then read as they were asked.
        lower_question_name(answer);
        const auto parsed = parse_dns_answer(answer.data(), answer.size());
        result = interpret_answer(parsed, pending->qname, pending->type);
        negative_ttl = parsed.negative_ttl;
      }
    } else {
      result = from_ares_status(status);
    }
    Impl& impl = *pending->impl;
    if (status == ARES_ETIMEOUT && impl.opts.counters) ++impl.opts.counters->timeouts;
    if (auto it = impl.inflight.find(pending->key);
        it != impl.inflight.end() && it->second == pending.get())
      impl.inflight.erase(it);
    if (status != ARES_ECANCELLED && status != ARES_EDESTRUCTION && pending->store)
      impl.cache_put(pending->key, result, negative_ttl);
    for (auto& joined : pending->joined) joined->complete(result);
    pending->completion->complete(std::move(result));
  }

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    // Called from C: nothing may escape. If watching fails the query ends by timeout.
    try {
      static_cast<Impl*>(data)->sock_state(fd, readable != 0, writable != 0);
    } catch (...) {
    }
  }

  void sock_state(ares_socket_t fd, bool readable, bool writable) {
    auto it = sockets.find(fd);
    if (!readable && !writable) {
      if (it != sockets.end()) {
        // release(), never close(): c-ares closes the fd right after this callback. Pending
        // waits complete with operation_aborted and find the Socket gone.
        (void)it->second->descriptor.release();
        sockets.erase(it);
      }
      return;
    }
    if (it == sockets.end()) {
      auto socket = std::make_shared<Socket>(asio::posix::stream_descriptor(ex, fd));
      it = sockets.emplace(fd, std::move(socket)).first;
    }
    it->second->want_read = readable;
    it->second->want_write = writable;
    watch(fd, it->second);
  }

  bool current(ares_socket_t fd, const std::shared_ptr<Socket>& socket) const {
    auto it = sockets.find(fd);
    return it != sockets.end() && it->second == socket;
  }

  void watch(ares_socket_t fd, const std::shared_ptr<Socket>& socket) {
    if (socket->want_read && !socket->read_waiting) {
      socket->read_waiting = true;
      socket->descriptor.async_wait(
          asio::posix::descriptor_base::wait_read,
          [weak_self = weak_from_this(), weak_socket = std::weak_ptr<Socket>(socket),
           fd](const boost::system::error_code& ec) {
            auto self = weak_self.lock();
            auto sock = weak_socket.lock();
            if (!self || !sock) return;
            sock->read_waiting = false;
            if (ec == asio::error::operation_aborted || self->channel == nullptr) return;
            self->on_readable(fd, sock);
          });
    }
    if (socket->want_write && !socket->write_waiting) {
      socket->write_waiting = true;
      socket->descriptor.async_wait(
          asio::posix::descriptor_base::wait_write,
          [weak_self = weak_from_this(), weak_socket = std::weak_ptr<Socket>(socket),
           fd](const boost::system::error_code& ec) {
            auto self = weak_self.lock();
            auto sock = weak_socket.lock();
            if (!self || !sock) return;
            sock->write_waiting = false;
            if (ec == asio::error::operation_aborted || self->channel == nullptr) return;
            ares_process_fd(self->channel, ARES_SOCKET_BAD, fd);
            if (self->current(fd, sock)) self->watch(fd, sock);
            self->update_timer();
          });
    }
  }

  void on_readable(ares_socket_t fd, const std::shared_ptr<Socket>& socket) {
    ares_process_fd(channel, fd, ARES_SOCKET_BAD);
    // Asio waits on edge-triggered epoll: data c-ares left unread (it reads a TCP answer one
    // chunk per call) raises no new edge, so read on while the socket still polls readable.
    for (int round = 0; round < kMaxDrainRounds && current(fd, socket) && socket->want_read;
         ++round) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 0) != 1 || (p.revents & (POLLIN | POLLERR | POLLHUP)) == 0) break;
      ares_process_fd(channel, fd, ARES_SOCKET_BAD);
    }
    if (current(fd, socket)) watch(fd, socket);
    update_timer();
  }

  // Arms the one timer for c-ares' next timeout, or stops it when nothing is pending.
  void update_timer() {
    if (channel == nullptr) return;
    timeval tv{};
    if (ares_timeout(channel, nullptr, &tv) == nullptr) {
      timer.cancel();
      return;
    }
    timer.expires_after(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec));
    timer.async_wait([weak_self = weak_from_this()](const boost::system::error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      auto self = weak_self.lock();
      if (!self || self->channel == nullptr) return;
      ares_process_fd(self->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      self->update_timer();
    });
  }

  std::optional<DnsResult> cache_get(const std::string& key) {
    auto it = cache.find(key);
    if (it == cache.end()) return std::nullopt;
    const auto now = Clock::now();
    if (now >= it->second.expires) {
      cache_erase(it);
      return std::nullopt;
    }
    DnsResult result = it->second.result;
    const auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(now - it->second.stored);
    const auto spent = static_cast<std::uint32_t>(elapsed.count());
    for (auto& record : result.records) record.ttl = record.ttl > spent ? record.ttl - spent : 0;
    return result;
  }

  void cache_erase(std::unordered_map<std::string, CacheEntry>::iterator it) {
    cache_bytes_used -= it->second.bytes;
    cache_order.erase(it->second.age);
    cache.erase(it);
  }

  // The largest entry the cache takes: a sixteenth of the budget, at most 64 KiB. A normal
  // answer counts a few hundred bytes; a hundred A records about 12 KiB.
  std::size_t max_entry_bytes() const {
    return std::min<std::size_t>(64 * 1024, opts.cache_bytes / 16);
  }

  void cache_put(const std::string& key, const DnsResult& result,
                 std::optional<std::uint32_t> negative_ttl) {
    if (opts.cache_entries == 0 || opts.cache_bytes == 0) return;
    const std::uint32_t ttl = cache_ttl(result, negative_ttl, opts.max_ttl);
    if (ttl == 0) return;
    if (auto it = cache.find(key); it != cache.end()) cache_erase(it);
    // The key is held twice (map and age list), plus the nodes of both.
    const std::size_t bytes = memory_bytes(result) + 2 * (key.capacity() + 1) + 128;
    if (bytes > max_entry_bytes()) return;
    while (!cache_order.empty() &&
           (cache.size() >= opts.cache_entries || cache_bytes_used + bytes > opts.cache_bytes))
      cache_erase(cache.find(cache_order.front()));
    const auto now = Clock::now();
    cache_order.push_back(key);
    cache.emplace(key, CacheEntry{result, now, now + std::chrono::seconds(ttl),
                                  std::prev(cache_order.end()), bytes});
    cache_bytes_used += bytes;
  }

  asio::any_io_executor ex;
  Options opts;
  ares_channel channel = nullptr;
  asio::steady_timer timer;
  std::map<ares_socket_t, std::shared_ptr<Socket>> sockets;
  std::unordered_map<std::string, CacheEntry> cache;
  std::list<std::string> cache_order;                           // keys, oldest first
  std::size_t cache_bytes_used = 0;                             // sum of the entries' bytes
  std::unordered_map<std::string, Pending*> inflight;           // by cache key; owned by c-ares
  std::unordered_map<int, std::unique_ptr<UdpFanout>> fanouts;  // by the fd c-ares knows
  Clock::duration udp_max_age = std::chrono::seconds(10);
};

// Starts one query once the coroutine is suspended. Only a weak reference to the resolver
// crosses the suspension, so that destroying the resolver can end the query (ares_destroy
// completes it with temperror) while the coroutine waits.
struct DnsResolver::Initiation {
  std::weak_ptr<Impl> impl;
  std::string key;
  std::string qname;
  RrType type;
  bool store;

  template <typename Handler>
  void operator()(Handler handler) {
    if (auto strong = impl.lock()) {
      strong->start(std::move(handler), std::move(key), std::move(qname), type, store);
      return;
    }
    auto ex = asio::get_associated_executor(handler);
    asio::post(ex, [handler = std::move(handler)]() mutable {
      std::move(handler)(error_result(DnsStatus::temperror, "resolver shut down"));
    });
  }
};

DnsResolver::DnsResolver(asio::any_io_executor ex, const Options& opts)
    : impl_(std::make_shared<Impl>(std::move(ex), opts)) {
  impl_->init();
}

DnsResolver::~DnsResolver() {
  if (impl_) impl_->shutdown();
}

asio::awaitable<DnsResult> DnsResolver::query(std::string name, RrType type, Caching caching) {
  auto qname = normalise_query_name(name);
  if (!qname) co_return error_result(DnsStatus::permerror, "invalid query name");
  std::string key = *qname + '/' + std::to_string(static_cast<unsigned>(type));
  if (auto cached = impl_->cache_get(key)) {
    if (impl_->opts.counters) ++impl_->opts.counters->cache_hits;
    co_return std::move(*cached);
  }

  // A named initiation object rather than a lambda inside the co_await expression: GCC 12
  // destroys some temporaries of a co_await full-expression twice.
  Initiation initiation{impl_, std::move(key), std::move(*qname), type, caching == Caching::store};
  DnsResult result = co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(DnsResult)>(
      std::move(initiation), asio::use_awaitable);
  co_return result;
}

asio::awaitable<DnsResult> DnsResolver::ptr(const IpAddress& ip) {
  std::string name = ip.reverse_name();
  DnsResult result = co_await query(std::move(name), RrType::ptr);
  co_return result;
}

void DnsResolver::cancel_all() {
  if (impl_->channel == nullptr) return;
  ares_cancel(impl_->channel);
  impl_->update_timer();
}

std::size_t DnsResolver::cache_size() const {
  return impl_->cache.size();
}

std::size_t DnsResolver::cache_bytes() const {
  return impl_->cache_bytes_used;
}

}  // namespace ipconfirm::responder

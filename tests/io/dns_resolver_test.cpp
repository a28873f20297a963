// The resolver against a real dnsmasq on a random loopback port, and, for the faults dnsmasq
// cannot produce (malformed answers, SERVFAIL, silence, hostile names, compression loops), against
// a tiny scripted UDP responder in a thread. Exits 77 (skipped) when dnsmasq is not installed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "responder/dns/dns_resolver.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;
using namespace std::chrono_literals;

namespace {

std::uint16_t random_port() {
  static std::mt19937 rng(std::random_device{}());
  return static_cast<std::uint16_t>(std::uniform_int_distribution<int>(20000, 40000)(rng));
}

std::string find_dnsmasq() {
  for (const char* dir : {"/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"}) {
    std::string path = std::string(dir) + "/dnsmasq";
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return {};
}

// Runs one coroutine on `io` until it finishes or `limit` passes.
template <typename T>
std::optional<T> run(asio::io_context& io, asio::awaitable<T> task,
                     std::chrono::milliseconds limit = 15s) {
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    error = e;
    out = std::move(value);
  });
  io.restart();
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!out && !error && std::chrono::steady_clock::now() < deadline) io.run_one_for(50ms);
  if (error) std::rethrow_exception(error);
  return out;
}

DnsResult lookup(asio::io_context& io, DnsResolver& resolver, std::string name, RrType type) {
  auto result = run(io, resolver.query(std::move(name), type));
  REQUIRE(result.has_value());
  return *result;
}

std::vector<std::string> texts(const DnsResult& result) {
  std::vector<std::string> out;
  for (const auto& record : result.records)
    out.push_back(record.address ? record.address->to_string() : record.text);
  std::sort(out.begin(), out.end());
  return out;
}

DnsResolver::Options options_for(std::uint16_t port) {
  DnsResolver::Options options;
  options.servers = {"127.0.0.1:" + std::to_string(port)};
  options.timeout = 300ms;
  options.tries = 2;
  return options;
}

// A dnsmasq authoritative for the test zones, fed from a --conf-file, stopped by its PID.
class Dnsmasq {
 public:
  explicit Dnsmasq(const std::string& records) {
    dir_ = std::filesystem::temp_directory_path() /
           ("ipconfirm-dns-" + std::to_string(::getpid()) + "-" + std::to_string(random_port()));
    std::filesystem::create_directories(dir_);
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) start(records);
    if (pid_ <= 0) throw std::runtime_error("dnsmasq did not start");
  }
  ~Dnsmasq() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::uint16_t port() const { return port_; }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(20ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  void start(const std::string& records) {
    port_ = random_port();
    const auto conf = (dir_ / "dnsmasq.conf").string();
    {
      std::ofstream out(conf);
      out << "port=" << port_ << "\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\n"
          << "no-hosts\nno-poll\npid-file=\nlocal=/test/\nlocal=/in-addr.arpa/\n"
          << "local=/ip6.arpa/\n"
          << records;
    }
    const auto log = (dir_ / "dnsmasq.log").string();
    const std::string binary = find_dnsmasq();
    const std::string conf_arg = "--conf-file=" + conf;
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Only async-signal-safe calls between fork and exec. dnsmasq dies with this test, even
      // when the test crashes.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execl(binary.c_str(), "dnsmasq", conf_arg.c_str(), "--keep-in-foreground",
              "--log-facility=-", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (pid < 0) return;
    // Ready when it answers; a dnsmasq that exited (port taken) is retried on another port.
    for (int i = 0; i < 100; ++i) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) return;
      if (answers()) {
        pid_ = pid;
        return;
      }
      std::this_thread::sleep_for(30ms);
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }

  // Sends one query for "probe.test" and waits 30 ms for any reply.
  bool answers() const {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const std::uint8_t query[] = {0x12, 0x34, 1,   0,   0, 1,   0,   0,   0,   0, 0, 0, 5, 'p',
                                  'r',  'o',  'b', 'e', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};
    ::sendto(fd, query, sizeof query, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    pollfd p{fd, POLLIN, 0};
    const bool ok = ::poll(&p, 1, 30) == 1 && (p.revents & POLLIN) != 0 &&
                    ::recv(fd, std::vector<char>(512).data(), 512, 0) > 0;
    ::close(fd);
    return ok;
  }

  std::filesystem::path dir_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

const std::string kRecords =
    "host-record=mail.sender.test,127.0.0.2\n"
    "ptr-record=3.0.0.127.in-addr.arpa,dyn-127-0-0-3.pool.isp.test\n"
    "ptr-record=4.0.0.127.in-addr.arpa,one.multi.test\n"
    "ptr-record=4.0.0.127.in-addr.arpa,two.multi.test\n"
    "ptr-record=4.0.0.127.in-addr.arpa,three.multi.test\n"
    "host-record=v6.sender.test,2001:db8::25\n"
    "host-record=dual.sender.test,127.0.0.5,2001:db8::5\n"
    "host-record=cached.sender.test,127.0.0.9,300\n"
    "txt-record=txt.sender.test,\"v=spf1 ip4:127.0.0.2 -all\"\n"
    "txt-record=comma.sender.test,\"one, two\",\" \\\"three\\\"\"\n"
    "mx-host=sender.test,mail.sender.test,10\n"
    "txt-record=big.sender.test,\"" +
    std::string(200, 'a') + "\",\"" + std::string(200, 'b') + "\",\"" + std::string(200, 'c') +
    "\",\"" + std::string(200, 'd') +
    "\"\n"
    "cname=alias.sender.test,mail.sender.test\n";

// A UDP responder on loopback that answers each query with bytes from `script` (or stays
// silent when it returns nothing), or with several datagrams from a MultiScript (a spoofed
// answer first, say). It records each query's source port and name as sent (letter case
// kept). It runs in a thread for at most 60 s.
class ScriptedServer {
 public:
  using Script = std::function<std::optional<std::vector<std::uint8_t>>(
      const std::vector<std::uint8_t>& query)>;
  using MultiScript =
      std::function<std::vector<std::vector<std::uint8_t>>(const std::vector<std::uint8_t>& query)>;

  struct Seen {
    std::uint16_t port;
    std::string name;
  };

  explicit ScriptedServer(Script script)
      : ScriptedServer(MultiScript([script = std::move(script)](const auto& query) {
          std::vector<std::vector<std::uint8_t>> out;
          if (auto reply = script(query)) out.push_back(std::move(*reply));
          return out;
        })) {}

  explicit ScriptedServer(MultiScript script) : script_(std::move(script)) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(fd_ >= 0);
    for (int attempt = 0; attempt < 20; ++attempt) {
      port_ = random_port();
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(port_);
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        thread_ = std::thread([this] { loop(); });
        return;
      }
    }
    FAIL("no free UDP port for the scripted responder");
  }
  ~ScriptedServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }
  int queries() const { return queries_; }
  std::vector<Seen> seen() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }

 private:
  void loop() {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    std::vector<std::uint8_t> buffer(4096);
    while (!stop_ && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) != 1) continue;
      sockaddr_in from{};
      socklen_t from_len = sizeof from;
      const auto n = ::recvfrom(fd_, buffer.data(), buffer.size(), 0,
                                reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < 12) continue;
      const std::vector<std::uint8_t> query(buffer.begin(), buffer.begin() + n);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        seen_.push_back(Seen{ntohs(from.sin_port), question_name(query)});
      }
      ++queries_;
      for (const auto& reply : script_(query))
        ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
    }
  }

  // The question's name as sent, labels joined with '.'.
  static std::string question_name(const std::vector<std::uint8_t>& query) {
    std::string name;
    for (std::size_t i = 12; i < query.size() && query[i] != 0 && query[i] < 64;
         i += 1 + query[i]) {
      if (!name.empty()) name += '.';
      name.append(reinterpret_cast<const char*>(query.data() + i + 1),
                  std::min<std::size_t>(query[i], query.size() - i - 1));
    }
    return name;
  }

  MultiScript script_;
  mutable std::mutex mutex_;
  std::vector<Seen> seen_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> queries_{0};
  std::thread thread_;
};

// An answer to `query`: its ID and question, the given flags/rcode and counts, then `body`.
std::vector<std::uint8_t> reply_to(const std::vector<std::uint8_t>& query, unsigned flags,
                                   unsigned ancount, const std::vector<std::uint8_t>& body,
                                   unsigned nscount = 0) {
  std::vector<std::uint8_t> out = {query[0],
                                   query[1],
                                   static_cast<std::uint8_t>(flags >> 8),
                                   static_cast<std::uint8_t>(flags & 0xFF),
                                   0,
                                   1,
                                   0,
                                   static_cast<std::uint8_t>(ancount),
                                   0,
                                   static_cast<std::uint8_t>(nscount),
                                   0,
                                   0};
  out.insert(out.end(), query.begin() + 12, query.end());
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// An answer record owned by the question name (pointer to offset 12).
std::vector<std::uint8_t> record(unsigned type, std::uint32_t ttl,
                                 const std::vector<std::uint8_t>& rdata) {
  std::vector<std::uint8_t> out = {0xC0,
                                   12,
                                   static_cast<std::uint8_t>(type >> 8),
                                   static_cast<std::uint8_t>(type),
                                   0,
                                   1,
                                   static_cast<std::uint8_t>(ttl >> 24),
                                   static_cast<std::uint8_t>(ttl >> 16),
                                   static_cast<std::uint8_t>(ttl >> 8),
                                   static_cast<std::uint8_t>(ttl),
                                   static_cast<std::uint8_t>(rdata.size() >> 8),
                                   static_cast<std::uint8_t>(rdata.size())};
  out.insert(out.end(), rdata.begin(), rdata.end());
  return out;
}

std::vector<std::uint8_t> wire_name(const std::vector<std::string>& labels) {
  std::vector<std::uint8_t> out;
  for (const auto& label : labels) {
    out.push_back(static_cast<std::uint8_t>(label.size()));
    out.insert(out.end(), label.begin(), label.end());
  }
  out.push_back(0);
  return out;
}

constexpr unsigned kOk = 0x8180;  // QR RD RA, NOERROR

std::string to_lower(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return s;
}

}  // namespace

TEST_CASE("dns_resolver: answers from dnsmasq") {
  Dnsmasq server(kRecords);
  asio::io_context io;
  DnsResolver resolver(io.get_executor(), options_for(server.port()));

  SUBCASE("PTR with one name") {
    auto r = run(io, resolver.ptr(*IpAddress::parse("127.0.0.3")));
    REQUIRE(r);
    CHECK(r->status == DnsStatus::ok);
    CHECK(texts(*r) == std::vector<std::string>{"dyn-127-0-0-3.pool.isp.test"});
    CHECK(r->records[0].type == RrType::ptr);
    CHECK(r->records[0].name == "3.0.0.127.in-addr.arpa");
  }
  SUBCASE("PTR with several names") {
    auto r = run(io, resolver.ptr(*IpAddress::parse("127.0.0.4")));
    REQUIRE(r);
    CHECK(r->status == DnsStatus::ok);
    CHECK(texts(*r) ==
          std::vector<std::string>{"one.multi.test", "three.multi.test", "two.multi.test"});
  }
  SUBCASE("PTR from a host-record, and IPv6 PTR") {
    auto r4 = run(io, resolver.ptr(*IpAddress::parse("127.0.0.2")));
    REQUIRE(r4);
    CHECK(texts(*r4) == std::vector<std::string>{"mail.sender.test"});
    auto r6 = run(io, resolver.ptr(*IpAddress::parse("2001:db8::25")));
    REQUIRE(r6);
    CHECK(r6->status == DnsStatus::ok);
    CHECK(texts(*r6) == std::vector<std::string>{"v6.sender.test"});
  }
  SUBCASE("A and AAAA") {
    const auto a = lookup(io, resolver, "dual.sender.test", RrType::a);
    CHECK(a.status == DnsStatus::ok);
    CHECK(texts(a) == std::vector<std::string>{"127.0.0.5"});
    const auto aaaa = lookup(io, resolver, "DUAL.sender.test.", RrType::aaaa);
    CHECK(aaaa.status == DnsStatus::ok);
    CHECK(texts(aaaa) == std::vector<std::string>{"2001:db8::5"});
    CHECK(aaaa.records[0].type == RrType::aaaa);
  }
  SUBCASE("TXT, with commas and quotes") {
    const auto spf = lookup(io, resolver, "txt.sender.test", RrType::txt);
    CHECK(spf.status == DnsStatus::ok);
    CHECK(texts(spf) == std::vector<std::string>{"v=spf1 ip4:127.0.0.2 -all"});
    const auto comma = lookup(io, resolver, "comma.sender.test", RrType::txt);
    CHECK(comma.status == DnsStatus::ok);
    CHECK(texts(comma) == std::vector<std::string>{"one, two \"three\""});
  }
  SUBCASE("a TXT answer over 512 bytes: truncated over UDP, then retried over TCP") {
    const auto big = lookup(io, resolver, "big.sender.test", RrType::txt);
    CHECK(big.status == DnsStatus::ok);
    REQUIRE(big.records.size() == 1);
    CHECK(big.records[0].text == std::string(200, 'a') + std::string(200, 'b') +
                                     std::string(200, 'c') + std::string(200, 'd'));
  }
  SUBCASE("MX") {
    const auto mx = lookup(io, resolver, "sender.test", RrType::mx);
    CHECK(mx.status == DnsStatus::ok);
    REQUIRE(mx.records.size() == 1);
    CHECK(mx.records[0].preference == 10);
    CHECK(mx.records[0].text == "mail.sender.test");
  }
  SUBCASE("CNAME: the records of the asked type at the end of the chain") {
    const auto a = lookup(io, resolver, "alias.sender.test", RrType::a);
    CHECK(a.status == DnsStatus::ok);
    CHECK(texts(a) == std::vector<std::string>{"127.0.0.2"});
    CHECK(a.records[0].name == "mail.sender.test");
  }
  SUBCASE("NXDOMAIN and NODATA") {
    const auto nx = lookup(io, resolver, "nobody.sender.test", RrType::a);
    CHECK(nx.status == DnsStatus::nxdomain);
    CHECK(nx.records.empty());
    const auto nxptr = run(io, resolver.ptr(*IpAddress::parse("127.0.0.99")));
    REQUIRE(nxptr);
    CHECK(nxptr->status == DnsStatus::nxdomain);
    const auto nodata = lookup(io, resolver, "mail.sender.test", RrType::aaaa);
    CHECK(nodata.status == DnsStatus::nodata);
    CHECK(nodata.records.empty());
  }
  SUBCASE("an invalid name is a permerror without a query") {
    const auto bad = lookup(io, resolver, "bad name\r\n.test", RrType::a);
    CHECK(bad.status == DnsStatus::permerror);
    CHECK(bad.detail == "invalid query name");
  }
  SUBCASE("200 lookups at once, all in the io_context thread") {
    std::vector<std::optional<DnsResult>> results(200);
    for (std::size_t i = 0; i < results.size(); ++i) {
      const char* name = i % 2 ? "mail.sender.test" : "dual.sender.test";
      asio::co_spawn(io, resolver.query(name, RrType::a),
                     [&results, i](std::exception_ptr, DnsResult r) { results[i] = std::move(r); });
    }
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    auto done = [&] {
      return std::all_of(results.begin(), results.end(), [](const auto& r) { return r; });
    };
    while (!done() && std::chrono::steady_clock::now() < deadline) io.run_one_for(50ms);
    REQUIRE(done());
    for (const auto& r : results) CHECK(r->status == DnsStatus::ok);
  }
}

TEST_CASE("dns_resolver: the cache answers without the server") {
  Dnsmasq server(kRecords);
  asio::io_context io;
  DnsResolver resolver(io.get_executor(), options_for(server.port()));

  const auto first = lookup(io, resolver, "cached.sender.test", RrType::a);
  REQUIRE(first.status == DnsStatus::ok);
  CHECK(first.records[0].ttl == 300);
  const auto uncached = lookup(io, resolver, "mail.sender.test", RrType::a);  // TTL 0
  REQUIRE(uncached.status == DnsStatus::ok);
  const auto negative = lookup(io, resolver, "nobody.sender.test", RrType::a);
  REQUIRE(negative.status == DnsStatus::nxdomain);
  server.stop();

  const auto again = lookup(io, resolver, "CACHED.sender.test.", RrType::a);
  CHECK(again.status == DnsStatus::ok);
  CHECK(texts(again) == std::vector<std::string>{"127.0.0.9"});
  CHECK(again.records[0].ttl <= 300);
  CHECK(lookup(io, resolver, "nobody.sender.test", RrType::a).status == DnsStatus::nxdomain);
  // TTL 0 is never cached: this one needs the server that is gone.
  CHECK(lookup(io, resolver, "mail.sender.test", RrType::a).status == DnsStatus::temperror);
}

TEST_CASE("dns_resolver: a server that is down is a temperror within the deadline") {
  asio::io_context io;
  auto options = options_for(random_port());  // nothing listens there
  DnsResolver resolver(io.get_executor(), options);
  const auto start = std::chrono::steady_clock::now();
  const auto r = lookup(io, resolver, "mail.sender.test", RrType::a);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.status == DnsStatus::temperror);
  CHECK(took < 3s);
  CHECK_FALSE(r.detail.empty());
}

TEST_CASE("dns_resolver: options") {
  asio::io_context io;
  SUBCASE("the system resolver") {
    DnsResolver::Options options;
    CHECK_NOTHROW(DnsResolver(io.get_executor(), options));
  }
  SUBCASE("server syntax") {
    DnsResolver::Options options;
    options.servers = {"127.0.0.1:5353", "[::1]:53", "192.0.2.1", "::1"};
    CHECK_NOTHROW(DnsResolver(io.get_executor(), options));
    for (const char* bad : {"localhost", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "[::1",
                            "[::1]x", "127.0.0.1:53,10.0.0.1", "1.2.3.4:5:6", ""}) {
      CAPTURE(bad);
      options.servers = {bad};
      CHECK_THROWS_AS(DnsResolver(io.get_executor(), options), std::runtime_error);
    }
    options.servers = {"nameserver"};
    try {
      DnsResolver resolver(io.get_executor(), options);
      FAIL("no exception");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()).find("\"nameserver\"") != std::string::npos);
    }
  }
}

TEST_CASE("dns_resolver: faults from a scripted server") {
  asio::io_context io;

  SUBCASE("a PTR with CR/LF inside is returned for the analysis to reject") {
    ScriptedServer server([](const auto& q) {
      return reply_to(q, kOk, 1, record(12, 60, wire_name({"evil\r\nX-Bad: 1", "test"})));
    });
    DnsResolver resolver(io.get_executor(), options_for(server.port()));
    auto r = run(io, resolver.ptr(*IpAddress::parse("192.0.2.7")));
    REQUIRE(r);
    CHECK(r->status == DnsStatus::ok);
    REQUIRE(r->records.size() == 1);
    CHECK(r->records[0].text == "evil\r\nX-Bad: 1.test");
  }
  SUBCASE("a PTR over 255 bytes is returned whole") {
    ScriptedServer server([](const auto& q) {
      const std::string l60(60, 'x');
      return reply_to(q, kOk, 1, record(12, 60, wire_name({l60, l60, l60, l60, l60, "test"})));
    });
    DnsResolver resolver(io.get_executor(), options_for(server.port()));
    auto r = run(io, resolver.ptr(*IpAddress::parse("192.0.2.7")));
    REQUIRE(r);
    CHECK(r->status == DnsStatus::ok);
    REQUIRE(r->records.size() == 1);
    CHECK(r->records[0].text.size() == 5 * 61 + 4);
  }
  SUBCASE("a malformed answer is a permerror") {
    ScriptedServer server([](const auto& q) {
      auto body = record(12, 60, wire_name({"a", "test"}));
      body[11] = 200;  // RDLENGTH beyond the end of the message
      return reply_to(q, kOk, 1, body);
    });
    DnsResolver resolver(io.get_executor(), options_for(server.port()));
    const auto r = lookup(io, resolver, "x.test", RrType::ptr);
    CHECK(r.status == DnsStatus::permerror);
    CHECK(r.detail.find("malformed") != std::string::npos);
  }
  SUBCASE("a compression loop is a permerror") {
    ScriptedServer server([](const auto& q) {
      // The RDATA is a name that points at itself.
      const auto at = static_cast<std::uint8_t>(q.size() + 12);
      return reply_to(q, kOk, 1, record(12, 60, {0xC0, at}));
    });
    DnsResolver resolver(io.get_executor(), options_for(server.port()));
    const auto r = lookup(io, resolver, "x.test", RrType::ptr);
    CHECK(r.status == DnsStatus::permerror);
  }
  SUBCASE("SERVFAIL and REFUSED are temperrors, FORMERR a permerror") {
    for (unsigned rcode : {2u, 5u, 1u}) {
      CAPTURE(rcode);
      ScriptedServer server([rcode](const auto& q) { return reply_to(q, kOk | rcode, 0, {}); });
      DnsResolver resolver(io.get_executor(), options_for(server.port()));
      const auto r = lookup(io, resolver, "x.test", RrType::a);
      CHECK(r.status == (rcode == 1 ? DnsStatus::permerror : DnsStatus::temperror));
    }
  }
  SUBCASE("a truncated answer with no TCP server is a temperror") {
    ScriptedServer server([](const auto& q) { return reply_to(q, kOk | 0x0200, 0, {}); });
    DnsResolver resolver(io.get_executor(), options_for(server.port()));
    const auto r = lookup(io, resolver, "x.test", RrType::txt);
    CHECK(r.status == DnsStatus::temperror);
  }
  SUBCASE("silence: temperror after timeout * (1 + 2) and not much later") {
    ScriptedServer server([](const auto&) { return std::nullopt; });
    auto options = options_for(server.port());
    options.timeout = 200ms;
    options.tries = 2;
    DnsResolver resolver(io.get_executor(), options);
    const auto start = std::chrono::steady_clock::now();
    const auto r = lookup(io, resolver, "x.test", RrType::a);
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(r.status == DnsStatus::temperror);
    CHECK(r.detail == "timeout");
    CHECK(took >= 550ms);
    CHECK(took < 1500ms);
    CHECK(server.queries() == 2);
  }
  SUBCASE("cancel_all resumes every pending lookup once, with temperror") {
    ScriptedServer server([](const auto&) { return std::nullopt; });
    auto options = options_for(server.port());
    options.timeout = 5000ms;
    DnsResolver resolver(io.get_executor(), options);
    int resumed = 0;
    std::vector<DnsResult> results;
    for (int i = 0; i < 5; ++i)
      asio::co_spawn(io, resolver.query("x" + std::to_string(i) + ".test", RrType::a),
                     [&](std::exception_ptr, DnsResult r) {
                       ++resumed;
                       results.push_back(std::move(r));
                     });
    asio::steady_timer later(io, 100ms);
    later.async_wait([&](auto) { resolver.cancel_all(); });
    const auto start = std::chrono::steady_clock::now();
    while (resumed < 5 && std::chrono::steady_clock::now() - start < 3s) io.run_one_for(50ms);
    CHECK(resumed == 5);
    for (const auto& r : results) CHECK(r.status == DnsStatus::temperror);
    CHECK(std::chrono::steady_clock::now() - start < 1s);
    // The resolver still works afterwards, and nothing resumes twice.
    io.run_for(200ms);
    CHECK(resumed == 5);
  }
  SUBCASE("destroying the resolver resumes pending lookups with temperror") {
    ScriptedServer server([](const auto&) { return std::nullopt; });
    auto options = options_for(server.port());
    options.timeout = 5000ms;
    auto resolver = std::make_unique<DnsResolver>(io.get_executor(), options);
    int resumed = 0;
    DnsResult result;
    result.status = DnsStatus::ok;
    asio::co_spawn(io, resolver->query("x.test", RrType::a), [&](std::exception_ptr, DnsResult r) {
      ++resumed;
      result = std::move(r);
    });
    asio::steady_timer later(io, 100ms);
    later.async_wait([&](auto) { resolver.reset(); });
    const auto start = std::chrono::steady_clock::now();
    while (resumed < 1 && std::chrono::steady_clock::now() - start < 3s) io.run_one_for(50ms);
    CHECK(resumed == 1);
    CHECK(result.status == DnsStatus::temperror);
    io.run_for(200ms);
    CHECK(resumed == 1);
  }
  SUBCASE("cache: TTLs honoured, TTL 0 not cached, oldest evicted, negative TTL from SOA") {
    ScriptedServer server([](const auto& q) -> std::optional<std::vector<std::uint8_t>> {
      // Compared in lower case: the resolver mixes the case of the names it sends (0x20).
      const std::string name = to_lower(std::string(q.begin() + 13, q.begin() + 13 + q[12]));
      if (name == "zero") return reply_to(q, kOk, 1, record(1, 0, {10, 0, 0, 1}));
      if (name == "neg") {
        // NXDOMAIN with an SOA whose MINIMUM is 1 s.
        auto soa =
            record(6, 600, {0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1});
        return reply_to(q, kOk | 3, 0, soa, 1);
      }
      return reply_to(q, kOk, 1, record(1, 300, {10, 0, 0, 2}));
    });
    auto options = options_for(server.port());
    options.cache_entries = 2;
    DnsResolver resolver(io.get_executor(), options);

    CHECK(lookup(io, resolver, "zero.test", RrType::a).status == DnsStatus::ok);
    CHECK(lookup(io, resolver, "zero.test", RrType::a).status == DnsStatus::ok);
    CHECK(server.queries() == 2);

    CHECK(lookup(io, resolver, "one.test", RrType::a).status == DnsStatus::ok);
    CHECK(lookup(io, resolver, "one.test", RrType::a).status == DnsStatus::ok);
    CHECK(server.queries() == 3);
    CHECK(lookup(io, resolver, "one.test", RrType::aaaa).status == DnsStatus::nodata);
    CHECK(server.queries() == 4);  // another type is another key
    CHECK(resolver.cache_size() == 2);
    CHECK(lookup(io, resolver, "two.test", RrType::a).status == DnsStatus::ok);  // evicts one/A
    CHECK(resolver.cache_size() == 2);
    CHECK(server.queries() == 5);
    CHECK(lookup(io, resolver, "one.test", RrType::a).status == DnsStatus::ok);
    CHECK(server.queries() == 6);

    CHECK(lookup(io, resolver, "neg.test", RrType::a).status == DnsStatus::nxdomain);
    CHECK(lookup(io, resolver, "neg.test", RrType::a).status == DnsStatus::nxdomain);
    CHECK(server.queries() == 7);
    std::this_thread::sleep_for(1100ms);
    CHECK(lookup(io, resolver, "neg.test", RrType::a).status == DnsStatus::nxdomain);
    CHECK(server.queries() == 8);
  }
  SUBCASE("every query carries its own random ID") {
    std::mutex mutex;
    std::set<unsigned> ids;
    ScriptedServer server([&](const auto& q) {
      std::lock_guard<std::mutex> lock(mutex);
      ids.insert(unsigned{q[0]} << 8 | q[1]);
      return reply_to(q, kOk, 1, record(1, 0, {10, 0, 0, 1}));
    });
    DnsResolver resolver(io.get_executor(), options_for(server.port()));
    for (int i = 0; i < 20; ++i)
      CHECK(lookup(io, resolver, "n" + std::to_string(i) + ".test", RrType::a).status ==
            DnsStatus::ok);
    std::lock_guard<std::mutex> lock(mutex);
    CHECK(ids.size() >= 15);  // 20 draws from 65536 values: a collision or two at most
  }
  SUBCASE("lookups of one name in flight at once share one query") {
    ScriptedServer server([](const auto& q) {
      std::this_thread::sleep_for(50ms);  // all lookups below start before the answer
      return reply_to(q, kOk, 1, record(1, 0, {10, 0, 0, 3}));  // TTL 0: never cached
    });
    DnsResolver resolver(io.get_executor(), options_for(server.port()));
    std::vector<DnsResult> results;
    auto one = [&](std::string name) -> asio::awaitable<void> {
      DnsResult r = co_await resolver.query(std::move(name), RrType::a);
      results.push_back(std::move(r));
    };
    for (int i = 0; i < 5; ++i) asio::co_spawn(io, one("same.test"), asio::detached);
    asio::co_spawn(io, one("SAME.test."), asio::detached);  // the same key, spelled otherwise
    asio::co_spawn(io, one("other.test"), asio::detached);
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (results.size() < 7 && std::chrono::steady_clock::now() < deadline) io.run_one_for(50ms);
    REQUIRE(results.size() == 7);
    for (const auto& r : results) {
      CHECK(r.status == DnsStatus::ok);
      CHECK(texts(r) == std::vector<std::string>{"10.0.0.3"});
    }
    CHECK(server.queries() == 2);
    // Once answered (TTL 0, not cached), the next lookup asks again.
    CHECK(lookup(io, resolver, "same.test", RrType::a).status == DnsStatus::ok);
    CHECK(server.queries() == 3);
  }
  SUBCASE("temperrors are not cached") {
    ScriptedServer server([](const auto& q) { return reply_to(q, kOk | 2, 0, {}); });
    auto options = options_for(server.port());
    options.tries = 1;
    DnsResolver resolver(io.get_executor(), options);
    CHECK(lookup(io, resolver, "x.test", RrType::a).status == DnsStatus::temperror);
    CHECK(lookup(io, resolver, "x.test", RrType::a).status == DnsStatus::temperror);
    CHECK(server.queries() == 2);
    CHECK(resolver.cache_size() == 0);
  }
}

// Twenty A records (TTL 300) for any name: a 336-byte answer.
std::optional<std::vector<std::uint8_t>> twenty_addresses(const std::vector<std::uint8_t>& q) {
  std::vector<std::uint8_t> body;
  for (std::uint8_t i = 0; i < 20; ++i) {
    auto rr = record(1, 300, {10, 0, 0, i});
    body.insert(body.end(), rr.begin(), rr.end());
  }
  return reply_to(q, kOk, 20, body);
}

TEST_CASE("dns_resolver: the cache stays within its byte budget") {
  asio::io_context io;
  ScriptedServer server(twenty_addresses);
  auto options = options_for(server.port());
  options.cache_bytes = 64 * 1024;
  DnsResolver resolver(io.get_executor(), options);
  std::size_t most = 0;
  for (int i = 0; i < 300; ++i) {
    const auto r = lookup(io, resolver, "n" + std::to_string(i) + ".big.test", RrType::a);
    REQUIRE(r.status == DnsStatus::ok);
    CHECK(r.records.size() == 20);
    CHECK(resolver.cache_bytes() <= options.cache_bytes);
    most = std::max(most, resolver.cache_bytes());
  }
  MESSAGE("cache after 300 answers of 20 A records: ", resolver.cache_size(), " entries, ",
          resolver.cache_bytes(), " bytes (budget ", options.cache_bytes, ")");
  CHECK(most > options.cache_bytes / 2);  // it was used, not switched off
  CHECK(resolver.cache_size() < 300);
  // The newest answers are still there, the oldest went first.
  const int asked = server.queries();
  CHECK(lookup(io, resolver, "n299.big.test", RrType::a).status == DnsStatus::ok);
  CHECK(server.queries() == asked);
  CHECK(lookup(io, resolver, "n0.big.test", RrType::a).status == DnsStatus::ok);
  CHECK(server.queries() == asked + 1);
}

TEST_CASE("dns_resolver: no_store answers and answers over the entry limit are not cached") {
  asio::io_context io;
  ScriptedServer server(twenty_addresses);
  auto options = options_for(server.port());
  DnsResolver resolver(io.get_executor(), options);
  auto no_store = [&](const char* name) {
    auto r = run(io, resolver.query(name, RrType::a, DnsResolver::Caching::no_store));
    REQUIRE(r);
    return *r;
  };
  CHECK(no_store("helo.client.test").status == DnsStatus::ok);
  CHECK(resolver.cache_size() == 0);
  CHECK(resolver.cache_bytes() == 0);
  CHECK(no_store("helo.client.test").status == DnsStatus::ok);
  CHECK(server.queries() == 2);
  // A stored answer is read by a no_store lookup too.
  CHECK(lookup(io, resolver, "shared.test", RrType::a).status == DnsStatus::ok);
  CHECK(resolver.cache_size() == 1);
  CHECK(no_store("shared.test").status == DnsStatus::ok);
  CHECK(server.queries() == 3);

  // A budget of 16 KiB takes no entry over 1 KiB: twenty records are more.
  asio::io_context io2;
  options.cache_bytes = 16 * 1024;
  DnsResolver small(io2.get_executor(), options);
  CHECK(lookup(io2, small, "big.test", RrType::a).status == DnsStatus::ok);
  CHECK(small.cache_size() == 0);
}

// The answer to `query` with its question's name in lower case: what an off-path attacker
// who guessed the ID and port but not the letter case would send.
std::vector<std::uint8_t> with_lowered_question(std::vector<std::uint8_t> reply) {
  for (std::size_t i = 12; i < reply.size() && reply[i] != 0; i += 1 + reply[i])
    for (std::size_t j = i + 1; j <= i + reply[i] && j < reply.size(); ++j)
      if (reply[j] >= 'A' && reply[j] <= 'Z') reply[j] = static_cast<std::uint8_t>(reply[j] + 32);
  return reply;
}

std::vector<DnsResult> lookup_all(asio::io_context& io, DnsResolver& resolver,
                                  const std::vector<std::string>& names) {
  std::vector<DnsResult> results;
  for (const auto& name : names) {
    asio::co_spawn(io, resolver.query(name, RrType::a),
                   [&](std::exception_ptr, DnsResult r) { results.push_back(std::move(r)); });
  }
  io.restart();
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (results.size() < names.size() && std::chrono::steady_clock::now() < deadline)
    io.run_one_for(50ms);
  return results;
}

TEST_CASE("dns_resolver: every query leaves from a port of its own (RFC 5452 §9.2)") {
  asio::io_context io;
  // Answers after a pause, so that all queries are outstanding at once: c-ares 1.18 would send
  // them all from its one UDP socket.
  ScriptedServer server([](const auto& q) {
    std::this_thread::sleep_for(5ms);
    return reply_to(q, kOk, 1, record(1, 0, {10, 0, 0, 1}));
  });
  DnsResolver resolver(io.get_executor(), options_for(server.port()));
  std::vector<std::string> names;
  for (int i = 0; i < 20; ++i) names.push_back("port" + std::to_string(i) + ".example.test");
  const auto results = lookup_all(io, resolver, names);
  REQUIRE(results.size() == names.size());
  for (const auto& r : results) CHECK(r.status == DnsStatus::ok);
  std::set<std::uint16_t> ports;
  for (const auto& q : server.seen()) ports.insert(q.port);
  MESSAGE("20 concurrent queries left from ", ports.size(), " distinct ports");
  CHECK(ports.size() >= 18);  // the kernel picks each at random; two may collide
}

TEST_CASE(
    "dns_resolver: 0x20: the name's letters go out in random case, and the answer must "
    "repeat it exactly") {
  asio::io_context io;
  SUBCASE("the case is random") {
    ScriptedServer server([](const auto& q) {
      return reply_to(q, kOk, 1, record(1, 0, {1, 2, 3, 4}));
    });
    DnsResolver resolver(io.get_executor(), options_for(server.port()));
    const std::string name = "abcdefghijklmnopqrstuvwxyz.example.test";
    for (int i = 0; i < 4; ++i)
      CHECK(lookup(io, resolver, name, RrType::a).status == DnsStatus::ok);
    std::set<std::string> sent;
    for (const auto& q : server.seen()) {
      CHECK(to_lower(q.name) == name);
      sent.insert(q.name);
    }
    CHECK(sent.size() == 4);  // 2^-30 to fail by chance
    CHECK(sent.count(name) == 0);
  }
  SUBCASE("a spoofed answer that guessed the ID but not the case is ignored") {
    ScriptedServer server([](const auto& q) {
      auto spoof = with_lowered_question(reply_to(q, kOk, 1, record(1, 300, {6, 6, 6, 6})));
      auto real = reply_to(q, kOk, 1, record(1, 300, {10, 0, 0, 7}));
      return std::vector<std::vector<std::uint8_t>>{spoof, real};
    });
    DnsResolver resolver(io.get_executor(), options_for(server.port()));
    const auto r = lookup(io, resolver, "victim.bank.example.test", RrType::a);
    CHECK(r.status == DnsStatus::ok);
    CHECK(texts(r) == std::vector<std::string>{"10.0.0.7"});
  }
  SUBCASE("a server that does not keep the case is not believed") {
    ScriptedServer server([](const auto& q) {
      return with_lowered_question(reply_to(q, kOk, 1, record(1, 300, {10, 0, 0, 7})));
    });
    auto options = options_for(server.port());
    options.tries = 1;
    DnsResolver resolver(io.get_executor(), options);
    const auto r = lookup(io, resolver, "victim.bank.example.test", RrType::a);
    CHECK(r.status == DnsStatus::temperror);
  }
}

int main(int argc, char** argv) {
  if (find_dnsmasq().empty()) {
    std::printf("dnsmasq is not installed: skipped\n");
    return 77;
  }
  ::signal(SIGPIPE, SIG_IGN);
  doctest::Context context(argc, argv);
  return context.run();
}

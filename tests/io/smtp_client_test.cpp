// The outbound SMTP client against real peers on loopback: Postfix's smtp-sink for delivery and
// the faults it can produce (-r 4xx, -f 5xx, -q disconnect), and small scripted servers (on the
// same io_context) for what smtp-sink cannot do: response injection, malformed replies, silence,
// STARTTLS with AUTH, pipelined replies, and sessions that go stale between messages (ClientPool).
// Exits 77 (skipped) when smtp-sink is not installed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/asio.hpp"
#include "smtp/client.hpp"

extern char** environ;

namespace fs = std::filesystem;
using namespace ipconfirm;
using namespace ipconfirm::smtp;
using tcp = asio::ip::tcp;
using Kind = DeliveryOutcome::Kind;

namespace {

std::optional<std::string> find_tool(const std::string& name) {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::string p = path;
    std::size_t start = 0;
    while (start <= p.size()) {
      std::size_t colon = p.find(':', start);
      if (colon == std::string::npos) colon = p.size();
      if (colon > start) dirs.push_back(p.substr(start, colon - start));
      start = colon + 1;
    }
  }
  dirs.emplace_back("/usr/sbin");  // Debian installs smtp-sink here, often outside a user's PATH
  for (const auto& d : dirs) {
    fs::path candidate = fs::path(d) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return std::nullopt;
}

unsigned short random_port() {
  static std::mt19937 rng{std::random_device{}()};
  return static_cast<unsigned short>(std::uniform_int_distribution<int>(20000, 39999)(rng));
}

tcp::endpoint loopback(unsigned short port) {
  return {asio::ip::make_address_v4("127.0.0.1"), port};
}

// Starts a program with stdout and stderr discarded; returns its pid or -1.
pid_t spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

bool port_accepts(unsigned short port) {
  asio::io_context io;
  tcp::socket s(io);
  boost::system::error_code ec;
  s.connect(loopback(port), ec);
  return !ec;
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "ipconfirm-client-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = templ;
    // smtp-sink drops privileges to nobody when run as root and must still write here.
    fs::permissions(path, fs::perms::all);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string smtp_sink_path;

// One smtp-sink on a random loopback port, writing each message into its own file.
class Sink {
 public:
  explicit Sink(const std::vector<std::string>& fault_options = {}) {
    for (int attempt = 0; attempt < 10 && pid_ < 0; ++attempt) {
      port_ = random_port();
      std::vector<std::string> args{smtp_sink_path};
      if (::getuid() == 0) args.insert(args.end(), {"-u", "nobody"});
      args.insert(args.end(), {"-h", "sink.test", "-d", (dir_.path / "%Y%m%d%H%M%S.").string()});
      args.insert(args.end(), fault_options.begin(), fault_options.end());
      args.push_back("127.0.0.1:" + std::to_string(port_));
      args.emplace_back("10");
      pid_t pid = spawn(args);
      if (pid < 0) continue;
      // Bounded wait: 100 x 20 ms for the port to answer, or for the sink to die (port taken).
      for (int i = 0; i < 100; ++i) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
          pid = -1;
          break;
        }
        if (port_accepts(port_)) {
          pid_ = pid;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (pid > 0 && pid_ < 0) {
        ::kill(pid, SIGTERM);
        ::waitpid(pid, nullptr, 0);
      }
    }
    if (pid_ < 0) throw std::runtime_error("smtp-sink did not start");
  }
  ~Sink() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  tcp::endpoint endpoint() const { return loopback(port_); }

  // The dumped messages; waits up to a second for at least `expected` of them.
  std::vector<std::string> messages(std::size_t expected = 1) const {
    std::vector<std::string> out;
    for (int i = 0; i < 50; ++i) {
      out.clear();
      for (const auto& entry : fs::directory_iterator(dir_.path)) {
        std::ifstream in(entry.path(), std::ios::binary);
        out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      }
      if (out.size() >= expected) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return out;
  }

 private:
  TempDir dir_;
  unsigned short port_ = 0;
  pid_t pid_ = -1;
};

ClientOptions test_options() {
  ClientOptions o;
  o.helo_name = "client.example.test";
  o.connect_timeout = std::chrono::seconds{5};
  o.command_timeout = std::chrono::seconds{5};
  o.data_timeout = std::chrono::seconds{5};
  return o;
}

// Runs the client (and, if given, a scripted server coroutine) on one io_context.
DeliveryOutcome run_client(asio::io_context& io, tcp::endpoint ep, const ClientOptions& opts,
                           asio::ssl::context& ctx, std::string sender, std::string recipient,
                           std::string message) {
  std::optional<DeliveryOutcome> result;
  asio::co_spawn(io,
                 deliver(io.get_executor(), ep, opts, ctx, std::move(sender), std::move(recipient),
                         std::move(message)),
                 [&](std::exception_ptr e, DeliveryOutcome o) {
                   if (!e) result = std::move(o);
                 });
  io.run_for(std::chrono::seconds{30});
  REQUIRE(result.has_value());
  return *result;
}

DeliveryOutcome deliver_to(tcp::endpoint ep, const ClientOptions& opts, std::string sender,
                           std::string recipient, std::string message) {
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  return run_client(io, ep, opts, ctx, std::move(sender), std::move(recipient), std::move(message));
}

const char* const simple_message =
    "From: ipconfirm@example.test\r\nTo: someone@sender.test\r\nSubject: report\r\n\r\nhello\r\n";

// ---------------------------------------------------------------------------------------------
// A scripted server: one connection, driven by a coroutine on the test's io_context.

struct ScriptedPeer {
  explicit ScriptedPeer(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  std::optional<asio::ssl::stream<tcp::socket>> tls;
  std::string buffer;
  std::vector<std::string> received;  // every line the client sent, without CRLF

  asio::awaitable<void> send(std::string text) {
    if (tls) {
      co_await asio::async_write(*tls, asio::buffer(text), asio::use_awaitable);
    } else {
      co_await asio::async_write(socket, asio::buffer(text), asio::use_awaitable);
    }
  }

  // The next CRLF-terminated line, or nullopt when the client closed the connection.
  asio::awaitable<std::optional<std::string>> line() {
    for (;;) {
      std::size_t end = buffer.find("\r\n");
      if (end != std::string::npos) {
        std::string l = buffer.substr(0, end);
        buffer.erase(0, end + 2);
        received.push_back(l);
        co_return l;
      }
      char chunk[4096];
      boost::system::error_code ec;
      std::size_t n = 0;
      if (tls) {
        n = co_await tls->async_read_some(asio::buffer(chunk),
                                          asio::redirect_error(asio::use_awaitable, ec));
      } else {
        n = co_await socket.async_read_some(asio::buffer(chunk),
                                            asio::redirect_error(asio::use_awaitable, ec));
      }
      if (ec) co_return std::nullopt;
      buffer.append(chunk, n);
    }
  }
};

struct ScriptedServer {
  using Script = std::function<asio::awaitable<void>(ScriptedPeer&)>;

  explicit ScriptedServer(asio::io_context& io) : acceptor(io) {
    for (int attempt = 0; attempt < 20; ++attempt) {
      boost::system::error_code ec;
      port = random_port();
      acceptor = tcp::acceptor(io);
      acceptor.open(tcp::v4(), ec);
      if (!ec) acceptor.bind(loopback(port), ec);
      if (!ec) acceptor.listen(4, ec);
      if (!ec) return;
    }
    throw std::runtime_error("no free port for the scripted server");
  }

  // Accepts one connection and runs `script` on it; `peer` stays readable after the run.
  void start(Script script) {
    asio::co_spawn(
        acceptor.get_executor(),
        [this, script = std::move(script)]() -> asio::awaitable<void> {
          tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
          peer.emplace(std::move(s));
          co_await script(*peer);
        },
        [this](std::exception_ptr e) { failed = static_cast<bool>(e); });
  }

  tcp::endpoint endpoint() const { return loopback(port); }

  tcp::acceptor acceptor;
  unsigned short port = 0;
  std::optional<ScriptedPeer> peer;
  bool failed = false;
};

// Answers commands until QUIT or the end of the connection.
asio::awaitable<void> answer_commands(ScriptedPeer& p, std::string ehlo_reply) {
  while (auto l = co_await p.line()) {
    std::string verb = l->substr(0, 4);
    if (verb == "EHLO") {
      co_await p.send(ehlo_reply);
    } else if (verb == "DATA") {
      co_await p.send("354 go ahead\r\n");
      while (auto body = co_await p.line()) {
        if (*body == ".") break;
      }
      co_await p.send("250 2.0.0 queued\r\n");
    } else if (verb == "QUIT") {
      co_await p.send("221 2.0.0 bye\r\n");
      co_return;
    } else {
      co_await p.send("250 2.0.0 ok\r\n");
    }
  }
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

bool sent(const ScriptedPeer& p, const std::string& prefix) {
  for (const auto& l : p.received) {
    if (l.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("delivers to smtp-sink with the right envelope and an unstuffed body") {
  Sink sink;
  // Lines that start with dots, a bare LF and an 8-bit octet.
  std::string message =
      "From: ipconfirm@example.test\r\nSubject: report\r\n\r\n.one dot\r\n..two dots\r\n"
      ".\r\nbare lf\nlast line caf\xc3\xa9";
  auto outcome = deliver_to(sink.endpoint(), test_options(), "", "someone@sender.test", message);
  CHECK(outcome.kind == Kind::ok);
  CHECK(contains(outcome.detail, "250"));
  auto messages = sink.messages();
  REQUIRE(messages.size() == 1);
  const std::string& m = messages[0];
  CHECK(contains(m, "X-Helo-Args: client.example.test\n"));
  // smtp-sink announces 8BITMIME and no SIZE.
  CHECK(contains(m, "X-Mail-Args: <> BODY=8BITMIME\n"));
  CHECK(contains(m, "X-Rcpt-Args: <someone@sender.test>\n"));
  CHECK(contains(m,
                 "\nSubject: report\n\n.one dot\n..two dots\n.\nbare lf\nlast line caf\xc3\xa9\n"));
}

TEST_CASE("a 7-bit message from a named sender goes without BODY=") {
  Sink sink;
  auto outcome = deliver_to(sink.endpoint(), test_options(), "bounce@example.test",
                            "someone@sender.test", simple_message);
  CHECK(outcome.kind == Kind::ok);
  auto messages = sink.messages();
  REQUIRE(messages.size() == 1);
  CHECK(contains(messages[0], "X-Mail-Args: <bounce@example.test>\n"));
}

TEST_CASE("a quoted local part reaches smtp-sink quoted; a UTF-8 one fails without SMTPUTF8") {
  Sink sink;
  auto outcome =
      deliver_to(sink.endpoint(), test_options(), "", "\"john doe\"@sender.test", simple_message);
  CHECK(outcome.kind == Kind::ok);
  auto messages = sink.messages();
  REQUIRE(messages.size() == 1);
  CHECK(contains(messages[0], "X-Rcpt-Args: <\"john doe\"@sender.test>\n"));
  CHECK(contains(messages[0], "X-Mail-Args: <>\n"));

  // smtp-sink does not announce SMTPUTF8: the address has no form it could take.
  outcome =
      deliver_to(sink.endpoint(), test_options(), "", "j\xc3\xb6rg@sender.test", simple_message);
  CHECK(outcome.kind == Kind::permanent);
  CHECK(contains(outcome.detail, "RCPT TO: the recipient's address has non-ASCII characters"));
  CHECK(contains(outcome.detail, "SMTPUTF8"));
  CHECK(sink.messages(2).size() == 1);
}

TEST_CASE("SMTPUTF8: asked for when an address needs it and the server offers it") {
  struct Case {
    std::string sender, recipient;
    bool offered;
    std::vector<std::string> expected;  // what the server received, EHLO to QUIT
    Kind kind;
  };
  const std::string joerg = "j\xc3\xb6rg@sender.test";
  const Case cases[] = {
      {"",
       joerg,
       true,
       {"EHLO client.example.test", "MAIL FROM:<> SMTPUTF8", "RCPT TO:<" + joerg + ">", "DATA",
        "QUIT"},
       Kind::ok},
      {joerg,
       "someone@sender.test",
       true,
       {"EHLO client.example.test", "MAIL FROM:<" + joerg + "> SMTPUTF8",
        "RCPT TO:<someone@sender.test>", "DATA", "QUIT"},
       Kind::ok},
      // Offered but not needed: not asked for.
      {"",
       "\"john doe\"@sender.test",
       true,
       {"EHLO client.example.test", "MAIL FROM:<>", "RCPT TO:<\"john doe\"@sender.test>", "DATA",
        "QUIT"},
       Kind::ok},
      // Needed but not offered: nothing is sent, and the session ends politely.
      {"", joerg, false, {"EHLO client.example.test", "QUIT"}, Kind::permanent},
  };
  for (const auto& c : cases) {
    CAPTURE(c.recipient);
    CAPTURE(c.offered);
    asio::io_context io;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ScriptedServer server(io);
    std::string ehlo = c.offered ? "250-mx.example.test\r\n250 SMTPUTF8\r\n"
                                 : "250-mx.example.test\r\n250 8BITMIME\r\n";
    server.start([ehlo](ScriptedPeer& p) -> asio::awaitable<void> {
      co_await p.send("220 mx.example.test ESMTP\r\n");
      co_await answer_commands(p, ehlo);
    });
    auto outcome = run_client(io, server.endpoint(), test_options(), ctx, c.sender, c.recipient,
                              "From: ipconfirm@example.test\r\nTo: <" + c.recipient +
                                  ">\r\nSubject: report\r\n\r\nhello\r\n");
    CHECK(outcome.kind == c.kind);
    REQUIRE(server.peer);
    std::vector<std::string> commands;
    bool in_data = false;
    for (const auto& l : server.peer->received) {
      if (!in_data) commands.push_back(l);
      if (l == "DATA") in_data = true;
      if (in_data && l == ".") in_data = false;
    }
    CHECK(commands == c.expected);
  }
}

TEST_CASE("4xx at DATA is a temporary failure") {
  Sink sink({"-r", "data"});
  auto outcome =
      deliver_to(sink.endpoint(), test_options(), "", "someone@sender.test", simple_message);
  CHECK(outcome.kind == Kind::temporary);
  CHECK(contains(outcome.detail, "DATA: 4"));
  // smtp-sink may leave the envelope of the aborted transaction behind, but never the body.
  for (const auto& m : sink.messages(0)) CHECK_FALSE(contains(m, "\nhello\n"));
}

TEST_CASE("5xx at RCPT is a permanent failure") {
  Sink sink({"-f", "rcpt"});
  auto outcome =
      deliver_to(sink.endpoint(), test_options(), "", "someone@sender.test", simple_message);
  CHECK(outcome.kind == Kind::permanent);
  CHECK(contains(outcome.detail, "RCPT TO: 5"));
}

TEST_CASE("5xx after the final dot is a permanent failure") {
  Sink sink({"-f", "."});
  auto outcome =
      deliver_to(sink.endpoint(), test_options(), "", "someone@sender.test", simple_message);
  CHECK(outcome.kind == Kind::permanent);
  CHECK(contains(outcome.detail, "end of data: 5"));
}

TEST_CASE("a disconnect at DATA is a temporary failure") {
  Sink sink({"-q", "data"});
  auto outcome =
      deliver_to(sink.endpoint(), test_options(), "", "someone@sender.test", simple_message);
  CHECK(outcome.kind == Kind::temporary);
  CHECK(contains(outcome.detail, "DATA: connection closed"));
}

TEST_CASE("nothing listening is a quick temporary failure") {
  // Find a port nobody listens on (bounded).
  unsigned short port = random_port();
  for (int i = 0; i < 20 && port_accepts(port); ++i) port = random_port();
  auto start = std::chrono::steady_clock::now();
  auto outcome =
      deliver_to(loopback(port), test_options(), "", "someone@sender.test", simple_message);
  CHECK(outcome.kind == Kind::temporary);
  CHECK(contains(outcome.detail, "connect to 127.0.0.1 port " + std::to_string(port)));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds{2});
}

TEST_CASE("credentials are not sent in clear, and TLS required fails without STARTTLS") {
  Sink sink;  // offers AUTH PLAIN LOGIN but no STARTTLS
  ClientOptions opts = test_options();
  opts.auth = std::make_pair(std::string("user"), std::string("secret"));
  auto outcome = deliver_to(sink.endpoint(), opts, "", "someone@sender.test", simple_message);
  CHECK(outcome.kind == Kind::temporary);
  CHECK(contains(outcome.detail, "refusing to send credentials without TLS"));

  ClientOptions required = test_options();
  required.tls = ClientOptions::Tls::required;
  outcome = deliver_to(sink.endpoint(), required, "", "someone@sender.test", simple_message);
  CHECK(outcome.kind == Kind::temporary);
  CHECK(contains(outcome.detail, "TLS is required"));
  CHECK(sink.messages(0).empty());
}

TEST_CASE("addresses that would inject commands are refused before connecting") {
  // No server at all: the client must not even try.
  auto outcome = deliver_to(loopback(1), test_options(), "a@example.test>\r\nRSET",
                            "someone@sender.test", simple_message);
  CHECK(outcome.kind == Kind::permanent);
  CHECK(contains(outcome.detail, "invalid sender"));
  ClientOptions bad_helo = test_options();
  bad_helo.helo_name = "x\r\nMAIL FROM:<>";
  outcome = deliver_to(loopback(1), bad_helo, "", "someone@sender.test", simple_message);
  CHECK(outcome.kind == Kind::temporary);
  CHECK(contains(outcome.detail, "helo_name"));
}

TEST_CASE("lines injected after the greeting are a protocol error") {
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ScriptedServer server(io);
  server.start([](ScriptedPeer& p) -> asio::awaitable<void> {
    // One write, so that the client reads both in the same segment.
    co_await p.send("220 mx.example.test ESMTP\r\n250 2.0.0 injected\r\n");
    co_await answer_commands(p, "250 mx.example.test\r\n");
  });
  auto outcome =
      run_client(io, server.endpoint(), test_options(), ctx, "", "a@sender.test", simple_message);
  CHECK(outcome.kind == Kind::temporary);
  CHECK(contains(outcome.detail, "greeting: protocol error"));
  CHECK(contains(outcome.detail, "injection"));
  REQUIRE(server.peer);
  CHECK_FALSE(sent(*server.peer, "EHLO"));
}

TEST_CASE("a malformed reply is a protocol error") {
  const char* const replies[] = {"22 short code\r\n", "220-first\r\n221 other code\r\n",
                                 "220 bare lf\n"};
  for (const char* greeting : replies) {
    CAPTURE(greeting);
    asio::io_context io;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ScriptedServer server(io);
    server.start([greeting](ScriptedPeer& p) -> asio::awaitable<void> {
      co_await p.send(greeting);
      co_await answer_commands(p, "250 mx.example.test\r\n");
    });
    auto outcome =
        run_client(io, server.endpoint(), test_options(), ctx, "", "a@sender.test", simple_message);
    CHECK(outcome.kind == Kind::temporary);
    CHECK(contains(outcome.detail, "greeting: protocol error"));
  }
}

TEST_CASE("a server that falls silent is a timeout") {
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ScriptedServer server(io);
  server.start([](ScriptedPeer& p) -> asio::awaitable<void> {
    co_await p.send("220 mx.example.test ESMTP\r\n");
    co_await p.line();  // EHLO, never answered
    co_await p.line();  // until the client gives up
  });
  ClientOptions opts = test_options();
  opts.command_timeout = std::chrono::seconds{1};
  auto start = std::chrono::steady_clock::now();
  auto outcome = run_client(io, server.endpoint(), opts, ctx, "", "a@sender.test", simple_message);
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(outcome.kind == Kind::temporary);
  CHECK(contains(outcome.detail, "EHLO: timeout"));
  CHECK(took >= std::chrono::milliseconds{900});
  CHECK(took < std::chrono::seconds{3});
}

TEST_CASE("commands injected after 220 to STARTTLS are refused before the handshake") {
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ScriptedServer server(io);
  server.start([](ScriptedPeer& p) -> asio::awaitable<void> {
    co_await p.send("220 mx.example.test ESMTP\r\n");
    co_await p.line();
    co_await p.send("250-mx.example.test\r\n250 STARTTLS\r\n");
    co_await p.line();
    co_await p.send("220 2.0.0 ready\r\n250 2.0.0 injected\r\n");
    co_await p.line();
  });
  auto outcome =
      run_client(io, server.endpoint(), test_options(), ctx, "", "a@sender.test", simple_message);
  CHECK(outcome.kind == Kind::temporary);
  CHECK(contains(outcome.detail, "STARTTLS: protocol error"));
  REQUIRE(server.peer);
  CHECK(server.peer->received == std::vector<std::string>{"EHLO client.example.test", "STARTTLS"});
}

TEST_CASE("SIZE is declared, and a message over the limit is refused before MAIL") {
  for (bool too_big : {false, true}) {
    CAPTURE(too_big);
    asio::io_context io;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ScriptedServer server(io);
    std::string ehlo = too_big ? "250-mx.example.test\r\n250 SIZE 10\r\n"
                               : "250-mx.example.test\r\n250 SIZE 100000\r\n";
    server.start([ehlo](ScriptedPeer& p) -> asio::awaitable<void> {
      co_await p.send("220 mx.example.test ESMTP\r\n");
      co_await answer_commands(p, ehlo);
    });
    auto outcome = run_client(io, server.endpoint(), test_options(), ctx, "", "a@sender.test",
                              "Subject: x\n\nbody\n");
    REQUIRE(server.peer);
    if (too_big) {
      CHECK(outcome.kind == Kind::permanent);
      CHECK_FALSE(sent(*server.peer, "MAIL"));
      CHECK(sent(*server.peer, "QUIT"));
    } else {
      CHECK(outcome.kind == Kind::ok);
      // "Subject: x\r\n\r\nbody\r\n" is 20 octets with CRLF line ends.
      CHECK(sent(*server.peer, "MAIL FROM:<> SIZE=20"));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// STARTTLS and AUTH against a scripted TLS server with a certificate made for the test.

namespace {

struct TestCertificate {
  TempDir dir;
  fs::path key = dir.path / "key.pem";
  fs::path cert = dir.path / "cert.pem";
  bool ok = false;

  TestCertificate() {
    auto openssl = find_tool("openssl");
    if (!openssl) return;
    pid_t pid =
        spawn({*openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
               "/CN=mx.example.test", "-addext", "subjectAltName=DNS:mx.example.test", "-keyout",
               key.string(), "-out", cert.string()});
    int status = 0;
    ok = pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
  }
};

// Offers STARTTLS, then AUTH PLAIN only inside TLS, and takes the message.
asio::awaitable<void> tls_server_script(ScriptedPeer& p, asio::ssl::context& server_ctx,
                                        std::string& message_out) {
  co_await p.send("220 mx.example.test ESMTP\r\n");
  std::optional<std::string> ehlo = co_await p.line();
  if (!ehlo) co_return;
  co_await p.send("250-mx.example.test\r\n250-SIZE 100000\r\n250 STARTTLS\r\n");
  std::optional<std::string> starttls = co_await p.line();
  if (!starttls) co_return;
  co_await p.send("220 2.0.0 ready\r\n");
  p.tls.emplace(std::move(p.socket), server_ctx);
  boost::system::error_code ec;
  co_await p.tls->async_handshake(asio::ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  p.received.push_back("(TLS)");
  while (auto l = co_await p.line()) {
    if (l->rfind("EHLO", 0) == 0) {
      co_await p.send("250-mx.example.test\r\n250-AUTH LOGIN PLAIN\r\n250 8BITMIME\r\n");
    } else if (l->rfind("AUTH PLAIN ", 0) == 0) {
      bool good = l->substr(11) == "AHVzZXIAc2VjcmV0";  // "\0user\0secret"
      co_await p.send(good ? "235 2.7.0 authenticated\r\n" : "535 5.7.8 bad credentials\r\n");
    } else if (*l == "DATA") {
      co_await p.send("354 go ahead\r\n");
      while (auto body = co_await p.line()) {
        if (*body == ".") break;
        message_out += *body + "\n";
      }
      co_await p.send("250 2.0.0 queued\r\n");
    } else if (*l == "QUIT") {
      co_await p.send("221 2.0.0 bye\r\n");
      co_return;
    } else {
      co_await p.send("250 2.0.0 ok\r\n");
    }
  }
}

void use_test_certificate(asio::ssl::context& ctx, const TestCertificate& cert) {
  ctx.use_certificate_chain_file(cert.cert.string());
  ctx.use_private_key_file(cert.key.string(), asio::ssl::context::pem);
}

bool run_tool(const std::vector<std::string>& args) {
  pid_t pid = spawn(args);
  int status = 0;
  return pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
}

// A test CA and a certificate it signed for `name` (EC keys: quick to make).
struct TestPki {
  TempDir dir;
  fs::path ca_key = dir.path / "ca.key", ca = dir.path / "ca.pem";
  fs::path key = dir.path / "leaf.key", csr = dir.path / "leaf.csr", cert = dir.path / "leaf.pem";
  bool ok = false;

  explicit TestPki(const std::string& name) {
    auto openssl = find_tool("openssl");
    if (!openssl) return;
    const fs::path ext = dir.path / "leaf.ext";
    std::ofstream(ext) << "subjectAltName=DNS:" << name
                       << "\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
    ok = run_tool({*openssl,
                   "req",
                   "-x509",
                   "-newkey",
                   "ec",
                   "-pkeyopt",
                   "ec_paramgen_curve:prime256v1",
                   "-nodes",
                   "-days",
                   "1",
                   "-subj",
                   "/CN=test CA",
                   "-keyout",
                   ca_key.string(),
                   "-out",
                   ca.string(),
                   "-addext",
                   "basicConstraints=critical,CA:TRUE",
                   "-addext",
                   "keyUsage=critical,keyCertSign,cRLSign"}) &&
         run_tool({*openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                   "-nodes", "-subj", "/CN=" + name, "-keyout", key.string(), "-out",
                   csr.string()}) &&
         run_tool({*openssl, "x509", "-req", "-in", csr.string(), "-CA", ca.string(), "-CAkey",
                   ca_key.string(), "-CAcreateserial", "-days", "1", "-out", cert.string(),
                   "-extfile", ext.string()});
  }
};

// SHA-256 of the certificate in `pem` (DER), or of its public key (SubjectPublicKeyInfo).
std::array<std::uint8_t, 32> fingerprint(const fs::path& pem, bool public_key) {
  std::array<std::uint8_t, 32> out{};
  FILE* f = std::fopen(pem.c_str(), "r");
  REQUIRE(f != nullptr);
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  REQUIRE(cert != nullptr);
  unsigned length = 0;
  if (public_key) {
    unsigned char* der = nullptr;
    const int size = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    EVP_Digest(der, static_cast<std::size_t>(size), out.data(), &length, EVP_sha256(), nullptr);
    OPENSSL_free(der);
  } else {
    X509_digest(cert, EVP_sha256(), out.data(), &length);
  }
  X509_free(cert);
  return out;
}

// A scripted server that offers STARTTLS and AUTH (tls_server_script) with a fresh test
// certificate, and the client's side of it. ok() is false, and says why, when openssl could
// not make the certificate: the TLS cases are then not run.
struct TlsAuthServer {
  TestCertificate cert;
  asio::ssl::context server_ctx{asio::ssl::context::tls_server};
  asio::io_context io;
  asio::ssl::context client_ctx{asio::ssl::context::tls_client};
  ScriptedServer server{io};
  std::string received_message;

  TlsAuthServer() {
    if (!cert.ok) return;
    use_test_certificate(server_ctx, cert);
    client_ctx.load_verify_file(cert.cert.string());  // so that the session is verified
    server.start([this](ScriptedPeer& p) -> asio::awaitable<void> {
      co_await tls_server_script(p, server_ctx, received_message);
    });
  }
  bool ok() const {
    if (!cert.ok) MESSAGE("openssl could not make a test certificate; TLS cases not run");
    return cert.ok;
  }
  // TLS required, the certificate verified for its name; AUTH as "user" with `password`.
  static ClientOptions options(const std::string& password) {
    ClientOptions opts = test_options();
    opts.tls = ClientOptions::Tls::required;
    opts.tls_server_name = "mx.example.test";
    opts.auth = std::make_pair(std::string("user"), password);
    return opts;
  }
};

}  // namespace

TEST_CASE("STARTTLS, EHLO again, AUTH PLAIN inside TLS, and peer verification") {
  TestCertificate cert;  // self-signed for mx.example.test
  TestPki pki("mx.example.test");
  if (!cert.ok || !pki.ok) {
    MESSAGE("openssl could not make the test certificates; TLS cases not run");
    return;
  }
  using State = TlsSummary::State;
  struct Case {
    const char* name;
    bool ca_signed;         // the server shows the leaf of the test CA, else the self-signed one
    const fs::path* trust;  // the client's CA file, or none
    std::string server_name;
    std::optional<std::array<std::uint8_t, 32>> pin;
    bool verify_peer;
    State state;  // what the client makes of the session
    const char* ca;
    const char* reason;  // a part of it
  };
  const auto cert_pin = fingerprint(cert.cert, false);
  const auto key_pin = fingerprint(cert.cert, true);
  auto wrong_pin = cert_pin;
  wrong_pin[0] ^= 1;
  const Case cases[] = {
      {"a self-signed certificate nobody trusts",
       false,
       nullptr,
       "mx.example.test",
       {},
       false,
       State::unverified,
       "",
       "self-signed certificate"},
      {"the same with TLS verification required",
       false,
       nullptr,
       "mx.example.test",
       {},
       true,
       State::unverified,
       "",
       "self-signed certificate"},
      {"trusted, for the right name",
       false,
       &cert.cert,
       "mx.example.test",
       {},
       false,
       State::verified,
       "file",
       ""},
      {"trusted, for another name",
       false,
       &cert.cert,
       "other.example.test",
       {},
       false,
       State::unverified,
       "",
       "hostname mismatch"},
      {"signed by the trusted CA for the right name",
       true,
       &pki.ca,
       "mx.example.test",
       {},
       true,
       State::verified,
       "file",
       ""},
      {"signed by the trusted CA for another name",
       true,
       &pki.ca,
       "other.example.test",
       {},
       false,
       State::unverified,
       "",
       "hostname mismatch"},
      {"no name to check",
       false,
       &cert.cert,
       "",
       {},
       false,
       State::unverified,
       "",
       "no name to check"},
      {"the certificate's pin", false, nullptr, "", cert_pin, true, State::verified, "pin", ""},
      {"the public key's pin", false, nullptr, "any.example.test", key_pin, false, State::verified,
       "pin", ""},
      {"a wrong pin, even with a trusted chain", false, &cert.cert, "mx.example.test", wrong_pin,
       false, State::unverified, "", "pinned SHA-256"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    asio::io_context io;
    asio::ssl::context server_ctx(asio::ssl::context::tls_server);
    if (c.ca_signed) {
      server_ctx.use_certificate_chain_file(pki.cert.string());
      server_ctx.use_private_key_file(pki.key.string(), asio::ssl::context::pem);
    } else {
      use_test_certificate(server_ctx, cert);
    }
    asio::ssl::context client_ctx(asio::ssl::context::tls_client);
    if (c.trust) client_ctx.load_verify_file(c.trust->string());
    ScriptedServer server(io);
    std::string received_message;
    server.start([&](ScriptedPeer& p) -> asio::awaitable<void> {
      co_await tls_server_script(p, server_ctx, received_message);
    });
    ClientOptions opts = test_options();
    opts.tls = ClientOptions::Tls::required;
    opts.verify_peer = c.verify_peer;
    opts.tls_server_name = c.server_name;
    opts.tls_pin = c.pin;
    opts.tls_trust = "file";
    opts.auth = std::make_pair(std::string("user"), std::string("secret"));
    auto outcome = run_client(io, server.endpoint(), opts, client_ctx, "bounce@example.test",
                              "a@sender.test", "Subject: x\n\n.dot\n");
    CHECK(outcome.tls.state == c.state);
    CHECK(outcome.tls.ca == c.ca);
    CHECK_MESSAGE(contains(outcome.tls.reason, c.reason), outcome.tls.reason);
    REQUIRE(server.peer);
    const auto& got = server.peer->received;
    if (c.state == State::verified) {
      CHECK(outcome.kind == Kind::ok);
      CHECK(outcome.tls.name == (c.pin ? "" : c.server_name));
      REQUIRE(got.size() >= 7);
      CHECK(got[0] == "EHLO client.example.test");
      CHECK(got[1] == "STARTTLS");
      CHECK(got[2] == "(TLS)");
      CHECK(got[3] == "EHLO client.example.test");
      CHECK(got[4] == "AUTH PLAIN AHVzZXIAc2VjcmV0");
      // After TLS the server no longer announces SIZE: no SIZE= on MAIL FROM.
      CHECK(got[5] == "MAIL FROM:<bounce@example.test>");
      CHECK(got[6] == "RCPT TO:<a@sender.test>");
      CHECK(received_message == "Subject: x\n\n..dot\n");  // as sent on the wire: stuffed
    } else {
      // The credentials never reach a server whose certificate was not verified; with
      // verify_peer nothing at all follows the handshake.
      CHECK(outcome.kind == Kind::temporary);
      CHECK_FALSE(sent(*server.peer, "AUTH"));
      CHECK_FALSE(sent(*server.peer, "MAIL"));
      if (c.verify_peer) {
        CHECK(contains(outcome.detail, "STARTTLS: the server's certificate is not verified"));
        CHECK(got.back() == "(TLS)");
      } else {
        CHECK(contains(outcome.detail, "AUTH: not sending credentials"));
      }
    }
  }
}

TEST_CASE("without credentials an unverified session still carries the message, and says so") {
  TestCertificate cert;
  if (!cert.ok) return;
  asio::io_context io;
  asio::ssl::context server_ctx(asio::ssl::context::tls_server);
  use_test_certificate(server_ctx, cert);
  asio::ssl::context client_ctx(asio::ssl::context::tls_client);
  ScriptedServer server(io);
  std::string received_message;
  server.start([&](ScriptedPeer& p) -> asio::awaitable<void> {
    co_await tls_server_script(p, server_ctx, received_message);
  });
  ClientOptions opts = test_options();
  opts.tls_server_name = "mx.example.test";
  auto outcome = run_client(io, server.endpoint(), opts, client_ctx, "", "a@sender.test",
                            "Subject: x\n\nbody\n");
  CHECK(outcome.kind == Kind::ok);
  CHECK(outcome.tls.state == TlsSummary::State::unverified);
  CHECK(contains(outcome.tls.reason, "self-signed"));
  CHECK(received_message == "Subject: x\n\nbody\n");
}

TEST_CASE("a refused AUTH is a temporary failure, and no mail is sent") {
  TlsAuthServer t;
  if (!t.ok()) return;
  auto outcome = run_client(t.io, t.server.endpoint(), t.options("wrong"), t.client_ctx, "",
                            "a@sender.test", "Subject: x\n\nbody\n");
  // 535 is a 5xx, but it says our credentials are wrong: the reply must wait, not be dropped.
  CHECK(outcome.kind == Kind::temporary);
  CHECK(contains(outcome.detail, "535"));
  REQUIRE(t.server.peer);
  CHECK_FALSE(sent(*t.server.peer, "MAIL"));
  CHECK(t.received_message.empty());
}

// ---------------------------------------------------------------------------------------------
// ClientPool: kept-open sessions, and PIPELINING.

namespace {

// Runs the io_context until `done()` or the deadline; each step is bounded by the deadline.
template <typename Done>
void run_until(asio::io_context& io, Done done,
               std::chrono::steady_clock::duration timeout = std::chrono::seconds{20}) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    if (io.stopped()) io.restart();
    io.run_one_until(deadline);
  }
}

// Runs the io_context for `d` (the pool's idle timers keep it busy: run() would not return).
void run_for(asio::io_context& io, std::chrono::steady_clock::duration d) {
  if (io.stopped()) io.restart();
  io.run_for(d);
}

DeliveryOutcome pool_send(asio::io_context& io, ClientPool& pool, std::string message,
                          std::string recipient = "someone@sender.test") {
  std::optional<DeliveryOutcome> result;
  asio::co_spawn(io, pool.deliver("", std::move(recipient), std::move(message)),
                 [&](std::exception_ptr e, DeliveryOutcome o) {
                   if (!e) result = std::move(o);
                 });
  run_until(io, [&] { return result.has_value(); });
  REQUIRE(result.has_value());
  return *result;
}

std::string numbered_message(int n) {
  return "From: ipconfirm@example.test\r\nSubject: report " + std::to_string(n) +
         "\r\n\r\nhello\r\n";
}

// How many of `messages` contain `needle`.
std::size_t count_containing(const std::vector<std::string>& messages, const std::string& needle) {
  return static_cast<std::size_t>(std::count_if(
      messages.begin(), messages.end(), [&](const std::string& m) { return contains(m, needle); }));
}

// A scripted server for several connections: accepts until destroyed and runs `script` on each,
// with the connection's index (0 for the first).
struct MultiServer {
  using Script = std::function<asio::awaitable<void>(ScriptedPeer&, std::size_t)>;

  MultiServer(asio::io_context& io, Script each) : acceptor(io), script(std::move(each)) {
    bool bound = false;
    for (int attempt = 0; attempt < 20 && !bound; ++attempt) {
      boost::system::error_code ec;
      port = random_port();
      acceptor = tcp::acceptor(io);
      acceptor.open(tcp::v4(), ec);
      if (!ec) acceptor.bind(loopback(port), ec);
      if (!ec) acceptor.listen(8, ec);
      bound = !ec;
    }
    if (!bound) throw std::runtime_error("no free port for the scripted server");
    asio::co_spawn(
        io,
        [this]() -> asio::awaitable<void> {
          for (;;) {
            boost::system::error_code ec;
            tcp::socket s =
                co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return;
            std::size_t index = peers.size();
            peers.push_back(std::make_unique<ScriptedPeer>(std::move(s)));
            asio::co_spawn(acceptor.get_executor(), script(*peers.back(), index),
                           [this](std::exception_ptr e) { failed = failed || e; });
          }
        },
        asio::detached);
  }

  tcp::endpoint endpoint() const { return loopback(port); }

  tcp::acceptor acceptor;
  Script script;
  unsigned short port = 0;
  std::deque<std::unique_ptr<ScriptedPeer>> peers;
  bool failed = false;
};

const char* const ehlo_pipelining = "250-mx.example.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
const char* const ehlo_plain = "250-mx.example.test\r\n250 8BITMIME\r\n";

// Reads a message body up to the final dot, lines joined with "\n".
asio::awaitable<std::string> read_body(ScriptedPeer& p) {
  std::string body;
  for (;;) {
    std::optional<std::string> l = co_await p.line();
    if (!l || *l == ".") break;
    body += *l + "\n";
  }
  co_return body;
}

// A well-behaved server: greets, answers every command, keeps each message body in `bodies`,
// answers RSET with 250, and ends at QUIT; a connection the client closes without QUIT is
// recorded as "(closed)". If `stop_after` messages were taken, what the next command gets is
// `then` ("" = the connection closes without a reply).
asio::awaitable<void> serve(ScriptedPeer& p, std::string ehlo, std::vector<std::string>& bodies,
                            int stop_after = -1, std::string then = "") {
  co_await p.send("220 mx.example.test ESMTP\r\n");
  int taken = 0;
  for (;;) {
    std::optional<std::string> l = co_await p.line();
    if (!l) break;
    if (taken == stop_after) {
      if (!then.empty()) co_await p.send(then);
      p.socket.close();
      co_return;
    }
    if (l->rfind("EHLO", 0) == 0) {
      co_await p.send(ehlo);
    } else if (*l == "DATA") {
      co_await p.send("354 go ahead\r\n");
      std::string body = co_await read_body(p);
      bodies.push_back(body);
      ++taken;
      co_await p.send("250 2.0.0 queued\r\n");
    } else if (*l == "QUIT") {
      co_await p.send("221 2.0.0 bye\r\n");
      co_return;
    } else {
      co_await p.send("250 2.0.0 ok\r\n");
    }
  }
  p.received.emplace_back("(closed)");
}

}  // namespace

TEST_CASE("pool: sequential messages share one session with smtp-sink, concurrent ones one each") {
  Sink sink;
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  {
    ClientPool pool(io.get_executor(), sink.endpoint(), test_options(), ctx);
    for (int i = 0; i < 6; ++i) {
      auto outcome = pool_send(io, pool, numbered_message(i));
      CHECK(outcome.kind == Kind::ok);
    }
    CHECK(pool.sessions_opened() == 1);
    CHECK(pool.idle() == 1);
  }
  auto messages = sink.messages(6);
  REQUIRE(messages.size() == 6);
  for (int i = 0; i < 6; ++i) {
    CHECK(count_containing(messages, "Subject: report " + std::to_string(i) + "\n") == 1);
  }

  // Two rounds of 5 at once: at most 5 sessions in all.
  ClientPool pool(io.get_executor(), sink.endpoint(), test_options(), ctx);
  for (int round = 0; round < 2; ++round) {
    std::vector<std::optional<DeliveryOutcome>> results(5);
    for (std::size_t i = 0; i < results.size(); ++i) {
      asio::co_spawn(
          io, pool.deliver("", "someone@sender.test", numbered_message(100 + round * 10 + int(i))),
          [&results, i](std::exception_ptr e, DeliveryOutcome o) {
            if (!e) results[i] = std::move(o);
          });
    }
    run_until(io, [&] {
      return std::all_of(results.begin(), results.end(),
                         [](const auto& r) { return r.has_value(); });
    });
    for (const auto& r : results) {
      REQUIRE(r.has_value());
      CHECK(r->kind == Kind::ok);
    }
    CHECK(pool.sessions_opened() <= 5);
  }
  messages = sink.messages(16);
  CHECK(messages.size() == 16);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 5; ++i) {
      std::string subject = "Subject: report " + std::to_string(100 + round * 10 + i) + "\n";
      CHECK(count_containing(messages, subject) == 1);
    }
  }
}

TEST_CASE("pool: max_messages 3 makes 7 messages use 3 sessions") {
  Sink sink;
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ReuseLimits limits;
  limits.max_messages = 3;
  ClientPool pool(io.get_executor(), sink.endpoint(), test_options(), ctx, limits);
  for (int i = 0; i < 7; ++i) {
    auto outcome = pool_send(io, pool, numbered_message(i));
    CHECK(outcome.kind == Kind::ok);
  }
  CHECK(pool.sessions_opened() == 3);
  CHECK(pool.idle() == 1);  // the third session, with one message
  CHECK(sink.messages(7).size() == 7);
}

TEST_CASE("pool: a session the server dropped is not reused, and the message goes once") {
  struct Case {
    std::string name;
    const char* ehlo;
    std::string then;  // what the server does with the command after the first message
    bool wait;         // let the client see the close before the second delivery
  };
  const Case cases[] = {
      {"closed after the first 250, seen before reuse", ehlo_plain, "", true},
      {"421 to the next MAIL", ehlo_plain, "421 4.4.2 idle too long\r\n", false},
      {"421 to the next pipelined MAIL", ehlo_pipelining, "421 4.4.2 idle too long\r\n", false},
      {"closed at the next MAIL, no reply", ehlo_plain, "", false},
      {"closed at the next pipelined MAIL, no reply", ehlo_pipelining, "", false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    asio::io_context io;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    std::vector<std::string> bodies;
    MultiServer server(io, [&](ScriptedPeer& p, std::size_t index) -> asio::awaitable<void> {
      if (index == 0) {
        if (c.wait) {
          // Closes right after the 250 to the first message.
          co_await p.send("220 mx.example.test ESMTP\r\n");
          for (;;) {
            std::optional<std::string> l = co_await p.line();
            if (!l) break;
            if (l->rfind("EHLO", 0) == 0) {
              co_await p.send(c.ehlo);
            } else if (*l == "DATA") {
              co_await p.send("354 go ahead\r\n");
              std::string body = co_await read_body(p);
              bodies.push_back(body);
              co_await p.send("250 2.0.0 queued\r\n");
              p.socket.close();
              break;
            } else {
              co_await p.send("250 2.0.0 ok\r\n");
            }
          }
        } else {
          co_await serve(p, c.ehlo, bodies, 1, c.then);
        }
      } else {
        co_await serve(p, c.ehlo, bodies);
      }
    });
    ClientPool pool(io.get_executor(), server.endpoint(), test_options(), ctx);
    auto first = pool_send(io, pool, numbered_message(1));
    CHECK(first.kind == Kind::ok);
    CHECK(pool.idle() == 1);
    if (c.wait) run_for(io, std::chrono::milliseconds{200});
    auto second = pool_send(io, pool, numbered_message(2));
    CHECK(second.kind == Kind::ok);
    CHECK(pool.sessions_opened() == 2);
    CHECK(server.peers.size() == 2);
    CHECK(count_containing(bodies, "Subject: report 1\n") == 1);
    CHECK(count_containing(bodies, "Subject: report 2\n") == 1);
    CHECK(bodies.size() == 2);
    CHECK_FALSE(server.failed);
  }
}

TEST_CASE("pool: an idle session is QUIT after idle_timeout") {
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  std::vector<std::string> bodies;
  MultiServer server(io, [&](ScriptedPeer& p, std::size_t) -> asio::awaitable<void> {
    co_await serve(p, ehlo_pipelining, bodies);
  });
  ReuseLimits limits;
  limits.idle_timeout = std::chrono::seconds{1};
  ClientPool pool(io.get_executor(), server.endpoint(), test_options(), ctx, limits);
  auto outcome = pool_send(io, pool, simple_message);
  CHECK(outcome.kind == Kind::ok);
  CHECK(pool.idle() == 1);
  run_for(io, std::chrono::milliseconds{1500});
  CHECK(pool.idle() == 0);
  REQUIRE(server.peers.size() == 1);
  CHECK(server.peers[0]->received.back() == "QUIT");
  CHECK(bodies.size() == 1);
}

TEST_CASE("pool: close_idle QUITs, and a pool destroyed with idle or busy sessions closes them") {
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  std::vector<std::string> bodies;
  MultiServer server(io, [&](ScriptedPeer& p, std::size_t) -> asio::awaitable<void> {
    co_await serve(p, ehlo_pipelining, bodies);
  });
  ReuseLimits limits;
  limits.idle_timeout = std::chrono::seconds{1};

  {
    ClientPool pool(io.get_executor(), server.endpoint(), test_options(), ctx, limits);
    CHECK(pool_send(io, pool, numbered_message(1)).kind == Kind::ok);
    pool.close_idle();
    CHECK(pool.idle() == 0);
    run_until(
        io, [&] { return !server.peers.empty() && server.peers[0]->received.back() == "QUIT"; },
        std::chrono::seconds{5});
    REQUIRE(server.peers.size() == 1);
    CHECK(server.peers[0]->received.back() == "QUIT");
  }
  {
    // Destroyed while idle: the idle timer must not touch the dead pool.
    ClientPool pool(io.get_executor(), server.endpoint(), test_options(), ctx, limits);
    CHECK(pool_send(io, pool, numbered_message(2)).kind == Kind::ok);
    CHECK(pool.idle() == 1);
  }
  run_for(io, std::chrono::milliseconds{1500});
  REQUIRE(server.peers.size() == 2);
  CHECK(server.peers[1]->received.back() == "(closed)");

  // Destroyed while a delivery runs: it finishes, and its session is closed, not kept.
  std::optional<DeliveryOutcome> result;
  {
    ClientPool pool(io.get_executor(), server.endpoint(), test_options(), ctx, limits);
    asio::co_spawn(io, pool.deliver("", "someone@sender.test", numbered_message(3)),
                   [&](std::exception_ptr e, DeliveryOutcome o) {
                     if (!e) result = std::move(o);
                   });
    run_until(
        io, [&] { return server.peers.size() == 3 && !server.peers[2]->received.empty(); },
        std::chrono::seconds{5});
  }
  run_until(io, [&] {
    return result.has_value() && server.peers.size() == 3 &&
           server.peers[2]->received.back() == "(closed)";
  });
  REQUIRE(result.has_value());
  CHECK(result->kind == Kind::ok);
  REQUIRE(server.peers.size() == 3);
  CHECK(server.peers[2]->received.back() == "(closed)");
  CHECK(bodies.size() == 3);
}

TEST_CASE("pool: after a refused RCPT the session is RSET and reused, unless RSET fails") {
  for (bool pipelining : {false, true}) {
    for (bool rset_ok : {true, false}) {
      CAPTURE(pipelining);
      CAPTURE(rset_ok);
      asio::io_context io;
      asio::ssl::context ctx(asio::ssl::context::tls_client);
      std::vector<std::string> bodies;
      std::string ehlo = pipelining ? ehlo_pipelining : ehlo_plain;
      MultiServer server(io, [&](ScriptedPeer& p, std::size_t) -> asio::awaitable<void> {
        co_await p.send("220 mx.example.test ESMTP\r\n");
        for (;;) {
          std::optional<std::string> l = co_await p.line();
          if (!l) break;
          if (l->rfind("EHLO", 0) == 0) {
            co_await p.send(ehlo);
          } else if (*l == "RCPT TO:<refused@sender.test>") {
            co_await p.send("550 5.1.1 no such user\r\n");
          } else if (*l == "DATA") {
            // Without a valid recipient there is no transaction (pipelined DATA after a refused
            // RCPT) and nothing to read.
            if (sent(p, "RCPT TO:<refused@sender.test>") && !sent(p, "RSET")) {
              co_await p.send("554 5.5.1 no valid recipients\r\n");
              continue;
            }
            co_await p.send("354 go ahead\r\n");
            std::string body = co_await read_body(p);
            bodies.push_back(body);
            co_await p.send("250 2.0.0 queued\r\n");
          } else if (*l == "RSET") {
            co_await p.send(rset_ok ? "250 2.0.0 reset\r\n" : "502 5.5.1 no RSET here\r\n");
          } else if (*l == "QUIT") {
            co_await p.send("221 2.0.0 bye\r\n");
            co_return;
          } else {
            co_await p.send("250 2.0.0 ok\r\n");
          }
        }
      });
      ClientPool pool(io.get_executor(), server.endpoint(), test_options(), ctx);
      auto refused = pool_send(io, pool, numbered_message(1), "refused@sender.test");
      CHECK(refused.kind == Kind::permanent);
      CHECK(contains(refused.detail, "RCPT TO: 550"));
      auto accepted = pool_send(io, pool, numbered_message(2));
      CHECK(accepted.kind == Kind::ok);
      CHECK(pool.sessions_opened() == (rset_ok ? 1u : 2u));
      REQUIRE(!server.peers.empty());
      CHECK(sent(*server.peers[0], "RSET"));
      if (!rset_ok) {
        run_until(
            io, [&] { return server.peers[0]->received.back() == "QUIT"; },
            std::chrono::seconds{5});
        CHECK(server.peers[0]->received.back() == "QUIT");
      }
      REQUIRE(bodies.size() == 1);
      CHECK(contains(bodies[0], "Subject: report 2\n"));
    }
  }
}

TEST_CASE("PIPELINING: MAIL, RCPT and DATA arrive together, one at a time without it") {
  for (bool pipelining : {true, false}) {
    CAPTURE(pipelining);
    asio::io_context io;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    std::vector<std::string> bodies;
    // What was already in the server's buffer when it read each MAIL line.
    std::vector<std::string> after_mail;
    std::string ehlo = pipelining ? ehlo_pipelining : ehlo_plain;
    MultiServer server(io, [&](ScriptedPeer& p, std::size_t) -> asio::awaitable<void> {
      co_await p.send("220 mx.example.test ESMTP\r\n");
      for (;;) {
        std::optional<std::string> l = co_await p.line();
        if (!l) break;
        if (l->rfind("EHLO", 0) == 0) {
          co_await p.send(ehlo);
          continue;
        }
        if (l->rfind("MAIL FROM", 0) == 0) after_mail.push_back(p.buffer);
        if (*l == "DATA") {
          co_await p.send("354 go ahead\r\n");
          std::string body = co_await read_body(p);
          bodies.push_back(body);
          co_await p.send("250 2.0.0 queued\r\n");
        } else if (*l == "QUIT") {
          co_await p.send("221 2.0.0 bye\r\n");
          co_return;
        } else {
          co_await p.send("250 2.0.0 ok\r\n");
        }
      }
    });
    ClientPool pool(io.get_executor(), server.endpoint(), test_options(), ctx);
    CHECK(pool_send(io, pool, numbered_message(1)).kind == Kind::ok);
    CHECK(pool_send(io, pool, numbered_message(2)).kind == Kind::ok);
    CHECK(pool.sessions_opened() == 1);
    CHECK(bodies.size() == 2);
    REQUIRE(after_mail.size() == 2);
    for (const auto& rest : after_mail) {
      if (pipelining) {
        CHECK(rest == "RCPT TO:<someone@sender.test>\r\nDATA\r\n");
      } else {
        CHECK(rest.empty());
      }
    }
  }
}

TEST_CASE("PIPELINING: the outcome is decided from all three replies") {
  struct Case {
    std::string name;
    const char* replies;  // to MAIL, RCPT, DATA, sent in one write
    Kind expected;
    const char* detail;
    bool dot_expected;  // the client must end the broken DATA with a lone "."
  };
  const Case cases[] = {
      {"RCPT 550, DATA 554", "250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no recipients\r\n",
       Kind::permanent, "RCPT TO: 550", false},
      {"MAIL 451, RCPT 503, DATA 503",
       "451 4.3.0 try later\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need RCPT\r\n", Kind::temporary,
       "MAIL FROM: 451", false},
      {"RCPT 550 but DATA 354", "250 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n",
       Kind::permanent, "RCPT TO: 550", true},
      {"RCPT 450 but DATA 354", "250 ok\r\n450 4.2.0 greylisted\r\n354 go ahead\r\n",
       Kind::temporary, "RCPT TO: 450", true},
      {"DATA 451", "250 ok\r\n250 ok\r\n451 4.3.0 not now\r\n", Kind::temporary, "DATA: 451",
       false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    asio::io_context io;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    std::vector<std::string> after_data;  // the lines the client sent after DATA, up to QUIT
    MultiServer server(io, [&](ScriptedPeer& p, std::size_t) -> asio::awaitable<void> {
      co_await p.send("220 mx.example.test ESMTP\r\n");
      std::optional<std::string> l = co_await p.line();  // EHLO
      co_await p.send(ehlo_pipelining);
      for (int i = 0; i < 3; ++i) l = co_await p.line();  // MAIL, RCPT, DATA
      if (!l || *l != "DATA") co_return;
      co_await p.send(c.replies);
      for (;;) {
        l = co_await p.line();
        if (!l) break;
        after_data.push_back(*l);
        if (*l == ".") {
          co_await p.send("250 2.0.0 queued anyway\r\n");
        } else if (*l == "RSET") {
          co_await p.send("250 2.0.0 reset\r\n");
        } else if (*l == "QUIT") {
          co_await p.send("221 2.0.0 bye\r\n");
          break;
        }
      }
    });
    ClientPool pool(io.get_executor(), server.endpoint(), test_options(), ctx);
    auto outcome = pool_send(io, pool, simple_message);
    CHECK(outcome.kind == c.expected);
    CHECK(contains(outcome.detail, c.detail));
    if (c.dot_expected) {
      // "." alone and no content; the session is not trusted again: QUIT.
      run_until(
          io, [&] { return !after_data.empty() && after_data.back() == "QUIT"; },
          std::chrono::seconds{5});
      CHECK(after_data == std::vector<std::string>{".", "QUIT"});
      CHECK(pool.idle() == 0);
    } else {
      CHECK(after_data == std::vector<std::string>{"RSET"});
      CHECK(pool.idle() == 1);
    }
  }
}

TEST_CASE("PIPELINING: a fourth reply to three commands is response injection") {
  for (bool pooled : {true, false}) {
    CAPTURE(pooled);
    asio::io_context io;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    std::vector<std::string> bodies;
    MultiServer server(io, [&](ScriptedPeer& p, std::size_t) -> asio::awaitable<void> {
      co_await p.send("220 mx.example.test ESMTP\r\n");
      std::optional<std::string> l = co_await p.line();  // EHLO
      co_await p.send(ehlo_pipelining);
      for (int i = 0; i < 3; ++i) l = co_await p.line();  // MAIL, RCPT, DATA
      if (!l || *l != "DATA") co_return;
      co_await p.send("250 ok\r\n250 ok\r\n354 go ahead\r\n250 2.0.0 injected\r\n");
      co_await serve(p, ehlo_pipelining, bodies);
    });
    DeliveryOutcome outcome;
    if (pooled) {
      ClientPool pool(io.get_executor(), server.endpoint(), test_options(), ctx);
      outcome = pool_send(io, pool, simple_message);
      CHECK(pool.idle() == 0);
    } else {
      // The free function, run until done (the server's accept loop keeps the io_context busy).
      std::optional<DeliveryOutcome> result;
      ClientOptions opts = test_options();
      asio::co_spawn(io,
                     deliver(io.get_executor(), server.endpoint(), opts, ctx, "", "a@sender.test",
                             simple_message),
                     [&](std::exception_ptr e, DeliveryOutcome o) {
                       if (!e) result = std::move(o);
                     });
      run_until(io, [&] { return result.has_value(); });
      REQUIRE(result.has_value());
      outcome = *result;
    }
    CHECK(outcome.kind == Kind::temporary);
    CHECK(contains(outcome.detail, "DATA: protocol error"));
    CHECK(contains(outcome.detail, "injection"));
    run_until(
        io,
        [&] {
          return !server.peers.empty() && !server.peers[0]->received.empty() &&
                 server.peers[0]->received.back() == "(closed)";
        },
        std::chrono::seconds{5});
    REQUIRE(server.peers.size() == 1);
    // The message was not sent, and the session ended without QUIT.
    CHECK(bodies.empty());
    CHECK(server.peers[0]->received.back() == "(closed)");
    CHECK_FALSE(sent(*server.peers[0], "QUIT"));
  }
}

TEST_CASE("pool: a TLS session with AUTH carries several messages") {
  TlsAuthServer t;
  if (!t.ok()) return;
  ClientPool pool(t.io.get_executor(), t.server.endpoint(), t.options("secret"), t.client_ctx);
  for (int i = 0; i < 3; ++i) {
    auto outcome = pool_send(t.io, pool, numbered_message(i));
    CHECK(outcome.kind == Kind::ok);
  }
  CHECK(pool.sessions_opened() == 1);
  REQUIRE(t.server.peer);
  const auto& got = t.server.peer->received;
  CHECK(std::count(got.begin(), got.end(), "STARTTLS") == 1);
  CHECK(std::count(got.begin(), got.end(), "AUTH PLAIN AHVzZXIAc2VjcmV0") == 1);
  for (int i = 0; i < 3; ++i) {
    CHECK(contains(t.received_message, "Subject: report " + std::to_string(i) + "\n"));
  }
}

int main(int argc, char** argv) {
  auto sink = find_tool("smtp-sink");
  if (!sink) {
    std::fprintf(stderr, "smtp-sink not found: skipped\n");
    return 77;
  }
  smtp_sink_path = *sink;
  ::signal(SIGPIPE, SIG_IGN);
  doctest::Context context(argc, argv);
  return context.run();
}

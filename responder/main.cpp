// ipconfirm's command line: only wiring. `serve` runs the service, `check` runs the analysis on
// a stored message as if it had just arrived, `queue` shows and manages waiting replies.
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "config/config.hpp"
#include "core/embedded_files.hpp"
#include "core/log.hpp"
#include "mime/incoming.hpp"
#include "responder/analysis/lookups.hpp"
#include "responder/analysis/report.hpp"
#include "responder/dns/dns_resolver.hpp"
#include "responder/queue/spool.hpp"
#include "responder/reply/render.hpp"
#include "responder/service.hpp"

using namespace ipconfirm;

namespace {

config::LoadResult load_result(const std::string& path) {
  return path.empty() ? config::parse_config(embedded_files().at("ipconfirm.toml"),
                                             "built-in default config")
                      : config::load_config(path);
}

std::optional<config::Config> load(const std::string& path) {
  config::LoadResult r = load_result(path);
  if (!r.config) std::fprintf(stderr, "ipconfirm: %s\n", r.error.c_str());
  return r.config;
}

int serve(const std::string& config_path) {
  auto cfg = load(config_path);
  if (!cfg) return 2;
  asio::io_context io(1);
  // Caught from here on (a SIGHUP during the start waits until the service runs).
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::signal_set hangup(io, SIGHUP);
  responder::Service service(io, *cfg);
  try {
    service.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ipconfirm: %s\n", e.what());
    return 1;
  }
  // SIGHUP: read the config file again and switch to it (responder::Service::reload).
  std::function<void()> wait_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      log_event("reloading",
                {{"signal", "HUP"},
                 {"config", config_path.empty() ? std::string_view("built-in") : config_path}});
      // systemd (Type=notify) hears RELOADING=1 just before this reload and READY=1 after it.
      service.reload(load_result(config_path));
      wait_hangup();
    });
  };
  wait_hangup();
  asio::steady_timer grace(io);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log_event("stopping", {{"signal", sig == SIGTERM ? "TERM" : "INT"}});
    hangup.cancel();
    service.stop();
    // Every reply we said 250 for is already on disk; give the 421s a moment to leave.
    grace.expires_after(std::chrono::milliseconds(300));
    grace.async_wait([&](const boost::system::error_code&) { io.stop(); });
  });
  io.run();
  log_event("stopped", {});
  return 0;
}

std::string read_file(const std::string& path, bool& ok) {
  std::ifstream in(path, std::ios::binary);
  ok = static_cast<bool>(in);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Stored messages often have LF line endings; the analysis reads CRLF, as on the wire.
std::string to_crlf(const std::string& in) {
  std::string out;
  out.reserve(in.size() + in.size() / 40);
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) out += '\r';
    out += in[i];
  }
  return out;
}

struct CheckArgs {
  std::string config, peer, helo, mail_from, format = "json", message, templates;
  std::int64_t now = 0;
  std::uint16_t port = 0;
};

int check(const CheckArgs& a) {
  auto cfg = load(a.config);
  if (!cfg) return 2;
  auto ip = IpAddress::parse(a.peer);
  if (!ip) {
    std::fprintf(stderr, "ipconfirm: --peer '%s' is not an IP address\n", a.peer.c_str());
    return 2;
  }
  bool ok = false;
  std::string message = read_file(a.message, ok);
  if (!ok) {
    std::fprintf(stderr, "ipconfirm: cannot read %s\n", a.message.c_str());
    return 2;
  }
  responder::Observation obs;
  obs.ip = *ip;
  obs.port = a.port;
  obs.arrival = a.now ? a.now : static_cast<std::int64_t>(std::time(nullptr));
  obs.helo = a.helo;
  obs.esmtp = true;
  obs.mail_from = a.mail_from;
  obs.rcpt_to = {"ipconfirm@" + cfg->domains.front()};
  obs.reply_domain = cfg->domains.front();
  obs.message = mime::read_incoming(to_crlf(message));

  asio::io_context io(1);
  responder::DnsResolver::Options dns;
  dns.servers = cfg->dns.servers;
  dns.timeout = cfg->dns.timeout;
  dns.tries = cfg->dns.tries;
  try {
    responder::DnsResolver resolver(io.get_executor(), dns);
    auto lookups = std::make_shared<responder::Lookups>(io.get_executor(), resolver);
    lookups->start_ip(obs.ip, cfg->dns.dnsbl);
    if (!obs.helo.empty()) lookups->start_helo(obs.helo);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await lookups->wait(std::chrono::steady_clock::now() + cfg->dns.report_deadline);
          lookups->fill(obs);
          resolver.cancel_all();
        },
        asio::detached);
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ipconfirm: %s\n", e.what());
    return 1;
  }
  responder::Report report = responder::build_report(obs, {cfg->hostname});
  if (a.format == "json") {
    std::cout << report.json.dump(2) << "\n";
    return 0;
  }
  std::string error;
  auto templates = responder::load_templates(cfg->reply.templates, error);
  if (!templates) {
    std::fprintf(stderr, "ipconfirm: %s\n", error.c_str());
    return 2;
  }
  auto rendered = responder::render_report(*templates, report.json);
  if (a.format == "html")
    std::cout << rendered.html;
  else
    std::cout << "Subject: " << rendered.subject << "\n\n" << rendered.text;
  return 0;
}

void print_entries(const std::vector<responder::QueueEntry>& entries) {
  for (const auto& e : entries) {
    std::printf("%s  to=<%s>  attempts=%d  next=%lld  %s%s%s\n", e.id.c_str(), e.recipient.c_str(),
                e.attempts, static_cast<long long>(e.next_attempt), e.origin.c_str(),
                e.last_error.empty() ? "" : "  last_error=", e.last_error.c_str());
  }
  std::printf("%zu repl%s queued\n", entries.size(), entries.size() == 1 ? "y" : "ies");
}

// A server owns the spool: `list` reads the files without the lock (each one is complete,
// renamed into place), `flush` and `delete` leave a request in control/ that the server
// applies within about a second, and we wait (bounded) until it has.
int queue_of_running_server(const std::string& dir, const std::string& verb,
                            const std::string& id) {
  if (verb == "list") {
    print_entries(responder::Spool::peek(dir));
    return 0;
  }
  if (verb == "delete") {
    bool found = false;
    for (const auto& e : responder::Spool::peek(dir)) found = found || e.id == id;
    if (!responder::is_valid_spool_id(id) || !found) {
      std::fprintf(stderr, "ipconfirm: %s: not found\n", id.c_str());
      return 1;
    }
  }
  std::string error;
  auto req =
      responder::Spool::request(dir, verb == "flush" ? "flush\n" : "delete " + id + "\n", error);
  if (!req) {
    std::fprintf(stderr, "ipconfirm: queue %s: %s\n", dir.c_str(), error.c_str());
    return 1;
  }
  std::error_code ec;
  for (int i = 0; i < 200 && std::filesystem::exists(*req, ec); ++i) ::usleep(50000);
  if (std::filesystem::exists(*req, ec)) {
    std::fprintf(stderr,
                 "ipconfirm: the running server has not taken the request within 10 s; it "
                 "stays in %s\n",
                 req->c_str());
    return 1;
  }
  if (verb == "flush") {
    std::printf("flush requested from the running server\n");
    return 0;
  }
  for (int i = 0; i < 100; ++i) {
    bool still = false;
    for (const auto& e : responder::Spool::peek(dir)) still = still || e.id == id;
    if (!still) {
      std::printf("deleted %s\n", id.c_str());
      return 0;
    }
    ::usleep(50000);
  }
  std::fprintf(stderr, "ipconfirm: %s: the server did not delete it\n", id.c_str());
  return 1;
}

int queue(const std::string& config_path, const std::string& verb, const std::string& id) {
  auto cfg = load(config_path);
  if (!cfg) return 2;
  if (responder::Spool::in_use(cfg->queue.dir))
    return queue_of_running_server(cfg->queue.dir, verb, id);
  responder::SpoolOpenReport report;
  std::string error;
  auto spool = responder::Spool::open({cfg->queue.dir, cfg->queue.max_entries}, report, error);
  if (!spool) {
    std::fprintf(stderr, "ipconfirm: queue %s: %s\n", cfg->queue.dir.c_str(), error.c_str());
    return 1;
  }
  if (verb == "list") {
    print_entries(spool->list());
    return 0;
  }
  if (verb == "flush") {
    // Makes every entry due now; the server delivers them when it next starts.
    std::size_t n = spool->flush(static_cast<std::int64_t>(std::time(nullptr)));
    std::printf("%zu repl%s due now\n", n, n == 1 ? "y" : "ies");
    return 0;
  }
  if (verb == "delete") {
    auto err = spool->remove(id);
    if (err != responder::SpoolError::none) {
      std::fprintf(stderr, "ipconfirm: %s: %s\n", id.c_str(),
                   std::string(responder::to_string(err)).c_str());
      return 1;
    }
    std::printf("deleted %s\n", id.c_str());
    return 0;
  }
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ipconfirm: tells a sender how the internet sees its outgoing mail"};
  app.require_subcommand(1);
  app.set_version_flag("--version", IPCONFIRM_VERSION);

  std::string config_path;
  auto* serve_cmd = app.add_subcommand("serve", "run the SMTP service in the foreground");
  serve_cmd->add_option("--config", config_path, "TOML config (default: the built-in one)");

  CheckArgs ca;
  auto* check_cmd =
      app.add_subcommand("check", "analyse a stored message as if it had just arrived");
  check_cmd->add_option("--config", ca.config, "TOML config (default: the built-in one)");
  check_cmd->add_option("--peer", ca.peer, "the connecting IP address")->required();
  check_cmd->add_option("--port", ca.port, "the connecting port");
  check_cmd->add_option("--helo", ca.helo, "the HELO/EHLO name");
  check_cmd->add_option("--mail-from", ca.mail_from, "the envelope sender");
  check_cmd->add_option("--format", ca.format, "json (default), text or html")
      ->check(CLI::IsMember({"json", "text", "html"}));
  check_cmd->add_option("--now", ca.now, "arrival time, seconds since the epoch (for tests)");
  check_cmd->add_option("message", ca.message, "the message file (.eml)")->required();

  std::string queue_verb, queue_id, queue_config;
  auto* queue_cmd = app.add_subcommand("queue", "list, flush or delete queued replies");
  queue_cmd->add_option("--config", queue_config, "TOML config (default: the built-in one)");
  queue_cmd->require_subcommand(1);
  queue_cmd->add_subcommand("list", "list queued replies")->callback([&] { queue_verb = "list"; });
  queue_cmd->add_subcommand("flush", "make every queued reply due now")->callback([&] {
    queue_verb = "flush";
  });
  auto* del = queue_cmd->add_subcommand("delete", "delete one queued reply");
  del->add_option("id", queue_id, "the queue id")->required();
  del->callback([&] { queue_verb = "delete"; });

  CLI11_PARSE(app, argc, argv);
  if (*serve_cmd) return serve(config_path);
  if (*check_cmd) return check(ca);
  if (*queue_cmd) return queue(queue_config, queue_verb, queue_id);
  return 2;
}

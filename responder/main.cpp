// ipconfirm's command line: only wiring. `serve` runs the service, `check` runs the analysis on
// a stored message as if it had just arrived, `queue` shows and manages waiting replies, `show`
// prints the report of a saved reply.
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config/config.hpp"
#include "config/secret_files.hpp"
#include "core/embedded_files.hpp"
#include "core/log.hpp"
#include "mime/incoming.hpp"
#include "mime/saved_reply.hpp"
#include "responder/analysis/auth_lookups.hpp"
#include "responder/analysis/lookups.hpp"
#include "responder/analysis/report.hpp"
#include "responder/analysis/requirements_table.hpp"
#include "responder/dns/dns_resolver.hpp"
#include "responder/privileges.hpp"
#include "responder/queue/spool.hpp"
#include "responder/reply/render.hpp"
#include "responder/service.hpp"
#include "responder/systemd.hpp"
#include "smtp/header_splitter.hpp"

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

// What [service] user says for this process (responder/privileges.hpp).
responder::PrivilegePlan privilege_plan(const config::Config& cfg,
                                        std::optional<responder::Account>& account) {
  std::string error;
  if (!cfg.service.user.empty()) account = responder::lookup_account(cfg.service, error);
  return responder::plan_privileges(::geteuid(), ::getegid(), cfg.service,
                                    account ? &*account : nullptr, error);
}

void drop_to(const responder::Account& account) {
  std::string error;
  if (!responder::drop_privileges(account, error))
    throw std::runtime_error("dropping privileges to " + account.user + ": " + error);
  log_event("privileges", {{"user", account.user},
                           {"uid", std::to_string(account.uid)},
                           {"group", account.group},
                           {"gid", std::to_string(account.gid)}});
}

// Pings systemd's watchdog from the event loop, so that a stuck loop stops the pings.
void watchdog(asio::steady_timer& timer, std::chrono::microseconds interval) {
  responder::systemd_watchdog_ping();
  timer.expires_after(interval);
  timer.async_wait([&timer, interval](const boost::system::error_code& ec) {
    if (!ec) watchdog(timer, interval);
  });
}

int serve(const std::string& config_path) {
  auto cfg = load(config_path);
  if (!cfg) return 2;
  // The providers' rules are compiled in; a table that does not load is a broken build.
  if (const auto& rules = responder::builtin_requirements_table(); !rules.table) {
    std::fprintf(stderr, "ipconfirm: the built-in provider rules do not load: %s\n",
                 rules.error.c_str());
    return 1;
  }
  for (const auto& w : config::secret_file_warnings(*cfg, config_path)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", w.mode);
    log_event("warning", {{"file", w.file},
                          {"mode", mode},
                          {"detail", "readable by group or others, and it holds " + w.holds +
                                         ": make it readable by its owner only (chmod 600)"}});
  }
  std::optional<responder::Account> account;
  const responder::PrivilegePlan plan = privilege_plan(*cfg, account);
  if (plan.action == responder::PrivilegeAction::refuse) {
    std::fprintf(stderr, "ipconfirm: %s\n", plan.reason.c_str());
    return 2;
  }
  asio::io_context io(1);
  // Caught from here on (a SIGHUP during the start waits until the service runs).
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::signal_set hangup(io, SIGHUP);
  responder::Service service(io, *cfg);
  try {
    service.start([&] {
      if (plan.action == responder::PrivilegeAction::drop) drop_to(*account);
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ipconfirm: %s\n", e.what());
    return 1;
  }
  if (::geteuid() == 0)
    log_event("warning", {{"detail", "running as root: set [service] user to drop privileges"}});
  // SIGHUP: read the config file again and switch to it (responder::Service::reload).
  std::function<void()> wait_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      log_event("reloading",
                {{"signal", "HUP"},
                 {"config", config_path.empty() ? std::string_view("built-in") : config_path}});
      // systemd (Type=notify) hears RELOADING=1 just before this reload and READY=1 after it.
      responder::systemd_reloading();
      service.reload(load_result(config_path));
      responder::systemd_ready();
      wait_hangup();
    });
  };
  wait_hangup();
  asio::steady_timer grace(io);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    responder::systemd_stopping();
    log_event("stopping", {{"signal", sig == SIGTERM ? "TERM" : "INT"}});
    hangup.cancel();
    service.stop();
    // Every reply we said 250 for is already on disk; give the 421s a moment to leave.
    grace.expires_after(std::chrono::milliseconds(300));
    grace.async_wait([&](const boost::system::error_code&) { io.stop(); });
  });
  // Ready once the signals are ours: a stop right after READY=1 is a clean stop.
  responder::systemd_ready("serving");
  asio::steady_timer watchdog_timer(io);
  if (auto interval = responder::systemd_watchdog_interval(); interval.count() > 0)
    watchdog(watchdog_timer, interval);
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
  // The message goes in as the server reads it at DATA: the same HeaderSplitter cuts off the
  // header (so that check and the server read the same bytes), the end of the header starts
  // the DKIM, ARC and DMARC lookups, and the body goes to the body hashes piece by piece.
  asio::io_context io(1);
  responder::DnsResolver::Options dns;
  dns.servers = cfg->dns.servers;
  dns.timeout = cfg->dns.timeout;
  dns.tries = cfg->dns.tries;
  try {
    auto resolver = std::make_shared<responder::DnsResolver>(io.get_executor(), dns);
    auto lookups = std::make_shared<responder::Lookups>(io.get_executor(), resolver);
    lookups->start_ip(obs.ip, cfg->dns.dnsbl);
    if (!obs.helo.empty()) lookups->start_helo(obs.helo);
    auto auth = std::make_shared<responder::AuthLookups>(
        io.get_executor(), resolver, responder::AuthLookups::Options{cfg->hostname, {}});
    auth->start_spf(obs.ip, obs.mail_from, obs.helo, obs.arrival);
    smtp::HeaderSplitter splitter(mime::IncomingLimits{}.max_header_bytes);
    const std::string data = to_crlf(message);
    constexpr std::size_t kPiece = 16 * 1024;  // as reads from a socket come
    bool header_told = false;
    for (std::size_t at = 0; at < data.size(); at += kPiece) {
      const std::string_view body =
          splitter.feed(std::string_view(data).substr(at, std::min(kPiece, data.size() - at)));
      if (!header_told && splitter.header_done()) {
        header_told = true;
        auth->start_header(splitter.header(), obs.arrival);
      }
      if (!body.empty()) auth->body(body);
    }
    if (!header_told) auth->start_header(splitter.header(), obs.arrival);  // all header
    obs.message = mime::read_incoming(splitter.header(), {}, splitter.header_cut());
    obs.raw_header = std::string(splitter.header());
    obs.header_cut = splitter.header_cut();
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          const auto deadline = std::chrono::steady_clock::now() + cfg->dns.report_deadline;
          co_await lookups->wait(deadline);
          lookups->fill(obs);
          co_await auth->finish(deadline, obs.arrival, std::nullopt);
          obs.auth = auth->verdicts();
          obs.dns_log = responder::merge_dns_logs({&lookups->log(), &auth->log()},
                                                  std::chrono::steady_clock::now());
          resolver->cancel_all();
        },
        asio::detached);
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ipconfirm: %s\n", e.what());
    return 1;
  }
  responder::Report report = responder::build_report(
      obs, {.reporter = cfg->hostname, .lab_networks = cfg->analysis.lab_networks});
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
  // Recipients come from strangers' MAIL FROM and errors from strangers' servers: printed with
  // the log's escaping, so that no control or bidi character reaches the terminal.
  for (const auto& e : entries) {
    std::printf("%s  to=<%s>  attempts=%d  next=%lld  %s%s%s\n", log_escape(e.id).c_str(),
                log_escape(e.recipient).c_str(), e.attempts, static_cast<long long>(e.next_attempt),
                log_escape(e.origin).c_str(),
                e.last_error.empty() ? "" : "  last_error=", log_escape(e.last_error).c_str());
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
  // Run by root, act as the server's user: what we write into the spool (a request, a changed
  // entry) must stay readable and removable by the server.
  if (::geteuid() == 0 && !cfg->service.user.empty()) {
    std::optional<responder::Account> account;
    const responder::PrivilegePlan plan = privilege_plan(*cfg, account);
    if (plan.action == responder::PrivilegeAction::refuse) {
      std::fprintf(stderr, "ipconfirm: %s\n", plan.reason.c_str());
      return 2;
    }
    std::string error;
    if (plan.action == responder::PrivilegeAction::drop &&
        !responder::drop_privileges(*account, error)) {
      std::fprintf(stderr, "ipconfirm: dropping privileges to %s: %s\n", account->user.c_str(),
                   error.c_str());
      return 1;
    }
  }
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

// Prints the report of each saved reply: its JSON (as `check` prints it), or its text or HTML
// part. Exit 1 when a file is not a reply of ours (no such part), 2 when it cannot be read.
int show(const std::vector<std::string>& files, const std::string& format) {
  int status = 0;
  for (const auto& file : files) {
    bool ok = false;
    const std::string message = read_file(file, ok);
    std::string error;
    std::optional<mime::SavedReply> reply;
    if (!ok || std::filesystem::is_directory(file)) {
      error = "cannot read the file";
      status = 2;
    } else {
      reply = mime::read_saved_reply(message, error);
      if (!reply) status = std::max(status, 1);
    }
    if (!reply) {
      std::fprintf(stderr, "ipconfirm: %s: %s\n", file.c_str(), error.c_str());
      continue;
    }
    if (files.size() > 1 && format != "json") std::cout << "==> " << file << " <==\n";
    if (format == "json") {
      auto json = nlohmann::json::parse(reply->json.value_or(""), nullptr, false);
      if (!reply->json || json.is_discarded()) {
        std::fprintf(stderr, "ipconfirm: %s: %s\n", file.c_str(),
                     reply->json ? "its ipconfirm.json part is not valid JSON"
                                 : "no ipconfirm.json part: not an ipconfirm reply");
        status = std::max(status, 1);
        continue;
      }
      std::cout << json.dump(2) << "\n";
    } else if (format == "text") {
      if (!reply->text) {
        std::fprintf(stderr, "ipconfirm: %s: no text part\n", file.c_str());
        status = std::max(status, 1);
        continue;
      }
      std::cout << "Subject: " << reply->subject << "\n\n" << *reply->text;
      if (!reply->text->empty() && reply->text->back() != '\n') std::cout << "\n";
    } else {
      if (!reply->html) {
        std::fprintf(stderr, "ipconfirm: %s: no HTML part\n", file.c_str());
        status = std::max(status, 1);
        continue;
      }
      std::cout << *reply->html;
    }
  }
  std::cout.flush();
  return status;
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

  std::vector<std::string> show_files;
  std::string show_format = "json";
  auto* show_cmd = app.add_subcommand(
      "show", "print the report of a saved reply (a Maildir file, an .eml): JSON, text or HTML");
  show_cmd->add_option("--format", show_format, "json (default), text or html")
      ->check(CLI::IsMember({"json", "text", "html"}));
  show_cmd->add_option("file", show_files, "the reply's file(s)")->required();

  CLI11_PARSE(app, argc, argv);
  if (*serve_cmd) return serve(config_path);
  if (*check_cmd) return check(ca);
  if (*queue_cmd) return queue(queue_config, queue_verb, queue_id);
  if (*show_cmd) return show(show_files, show_format);
  return 2;
}

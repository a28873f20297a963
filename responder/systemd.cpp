#include "responder/systemd.hpp"

#include <systemd/sd-daemon.h>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "core/log.hpp"

namespace ipconfirm::responder {

namespace {

void notify(const std::string& state) {
  if (!std::getenv("NOTIFY_SOCKET")) return;
  const int r = sd_notify(0, state.c_str());
  static std::atomic<bool> logged{false};
  if (r < 0 && !logged.exchange(true))
    log_event("systemd-notify-failed",
              {{"state", state.substr(0, state.find('\n'))}, {"error", std::strerror(-r)}});
}

// STATUS= takes one line: a newline would start another assignment.
std::string one_line(std::string_view s) {
  std::string out(s.substr(0, 200));
  for (auto& ch : out)
    if (ch == '\n' || ch == '\r') ch = ' ';
  return out;
}

}  // namespace

void systemd_ready(std::string_view status) {
  notify(status.empty() ? "READY=1" : "READY=1\nSTATUS=" + one_line(status));
}

void systemd_reloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto usec = static_cast<std::uint64_t>(ts.tv_sec) * 1000000u +
                    static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
  notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void systemd_stopping() {
  notify("STOPPING=1");
}

void systemd_status(std::string_view status) {
  notify("STATUS=" + one_line(status));
}

std::chrono::microseconds systemd_watchdog_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::chrono::microseconds{0};
  return std::chrono::microseconds{static_cast<std::int64_t>(usec / 2)};
}

void systemd_watchdog_ping() {
  notify("WATCHDOG=1");
}

}  // namespace ipconfirm::responder

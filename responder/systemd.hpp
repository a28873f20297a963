// Telling systemd how the server is doing (sd_notify(3), through Debian's libsystemd), for a
// unit with Type=notify: READY=1 once the listeners are bound and the spool is open,
// RELOADING=1 when a reload starts (READY=1 again when it is done), STOPPING=1 when the
// shutdown starts, STATUS= lines for `systemctl status`, and WATCHDOG=1 pings when the unit
// sets WatchdogSec=.
//
// Without NOTIFY_SOCKET in the environment (not started by systemd, or not Type=notify) every
// call does nothing and costs a getenv. A failed send is logged once and otherwise ignored: the
// server never stops serving because systemd cannot be told. The environment is left as it is
// (the watchdog needs NOTIFY_SOCKET for the whole run). No Asio here: the watchdog's timer
// lives with the event loop (responder/main.cpp) and calls systemd_watchdog_ping().
#pragma once

#include <chrono>
#include <string_view>

namespace ipconfirm::responder {

// READY=1, with an optional STATUS= line.
void systemd_ready(std::string_view status = {});
// RELOADING=1 with MONOTONIC_USEC= (which Type=notify-reload wants); call systemd_ready()
// when the reload is done, whether it worked or not.
void systemd_reloading();
// STOPPING=1.
void systemd_stopping();
// STATUS=<status>: one line, shown by `systemctl status`.
void systemd_status(std::string_view status);
// How often to ping: half of WatchdogSec= (WATCHDOG_USEC), or zero when the watchdog is off or
// meant for another process (WATCHDOG_PID).
std::chrono::microseconds systemd_watchdog_interval();
// WATCHDOG=1.
void systemd_watchdog_ping();

}  // namespace ipconfirm::responder

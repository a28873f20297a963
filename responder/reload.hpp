// What a reload (SIGHUP) changes, decided from the running config and the one just loaded,
// before anything is touched (responder/service.cpp then builds the new parts and switches).
//
// Almost everything reloads: listeners (added and removed), SMTP limits, TLS certificate and
// key (read again even when their paths are the same: a renewed certificate keeps its path),
// hostname and domains, DNS servers and limits, templates (read again), reply mode and rate
// limits, postmaster, delivery, retry schedule, HTTP. Sessions already open finish under the
// settings they started with; new ones get the new settings.
//
// What cannot change without a restart, and is kept at its running value (each one logged as
// `reload-kept`): `queue.dir` (the spool is open and locked, and replies promised with a 250
// are in it) and `queue.max_entries` (part of how the open spool was set up). After a
// privilege drop the process also cannot bind new ports below 1024 (unless it has
// CAP_NET_BIND_SERVICE) or read files only root may read: such a reload fails and the running
// settings stay.
//
// Pure: no I/O.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace ipconfirm::responder {

struct ReloadPlan {
  struct Kept {
    std::string key;      // "queue.dir"
    std::string running;  // the value that stays
    std::string loaded;   // the value in the file, ignored until a restart
  };
  std::vector<Kept> kept;
  bool new_resolver = false;   // [dns] changed: a new resolver (and cache) for new sessions
  bool new_deliverer = false;  // [delivery], [queue], hostname or the resolver changed
  bool new_limiter = false;    // a reply rate limit changed: the limits start afresh
  bool new_postmaster_limiter = false;  // likewise for postmaster mail
};

// Compares `running` and `loaded`; sets the keys that need a restart in `loaded` back to their
// running values (listing them in `kept`).
ReloadPlan plan_reload(const config::Config& running, config::Config& loaded);

}  // namespace ipconfirm::responder

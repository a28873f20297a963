// What /healthz says: healthy (200) while the SMTP listeners accept and the spool can take a
// reply (its segments/ folder, where new replies go, and its tmp/ folder, where stored reports
// and retried replies are written, each take a new file, and the queue is under [queue]
// max_entries);
// unhealthy (503) otherwise, with the failing check named in the body. A load balancer or
// systemd watchdog script can act on the status code alone.
//
// What this file does not do: it does not probe DNS or the delivery target (their failures
// delay replies but never lose one, and /metrics shows them), and it does not rate-limit the
// probe (the service runs it at most once a second).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace ipconfirm::responder {

struct HealthFacts {
  bool smtp_listening = false;
  bool stopping = false;
  std::string spool_problem;  // "" when the probe could write
  std::size_t queue_entries = 0;
  std::size_t queue_capacity = 0;
};

struct Health {
  bool ok = false;
  std::string text;  // one line per check, "ok" or what is wrong
};

// Pure.
Health judge_health(const HealthFacts& facts);

// Creates a small file in `dir` (the spool's segments/ or tmp/), writes a byte into it and
// removes it.
// Returns "" on success, else the failing call and the errno text ("open: Read-only file
// system"). Synchronous file I/O: a few metadata operations.
std::string probe_writable(const std::filesystem::path& dir);

}  // namespace ipconfirm::responder

#include "responder/health.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ipconfirm::responder {

Health judge_health(const HealthFacts& f) {
  Health h;
  h.ok = true;
  auto check = [&](bool good, const std::string& what, const std::string& problem) {
    h.text += what + ": " + (good ? std::string("ok") : problem) + "\n";
    h.ok = h.ok && good;
  };
  check(!f.stopping, "service", "stopping");
  check(f.smtp_listening, "smtp", "not listening");
  check(f.spool_problem.empty(), "spool", "not writable (" + f.spool_problem + ")");
  check(
      f.queue_entries < f.queue_capacity, "queue",
      "full (" + std::to_string(f.queue_entries) + " of " + std::to_string(f.queue_capacity) + ")");
  return h;
}

std::string probe_writable(const std::filesystem::path& dir) {
  // Spool ids and segment names never start with '.', so this name cannot meet a file of the
  // spool.
  const std::filesystem::path probe = dir / (".healthz." + std::to_string(::getpid()));
  auto failed = [](const char* call) { return std::string(call) + ": " + std::strerror(errno); };
  const int fd = ::open(probe.c_str(),
                        O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
  if (fd < 0) return failed("open");
  std::string problem;
  if (::write(fd, "x", 1) != 1) problem = failed("write");
  if (::close(fd) != 0 && problem.empty()) problem = failed("close");
  if (::unlink(probe.c_str()) != 0 && problem.empty()) problem = failed("unlink");
  return problem;
}

}  // namespace ipconfirm::responder

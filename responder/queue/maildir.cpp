#include "responder/queue/maildir.hpp"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <system_error>

#include "responder/queue/spool_fs.hpp"

namespace ipconfirm::responder {

namespace {

namespace fs = std::filesystem;

// Bounds the retries when a name in tmp/ is already taken (another process with a recycled pid
// in the same microsecond); each retry takes a new counter value.
constexpr int kMaxNameAttempts = 100;

constexpr std::size_t kMaxHostLength = 160;

std::atomic<unsigned long> delivery_counter{0};

}  // namespace

std::string maildir_safe_host(std::string_view hostname) {
  if (hostname.empty()) hostname = "localhost";
  std::string out;
  out.reserve(hostname.size());
  for (unsigned char c : hostname) {
    if (c == '/' || c == ':' || c == '\\' || c <= 0x20 || c >= 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\%03o", static_cast<unsigned>(c));
      out.append(buf, 4);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  // Keeps the whole name well under NAME_MAX (255); the host part is informative only.
  if (out.size() > kMaxHostLength) out.resize(kMaxHostLength);
  return out;
}

SpoolError deliver_to_maildir(const fs::path& dir, std::string_view message,
                              std::string_view hostname, std::string* final_path) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return ec == std::errc::no_space_on_device ? SpoolError::no_space : SpoolError::io;
  for (const char* sub : {"tmp", "new", "cur"}) {
    if (auto r = spool_fs::make_dir(dir / sub); !r.ok()) return r.error;
  }
  const std::string host = maildir_safe_host(hostname);
  for (int attempt = 0; attempt < kMaxNameAttempts; ++attempt) {
    timeval tv{};
    ::gettimeofday(&tv, nullptr);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%lld.M%ldP%ldQ%lu.", static_cast<long long>(tv.tv_sec),
                  static_cast<long>(tv.tv_usec), static_cast<long>(::getpid()),
                  delivery_counter.fetch_add(1, std::memory_order_relaxed) + 1);
    const std::string unique = buf + host;
    const fs::path tmp = dir / "tmp" / unique;
    const fs::path target = dir / "new" / unique;
    int open_errno = 0;
    auto r = spool_fs::write_new_file_synced(tmp, message, &open_errno);
    if (!r.ok()) {
      if (open_errno == EEXIST) continue;
      return r.error;
    }
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
      SpoolError e = spool_fs::from_errno(errno);
      ::unlink(tmp.c_str());
      return e == SpoolError::not_found ? SpoolError::io : e;
    }
    if (auto s = spool_fs::fsync_dir(dir / "new"); !s.ok()) return s.error;
    if (final_path) *final_path = target.string();
    return SpoolError::none;
  }
  return SpoolError::io;
}

}  // namespace ipconfirm::responder

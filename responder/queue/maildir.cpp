#include "responder/queue/maildir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <utility>

#include "responder/queue/spool_fs.hpp"

namespace ipconfirm::responder {

namespace {

namespace fs = std::filesystem;

// Bounds the retries when a name in tmp/ is already taken (another process with a recycled pid
// in the same microsecond); each retry takes a new counter value.
constexpr int kMaxNameAttempts = 100;

constexpr std::size_t kMaxHostLength = 160;

std::atomic<unsigned long> delivery_counter{0};

// A file descriptor closed when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

SpoolError error_of(int err) {
  SpoolError e = spool_fs::from_errno(err);
  // A missing directory, or a symbolic link where a directory should be, is a problem of the
  // Maildir, never "not found".
  return e == SpoolError::not_found ? SpoolError::io : e;
}

// Opens the directory `name` under `at` (or the path itself when `at` is AT_FDCWD), creating
// it (mode 0700) when absent. O_NOFOLLOW|O_DIRECTORY: a symbolic link, or anything that is not
// a directory, is refused (ELOOP, ENOTDIR) rather than followed.
int open_dir(int at, const char* name, int& err) {
  if (::mkdirat(at, name, 0700) != 0 && errno != EEXIST) {
    err = errno;
    return -1;
  }
  int fd;
  do {
    fd = ::openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) err = errno;
  return fd;
}

// Adds the messages in the directory `dir_fd` (regular files only, not followed) to `count`
// and their sizes to `bytes`.
bool tally(int dir_fd, std::size_t& count, std::uint64_t& bytes) {
  int fd = ::dup(dir_fd);
  if (fd < 0) return false;
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return false;
  }
  ::rewinddir(d);
  bool ok = true;
  for (;;) {
    errno = 0;
    dirent* e = ::readdir(d);
    if (!e) {
      ok = errno == 0;
      break;
    }
    if (e->d_name[0] == '.') continue;  // ".", ".." and hidden files are no messages
    struct stat st {};
    if (::fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
      continue;
    ++count;
    bytes += static_cast<std::uint64_t>(st.st_size);
  }
  ::closedir(d);
  return ok;
}

// Writes `message` to `fd` with every CRLF written as LF, in blocks (the runs between CRs are
// found with memchr and copied whole: a 10 MB message costs a few milliseconds).
int write_lf(int fd, std::string_view message) {
  std::array<char, 64 * 1024> block;
  std::size_t used = 0;
  auto flush = [&]() -> int {
    const char* p = block.data();
    std::size_t left = used;
    while (left > 0) {
      ssize_t n = ::write(fd, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      if (n == 0) return EIO;  // cannot happen for regular files; never spin
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    used = 0;
    return 0;
  };
  auto put = [&](std::string_view run) -> int {
    while (!run.empty()) {
      const std::size_t n = std::min(run.size(), block.size() - used);
      std::memcpy(block.data() + used, run.data(), n);
      used += n;
      run.remove_prefix(n);
      if (used == block.size()) {
        if (int err = flush(); err != 0) return err;
      }
    }
    return 0;
  };
  while (!message.empty()) {
    const auto* cr = static_cast<const char*>(std::memchr(message.data(), '\r', message.size()));
    std::size_t run = cr ? static_cast<std::size_t>(cr - message.data()) : message.size();
    std::size_t skip = 0;
    if (cr) {
      if (run + 1 < message.size() && message[run + 1] == '\n')
        skip = 1;  // the CR of a CRLF is dropped
      else
        ++run;  // any other CR stays
    }
    if (int err = put(message.substr(0, run)); err != 0) return err;
    message.remove_prefix(run + skip);
  }
  return flush();
}

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
                              std::string_view hostname, std::string* final_path,
                              const MaildirLimits& limits) {
  // The folders above the Maildir are the admin's choice (links there are followed); from the
  // Maildir down, every directory is opened without following links, and every name is
  // created and renamed relative to those descriptors.
  std::error_code ec;
  if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
  if (ec) return ec == std::errc::no_space_on_device ? SpoolError::no_space : SpoolError::io;
  int err = 0;
  Fd md(open_dir(AT_FDCWD, dir.c_str(), err));
  if (md.get() < 0) return error_of(err);
  Fd tmp(open_dir(md.get(), "tmp", err));
  if (tmp.get() < 0) return error_of(err);
  Fd fresh(open_dir(md.get(), "new", err));
  if (fresh.get() < 0) return error_of(err);
  Fd cur(open_dir(md.get(), "cur", err));
  if (cur.get() < 0) return error_of(err);

  if (limits.max_messages || limits.max_bytes) {
    std::size_t count = 0;
    std::uint64_t bytes = 0;
    if (!tally(fresh.get(), count, bytes) || !tally(cur.get(), count, bytes)) return SpoolError::io;
    if (limits.max_messages && count >= limits.max_messages) return SpoolError::full;
    if (limits.max_bytes && bytes + message.size() > limits.max_bytes) return SpoolError::full;
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
    int fd;
    do {
      fd = ::openat(tmp.get(), unique.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return error_of(errno);
    }
    Fd file(fd);
    auto fail = [&](int e) {
      ::close(file.release());
      ::unlinkat(tmp.get(), unique.c_str(), 0);
      return error_of(e);
    };
    if (int e = write_lf(file.get(), message); e != 0) return fail(e);
    while (::fsync(file.get()) != 0)
      if (errno != EINTR) return fail(errno);
    if (::close(file.release()) != 0 && errno != EINTR) {
      const int e = errno;
      ::unlinkat(tmp.get(), unique.c_str(), 0);
      return error_of(e);
    }
    if (::renameat(tmp.get(), unique.c_str(), fresh.get(), unique.c_str()) != 0) {
      const int e = errno;
      ::unlinkat(tmp.get(), unique.c_str(), 0);
      return error_of(e);
    }
    while (::fsync(fresh.get()) != 0)
      if (errno != EINTR) return error_of(errno);
    if (final_path) *final_path = (dir / "new" / unique).string();
    return SpoolError::none;
  }
  return SpoolError::io;
}

}  // namespace ipconfirm::responder

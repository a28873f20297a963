#include "responder/queue/spool_fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ipconfirm::responder::spool_fs {

namespace {

// close() is not retried on EINTR: on Linux the descriptor is released either way. An error
// from close() still matters (NFS reports deferred write errors there).
int close_checked(int fd) {
  if (::close(fd) == 0) return 0;
  return errno == EINTR ? 0 : errno;
}

}  // namespace

SpoolError from_errno(int err) {
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return SpoolError::no_space;
    case ENOENT:
      return SpoolError::not_found;
    default:
      return SpoolError::io;
  }
}

Result failure(std::string_view what, const std::filesystem::path& path, int err) {
  Result r;
  r.error = from_errno(err);
  r.detail.append(what).append(" ").append(path.string()).append(": ").append(std::strerror(err));
  return r;
}

Result write_new_file_impl(const std::filesystem::path& path, std::string_view bytes, int* err_out,
                           bool sync);

Result write_new_file(const std::filesystem::path& path, std::string_view bytes, int* err_out) {
  return write_new_file_impl(path, bytes, err_out, false);
}

Result sync_filesystem(const std::filesystem::path& dir) {
  int fd;
  do {
    fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return failure("open", dir, errno);
  int rc;
  do {
    rc = ::syncfs(fd);
  } while (rc != 0 && errno == EINTR);
  int err = rc != 0 ? errno : 0;
  ::close(fd);
  if (err != 0) return failure("syncfs", dir, err);
  return {};
}

Result write_new_file_synced(const std::filesystem::path& path, std::string_view bytes,
                             int* err_out) {
  return write_new_file_impl(path, bytes, err_out, true);
}

Result write_new_file_impl(const std::filesystem::path& path, std::string_view bytes, int* err_out,
                           bool sync) {
  if (err_out) *err_out = 0;
  int fd;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    int err = errno;
    if (err_out) *err_out = err;
    Result r = failure("open", path, err);
    // A missing directory is an I/O problem of the spool, not a missing entry.
    if (r.error == SpoolError::not_found) r.error = SpoolError::io;
    return r;
  }
  auto fail = [&](std::string_view what, int err) {
    ::close(fd);
    ::unlink(path.c_str());
    if (err_out) *err_out = err;
    Result r = failure(what, path, err);
    if (r.error == SpoolError::not_found) r.error = SpoolError::io;
    return r;
  };
  if (Result w = append_all(fd, bytes, path, err_out); !w.ok()) {
    ::close(fd);
    ::unlink(path.c_str());
    return w;
  }
  while (sync && ::fsync(fd) != 0) {
    if (errno != EINTR) return fail("fsync", errno);
  }
  if (int err = close_checked(fd); err != 0) {
    ::unlink(path.c_str());
    if (err_out) *err_out = err;
    return failure("close", path, err);
  }
  return {};
}

Result fsync_dir(const std::filesystem::path& dir) {
  int fd;
  do {
    fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    Result r = failure("open directory", dir, errno);
    if (r.error == SpoolError::not_found) r.error = SpoolError::io;
    return r;
  }
  while (::fsync(fd) != 0) {
    if (errno != EINTR) {
      int err = errno;
      ::close(fd);
      return failure("fsync directory", dir, err);
    }
  }
  ::close(fd);
  return {};
}

Result make_dir(const std::filesystem::path& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) return {};
  int err = errno;
  struct stat st {};
  if (err == EEXIST && ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return {};
  Result r = failure("mkdir", dir, err == EEXIST ? ENOTDIR : err);
  if (r.error == SpoolError::not_found) r.error = SpoolError::io;
  return r;
}

Result read_file(const std::filesystem::path& path, std::size_t max_bytes, std::string& out) {
  out.clear();
  int fd;
  do {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer (forever); a
    // regular file reads the same either way, and anything else is refused below.
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0 && errno == ELOOP) {  // O_NOFOLLOW met a symbolic link: never one of ours
    Result r;
    r.error = SpoolError::corrupt;
    r.detail = "open " + path.string() + ": a symbolic link";
    return r;
  }
  if (fd < 0) return failure("open", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return failure("fstat", path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    Result r;
    r.error = SpoolError::corrupt;
    r.detail = "open " + path.string() + ": not a regular file";
    return r;
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    Result r;
    r.error = SpoolError::corrupt;
    r.detail = "read " + path.string() + ": file too large";
    return r;
  }
  out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      out.clear();
      return failure("read", path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_bytes) {  // the file grew after fstat
      ::close(fd);
      out.clear();
      Result r;
      r.error = SpoolError::corrupt;
      r.detail = "read " + path.string() + ": file too large";
      return r;
    }
  }
  ::close(fd);
  return {};
}

Result append_all(int fd, std::string_view bytes, const std::filesystem::path& path, int* err_out) {
  auto fail = [&](int err) {
    if (err_out) *err_out = err;
    Result r = failure("write", path, err);
    if (r.error == SpoolError::not_found) r.error = SpoolError::io;
    return r;
  };
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(errno);
    }
    if (n == 0) return fail(EIO);  // cannot happen for regular files; never spin
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return {};
}

Result datasync(int fd, const std::filesystem::path& path) {
  while (::fdatasync(fd) != 0) {
    if (errno != EINTR) {
      Result r = failure("fdatasync", path, errno);
      if (r.error == SpoolError::not_found) r.error = SpoolError::io;
      return r;
    }
  }
  return {};
}

namespace {

int open_regular(const std::filesystem::path& path, int flags, Result& result) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ELOOP) {
      result.error = SpoolError::corrupt;
      result.detail = "open " + path.string() + ": a symbolic link";
    } else {
      result = failure("open", path, errno);
    }
    return -1;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    result = failure("fstat", path, errno);
    ::close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    result.error = SpoolError::corrupt;
    result.detail = "open " + path.string() + ": not a regular file";
    return -1;
  }
  return fd;
}

}  // namespace

Result read_range(const std::filesystem::path& path, std::uint64_t offset, std::uint64_t length,
                  std::string& out) {
  out.clear();
  Result r;
  const int fd = open_regular(path, O_RDONLY, r);
  if (fd < 0) return r;
  out.resize(static_cast<std::size_t>(length));
  std::size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      r = failure("read", path, errno);
      break;
    }
    if (n == 0) {
      r.error = SpoolError::corrupt;
      r.detail = "read " + path.string() + ": shorter than its index says";
      break;
    }
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (!r.ok()) out.clear();
  return r;
}

int open_for_append(const std::filesystem::path& path, Result& result) {
  const int fd = open_regular(path, O_RDWR | O_APPEND, result);
  if (fd >= 0) {
    // Non-blocking was only for the open (a FIFO); a regular file ignores it, but clear it.
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  }
  return fd;
}

}  // namespace ipconfirm::responder::spool_fs

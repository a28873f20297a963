// Helpers for the spool and Maildir tests: a scratch directory removed at the end of the test,
// small file utilities, and a way to run code against a really full file system.
//
// run_on_small_tmpfs() forks a child that enters a private mount namespace (as root, or else in
// a new user namespace), mounts a tmpfs of the given size and runs the callback there; the mount
// disappears with the child, even if the test is killed. When the kernel refuses both, the
// result says "skip" and the test reports that instead of passing silently.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace ipconfirm::responder::test {

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ipconfirm-test-XXXXXX").string();
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_all(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<std::string> names_in(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace detail {
inline bool write_proc(const char* path, const std::string& text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

inline bool enter_private_mount_namespace() {
  if (::unshare(CLONE_NEWNS) != 0) {
    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
    write_proc("/proc/self/setgroups", "deny");
    if (!write_proc("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n")) return false;
    if (!write_proc("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n")) return false;
  }
  // Keep the tmpfs from propagating to the parent's namespace.
  return ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
}
}  // namespace detail

struct ChildResult {
  bool skipped = false;
  std::string skip_reason;
  std::string output;  // what the callback returned: "" means success, else the failure
};

// Runs `body(mount_point)` in a child on a tmpfs of `size` (e.g. "64k"). `body` returns "" on
// success or a description of what went wrong; it must not use doctest macros (it runs in the
// child). The child is killed after 30 s.
inline ChildResult run_on_small_tmpfs(
    const std::filesystem::path& mount_point, const std::string& size,
    const std::function<std::string(const std::filesystem::path&)>& body) {
  ChildResult result;
  std::filesystem::create_directories(mount_point);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    result.skipped = true;
    result.skip_reason = "pipe failed";
    return result;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    result.skipped = true;
    result.skip_reason = "fork failed";
    return result;
  }
  if (pid == 0) {
    ::close(fds[0]);
    ::alarm(30);
    std::string msg;
    if (!detail::enter_private_mount_namespace()) {
      msg = "S:cannot create a private mount namespace: " + std::string(std::strerror(errno));
    } else if (::mount("tmpfs", mount_point.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                       ("size=" + size).c_str()) != 0) {
      msg = "S:cannot mount a tmpfs: " + std::string(std::strerror(errno));
    } else {
      msg = "R:" + body(mount_point);
    }
    const char* p = msg.data();
    std::size_t left = msg.size();
    while (left > 0) {
      ssize_t n = ::write(fds[1], p, left);
      if (n <= 0) break;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (msg.rfind("S:", 0) == 0) {
    result.skipped = true;
    result.skip_reason = msg.substr(2);
  } else if (msg.rfind("R:", 0) == 0) {
    result.output = msg.substr(2);
  } else {
    result.output = "child died without a result (status " + std::to_string(status) + ")";
  }
  return result;
}

}  // namespace ipconfirm::responder::test

#include "responder/queue/spool.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <utility>

#include "core/crc32.hpp"
#include "responder/queue/spool_fs.hpp"

namespace ipconfirm::responder {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMagic = "ipconfirm-spool 1\n";
// A reply is a few kilobytes; anything this large in queue/ is not one of ours.
constexpr std::size_t kMaxEntryBytes = 64u << 20;
constexpr std::size_t kMaxIdLength = 64;
// Bounds the search for a free name in corrupt/ when the same name was set aside before.
constexpr int kMaxSetAsideSuffix = 1000;

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(" ").append(std::to_string(value.size())).append("\n");
  out.append(value).append("\n");
}

// Reads one "<name> <length>\n<bytes>\n" field at `pos`.
bool read_field(std::string_view in, std::size_t& pos, std::string_view name,
                std::string_view& value, std::string& why) {
  std::size_t eol = in.find('\n', pos);
  if (eol == std::string_view::npos || eol - pos > name.size() + 1 + 20) {
    why = "truncated before field '" + std::string(name) + "'";
    return false;
  }
  std::string_view line = in.substr(pos, eol - pos);
  if (line.size() <= name.size() + 1 || line.substr(0, name.size()) != name ||
      line[name.size()] != ' ') {
    why = "expected field '" + std::string(name) + "'";
    return false;
  }
  std::string_view digits = line.substr(name.size() + 1);
  std::size_t length = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
  if (ec != std::errc{} || end != digits.data() + digits.size() ||
      (digits.size() > 1 && digits[0] == '0')) {
    why = "bad length for field '" + std::string(name) + "'";
    return false;
  }
  std::size_t start = eol + 1;
  if (length > in.size() - start || in.size() - start - length < 1) {
    why = "truncated in field '" + std::string(name) + "'";
    return false;
  }
  if (in[start + length] != '\n') {
    why = "field '" + std::string(name) + "' does not end where its length says";
    return false;
  }
  value = in.substr(start, length);
  pos = start + length + 1;
  return true;
}

template <typename Int>
bool parse_int(std::string_view text, Int& out) {
  if (text.empty() || text.size() > 20) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

// Lists the names in a directory (without "." and ".."), sorted.
spool_fs::Result list_dir(const fs::path& dir, std::vector<std::string>& names) {
  names.clear();
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    spool_fs::Result r = spool_fs::failure("opendir", dir, errno);
    r.error = SpoolError::io;
    return r;
  }
  for (;;) {
    errno = 0;
    dirent* e = ::readdir(d);
    if (!e) {
      if (errno != 0) {
        int err = errno;
        ::closedir(d);
        spool_fs::Result r = spool_fs::failure("readdir", dir, err);
        r.error = SpoolError::io;
        return r;
      }
      break;
    }
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return {};
}

// Moves queue/<name> to corrupt/<name>, or corrupt/<name>.<n> if that is taken.
bool set_aside(const fs::path& queue, const fs::path& corrupt, const std::string& name,
               std::string& why) {
  fs::path from = queue / name;
  for (int n = 0; n < kMaxSetAsideSuffix; ++n) {
    fs::path to = corrupt / (n == 0 ? name : name + "." + std::to_string(n));
    struct stat st {};
    if (::lstat(to.c_str(), &st) == 0) continue;
    if (::rename(from.c_str(), to.c_str()) == 0) return true;
    why = spool_fs::failure("rename", from, errno).detail;
    return false;
  }
  why = "no free name in corrupt/ for " + name;
  return false;
}

}  // namespace

std::string_view to_string(SpoolError e) {
  switch (e) {
    case SpoolError::none:
      return "none";
    case SpoolError::io:
      return "I/O error";
    case SpoolError::no_space:
      return "no space left";
    case SpoolError::full:
      return "queue full";
    case SpoolError::corrupt:
      return "corrupt entry";
    case SpoolError::not_found:
      return "not found";
  }
  return "unknown";
}

bool is_valid_spool_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength || id.front() == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string serialize_spool_entry(const QueueEntry& e) {
  std::string out;
  out.reserve(e.data.size() + e.recipient.size() + e.sender.size() + e.origin.size() +
              e.last_error.size() + 256);
  out.append(kMagic);
  append_field(out, "id", e.id);
  append_field(out, "recipient", e.recipient);
  append_field(out, "sender", e.sender);
  append_field(out, "origin", e.origin);
  append_field(out, "created", std::to_string(e.created));
  append_field(out, "next-attempt", std::to_string(e.next_attempt));
  append_field(out, "attempts", std::to_string(e.attempts));
  append_field(out, "last-error", e.last_error);
  append_field(out, "data", e.data);
  std::uint32_t crc = crc32_ieee(out);
  out.append("crc32 ").append(crc32_hex(crc)).append("\n");
  return out;
}

std::optional<QueueEntry> parse_spool_entry(std::string_view in, std::string& why) {
  if (in.empty()) {
    why = "empty file";
    return std::nullopt;
  }
  if (in.substr(0, kMagic.size()) != kMagic) {
    why = in.size() < kMagic.size() && kMagic.substr(0, in.size()) == in
              ? "truncated in the format line"
              : "not a version 1 spool entry";
    return std::nullopt;
  }
  std::size_t pos = kMagic.size();
  QueueEntry e;
  std::string_view v;
  auto text = [&](std::string_view name, std::string& out) {
    if (!read_field(in, pos, name, v, why)) return false;
    out.assign(v);
    return true;
  };
  auto number = [&](std::string_view name, auto& out) {
    if (!read_field(in, pos, name, v, why)) return false;
    if (!parse_int(v, out)) {
      why = "bad number in field '" + std::string(name) + "'";
      return false;
    }
    return true;
  };
  if (!text("id", e.id) || !text("recipient", e.recipient) || !text("sender", e.sender) ||
      !text("origin", e.origin) || !number("created", e.created) ||
      !number("next-attempt", e.next_attempt) || !number("attempts", e.attempts) ||
      !text("last-error", e.last_error) || !text("data", e.data)) {
    return std::nullopt;
  }
  std::string_view body = in.substr(0, pos);
  std::string_view trailer = in.substr(pos);
  constexpr std::string_view kCrcPrefix = "crc32 ";
  if (trailer.size() < kCrcPrefix.size() + 9) {
    why = "truncated before the checksum";
    return std::nullopt;
  }
  if (trailer.substr(0, kCrcPrefix.size()) != kCrcPrefix ||
      trailer[kCrcPrefix.size() + 8] != '\n') {
    why = "bad checksum line";
    return std::nullopt;
  }
  if (trailer.size() != kCrcPrefix.size() + 9) {
    why = "bytes after the checksum";
    return std::nullopt;
  }
  if (trailer.substr(kCrcPrefix.size(), 8) != crc32_hex(crc32_ieee(body))) {
    why = "checksum mismatch";
    return std::nullopt;
  }
  if (!is_valid_spool_id(e.id)) {
    why = "invalid id inside the entry";
    return std::nullopt;
  }
  return e;
}

// --- Spool ------------------------------------------------------------------------------------

Spool::Spool(Spool&& other) noexcept
    : dir_(std::move(other.dir_)),
      max_entries_(other.max_entries_),
      lock_fd_(std::exchange(other.lock_fd_, -1)),
      last_stamp_(other.last_stamp_),
      index_(std::move(other.index_)),
      last_detail_(std::move(other.last_detail_)) {}

Spool& Spool::operator=(Spool&& other) noexcept {
  if (this != &other) {
    if (lock_fd_ >= 0) ::close(lock_fd_);
    dir_ = std::move(other.dir_);
    max_entries_ = other.max_entries_;
    lock_fd_ = std::exchange(other.lock_fd_, -1);
    last_stamp_ = other.last_stamp_;
    index_ = std::move(other.index_);
    last_detail_ = std::move(other.last_detail_);
  }
  return *this;
}

Spool::~Spool() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

std::optional<Spool> Spool::open(const Options& options, SpoolOpenReport& report,
                                 std::string& error) {
  report = SpoolOpenReport{};
  error.clear();
  if (options.dir.empty()) {
    error = "spool directory not set";
    return std::nullopt;
  }
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) {
    error = "cannot create spool directory " + options.dir.string() + ": " + ec.message();
    return std::nullopt;
  }
  const fs::path tmp = options.dir / "tmp", queue = options.dir / "queue",
                 corrupt = options.dir / "corrupt", control = options.dir / "control";
  for (const fs::path& sub : {tmp, queue, corrupt, control}) {
    if (auto r = spool_fs::make_dir(sub); !r.ok()) {
      error = r.detail;
      return std::nullopt;
    }
  }
  if (auto r = spool_fs::fsync_dir(options.dir); !r.ok()) {
    error = r.detail;
    return std::nullopt;
  }

  Spool spool;
  spool.dir_ = options.dir;
  spool.max_entries_ = options.max_entries;
  const fs::path lock_path = options.dir / "lock";
  do {
    spool.lock_fd_ =
        ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
  } while (spool.lock_fd_ < 0 && errno == EINTR);
  if (spool.lock_fd_ < 0) {
    error = spool_fs::failure("open", lock_path, errno).detail;
    return std::nullopt;
  }
  int locked;
  do {
    locked = ::flock(spool.lock_fd_, LOCK_EX | LOCK_NB);
  } while (locked != 0 && errno == EINTR);
  if (locked != 0) {
    error = errno == EWOULDBLOCK ? "spool " + options.dir.string() + " is in use by another process"
                                 : spool_fs::failure("flock", lock_path, errno).detail;
    return std::nullopt;
  }

  // Whatever is in tmp/ was being written when the previous process stopped: the client was
  // never told 250 for it, so it is safe (and required) to drop it.
  std::vector<std::string> names;
  if (auto r = list_dir(tmp, names); !r.ok()) {
    error = r.detail;
    return std::nullopt;
  }
  for (const std::string& name : names) {
    fs::path p = tmp / name;
    if (::unlink(p.c_str()) == 0) {
      ++report.temp_removed;
    } else {
      report.problems.push_back("tmp/" + name + ": " +
                                spool_fs::failure("unlink", p, errno).detail);
    }
  }

  if (auto r = list_dir(queue, names); !r.ok()) {
    error = r.detail;
    return std::nullopt;
  }
  bool moved = false;
  for (const std::string& name : names) {
    std::string why;
    std::string bytes;
    if (!is_valid_spool_id(name)) {
      why = "not an entry name";
    } else {
      auto r = spool_fs::read_file(queue / name, kMaxEntryBytes, bytes);
      if (r.error == SpoolError::io || r.error == SpoolError::no_space) {
        // A read error says nothing about the content: leave the file for the next start.
        report.problems.push_back("queue/" + name + ": left in place, not queued: " + r.detail);
        continue;
      }
      if (r.error == SpoolError::not_found) continue;  // gone since readdir
      if (!r.ok()) {
        why = r.detail;
      } else if (auto entry = parse_spool_entry(bytes, why)) {
        if (entry->id == name) {
          spool.index_[name] = IndexEntry{entry->next_attempt};
          ++report.recovered;
          continue;
        }
        why = "id '" + entry->id + "' inside does not match the file name";
      }
    }
    std::string move_error;
    if (set_aside(queue, corrupt, name, move_error)) {
      moved = true;
      ++report.set_aside;
      report.problems.push_back("queue/" + name + ": moved to corrupt/: " + why);
    } else {
      report.problems.push_back("queue/" + name + ": " + why +
                                "; could not move it: " + move_error);
    }
  }
  if (moved) {
    for (const fs::path& d : {corrupt, queue}) {
      if (auto r = spool_fs::fsync_dir(d); !r.ok()) report.problems.push_back(r.detail);
    }
  }
  return std::optional<Spool>(std::move(spool));
}

std::string Spool::new_id(std::int64_t now) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  // Seconds from the caller's clock, microseconds from the system clock, forced to increase
  // within this process so that ids sort in enqueue order; the pid separates processes.
  std::int64_t stamp = std::clamp<std::int64_t>(now, 0, 999999999999) * 1000000 + ts.tv_nsec / 1000;
  if (stamp <= last_stamp_) stamp = last_stamp_ + 1;
  static const long pid = static_cast<long>(::getpid());  // the owner never forks
  for (;;) {
    last_stamp_ = stamp;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%012lld.%06lld.%ld", static_cast<long long>(stamp / 1000000),
                  static_cast<long long>(stamp % 1000000), pid);
    std::string id = buf;
    struct stat st {};
    fs::path p = dir_ / "queue" / id;
    if (!index_.count(id) && ::lstat(p.c_str(), &st) != 0) return id;
    ++stamp;
  }
}

SpoolError Spool::write_entry(const QueueEntry& entry, std::string& detail, bool& renamed,
                              bool sync_dir) {
  return write_entry_at(dir_, entry, detail, renamed, sync_dir);
}

SpoolError Spool::write_entry_at(const fs::path& dir, const QueueEntry& entry, std::string& detail,
                                 bool& renamed, bool sync_dir) {
  renamed = false;
  const fs::path tmp = dir / "tmp" / entry.id;
  const fs::path final_path = dir / "queue" / entry.id;
  const std::string bytes = serialize_spool_entry(entry);
  if (bytes.size() > kMaxEntryBytes) {
    detail = "entry " + entry.id + " is larger than the spool accepts";
    return SpoolError::io;
  }
  ::unlink(tmp.c_str());  // a leftover from a failed rename; normally absent
  if (auto r = spool_fs::write_new_file_synced(tmp, bytes); !r.ok()) {
    detail = r.detail;
    return r.error;
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    auto r = spool_fs::failure("rename", tmp, errno);
    ::unlink(tmp.c_str());
    detail = r.detail;
    return r.error == SpoolError::not_found ? SpoolError::io : r.error;
  }
  renamed = true;
  if (!sync_dir) return SpoolError::none;
  if (auto r = spool_fs::fsync_dir(dir / "queue"); !r.ok()) {
    detail = r.detail;
    return r.error;
  }
  return SpoolError::none;
}

Spool::Enqueued Spool::enqueue(QueueEntry entry, std::int64_t now) {
  std::vector<QueueEntry> one;
  one.push_back(std::move(entry));
  std::vector<Enqueued> r = enqueue_batch(std::move(one), now);
  return std::move(r.front());
}

std::vector<Spool::Enqueued> Spool::enqueue_batch(std::vector<QueueEntry> entries,
                                                  std::int64_t now) {
  Batch batch = reserve(std::move(entries), now);
  write_batch(dir_, batch);
  return commit(batch);
}

Spool::Batch Spool::reserve(std::vector<QueueEntry> entries, std::int64_t now) {
  Batch batch;
  batch.results.resize(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    QueueEntry& entry = entries[i];
    Enqueued& result = batch.results[i];
    if (index_.size() + reserved_ >= max_entries_) {
      result.error = SpoolError::full;
      result.detail = "queue full (" + std::to_string(index_.size()) + " entries)";
      continue;
    }
    entry.id = new_id(now);
    entry.created = now;
    if (entry.next_attempt == 0) entry.next_attempt = now;
    result.id = entry.id;
    ++reserved_;
  }
  batch.entries = std::move(entries);
  return batch;
}

std::string Spool::write_batch(const fs::path& dir, Batch& batch, bool also_durable) {
  // Group commit: one syncfs for the data of the whole batch and one fsync of queue/ for the
  // names, instead of one fsync per file.
  auto& entries = batch.entries;
  auto& results = batch.results;
  auto fail = [&](std::size_t i, SpoolError e, std::string detail) {
    results[i].error = e;
    results[i].detail = std::move(detail);
  };
  std::vector<std::size_t> written;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (results[i].error != SpoolError::none) continue;
    const fs::path tmp = dir / "tmp" / entries[i].id;
    const std::string bytes = serialize_spool_entry(entries[i]);
    if (bytes.size() > kMaxEntryBytes) {
      fail(i, SpoolError::io, "entry " + entries[i].id + " is larger than the spool accepts");
      continue;
    }
    int err = 0;
    spool_fs::Result r = spool_fs::write_new_file(tmp, bytes, &err);
    if (err == EEXIST) {  // a leftover from a failed rename: rare, so not unlinked up front
      ::unlink(tmp.c_str());
      r = spool_fs::write_new_file(tmp, bytes, &err);
    }
    if (!r.ok()) {
      fail(i, r.error, r.detail);
      continue;
    }
    written.push_back(i);
  }
  if (written.empty()) {
    if (!also_durable) return {};
    spool_fs::Result r = spool_fs::sync_filesystem(dir / "tmp");
    return r.ok() ? std::string() : r.detail;
  }
  if (auto r = spool_fs::sync_filesystem(dir / "tmp"); !r.ok()) {
    for (std::size_t i : written) {
      ::unlink((dir / "tmp" / entries[i].id).c_str());
      fail(i, r.error, r.detail);
    }
    return r.detail;
  }
  std::vector<std::size_t> renamed;
  for (std::size_t i : written) {
    const fs::path tmp = dir / "tmp" / entries[i].id;
    const fs::path final_path = dir / "queue" / entries[i].id;
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
      auto r = spool_fs::failure("rename", tmp, errno);
      ::unlink(tmp.c_str());
      fail(i, r.error == SpoolError::not_found ? SpoolError::io : r.error, r.detail);
      continue;
    }
    renamed.push_back(i);
  }
  if (renamed.empty()) return {};
  if (auto r = spool_fs::fsync_dir(dir / "queue"); !r.ok()) {
    // The entries may be visible but not durable. The callers are about to answer 4xx and the
    // clients will send again: remove them so that no reply is sent twice.
    for (std::size_t i : renamed) {
      ::unlink((dir / "queue" / entries[i].id).c_str());
      fail(i, r.error, r.detail);
    }
    (void)spool_fs::fsync_dir(dir / "queue");
  }
  return {};
}

std::vector<Spool::Enqueued> Spool::commit(Batch& batch) {
  for (std::size_t i = 0; i < batch.entries.size(); ++i) {
    Enqueued& result = batch.results[i];
    if (result.id.empty()) continue;  // never reserved (queue full)
    --reserved_;
    if (result.error == SpoolError::none)
      index_[result.id] = IndexEntry{batch.entries[i].next_attempt};
    else
      result.id.clear();
  }
  return std::move(batch.results);
}

SpoolError Spool::update(const QueueEntry& entry) {
  last_detail_.clear();
  SpoolError err = SpoolError::none;
  std::optional<QueueEntry> stored = load(entry.id, &err);
  if (!stored) {
    last_detail_ = "update " + entry.id + ": " + std::string(to_string(err));
    return err;
  }
  stored->attempts = entry.attempts;
  stored->next_attempt = entry.next_attempt;
  stored->last_error = entry.last_error;
  bool renamed = false;
  err = write_entry(*stored, last_detail_, renamed);
  // Once the rename is done the new content is what a restart would most likely see (only a
  // failed directory fsync plus a power loss would bring the old one back), so the index
  // follows it. A failed write leaves the old file and the old index entry.
  if (renamed) index_[entry.id] = IndexEntry{stored->next_attempt};
  return err;
}

SpoolError Spool::reschedule(const std::string& id, std::int64_t next_attempt) {
  auto it = is_valid_spool_id(id) ? index_.find(id) : index_.end();
  if (it == index_.end()) return SpoolError::not_found;
  it->second.next_attempt = next_attempt;
  return SpoolError::none;
}

std::string Spool::rewrite_entry(const fs::path& dir, const Rewrite& rewrite) {
  if (!is_valid_spool_id(rewrite.id)) return "rewrite " + rewrite.id + ": not a valid entry name";
  std::string bytes;
  auto r = spool_fs::read_file(dir / "queue" / rewrite.id, kMaxEntryBytes, bytes);
  if (r.error == SpoolError::not_found) return {};  // delivered or deleted meanwhile
  if (!r.ok()) return r.detail;
  std::string why;
  std::optional<QueueEntry> stored = parse_spool_entry(bytes, why);
  if (!stored || stored->id != rewrite.id) return "rewrite " + rewrite.id + ": " + why;
  stored->next_attempt = rewrite.next_attempt;
  if (rewrite.attempts) stored->attempts = *rewrite.attempts;
  if (rewrite.last_error) stored->last_error = *rewrite.last_error;
  std::string detail;
  bool renamed = false;
  if (write_entry_at(dir, *stored, detail, renamed, true) != SpoolError::none) return detail;
  return {};
}

SpoolError Spool::remove(const std::string& id) {
  last_detail_.clear();
  if (!is_valid_spool_id(id) || !index_.count(id)) {
    last_detail_ = "remove " + id + ": not found";
    return SpoolError::not_found;
  }
  fs::path p = dir_ / "queue" / id;
  if (::unlink(p.c_str()) != 0) {
    auto r = spool_fs::failure("unlink", p, errno);
    last_detail_ = r.detail;
    if (r.error == SpoolError::not_found) index_.erase(id);
    return r.error;
  }
  index_.erase(id);
  return SpoolError::none;
}

SpoolError Spool::forget(const std::string& id) {
  if (!is_valid_spool_id(id) || index_.erase(id) == 0) return SpoolError::not_found;
  return SpoolError::none;
}

std::string Spool::unlink_entry(const fs::path& dir, const std::string& id) {
  if (!is_valid_spool_id(id)) return "unlink " + id + ": not a valid entry name";
  fs::path p = dir / "queue" / id;
  if (::unlink(p.c_str()) == 0 || errno == ENOENT) return {};
  return spool_fs::failure("unlink", p, errno).detail;
}

std::optional<QueueEntry> Spool::load(const std::string& id, SpoolError* err) const {
  auto fail = [&](SpoolError e) -> std::optional<QueueEntry> {
    if (err) *err = e;
    return std::nullopt;
  };
  if (!is_valid_spool_id(id) || !index_.count(id)) return fail(SpoolError::not_found);
  std::string bytes;
  if (auto r = spool_fs::read_file(dir_ / "queue" / id, kMaxEntryBytes, bytes); !r.ok()) {
    return fail(r.error);
  }
  std::string why;
  std::optional<QueueEntry> entry = parse_spool_entry(bytes, why);
  if (!entry || entry->id != id) return fail(SpoolError::corrupt);
  if (err) *err = SpoolError::none;
  return entry;
}

std::vector<QueueEntry> Spool::list() const {
  std::vector<QueueEntry> out;
  out.reserve(index_.size());
  for (const auto& [id, meta] : index_) {
    if (auto e = load(id)) out.push_back(std::move(*e));
  }
  return out;
}

std::size_t Spool::flush(std::int64_t now) {
  std::size_t n = 0;
  std::vector<std::string> ids;
  for (const auto& [id, meta] : index_) ids.push_back(id);
  for (const auto& id : ids) {
    auto stored = load(id);
    if (!stored) continue;
    stored->next_attempt = now;
    if (update(*stored) == SpoolError::none) ++n;
    // Due now in memory even when the disk refused the rewrite (a full disk): an earlier
    // attempt than the file says is always safe.
    index_[id].next_attempt = now;
  }
  return n;
}

std::vector<std::string> Spool::take_requests(std::vector<std::string>& problems) {
  std::vector<std::string> out, names;
  const fs::path control = dir_ / "control";
  if (auto r = list_dir(control, names); !r.ok()) {
    problems.push_back(r.detail);
    return out;
  }
  // Requests are a line each; anything larger is not one.
  constexpr std::size_t kMaxRequestBytes = 4096;
  for (const auto& name : names) {
    if (name.front() == '.') continue;  // still being written
    fs::path p = control / name;
    std::string text;
    auto r = spool_fs::read_file(p, kMaxRequestBytes, text);
    if (r.ok()) {
      out.push_back(std::move(text));
    } else if (r.error != SpoolError::not_found) {
      problems.push_back("control/" + name + ": " + r.detail);
    }
    ::unlink(p.c_str());
  }
  return out;
}

bool Spool::in_use(const fs::path& dir) {
  const fs::path lock_path = dir / "lock";
  int fd;
  do {
    // Non-blocking: a FIFO planted as the lock must not hang `ipconfirm queue`.
    fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return false;  // no lock file: no server has ever opened this spool
  int locked;
  do {
    locked = ::flock(fd, LOCK_SH | LOCK_NB);
  } while (locked != 0 && errno == EINTR);
  bool busy = locked != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return busy;
}

std::vector<QueueEntry> Spool::peek(const fs::path& dir) {
  std::vector<QueueEntry> out;
  std::vector<std::string> names;
  const fs::path queue = dir / "queue";
  if (!list_dir(queue, names).ok()) return out;
  for (const auto& name : names) {
    if (!is_valid_spool_id(name)) continue;
    std::string bytes, why;
    if (!spool_fs::read_file(queue / name, kMaxEntryBytes, bytes).ok()) continue;
    auto entry = parse_spool_entry(bytes, why);
    if (entry && entry->id == name) out.push_back(std::move(*entry));
  }
  return out;
}

std::optional<fs::path> Spool::request(const fs::path& dir, std::string_view text,
                                       std::string& error) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%lld.%09ld.%ld", static_cast<long long>(ts.tv_sec), ts.tv_nsec,
                static_cast<long>(::getpid()));
  const fs::path control = dir / "control";
  const fs::path tmp = control / ("." + std::string(buf)), final_path = control / buf;
  if (auto r = spool_fs::write_new_file_synced(tmp, text); !r.ok()) {
    error = r.detail;
    return std::nullopt;
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    error = spool_fs::failure("rename", tmp, errno).detail;
    ::unlink(tmp.c_str());
    return std::nullopt;
  }
  return final_path;
}

std::vector<std::string> Spool::due(std::int64_t now, std::size_t limit) const {
  std::vector<std::string> out;
  for (const auto& [id, meta] : index_) {
    if (out.size() >= limit) break;
    if (meta.next_attempt <= now) out.push_back(id);
  }
  return out;
}

}  // namespace ipconfirm::responder

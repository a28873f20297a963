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
#include "responder/queue/spool_segment.hpp"

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

std::string serialize_spool_entry(const QueueEntry& e, std::uint32_t* whole_crc) {
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
  const std::uint32_t crc = crc32_ieee(out);
  const std::size_t body = out.size();
  out.append("crc32 ").append(crc32_hex(crc)).append("\n");
  if (whole_crc) {
    const std::string_view trailer = std::string_view(out).substr(body);
    *whole_crc = crc32_combine_ieee(crc, crc32_ieee(trailer), trailer.size());
  }
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

namespace {

// Writes tmp/<id>, fsyncs, renames to queue/<id>, fsyncs queue/.
SpoolError write_entry_file(const fs::path& dir, const QueueEntry& entry, std::string& detail) {
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
  if (auto r = spool_fs::fsync_dir(dir / "queue"); !r.ok()) {
    detail = r.detail;
    return r.error;
  }
  return SpoolError::none;
}

// A segment is some megabytes (Options::segment_bytes plus at most one batch); anything this
// large in segments/ is not one of ours.
constexpr std::size_t kMaxSegmentBytes = std::size_t{1} << 30;

// The live entries of the segments at `dir`, E records minus the D records of their segment,
// each with its place, in segment order. Used by open() (which also cuts damaged tails) and
// peek() (which changes nothing).
struct SegmentEntry {
  QueueEntry entry;
  SpoolPlace place;
};
struct SegmentFile {
  std::uint64_t seq = 0;
  std::string name;
  std::string bytes;
  SegmentScan scan;
};

}  // namespace

Spool::Spool(Spool&& other) noexcept
    : dir_(std::move(other.dir_)),
      max_entries_(other.max_entries_),
      lock_fd_(std::exchange(other.lock_fd_, -1)),
      last_stamp_(other.last_stamp_),
      index_(std::move(other.index_)),
      unread_(std::move(other.unread_)),
      reserved_(std::exchange(other.reserved_, 0)),
      last_detail_(std::move(other.last_detail_)),
      writer_(std::move(other.writer_)) {}

Spool& Spool::operator=(Spool&& other) noexcept {
  if (this != &other) {
    if (lock_fd_ >= 0) ::close(lock_fd_);
    dir_ = std::move(other.dir_);
    max_entries_ = other.max_entries_;
    lock_fd_ = std::exchange(other.lock_fd_, -1);
    last_stamp_ = other.last_stamp_;
    index_ = std::move(other.index_);
    unread_ = std::move(other.unread_);
    reserved_ = std::exchange(other.reserved_, 0);
    last_detail_ = std::move(other.last_detail_);
    writer_ = std::move(other.writer_);
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
                 corrupt = options.dir / "corrupt", control = options.dir / "control",
                 segments = options.dir / "segments";
  for (const fs::path& sub : {tmp, queue, corrupt, control, segments}) {
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
  spool.writer_ = std::shared_ptr<SpoolWriter>(
      new SpoolWriter(options.dir, std::max<std::uint64_t>(options.segment_bytes, 1)));
  SpoolWriter& writer = *spool.writer_;
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

  // Segments, oldest first: each read up to its last whole record and cut there.
  if (auto r = list_dir(segments, names); !r.ok()) {
    error = r.detail;
    return std::nullopt;
  }
  bool moved_segment = false;
  std::map<std::string, SpoolPlace> live;  // id -> its record, E minus D
  struct Kept {
    std::size_t live = 0;
    std::uint64_t size = 0;
  };
  std::map<std::uint64_t, Kept> kept;  // segments read, with their live entries and length
  for (const std::string& name : names) {
    const auto seq = parse_segment_name(name);
    if (!seq) {
      report.problems.push_back("segments/" + name + ": not a segment's name, left alone");
      continue;
    }
    writer.next_seq_ = std::max(writer.next_seq_, *seq + 1);
    const fs::path path = segments / name;
    std::string bytes;
    auto r = spool_fs::read_file(path, kMaxSegmentBytes, bytes);
    if (r.error == SpoolError::not_found) continue;
    if (r.error == SpoolError::io || r.error == SpoolError::no_space) {
      // A read error says nothing about the content: leave the file for the next start.
      report.problems.push_back("segments/" + name + ": left in place, not queued: " + r.detail);
      continue;
    }
    std::string why = r.detail;
    SegmentScan scan;
    if (r.ok()) {
      scan = scan_segment(bytes);
      if (scan.bad_magic && kSegmentMagic.substr(0, bytes.size()) == bytes) {
        // Created, but its first batch never reached the disk: it held nothing acknowledged.
        ::unlink(path.c_str());
        report.problems.push_back("segments/" + name + ": removed, cut in its format line");
        continue;
      }
      if (scan.bad_magic) why = scan.problem;
    }
    if (!r.ok() || scan.bad_magic) {
      std::string move_error;
      if (set_aside(segments, corrupt, name, move_error)) {
        moved_segment = true;
        ++report.set_aside;
        report.problems.push_back("segments/" + name + ": moved to corrupt/: " + why);
      } else {
        report.problems.push_back("segments/" + name + ": " + why +
                                  "; could not move it: " + move_error);
      }
      continue;
    }
    ++report.segments;
    kept[*seq] = Kept{0, scan.good_bytes};
    for (const SegmentRecord& rec : scan.records) {
      if (rec.type == 'D') {
        auto it = live.find(std::string(rec.payload));
        if (it != live.end() && it->second.segment == *seq) live.erase(it);
        continue;
      }
      std::string bad;
      auto entry = parse_spool_entry(rec.payload, bad);
      if (!entry) {
        report.problems.push_back("segments/" + name + ": the record at byte " +
                                  std::to_string(rec.offset) + " is skipped: " + bad);
        continue;
      }
      if (live.count(entry->id) || spool.index_.count(entry->id)) {
        report.problems.push_back("segments/" + name + ": a second record of " + entry->id +
                                  " is skipped");
        continue;
      }
      live[entry->id] = SpoolPlace{*seq, rec.offset, rec.payload.size()};
      spool.index_[entry->id] = IndexEntry{entry->next_attempt, live[entry->id], false};
    }
    if (!scan.problem.empty()) {
      // What a crash during an append leaves: never acknowledged. Cut it off, so that the done
      // marks appended from now on are read back.
      int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
      const bool cut =
          fd >= 0 && ::ftruncate(fd, static_cast<off_t>(scan.good_bytes)) == 0 && ::fsync(fd) == 0;
      const int err = errno;
      if (fd >= 0) ::close(fd);
      ++report.truncated;
      report.problems.push_back(
          "segments/" + name + ": " + scan.problem + " at byte " + std::to_string(scan.good_bytes) +
          (cut ? ": cut there" : ": could not cut it: " + std::string(std::strerror(err))));
    }
  }
  // Entries whose record was marked done later in the same segment left `live`, not the index.
  for (auto it = spool.index_.begin(); it != spool.index_.end();) {
    if (!live.count(it->first))
      it = spool.index_.erase(it);
    else
      ++it;
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
        spool.unread_.insert(name);
        continue;
      }
      if (r.error == SpoolError::not_found) continue;  // gone since readdir
      if (!r.ok()) {
        why = r.detail;
      } else if (auto entry = parse_spool_entry(bytes, why)) {
        if (entry->id == name) {
          // A file of its own wins over a segment copy: a move writes the file first.
          live.erase(name);
          spool.index_[name] = IndexEntry{entry->next_attempt, SpoolPlace{}, true};
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
  if (moved || moved_segment) {
    for (const fs::path& d : {corrupt, queue, segments}) {
      if (auto r = spool_fs::fsync_dir(d); !r.ok()) report.problems.push_back(r.detail);
    }
  }
  report.recovered = spool.index_.size();

  // The writer takes the segments that still hold live entries; the others go. New entries go
  // to a new segment.
  for (const auto& [id, place] : live) {
    ++kept[place.segment].live;
    writer.places_.emplace(id, place);
  }
  for (const auto& [seq, k] : kept) {
    if (k.live == 0) {
      if (std::string detail = writer.drop_segment(seq); !detail.empty())
        report.problems.push_back(detail);
      continue;
    }
    spool_fs::Result r;
    const int fd = spool_fs::open_for_append(writer.segment_path(seq), r);
    // Without a descriptor its done marks cannot be written (each is then logged, and its
    // entry sent again after a restart): the entries are still queued and delivered.
    if (fd < 0) report.problems.push_back(r.detail);
    writer.segments_[seq] = SpoolWriter::Segment{fd, k.live, k.size};
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
    // Every entry on disk is in the index, or in unread_ when open() could not read it.
    if (!index_.count(id) && !unread_.count(id)) return id;
    ++stamp;
  }
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
  writer_->write_batch(batch);
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

std::vector<Spool::Enqueued> Spool::commit(Batch& batch) {
  for (std::size_t i = 0; i < batch.entries.size(); ++i) {
    Enqueued& result = batch.results[i];
    if (result.id.empty()) continue;  // never reserved (queue full)
    --reserved_;
    if (result.error == SpoolError::none && i < batch.places.size())
      index_[result.id] = IndexEntry{batch.entries[i].next_attempt, batch.places[i], false};
    else {
      if (result.error == SpoolError::none) {  // not handed to the writer: nothing written
        result.error = SpoolError::io;
        result.detail = "entry " + result.id + " was not written";
      }
      result.id.clear();
    }
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
  err = SpoolError::none;
  last_detail_ =
      writer_->rewrite({entry.id, entry.next_attempt, entry.attempts, entry.last_error}, &err);
  // A failed rewrite leaves the old copy (in its segment or its file) and the old index entry.
  if (err == SpoolError::none) {
    IndexEntry& e = index_[entry.id];
    e.next_attempt = entry.next_attempt;
    e.own_file = true;
  }
  return err;
}

SpoolError Spool::reschedule(const std::string& id, std::int64_t next_attempt) {
  auto it = is_valid_spool_id(id) ? index_.find(id) : index_.end();
  if (it == index_.end()) return SpoolError::not_found;
  it->second.next_attempt = next_attempt;
  // The writer moves it into a file of its own; until then load() reads the segment copy.
  it->second.own_file = true;
  return SpoolError::none;
}

SpoolError Spool::remove(const std::string& id) {
  last_detail_.clear();
  if (!is_valid_spool_id(id) || !index_.count(id)) {
    last_detail_ = "remove " + id + ": not found";
    return SpoolError::not_found;
  }
  index_.erase(id);
  last_detail_ = writer_->done(id);
  return last_detail_.empty() ? SpoolError::none : SpoolError::io;
}

SpoolError Spool::forget(const std::string& id) {
  if (!is_valid_spool_id(id) || index_.erase(id) == 0) return SpoolError::not_found;
  return SpoolError::none;
}

std::optional<SpoolPlace> Spool::place(const std::string& id) const {
  auto it = index_.find(id);
  if (it == index_.end()) return std::nullopt;
  if (it->second.own_file) return SpoolPlace{};
  return it->second.place;
}

std::optional<QueueEntry> Spool::load(const std::string& id, SpoolError* err) const {
  auto fail = [&](SpoolError e) -> std::optional<QueueEntry> {
    if (err) *err = e;
    return std::nullopt;
  };
  auto it = is_valid_spool_id(id) ? index_.find(id) : index_.end();
  if (it == index_.end()) return fail(SpoolError::not_found);
  const IndexEntry& meta = it->second;
  std::string bytes;
  auto from_file = [&] { return spool_fs::read_file(dir_ / "queue" / id, kMaxEntryBytes, bytes); };
  auto from_segment = [&] {
    if (meta.place.segment == 0) return spool_fs::failure("read", dir_ / "segments", ENOENT);
    return spool_fs::read_range(dir_ / "segments" / segment_name(meta.place.segment),
                                meta.place.offset, meta.place.length, bytes);
  };
  // An entry being moved into its own file is read from its segment until the file is there;
  // once the file is there, its segment may be gone.
  spool_fs::Result r = meta.own_file ? from_file() : from_segment();
  if (r.error == SpoolError::not_found) r = meta.own_file ? from_segment() : from_file();
  if (!r.ok()) return fail(r.error);
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
  // Segments first, then queue/: an entry moved meanwhile is then seen twice (the file wins)
  // rather than not at all.
  std::map<std::string, QueueEntry> found;
  std::vector<std::string> names;
  if (list_dir(dir / "segments", names).ok()) {
    for (const auto& name : names) {
      const auto seq = parse_segment_name(name);
      std::string bytes;
      if (!seq || !spool_fs::read_file(dir / "segments" / name, kMaxSegmentBytes, bytes).ok())
        continue;
      // A record being appended right now is cut short: the scan stops before it.
      const SegmentScan scan = scan_segment(bytes);
      std::map<std::string, QueueEntry> here;
      for (const SegmentRecord& rec : scan.records) {
        if (rec.type == 'D') {
          here.erase(std::string(rec.payload));
          continue;
        }
        std::string why;
        if (auto entry = parse_spool_entry(rec.payload, why)) {
          std::string id = entry->id;
          here.emplace(std::move(id), std::move(*entry));
        }
      }
      found.merge(here);
    }
  }
  if (list_dir(dir / "queue", names).ok()) {
    for (const auto& name : names) {
      if (!is_valid_spool_id(name)) continue;
      std::string bytes, why;
      if (!spool_fs::read_file(dir / "queue" / name, kMaxEntryBytes, bytes).ok()) continue;
      auto entry = parse_spool_entry(bytes, why);
      if (entry && entry->id == name) found[name] = std::move(*entry);
    }
  }
  std::vector<QueueEntry> out;
  out.reserve(found.size());
  for (auto& [id, entry] : found) out.push_back(std::move(entry));
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

// --- SpoolWriter ------------------------------------------------------------------------------

SpoolWriter::~SpoolWriter() {
  for (auto& [seq, segment] : segments_)
    if (segment.fd >= 0) ::close(segment.fd);
}

fs::path SpoolWriter::segment_path(std::uint64_t seq) const {
  return dir_ / "segments" / segment_name(seq);
}

std::string SpoolWriter::drop_segment(std::uint64_t seq) {
  if (auto it = segments_.find(seq); it != segments_.end()) {
    if (it->second.fd >= 0) ::close(it->second.fd);
    segments_.erase(it);
  }
  if (seq == current_) current_ = 0;
  // Not synced: a removal that a crash undoes brings back entries marked done, which are then
  // sent again (at-least-once), as a lost done mark would.
  const fs::path path = segment_path(seq);
  if (::unlink(path.c_str()) == 0 || errno == ENOENT) return {};
  return spool_fs::failure("unlink", path, errno).detail;
}

void SpoolWriter::retire_current() {
  if (current_ == 0) return;
  const std::uint64_t seq = std::exchange(current_, 0);
  auto it = segments_.find(seq);
  if (it != segments_.end() && it->second.live == 0) (void)drop_segment(seq);
}

void SpoolWriter::write_batch(Spool::Batch& batch) {
  auto& entries = batch.entries;
  auto& results = batch.results;
  batch.places.assign(entries.size(), SpoolPlace{});
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (results[i].error != SpoolError::none) continue;
    // The serialized entry is its data and some hundred bytes of fields and framing.
    if (entries[i].data.size() + entries[i].recipient.size() + entries[i].origin.size() +
            entries[i].last_error.size() + entries[i].sender.size() + 512 >
        kMaxEntryBytes) {
      results[i].error = SpoolError::io;
      results[i].detail = "entry " + entries[i].id + " is larger than the spool accepts";
      continue;
    }
    todo.push_back(i);
  }
  if (todo.empty()) return;
  auto fail_all = [&](const spool_fs::Result& r) {
    for (std::size_t i : todo) {
      results[i].error = r.error == SpoolError::not_found ? SpoolError::io : r.error;
      results[i].detail = r.detail;
    }
  };

  // A new segment when there is none: created exclusively, its format line written with the
  // first batch, and its name made durable with an fsync of segments/ before any 250.
  bool created = false;
  if (current_ == 0) {
    const std::uint64_t seq = next_seq_++;
    const fs::path path = segment_path(seq);
    int fd;
    do {
      fd =
          ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      fail_all(spool_fs::failure("open", path, errno));
      return;
    }
    segments_[seq] = Segment{fd, 0, 0};
    current_ = seq;
    created = true;
  }
  const std::uint64_t seq = current_;
  Segment& segment = segments_[seq];
  const fs::path path = segment_path(seq);
  // The whole batch in one buffer, one write; each entry serialized into a scratch string
  // first (its record's header needs the payload's length and checksum).
  std::string out, payload;
  std::size_t total = created ? kSegmentMagic.size() : 0;
  for (std::size_t i : todo) total += entries[i].data.size() + 1024;
  out.reserve(total);
  if (created) out.append(kSegmentMagic);
  std::vector<SpoolPlace> places;
  places.reserve(todo.size());
  for (std::size_t i : todo) {
    std::uint32_t crc = 0;
    payload = serialize_spool_entry(entries[i], &crc);
    append_segment_record(out, 'E', payload, crc);
    // The payload ends one byte (its newline) before the end of the record.
    places.push_back(
        SpoolPlace{seq, segment.size + out.size() - 1 - payload.size(), payload.size()});
  }
  const std::uint64_t before = segment.size;
  spool_fs::Result r;
  if (std::string detail = append(seq, segment, out, &r.error); !detail.empty()) {
    r.detail = std::move(detail);
  } else {
    r = spool_fs::datasync(segment.fd, path);
    if (r.ok() && created) r = spool_fs::fsync_dir(dir_ / "segments");
    if (!r.ok()) {
      // Cut the batch off again, so that a restart reads none of it (its clients get 451 and
      // send again). After a failed sync the file's state is not known: no more appends to it.
      if (::ftruncate(segment.fd, static_cast<off_t>(before)) == 0) {
        segment.size = before;
        (void)::fdatasync(segment.fd);
      }
      if (seq == current_) retire_current();
    }
  }
  if (!r.ok()) {
    fail_all(r);
    if (created && segments_.count(seq) && segments_[seq].live == 0) (void)drop_segment(seq);
    return;
  }
  for (std::size_t k = 0; k < todo.size(); ++k) {
    batch.places[todo[k]] = places[k];
    places_[entries[todo[k]].id] = places[k];
    ++segment.live;
  }
  if (segment.size >= segment_bytes_) retire_current();
}

std::string SpoolWriter::append(std::uint64_t seq, Segment& segment, std::string_view bytes,
                                SpoolError* error) {
  const fs::path path = segment_path(seq);
  if (segment.fd < 0) {
    if (error) *error = SpoolError::io;
    return "append to " + path.string() + ": not open";
  }
  spool_fs::Result r = spool_fs::append_all(segment.fd, bytes, path);
  if (error) *error = r.error;
  if (r.ok()) {
    segment.size += bytes.size();
    return {};
  }
  if (::ftruncate(segment.fd, static_cast<off_t>(segment.size)) != 0) {
    // Whatever follows the half-written record would not be read back: stop appending here.
    ::close(segment.fd);
    segment.fd = -1;
    if (seq == current_) current_ = 0;
  }
  return r.detail;
}

std::string SpoolWriter::rewrite(const Spool::Rewrite& rewrite, SpoolError* error) {
  auto fail = [&](SpoolError e, std::string detail) {
    if (error) *error = e;
    return detail;
  };
  if (error) *error = SpoolError::none;
  if (!is_valid_spool_id(rewrite.id))
    return fail(SpoolError::not_found, "rewrite " + rewrite.id + ": not a valid entry name");
  std::string bytes;
  auto it = places_.find(rewrite.id);
  if (it != places_.end()) {
    const SpoolPlace place = it->second;
    auto r = spool_fs::read_range(segment_path(place.segment), place.offset, place.length, bytes);
    if (!r.ok()) return fail(r.error, r.detail);
  } else {
    auto r = spool_fs::read_file(dir_ / "queue" / rewrite.id, kMaxEntryBytes, bytes);
    if (r.error == SpoolError::not_found) return {};  // delivered or deleted meanwhile
    if (!r.ok()) return fail(r.error, r.detail);
  }
  std::string why;
  std::optional<QueueEntry> stored = parse_spool_entry(bytes, why);
  if (!stored || stored->id != rewrite.id) {
    if (why.empty()) why = "another id inside";
    return fail(SpoolError::corrupt, "rewrite " + rewrite.id + ": " + why);
  }
  stored->next_attempt = rewrite.next_attempt;
  if (rewrite.attempts) stored->attempts = *rewrite.attempts;
  if (rewrite.last_error) stored->last_error = *rewrite.last_error;
  std::string detail;
  if (SpoolError e = write_entry_file(dir_, *stored, detail); e != SpoolError::none)
    return fail(e, detail);
  if (it == places_.end()) return {};
  // The file is durable: the segment copy is done. A mark that cannot be written is harmless:
  // at a restart the file wins over the segment copy.
  (void)done(rewrite.id);
  return {};
}

std::string SpoolWriter::done(const std::string& id) {
  if (!is_valid_spool_id(id)) return "done " + id + ": not a valid entry name";
  auto it = places_.find(id);
  if (it == places_.end()) {
    // A file of its own (moved, or from an older spool).
    const fs::path p = dir_ / "queue" / id;
    if (::unlink(p.c_str()) == 0 || errno == ENOENT) return {};
    return spool_fs::failure("unlink", p, errno).detail;
  }
  const std::uint64_t seq = it->second.segment;
  places_.erase(it);
  auto seg = segments_.find(seq);
  if (seg == segments_.end()) return {};
  if (--seg->second.live == 0 && seq != current_) return drop_segment(seq);
  std::string record;
  append_segment_record(record, 'D', id);
  return append(seq, seg->second, record);
}

}  // namespace ipconfirm::responder

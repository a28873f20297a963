#include "responder/queue/spool_segment.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "responder/queue/spool_fs.hpp"

namespace ipconfirm::responder {

namespace {

namespace fs = std::filesystem;

// A reply is a few kilobytes, forwarded postmaster mail at most the message size; the spool
// refuses entries over 64 MiB (spool.cpp), so no record's length is longer than this.
constexpr std::uint64_t kMaxPayload = 64u << 20;
constexpr std::size_t kSegmentNameLength = 16;

std::uint32_t crc32_of(std::string_view bytes) {
  uLong c = ::crc32(0L, Z_NULL, 0);
  const auto* p = reinterpret_cast<const Bytef*>(bytes.data());
  std::size_t left = bytes.size();
  while (left > 0) {  // zlib takes a uInt length
    const auto n = static_cast<uInt>(std::min<std::size_t>(left, 1u << 30));
    c = ::crc32(c, p, n);
    p += n;
    left -= n;
  }
  return static_cast<std::uint32_t>(c);
}

bool parse_hex8(std::string_view text, std::uint32_t& out) {
  if (text.size() != 8) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + 8, out, 16);
  return ec == std::errc{} && end == text.data() + 8;
}

std::string errno_text(std::string_view what, const fs::path& path, int err) {
  return spool_fs::failure(what, path, err).detail;
}

// Writes all of `bytes` at the end of `fd` (opened O_APPEND); 0 or the errno.
int write_all(int fd, std::string_view bytes) {
  const char* p = bytes.data();
  std::size_t left = bytes.size();
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
  return 0;
}

int datasync(int fd) {
  while (::fdatasync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

}  // namespace

void append_segment_record(std::string& out, char type, std::string_view payload) {
  char head[48];
  const int n = std::snprintf(head, sizeof head, "%c %zu %08x\n", type, payload.size(),
                              static_cast<unsigned>(crc32_of(payload)));
  out.append(head, static_cast<std::size_t>(n));
  out.append(payload);
  out.push_back('\n');
}

SegmentScan scan_segment(std::string_view in) {
  SegmentScan scan;
  if (in.substr(0, kSegmentMagic.size()) != kSegmentMagic) {
    scan.bad_magic = true;
    scan.problem = in.size() < kSegmentMagic.size() && kSegmentMagic.substr(0, in.size()) == in
                       ? "cut short in the format line"
                       : "not a version 1 segment";
    return scan;
  }
  std::size_t pos = kSegmentMagic.size();
  scan.good_bytes = pos;
  while (pos < in.size()) {
    const std::size_t eol = in.find('\n', pos);
    // "<type> <length> <crc>\n": at most 1 + 1 + 20 + 1 + 8 characters before the newline.
    if (eol == std::string_view::npos || eol - pos > 31) {
      scan.problem = eol == std::string_view::npos && in.size() - pos <= 31
                         ? "a record cut short in its header"
                         : "a record with a bad header";
      return scan;
    }
    const std::string_view head = in.substr(pos, eol - pos);
    const std::size_t sp2 = head.rfind(' ');
    std::uint64_t length = 0;
    std::uint32_t crc = 0;
    bool ok = head.size() >= 12 && (head[0] == 'E' || head[0] == 'D') && head[1] == ' ' &&
              sp2 != std::string_view::npos && sp2 > 2;
    if (ok) {
      const std::string_view digits = head.substr(2, sp2 - 2);
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
      ok = ec == std::errc{} && end == digits.data() + digits.size() &&
           !(digits.size() > 1 && digits[0] == '0') && length <= kMaxPayload &&
           parse_hex8(head.substr(sp2 + 1), crc);
    }
    if (!ok) {
      scan.problem = "a record with a bad header";
      return scan;
    }
    const std::size_t start = eol + 1;
    if (length + 1 > in.size() - start) {
      scan.problem = "a record cut short";
      return scan;
    }
    const std::string_view payload = in.substr(start, static_cast<std::size_t>(length));
    if (in[start + payload.size()] != '\n' || crc32_of(payload) != crc) {
      scan.problem = "a record whose checksum does not match";
      return scan;
    }
    scan.records.push_back({head[0], payload, start});
    pos = start + payload.size() + 1;
    scan.good_bytes = pos;
  }
  return scan;
}

std::string segment_name(std::uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llu", static_cast<unsigned long long>(seq));
  return buf;
}

std::optional<std::uint64_t> parse_segment_name(std::string_view name) {
  if (name.size() != kSegmentNameLength) return std::nullopt;
  std::uint64_t seq = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), seq);
  if (ec != std::errc{} || end != name.data() + name.size() || seq == 0) return std::nullopt;
  return seq;
}

// --- SpoolWriter ----------------------------------------------------------------------------

SpoolWriter::SpoolWriter(fs::path dir, std::uint64_t next_seq, std::vector<Recovered> segments)
    : dir_(std::move(dir)), next_seq_(std::max<std::uint64_t>(1, next_seq)) {
  for (auto& r : segments) {
    Segment s;
    s.size = r.size;
    s.live = r.entries.size();
    const fs::path path = dir_ / "segments" / segment_name(r.seq);
    do {
      s.fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    } while (s.fd < 0 && errno == EINTR);
    // Without a descriptor its done marks cannot be written (they would only send replies
    // again after a restart); it is still removed once its entries are done.
    segments_.emplace(r.seq, s);
    for (auto& [id, e] : r.entries)
      in_segments_.emplace(id, Where{r.seq, e.offset, e.length, e.next_attempt});
  }
}

SpoolWriter::~SpoolWriter() {
  for (auto& [seq, s] : segments_)
    if (s.fd >= 0) ::close(s.fd);
}

std::string SpoolWriter::start_segment() {
  const fs::path folder = dir_ / "segments";
  for (int tries = 0; tries < 1000; ++tries) {
    const std::uint64_t seq = next_seq_++;
    const fs::path path = folder / segment_name(seq);
    int fd;
    do {
      fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
                  0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0 && errno == EEXIST) continue;  // left by someone else: never reuse a name
    if (fd < 0) return errno_text("open", path, errno);
    if (int err = write_all(fd, kSegmentMagic); err != 0) {
      ::close(fd);
      ::unlink(path.c_str());
      return errno_text("write", path, err);
    }
    // Its name must survive a crash before any entry in it is acknowledged.
    if (auto r = spool_fs::fsync_dir(folder); !r.ok()) {
      ::close(fd);
      ::unlink(path.c_str());
      return r.detail;
    }
    segments_.emplace(seq, Segment{fd, kSegmentMagic.size(), 0});
    current_ = seq;
    return {};
  }
  return "no free segment name in " + folder.string();
}

std::string SpoolWriter::remove_if_done(std::uint64_t seq) {
  auto it = segments_.find(seq);
  if (it == segments_.end() || seq == current_ || it->second.live > 0) return {};
  if (it->second.fd >= 0) ::close(it->second.fd);
  segments_.erase(it);
  // Not synced: a segment that comes back after a crash holds only done entries (or, if its
  // marks were lost too, replies that are sent again).
  const fs::path path = dir_ / "segments" / segment_name(seq);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_text("unlink", path, errno);
  return {};
}

void SpoolWriter::write_batch(Spool::Batch& batch) {
  auto& entries = batch.entries;
  auto& results = batch.results;
  batch.locations.assign(entries.size(), SpoolLocation{});
  auto fail_all = [&](const std::vector<std::size_t>& which, SpoolError e,
                      const std::string& detail) {
    for (std::size_t i : which) {
      results[i].error = e;
      results[i].detail = detail;
    }
  };
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (results[i].error == SpoolError::none) todo.push_back(i);
  if (todo.empty()) return;

  if (current_ == 0 || segments_.at(current_).size >= kSegmentBytes) {
    const std::uint64_t old = current_;
    current_ = 0;
    if (old != 0) (void)remove_if_done(old);
    if (std::string err = start_segment(); !err.empty()) {
      fail_all(todo, SpoolError::io, err);
      return;
    }
  }
  Segment& seg = segments_.at(current_);
  const fs::path path = dir_ / "segments" / segment_name(current_);
  buffer_.clear();
  std::vector<std::size_t> written;
  std::vector<std::string> payloads;
  for (std::size_t i : todo) {
    std::string payload = serialize_spool_entry(entries[i]);
    if (payload.size() > kMaxPayload) {
      results[i].error = SpoolError::io;
      results[i].detail = "entry " + entries[i].id + " is larger than the spool accepts";
      continue;
    }
    const std::size_t before = buffer_.size();
    append_segment_record(buffer_, 'E', payload);
    const std::size_t head = buffer_.size() - before - payload.size() - 1;
    batch.locations[i] = SpoolLocation{current_, seg.size + before + head,
                                       static_cast<std::uint32_t>(payload.size())};
    written.push_back(i);
  }
  if (written.empty()) return;
  int err = write_all(seg.fd, buffer_);
  const char* call = "write";
  if (err == 0) {
    err = datasync(seg.fd);
    call = "fdatasync";
  }
  if (err != 0) {
    // Cut the segment back to where it was, so that no record of a batch that was refused
    // survives, and start a new segment for the next batch: after a failed sync the kernel
    // may have dropped pages of this file that it never wrote.
    (void)::ftruncate(seg.fd, static_cast<off_t>(seg.size));
    fail_all(written, spool_fs::from_errno(err) == SpoolError::no_space ? SpoolError::no_space
                                                                        : SpoolError::io,
             errno_text(call, path, err));
    for (std::size_t i : written) batch.locations[i] = SpoolLocation{};
    const std::uint64_t old = current_;
    current_ = 0;
    (void)remove_if_done(old);
    return;
  }
  seg.size += buffer_.size();
  seg.live += written.size();
  for (std::size_t i : written) {
    const SpoolLocation& l = batch.locations[i];
    in_segments_[entries[i].id] = Where{l.segment, l.offset, l.length, entries[i].next_attempt};
  }
  if (buffer_.capacity() > (4u << 20)) std::string().swap(buffer_);  // after a large entry
}

std::string SpoolWriter::mark_done(const std::string& id, const Where& where) {
  auto it = segments_.find(where.seq);
  if (it == segments_.end()) return {};
  Segment& seg = it->second;
  std::string problem;
  if (seg.fd >= 0) {
    std::string record;
    append_segment_record(record, 'D', id);
    if (int err = write_all(seg.fd, record); err != 0) {
      // Without its mark the entry comes back after a restart and is sent again.
      problem = errno_text("write", dir_ / "segments" / segment_name(where.seq), err);
    } else {
      seg.size += record.size();
    }
  }
  if (seg.live > 0) --seg.live;
  // A quiet current segment is not kept for the next batches: it is closed and removed once
  // it holds nothing, and the next batch starts another one.
  if (where.seq == current_ && seg.live == 0 && seg.size >= kSegmentBytes / 8) current_ = 0;
  if (std::string err = remove_if_done(where.seq); !err.empty() && problem.empty()) problem = err;
  return problem;
}

std::string SpoolWriter::finish(const std::string& id) {
  if (!is_valid_spool_id(id)) return "finish " + id + ": not a valid entry name";
  auto it = in_segments_.find(id);
  if (it == in_segments_.end()) {  // a file of its own, or finished before
    const fs::path p = dir_ / "queue" / id;
    if (::unlink(p.c_str()) == 0 || errno == ENOENT) return {};
    return errno_text("unlink", p, errno);
  }
  const Where where = it->second;
  in_segments_.erase(it);
  return mark_done(id, where);
}

std::string SpoolWriter::rewrite(const Spool::Rewrite& rewrite) {
  if (!is_valid_spool_id(rewrite.id)) return "rewrite " + rewrite.id + ": not a valid entry name";
  auto it = in_segments_.find(rewrite.id);
  if (it == in_segments_.end()) return Spool::rewrite_entry(dir_, rewrite);
  const Where where = it->second;
  if (!rewrite.attempts && !rewrite.last_error && where.next_attempt <= rewrite.next_attempt)
    return {};
  auto seg = segments_.find(where.seq);
  const fs::path path = dir_ / "segments" / segment_name(where.seq);
  std::string bytes(where.length, '\0');
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0 || seg == segments_.end()) {
    const int err = fd < 0 ? errno : ENOENT;
    if (fd >= 0) ::close(fd);
    return errno_text("open", path, err);
  }
  std::size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = ::pread(fd, bytes.data() + got, bytes.size() - got,
                        static_cast<off_t>(where.offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      return errno_text("read", path, err);
    }
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  std::string why;
  std::optional<QueueEntry> stored = parse_spool_entry(bytes, why);
  if (!stored || stored->id != rewrite.id) return "rewrite " + rewrite.id + ": " + why;
  stored->next_attempt = rewrite.next_attempt;
  if (rewrite.attempts) stored->attempts = *rewrite.attempts;
  if (rewrite.last_error) stored->last_error = *rewrite.last_error;
  // First the file of its own, durable, then the done mark in the segment: a crash between
  // the two finds both, and the file wins (Spool::open).
  if (std::string err = Spool::write_entry_file(dir_, *stored); !err.empty()) return err;
  in_segments_.erase(rewrite.id);
  return mark_done(rewrite.id, where);
}

}  // namespace ipconfirm::responder

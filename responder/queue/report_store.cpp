#include "responder/queue/report_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <stdexcept>

#include "core/crc32.hpp"
#include "responder/queue/spool_fs.hpp"
#include "responder/queue/spool_segment.hpp"

namespace ipconfirm::responder {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMagic = "ipconfirm-report 1\n";
// A report's JSON is some kilobytes, every list in it bounded; a file this large is not ours.
constexpr std::size_t kMaxReportFileBytes = 8u << 20;
constexpr std::size_t kDigestLength = 64;
constexpr std::size_t kSecondsLength = 12;
constexpr std::size_t kCreatedLength = kSecondsLength + 1 + 6;  // "SSSSSSSSSSSS.UUUUUU"
// A new report segment after this many bytes or this long: a segment goes only when all its
// reports are forgotten, so its age bounds how long an expired report's bytes stay on disk.
constexpr std::uint64_t kReportSegmentBytes = 8u << 20;
constexpr auto kReportSegmentAge = std::chrono::hours(1);
constexpr std::size_t kMaxReportSegmentBytes = std::size_t{1} << 30;

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::string new_report_token() {
  unsigned char bytes[kReportTokenBytes];
  if (RAND_bytes(bytes, static_cast<int>(sizeof bytes)) != 1)
    throw std::runtime_error("RAND_bytes failed: no token for the report");
  // EVP_EncodeBlock writes standard base64 with padding and a NUL: 24 characters for 16 bytes.
  unsigned char b64[4 * ((kReportTokenBytes + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(b64, bytes, static_cast<int>(sizeof bytes));
  std::string token(reinterpret_cast<const char*>(b64), static_cast<std::size_t>(n));
  while (!token.empty() && token.back() == '=') token.pop_back();
  for (char& c : token) {  // RFC 4648 §5: the URL- and filename-safe alphabet
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  OPENSSL_cleanse(bytes, sizeof bytes);
  return token;
}

bool is_report_token(std::string_view token) {
  return token.size() == kReportTokenLength && std::all_of(token.begin(), token.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
         });
}

std::string report_token_digest(std::string_view token) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(token.data(), token.size(), md, &length, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0x0F];
  }
  return out;
}

std::string report_file_name(std::int64_t created_us, std::string_view digest) {
  const std::int64_t us = std::clamp<std::int64_t>(created_us, 0, 999999999999999999);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%012lld.%06lld.", static_cast<long long>(us / 1000000),
                static_cast<long long>(us % 1000000));
  return std::string(buf) + std::string(digest);
}

std::optional<ReportFileName> parse_report_file_name(std::string_view name) {
  if (name.size() != kCreatedLength + 1 + kDigestLength || name[kSecondsLength] != '.' ||
      name[kCreatedLength] != '.')
    return std::nullopt;
  const std::string_view seconds = name.substr(0, kSecondsLength);
  const std::string_view micros = name.substr(kSecondsLength + 1, 6);
  const std::string_view digest = name.substr(kCreatedLength + 1);
  auto digits = [](std::string_view d) {
    return std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(seconds) || !digits(micros) || !is_lower_hex(digest)) return std::nullopt;
  ReportFileName out;
  std::from_chars(seconds.data(), seconds.data() + seconds.size(), out.created);
  out.digest = std::string(digest);
  return out;
}

std::string serialize_stored_report(std::string_view json, std::uint32_t* whole_crc) {
  std::string out;
  out.reserve(json.size() + 64);
  out.append(kMagic);
  out.append("json ").append(std::to_string(json.size())).append("\n");
  out.append(json).append("\n");
  const std::uint32_t crc = crc32_ieee(out);
  const std::size_t body = out.size();
  out.append("crc32 ").append(crc32_hex(crc)).append("\n");
  if (whole_crc) {
    const std::string_view trailer = std::string_view(out).substr(body);
    *whole_crc = crc32_combine_ieee(crc, crc32_ieee(trailer), trailer.size());
  }
  return out;
}

std::optional<std::string> parse_stored_report(std::string_view in, std::string& why) {
  if (in.substr(0, kMagic.size()) != kMagic) {
    why = "not a version 1 stored report";
    return std::nullopt;
  }
  std::size_t pos = kMagic.size();
  const std::size_t eol = in.find('\n', pos);
  constexpr std::string_view kField = "json ";
  if (eol == std::string_view::npos || in.substr(pos, kField.size()) != kField ||
      eol - pos > kField.size() + 20) {
    why = "no json field";
    return std::nullopt;
  }
  const std::string_view digits = in.substr(pos + kField.size(), eol - pos - kField.size());
  std::size_t length = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
  if (ec != std::errc{} || end != digits.data() + digits.size() || digits.empty() ||
      (digits.size() > 1 && digits[0] == '0')) {
    why = "bad length";
    return std::nullopt;
  }
  pos = eol + 1;
  if (length > in.size() - pos || in.size() - pos - length < 1 || in[pos + length] != '\n') {
    why = "truncated in the json field";
    return std::nullopt;
  }
  const std::string_view json = in.substr(pos, length);
  pos += length + 1;
  const std::string_view trailer = in.substr(pos);
  if (trailer.size() != 15 || trailer.substr(0, 6) != "crc32 " || trailer.back() != '\n') {
    why = "bad or missing checksum line";
    return std::nullopt;
  }
  if (trailer.substr(6, 8) != crc32_hex(crc32_ieee(in.substr(0, pos)))) {
    why = "checksum mismatch";
    return std::nullopt;
  }
  return std::string(json);
}

std::string write_report_unsynced(const fs::path& spool_dir, const StoredReport& report) {
  if (!parse_report_file_name(report.name)) return "not a report name: " + report.name;
  const std::string bytes = serialize_stored_report(report.json);
  if (bytes.size() > kMaxReportFileBytes) return "report " + report.name + " is too large";
  const fs::path tmp = spool_dir / "tmp" / ("report." + report.name);
  const fs::path final_path = spool_dir / "reports" / report.name;
  int err = 0;
  spool_fs::Result r = spool_fs::write_new_file(tmp, bytes, &err);
  if (err == EEXIST) {  // a leftover of a failed rename
    ::unlink(tmp.c_str());
    r = spool_fs::write_new_file(tmp, bytes, &err);
  }
  if (!r.ok()) return r.detail;
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    std::string detail = spool_fs::failure("rename", tmp, errno).detail;
    ::unlink(tmp.c_str());
    return detail;
  }
  return {};
}

std::optional<std::string> read_stored_report(const fs::path& spool_dir, std::string_view name,
                                              const ReportPlace& place) {
  if (place.segment == 0) return read_stored_report(spool_dir, name);
  if (place.length > kMaxReportFileBytes) return std::nullopt;
  std::string bytes;
  if (!spool_fs::read_range(spool_dir / "report-segments" / segment_name(place.segment),
                            place.offset, place.length, bytes)
           .ok())
    return std::nullopt;
  std::string why;
  return parse_stored_report(bytes, why);
}

std::optional<std::string> read_stored_report(const fs::path& spool_dir, std::string_view name) {
  if (!parse_report_file_name(name)) return std::nullopt;
  std::string bytes;
  if (!spool_fs::read_file(spool_dir / "reports" / std::string(name), kMaxReportFileBytes, bytes)
           .ok())
    return std::nullopt;
  std::string why;
  return parse_stored_report(bytes, why);
}

std::string unlink_stored_report(const fs::path& spool_dir, std::string_view name) {
  if (!parse_report_file_name(name)) return "not a report name: " + std::string(name);
  const fs::path p = spool_dir / "reports" / std::string(name);
  if (::unlink(p.c_str()) == 0 || errno == ENOENT) return {};
  return spool_fs::failure("unlink", p, errno).detail;
}

// --- ReportWriter -----------------------------------------------------------------------------

ReportWriter::~ReportWriter() {
  if (fd_ >= 0) ::close(fd_);
}

fs::path ReportWriter::segment_path(std::uint64_t seq) const {
  return spool_dir_ / "report-segments" / segment_name(seq);
}

std::string ReportWriter::drop(std::uint64_t seq) {
  if (seq == current_) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    current_ = 0;
    size_ = 0;
  }
  live_.erase(seq);
  const fs::path path = segment_path(seq);
  if (::unlink(path.c_str()) == 0 || errno == ENOENT) return {};
  return spool_fs::failure("unlink", path, errno).detail;
}

void ReportWriter::retire_current() {
  if (current_ == 0) return;
  const std::uint64_t seq = current_;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  current_ = 0;
  size_ = 0;
  if (auto it = live_.find(seq); it == live_.end() || it->second == 0) (void)drop(seq);
}

std::string ReportWriter::write_batch(const std::vector<const StoredReport*>& reports,
                                      std::vector<ReportPlace>& places) {
  places.clear();
  if (reports.empty()) return {};
  for (const StoredReport* r : reports) {
    if (!parse_report_file_name(r->name)) return "not a report name: " + r->name;
    if (r->json.size() + 64 > kMaxReportFileBytes) return "report " + r->name + " is too large";
  }
  if (current_ != 0 && std::chrono::steady_clock::now() - started_ >= kReportSegmentAge)
    retire_current();
  bool created = false;
  if (current_ == 0) {
    const std::uint64_t seq = next_seq_++;
    const fs::path path = segment_path(seq);
    do {
      fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                   0600);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) return spool_fs::failure("open", path, errno).detail;
    current_ = seq;
    size_ = 0;
    started_ = std::chrono::steady_clock::now();
    live_[seq] = 0;
    created = true;
  }
  const fs::path path = segment_path(current_);
  std::string out, payload;
  if (created) out.append(kSegmentMagic);
  for (const StoredReport* r : reports) {
    payload = r->name;
    payload += '\n';
    const std::size_t head = payload.size();
    std::uint32_t crc = 0;
    payload += serialize_stored_report(r->json, &crc);
    append_segment_record(out, 'E', payload,
                          crc32_combine_ieee(crc32_ieee(std::string_view(payload).substr(0, head)),
                                             crc, payload.size() - head));
    // The stored report ends one byte (the record's newline) before the end of the record.
    const std::uint64_t length = payload.size() - r->name.size() - 1;
    places.push_back(ReportPlace{current_, size_ + out.size() - 1 - length, length});
  }
  spool_fs::Result r = spool_fs::append_all(fd_, out, path);
  if (r.ok()) r = spool_fs::datasync(fd_, path);
  if (r.ok() && created) r = spool_fs::fsync_dir(spool_dir_ / "report-segments");
  if (!r.ok()) {
    // Cut back, so that a restart reads none of the batch (its messages get 451); after a
    // failed sync, or a failed cut, no more appends to this file.
    places.clear();
    const bool cut = ::ftruncate(fd_, static_cast<off_t>(size_)) == 0;
    if (created || !cut || r.detail.rfind("fdatasync", 0) == 0) retire_current();
    return r.detail;
  }
  size_ += out.size();
  live_[current_] += reports.size();
  if (size_ >= kReportSegmentBytes) retire_current();
  return {};
}

std::string ReportWriter::done(std::uint64_t segment) {
  auto it = live_.find(segment);
  if (it == live_.end()) return {};
  if (it->second > 0) --it->second;
  // The segment being appended to goes too: the next batch starts a new one. (Reports just
  // appended count here before the event loop indexes them, so they keep it.)
  if (it->second == 0) return drop(segment);
  return {};
}

// --- ReportIndex ------------------------------------------------------------------------------

std::optional<ReportIndex> ReportIndex::open(const fs::path& spool_dir,
                                             std::vector<std::string>& problems,
                                             std::string& error) {
  const fs::path dir = spool_dir / "reports", segments = spool_dir / "report-segments";
  for (const fs::path& d : {dir, segments}) {
    if (auto r = spool_fs::make_dir(d); !r.ok()) {
      error = r.detail;
      return std::nullopt;
    }
  }
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    error = spool_fs::failure("opendir", dir, errno).detail;
    return std::nullopt;
  }
  ReportIndex index;
  index.writer_ = std::shared_ptr<ReportWriter>(new ReportWriter(spool_dir));
  for (;;) {
    errno = 0;
    const dirent* e = ::readdir(d);
    if (!e) {
      if (errno != 0) {
        error = spool_fs::failure("readdir", dir, errno).detail;
        ::closedir(d);
        return std::nullopt;
      }
      break;
    }
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (!parse_report_file_name(name)) {
      problems.push_back("reports/" + name + ": not a report's name, left alone");
      continue;
    }
    index.add(name);
  }
  ::closedir(d);

  // The report segments, oldest first.
  std::vector<std::string> names;
  d = ::opendir(segments.c_str());
  if (!d) {
    error = spool_fs::failure("opendir", segments, errno).detail;
    return std::nullopt;
  }
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  ReportWriter& writer = *index.writer_;
  for (const std::string& name : names) {
    const auto seq = parse_segment_name(name);
    if (!seq) {
      problems.push_back("report-segments/" + name + ": not a segment's name, left alone");
      continue;
    }
    writer.next_seq_ = std::max(writer.next_seq_, *seq + 1);
    const fs::path path = segments / name;
    std::string bytes;
    if (auto r = spool_fs::read_file(path, kMaxReportSegmentBytes, bytes); !r.ok()) {
      problems.push_back("report-segments/" + name + ": left alone, not read: " + r.detail);
      continue;
    }
    const SegmentScan scan = scan_segment(bytes);
    if (scan.bad_magic) {
      if (kSegmentMagic.substr(0, bytes.size()) == bytes) {
        ::unlink(path.c_str());  // made, but its first batch never reached the disk
      } else {
        problems.push_back("report-segments/" + name + ": " + scan.problem + ", left alone");
      }
      continue;
    }
    std::size_t live = 0;
    for (const SegmentRecord& rec : scan.records) {
      const std::size_t eol = rec.payload.find('\n');
      const std::string report_name(rec.payload.substr(0, eol));
      if (rec.type != 'E' || eol == std::string_view::npos ||
          !index.add(report_name,
                     ReportPlace{*seq, rec.offset + eol + 1, rec.payload.size() - eol - 1})) {
        problems.push_back("report-segments/" + name + ": the record at byte " +
                           std::to_string(rec.offset) + " is not a new report, skipped");
        continue;
      }
      ++live;
    }
    if (!scan.problem.empty()) {
      // A crash during an append: that batch's tokens were never given out.
      const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
      const bool cut =
          fd >= 0 && ::ftruncate(fd, static_cast<off_t>(scan.good_bytes)) == 0 && ::fsync(fd) == 0;
      if (fd >= 0) ::close(fd);
      problems.push_back("report-segments/" + name + ": " + scan.problem + " at byte " +
                         std::to_string(scan.good_bytes) +
                         (cut ? ": cut there" : ": could not cut it"));
    }
    if (live == 0) {
      ::unlink(path.c_str());
      continue;
    }
    writer.live_[*seq] = live;
  }
  return index;
}

bool ReportIndex::add(const std::string& name, const ReportPlace& place) {
  auto parsed = parse_report_file_name(name);
  if (!parsed || by_digest_.count(parsed->digest) || by_age_.count(name)) return false;
  by_age_.emplace(name, place);
  by_digest_.emplace(std::move(parsed->digest), name);
  return true;
}

std::vector<std::string> ReportIndex::prune(std::int64_t now, std::int64_t lifetime_seconds,
                                            std::size_t max_reports,
                                            std::vector<std::uint64_t>* segments) {
  std::vector<std::string> gone;
  while (!by_age_.empty()) {
    const auto& [oldest, place] = *by_age_.begin();
    const auto parsed = parse_report_file_name(oldest);  // every name here parses
    const bool expired = parsed->created + lifetime_seconds <= now;
    if (!expired && by_age_.size() <= max_reports) break;
    by_digest_.erase(parsed->digest);
    if (place.segment == 0)
      gone.push_back(oldest);
    else if (segments)
      segments->push_back(place.segment);
    by_age_.erase(by_age_.begin());
  }
  return gone;
}

std::optional<ReportPlace> ReportIndex::place(const std::string& name) const {
  auto it = by_age_.find(name);
  if (it == by_age_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> ReportIndex::find(std::string_view token) const {
  auto it = by_digest_.find(report_token_digest(token));
  if (it == by_digest_.end()) return std::nullopt;
  return it->second;
}

}  // namespace ipconfirm::responder

// Stored reports for the web pages (GET /r/TOKEN, responder/report_pages.hpp), appended to
// report segments under <spool>/report-segments/, so that a sender reads the report in a
// browser, or fetches its JSON, with the token that the 250 line and the reply mail give.
//
// Tokens: 16 bytes (128 bits) from OpenSSL's RAND_bytes, which draws on the system's CSPRNG,
// written as URL-safe base64 without padding (22 characters). Nothing else goes into a token:
// not the queue id, not the time, not the address.
//
// The store keeps no token. A report's file is named after the SHA-256 of its token, and the
// index finds a request's report by the digest of the token it asks for, so that whatever a
// lookup's timing reveals is about digests (which lead to no token), and a leaked listing of
// the folder gives no address of any page.
//
// Names: <seconds>.<microseconds>.<digest>, the time it was written (12 and 6 digits, so that
// names sort by age), `digest` 64 lower-case hex digits. A stored report (version 1):
//   "ipconfirm-report 1\n" "json <decimal length>\n" <the report JSON> "\n" "crc32 <8 hex>\n"
// (CRC-32 as zlib computes it, of every byte before the crc32 line). One that fails these
// checks reads as absent.
//
// Report segments: report-segments/<16-digit sequence number>, in the spool's segment record
// format (spool_segment.hpp), one E record per report whose payload is its name, "\n", and the
// stored report above. ReportWriter (the committer's) appends a batch of reports in one write
// and makes them durable with one fdatasync(2) (a new segment: and an fsync of its folder),
// before the 250 that names their tokens. A crash during an append leaves a record cut short or
// unsynced at the end, whose token was never given out: ReportIndex::open() reads each segment
// up to its last whole record and cuts it there.
//
// Reports stored before report segments existed, one file each, reports/<name> (the content
// above), are still indexed, read and unlinked (write_report_unsynced() writes one: for tests
// and tools).
//
// Expiry and the bound: ReportIndex (owned by the event loop) forgets the reports older than
// the lifetime, and the oldest beyond the most it may hold. A forgotten report is absent at
// once, whether its bytes are still on disk or not: an expired token takes exactly the path of
// one that never existed. Their space goes by whole files: the writer unlinks a segment once
// every report in it was forgotten (ReportWriter::done), and starts a new segment once the
// current one passes 8 MiB or an hour, so that an expired report's bytes stay on disk at most
// about an hour after its expiry.
//
// What this file does not do: HTTP, rendering, or deciding when to prune (the service does).
// No Asio, no threads: the free functions may run on any thread; a ReportIndex has one owner.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ipconfirm::responder {

inline constexpr std::size_t kReportTokenBytes = 16;
inline constexpr std::size_t kReportTokenLength = 22;  // base64url of 16 bytes, no padding

// A fresh token. Throws std::runtime_error when the CSPRNG fails (it does not on Linux once
// the kernel's pool is initialised).
std::string new_report_token();
// True when `token` has a token's form: 22 characters of A-Z a-z 0-9 - _. The form only: says
// nothing of whether such a report exists.
bool is_report_token(std::string_view token);
// The SHA-256 of `token`, 64 lower-case hex digits.
std::string report_token_digest(std::string_view token);

// "<seconds, 12 digits>.<microseconds, 6 digits>.<digest>" for a report written at
// `created_us` (microseconds since the epoch); and its inverse (nullopt for any other name).
std::string report_file_name(std::int64_t created_us, std::string_view digest);
struct ReportFileName {
  std::int64_t created = 0;  // seconds since the epoch
  std::string digest;
};
std::optional<ReportFileName> parse_report_file_name(std::string_view name);

// The file format above, and its inverse: nullopt with `why` on a wrong magic line, a
// truncation, a checksum mismatch or a trailing byte.
// `crc`, when given, receives crc32_ieee of the whole result (for its segment record).
std::string serialize_stored_report(std::string_view json, std::uint32_t* crc = nullptr);
std::optional<std::string> parse_stored_report(std::string_view bytes, std::string& why);

struct StoredReport {
  std::string name;  // report_file_name(...)
  std::string json;  // the report's JSON, as served at /r/TOKEN.json
};

// Where a stored report is: in its own file reports/<name> (segment 0), or `length` bytes at
// `offset` of report-segments/<segment>.
struct ReportPlace {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

// Any thread. Writes `spool_dir`/tmp/report.<name> (no fsync) and renames it to
// `spool_dir`/reports/<name>: a report as stored before report segments. "" when done, else the
// failing call and its errno text (then nothing is left behind). Durable only after a syncfs of
// that file system.
std::string write_report_unsynced(const std::filesystem::path& spool_dir,
                                  const StoredReport& report);
// Any thread. The JSON of the report stored as `name`; nullopt when the name is not a report's,
// the file is missing, not a regular file, too large, or fails the checks.
std::optional<std::string> read_stored_report(const std::filesystem::path& spool_dir,
                                              std::string_view name);
// The same for a report at `place` (its own file when place.segment is 0).
std::optional<std::string> read_stored_report(const std::filesystem::path& spool_dir,
                                              std::string_view name, const ReportPlace& place);
// Any thread. Removes the file; "" when done or already gone, else the failing call.
std::string unlink_stored_report(const std::filesystem::path& spool_dir, std::string_view name);

// The disk side of the report segments: appends, syncs, and the removal of a segment whose
// reports were all forgotten. Made by ReportIndex::open(); used on one thread (the committer).
class ReportWriter {
 public:
  ~ReportWriter();
  ReportWriter(const ReportWriter&) = delete;
  ReportWriter& operator=(const ReportWriter&) = delete;

  // Appends every report to the current segment (a new one first when there is none, or when
  // the current one is full or an hour old) in one write and makes them durable with one
  // fdatasync. "" with `places` (one per report) when done; else the failing call and errno
  // text, and the segment is cut back so that a restart reads none of the batch.
  std::string write_batch(const std::vector<const StoredReport*>& reports,
                          std::vector<ReportPlace>& places);
  // One report of `segment` was forgotten (ReportIndex::prune); the segment is unlinked with its
  // last one. "" or the failing call.
  std::string done(std::uint64_t segment);

  const std::filesystem::path& spool_dir() const { return spool_dir_; }

 private:
  friend class ReportIndex;
  explicit ReportWriter(std::filesystem::path spool_dir) : spool_dir_(std::move(spool_dir)) {}
  std::filesystem::path segment_path(std::uint64_t seq) const;
  void retire_current();
  std::string drop(std::uint64_t seq);

  std::filesystem::path spool_dir_;
  int fd_ = -1;                                      // the current segment's
  std::uint64_t current_ = 0;                        // 0: none
  std::uint64_t size_ = 0;                           // of the current segment
  std::chrono::steady_clock::time_point started_{};  // when the current segment was made
  std::uint64_t next_seq_ = 1;
  std::map<std::uint64_t, std::size_t> live_;  // segment -> reports in it not yet forgotten
};

// Which reports exist, by digest and by age. One owner (the event loop).
class ReportIndex {
 public:
  // Creates `spool_dir`/reports/ and report-segments/ (mode 0700) if needed, indexes every file
  // in reports/ whose name is a report's (other names are listed in `problems` and left alone)
  // and every report of the segments (each read up to its last whole record and cut there; a
  // segment with none is removed), and makes the writer. nullopt with `error` when a folder
  // cannot be created or read.
  static std::optional<ReportIndex> open(const std::filesystem::path& spool_dir,
                                         std::vector<std::string>& problems, std::string& error);

  // Adds a report just made durable (`name` from report_file_name) at `place`. A name already
  // there, or not a report's, is ignored (false).
  bool add(const std::string& name, const ReportPlace& place = {});
  // Forgets every report written `lifetime_seconds` or more before `now`, then the oldest ones
  // while more than `max_reports` remain. Returns the names of those in files of their own,
  // oldest first (to unlink), and adds the segment of each one in a segment to `*segments`
  // when given (for ReportWriter::done).
  std::vector<std::string> prune(std::int64_t now, std::int64_t lifetime_seconds,
                                 std::size_t max_reports,
                                 std::vector<std::uint64_t>* segments = nullptr);
  // The name of the report for `token`, or nullopt when there is none. Call prune() first: a
  // report past its lifetime is found until then.
  std::optional<std::string> find(std::string_view token) const;
  // Where the report `name` is; nullopt when it is not indexed.
  std::optional<ReportPlace> place(const std::string& name) const;

  std::size_t size() const { return by_age_.size(); }
  // The writer of the report segments, for the committer thread.
  const std::shared_ptr<ReportWriter>& writer() const { return writer_; }

 private:
  ReportIndex() = default;
  std::map<std::string, ReportPlace> by_age_;     // names sort by creation time
  std::map<std::string, std::string> by_digest_;  // digest -> name
  std::shared_ptr<ReportWriter> writer_;
};

}  // namespace ipconfirm::responder

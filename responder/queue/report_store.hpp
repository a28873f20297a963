// Stored reports for the web pages (GET /r/TOKEN, responder/report_pages.hpp): one file per
// report under <spool>/reports/, so that a sender reads the report in a browser, or fetches its
// JSON, with the token that the 250 line and the reply mail give.
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
// Files: reports/<seconds>.<microseconds>.<digest>, the time it was written (12 and 6 digits, so
// that names sort by age), `digest` 64 lower-case hex digits. Content (version 1):
//   "ipconfirm-report 1\n" "json <decimal length>\n" <the report JSON> "\n" "crc32 <8 hex>\n"
// (CRC-32 as zlib computes it, of every byte before the crc32 line). A file that fails these
// checks reads as absent.
//
// Durability: write_report_unsynced() writes tmp/report.<name> and renames it into reports/,
// without a sync of its own: the caller (the spool's committer, responder/service.cpp) makes it
// durable with the one syncfs(2) of the batch it belongs to, before the 250 that names its
// token, so that a stored report costs no fsync. A crash before that sync can leave a renamed
// file whose bytes never reached the disk: it fails the checks and reads as absent, and its
// token was never given out.
//
// Expiry and the bound: ReportIndex (owned by the event loop) forgets the reports older than
// the lifetime, and the oldest beyond the most it may hold, and returns their names for another
// thread to unlink. A forgotten report is absent at once, whether its file is still there or
// not: an expired token takes exactly the path of one that never existed.
//
// What this file does not do: HTTP, rendering, or deciding when to prune (the service does).
// No Asio, no threads: the free functions may run on any thread; a ReportIndex has one owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
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
std::string serialize_stored_report(std::string_view json);
std::optional<std::string> parse_stored_report(std::string_view bytes, std::string& why);

struct StoredReport {
  std::string name;  // report_file_name(...)
  std::string json;  // the report's JSON, as served at /r/TOKEN.json
};

// Any thread. Writes `spool_dir`/tmp/report.<name> (no fsync) and renames it to
// `spool_dir`/reports/<name>. "" when done, else the failing call and its errno text (then
// nothing is left behind). Durable only after a syncfs of that file system.
std::string write_report_unsynced(const std::filesystem::path& spool_dir,
                                  const StoredReport& report);
// Any thread. The JSON of the report stored as `name`; nullopt when the name is not a report's,
// the file is missing, not a regular file, too large, or fails the checks.
std::optional<std::string> read_stored_report(const std::filesystem::path& spool_dir,
                                              std::string_view name);
// Any thread. Removes the file; "" when done or already gone, else the failing call.
std::string unlink_stored_report(const std::filesystem::path& spool_dir, std::string_view name);

// Which reports exist, by digest and by age. One owner (the event loop).
class ReportIndex {
 public:
  // Creates `spool_dir`/reports/ (mode 0700) if needed and indexes every file there whose name
  // is a report's (other names are listed in `problems` and left alone). nullopt with `error`
  // when the folder cannot be created or read.
  static std::optional<ReportIndex> open(const std::filesystem::path& spool_dir,
                                         std::vector<std::string>& problems, std::string& error);

  // Adds a report just made durable (`name` from report_file_name). A name already there, or
  // not a report's, is ignored.
  void add(const std::string& name);
  // Forgets every report written `lifetime_seconds` or more before `now`, then the oldest ones
  // while more than `max_reports` remain, and returns their names, oldest first (to unlink).
  std::vector<std::string> prune(std::int64_t now, std::int64_t lifetime_seconds,
                                 std::size_t max_reports);
  // The file name of the report for `token`, or nullopt when there is none. Call prune() first:
  // a report past its lifetime is found until then.
  std::optional<std::string> find(std::string_view token) const;

  std::size_t size() const { return by_age_.size(); }

 private:
  ReportIndex() = default;
  std::set<std::string> by_age_;                  // file names: they sort by creation time
  std::map<std::string, std::string> by_digest_;  // digest -> file name
};

}  // namespace ipconfirm::responder

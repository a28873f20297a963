// Small POSIX file helpers shared by the spool and the Maildir writer: write a whole file and
// fsync it, fsync a directory, read a bounded file, map errno to SpoolError.
//
// The segment helpers (append_all, datasync, read_range) work on descriptors and byte ranges.
//
// Every helper retries on EINTR, loops over short writes and reads, opens with O_CLOEXEC and
// reports the failing call with its errno text instead of throwing. They do not decide names or
// layout; spool.hpp and maildir.hpp do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "responder/queue/spool.hpp"

namespace ipconfirm::responder::spool_fs {

struct Result {
  SpoolError error = SpoolError::none;
  std::string detail;  // "fsync tmp/x: Input/output error" when error != none
  bool ok() const { return error == SpoolError::none; }
};

// ENOSPC and EDQUOT are no_space, ENOENT is not_found, everything else is io.
SpoolError from_errno(int err);
Result failure(std::string_view what, const std::filesystem::path& path, int err);

// Creates `path` exclusively (O_EXCL, mode 0600), writes all of `bytes`, fsyncs and closes it.
// On any failure the file is unlinked. EEXIST is reported as io with that errno in `*err_out`
// (when given) so that callers can pick another name.
Result write_new_file_synced(const std::filesystem::path& path, std::string_view bytes,
                             int* err_out = nullptr);

// Like write_new_file_synced, but without the fsync: the caller makes the data durable later,
// for many files at once, with sync_filesystem().
Result write_new_file(const std::filesystem::path& path, std::string_view bytes,
                      int* err_out = nullptr);

// syncfs(2) on the file system that holds `dir`: everything written there so far, data and
// metadata, is on stable storage when it returns none. One call replaces one fsync per file
// for a batch of new files (group commit).
Result sync_filesystem(const std::filesystem::path& dir);

// Opens the directory and fsyncs it, so that entries created, renamed or removed in it persist.
Result fsync_dir(const std::filesystem::path& dir);

// mkdir with mode 0700; an existing directory is fine.
Result make_dir(const std::filesystem::path& dir);

// Reads the whole file. not_found when it does not exist; corrupt when it is a symbolic link,
// not a regular file, or larger than `max_bytes` (it cannot be one of ours); io on a read error.
// Never blocks on a FIFO or a device: the file is opened non-blocking and checked first.
Result read_file(const std::filesystem::path& path, std::size_t max_bytes, std::string& out);

// Writes all of `bytes` to `fd` (opened O_APPEND: at its end), looping over short writes.
// `path` only names the file in the error; `err_out`, when given, receives its errno.
Result append_all(int fd, std::string_view bytes, const std::filesystem::path& path,
                  int* err_out = nullptr);

// fdatasync(2): the file's data, and the metadata needed to read it (its size), are on stable
// storage when it returns none.
Result datasync(int fd, const std::filesystem::path& path);

// Reads `length` bytes at `offset` of the file. not_found when the file does not exist;
// corrupt when it is not a regular file or shorter than the range; io on a read error. Opened
// non-blocking, like read_file.
Result read_range(const std::filesystem::path& path, std::uint64_t offset, std::uint64_t length,
                  std::string& out);

// Opens an existing regular file for reading and appending (O_RDWR | O_APPEND, no link
// followed, non-blocking open). Returns the descriptor, or -1 with `result` set.
int open_for_append(const std::filesystem::path& path, Result& result);

}  // namespace ipconfirm::responder::spool_fs

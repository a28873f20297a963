// The durable outbound queue: one file per reply that ipconfirm has promised to send.
//
// Once the receiver has answered 250 to a message, the reply it owes must survive kill -9 and
// power loss. Every write therefore follows the discipline of Postfix, qmail and OpenSMTPD:
// write a temporary file in <dir>/tmp/, make it durable, rename it into <dir>/queue/<id>, fsync
// <dir>/queue/. A single entry is fsynced; a batch (write_batch) is made durable with one
// syncfs(2) for all its files. Only when enqueue() or commit() returns SpoolError::none may the
// caller answer 250; any other result (a full disk, an I/O or sync error, a full queue) must
// become 451 4.3.0.
//
// Layout under Options::dir (created on open):
//   tmp/      files being written; whatever is left here at open() is half-written and removed
//   queue/    one file per entry, named by its id
//   corrupt/  entries that failed their checks at open(), moved aside for a human to look at
//   control/  requests from `ipconfirm queue flush|delete` while a server owns the spool: one
//             small file each ("flush\n" or "delete <id>\n"), written under a name starting
//             with '.' and renamed, so the owner only ever sees whole requests
//   lock      flock()ed for the lifetime of the Spool: a second process cannot open the spool
//
// Only the owner (the process holding the lock) changes queue/. Other processes may read it
// (peek(): every file there is complete, thanks to the rename) and drop requests into control/
// (request()); the owner applies them (take_requests(), flush(), remove()) and unlinks each.
//
// Entry file format (version 1). A magic line, then named length-prefixed fields in a fixed
// order, then a trailer with the CRC-32 (IEEE 802.3, as in zlib) of every byte before it:
//   "ipconfirm-spool 1\n"
//   for each of id, recipient, sender, origin, created, next-attempt, attempts, last-error, data:
//     "<name> <decimal byte length>\n" <exactly that many bytes> "\n"
//   "crc32 <8 lower-case hex digits>\n"   and nothing after it.
// The lengths catch truncation, the checksum catches flipped bytes, the magic line catches
// foreign files; any of these sends the file to corrupt/ at open() (reported, never fatal) and
// makes load() answer SpoolError::corrupt.
//
// What this file does not do: it does not decide when to retry (see retry.hpp) nor deliver
// (see delivery.hpp); it never deletes an entry on its own. It does no Asio and no threads.
//
// Thread safety: thread-compatible. A Spool has one owner; calls on one Spool must not overlap.
// Distinct Spool objects on distinct directories are independent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ipconfirm::responder {

struct QueueEntry {
  std::string id;         // assigned by enqueue: filename-safe, unique, sortable by time
  std::string recipient;  // the reply's envelope recipient (one per entry)
  std::string sender;     // envelope sender of the reply; "" = null sender <>
  std::string data;       // the full reply message, CRLF endings
  std::string origin;     // free text for logs/queue list ("from 192.0.2.1 msg <id>")
  int attempts = 0;
  std::int64_t created = 0, next_attempt = 0;  // epoch seconds
  std::string last_error;
};

enum class SpoolError {
  none,       // done, and durable on disk
  io,         // an I/O error (EIO, a failed fsync, a missing directory, ...): answer 451 4.3.0
  no_space,   // ENOSPC or EDQUOT: answer 451 4.3.0 (or 452 4.3.1)
  full,       // Options::max_entries reached: answer 451 4.3.0 "queue full"
  corrupt,    // the entry's file fails the format checks
  not_found,  // no such entry, or the id is not a valid entry name
};
std::string_view to_string(SpoolError);

struct SpoolOpenReport {
  std::size_t recovered = 0;          // valid entries found in queue/ and indexed
  std::size_t temp_removed = 0;       // half-written files removed from tmp/
  std::size_t set_aside = 0;          // files moved from queue/ to corrupt/
  std::vector<std::string> problems;  // one human-readable line per file set aside or skipped
};

// True if `id` can name an entry: 1 to 64 characters of [A-Za-z0-9._-], not starting with '.'.
// Ids that fail this ("../x", "a/b", "") are never turned into paths.
bool is_valid_spool_id(std::string_view id);

class Spool {
 public:
  struct Options {
    std::filesystem::path dir;
    std::size_t max_entries = 10000;
  };

  // Creates dir and its subfolders if needed (mode 0700), takes the lock, removes half-written
  // temporary files, moves corrupt entries aside into dir/corrupt/ (each one reported in
  // `report`, never fatal) and builds the in-memory index from queue/. Returns nullopt with
  // `error` set only when the spool cannot be used at all (a directory cannot be created or
  // read, or another process holds the lock).
  static std::optional<Spool> open(const Options&, SpoolOpenReport& report, std::string& error);

  Spool(Spool&&) noexcept;
  Spool& operator=(Spool&&) noexcept;
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;
  ~Spool();

  struct Enqueued {
    SpoolError error = SpoolError::none;
    std::string id;      // set when error == none
    std::string detail;  // the failing system call and errno text otherwise
  };
  // Assigns a fresh id, sets created = now and, when entry.next_attempt is 0, next_attempt =
  // now; writes the entry durably. Returns none only once the file and its directory entry are
  // on stable storage. On any error nothing is left behind and the index is unchanged.
  Enqueued enqueue(QueueEntry entry, std::int64_t now);

  // enqueue() for several entries at once (group commit): the same guarantees for each, one
  // result per entry in the same order, but queue/ is fsynced once for the whole batch.
  std::vector<Enqueued> enqueue_batch(std::vector<QueueEntry> entries, std::int64_t now);

  // enqueue_batch in three steps, so that the disk work can run on another thread while the
  // owner goes on serving (responder/service.cpp):
  //  1. reserve() (owner): assigns ids and times, checks the cap (counting reserved entries);
  //  2. write_batch() (any thread; touches only files under `dir`): writes every reserved
  //     entry into tmp/ without a per-file fsync, makes them all durable with one syncfs(2),
  //     renames them into queue/ and fsyncs queue/ once;
  //  3. commit() (owner): indexes what was written and releases the reservations; returns the
  //     results and leaves the entries (with their ids) in the batch for the caller.
  // An entry is durable, and may be acknowledged, only after commit() returned none for it. A
  // crash before the renames leaves files only in tmp/, which open() removes: they were never
  // acknowledged.
  struct Batch {
    std::vector<QueueEntry> entries;
    std::vector<Enqueued> results;  // error none: reserved, then written
  };
  Batch reserve(std::vector<QueueEntry> entries, std::int64_t now);
  // `also_durable`: the caller wrote other files under `dir` for this batch (stored reports,
  // report_store.hpp) that the same syncfs must make durable: it is then made even when no
  // entry was written. Returns "" when that sync succeeded or none was needed, else its error
  // (the entries have theirs in the batch).
  static std::string write_batch(const std::filesystem::path& dir, Batch& batch,
                                 bool also_durable = false);
  std::vector<Enqueued> commit(Batch& batch);

  // Durably rewrites attempts, next_attempt and last_error of the stored entry entry.id; the
  // other fields are taken from disk, not from `entry`. not_found for an unknown or invalid id.
  SpoolError update(const QueueEntry& entry);

  // update() in two halves, so that the rewrite (a write, two syncs and a rename) runs off the
  // event loop: reschedule() (owner) sets the entry's next attempt in the index (not_found for
  // an unknown or invalid id); rewrite_entry() (any thread) stores the new fields in its file
  // and returns "" or the failing call and errno text. A file already gone (delivered or
  // deleted meanwhile) is left gone, and no error. Run rewrite_entry() on the thread that runs
  // unlink_entry() for the same spool, so that the two never overlap on one file. A crash
  // before the rewrite only leaves the older schedule on disk: an earlier retry.
  struct Rewrite {
    std::string id;
    std::int64_t next_attempt = 0;
    std::optional<int> attempts;            // unchanged when empty
    std::optional<std::string> last_error;  // unchanged when empty
  };
  SpoolError reschedule(const std::string& id, std::int64_t next_attempt);
  static std::string rewrite_entry(const std::filesystem::path& dir, const Rewrite& rewrite);

  // Unlinks the entry. queue/ is not fsynced: delivery is at-least-once, so an unlink that a
  // crash undoes only sends that reply again. not_found for an unknown or invalid id.
  SpoolError remove(const std::string& id);

  // remove() in two halves, so that the unlink, which can wait for the disk (freeing a file's
  // blocks may mean a discard), runs off the event loop: forget() (owner) drops the entry from
  // the index (not_found for an unknown or invalid id); unlink_entry() (any thread) removes its
  // file and returns "" or the failing call and errno text (a file already gone is no error).
  // A crash between the two, or a failed unlink, only sends that reply again after a restart,
  // as with remove().
  SpoolError forget(const std::string& id);
  static std::string unlink_entry(const std::filesystem::path& dir, const std::string& id);

  // Makes every entry due at `now`: in the index always, on disk (like update()) where the
  // rewrite succeeds. Returns how many were rewritten on disk.
  std::size_t flush(std::int64_t now);

  // Reads, unlinks and returns the pending requests in control/, oldest name first. A request
  // that cannot be read is dropped with a line in `problems`.
  std::vector<std::string> take_requests(std::vector<std::string>& problems);

  // True when another process (a running server) holds the lock of the spool at `dir`.
  static bool in_use(const std::filesystem::path& dir);

  // Every entry in dir/queue/ that loads, ordered by id, read without the lock and without
  // changing anything: safe while a server owns the spool. Files that vanish while being read
  // (delivered meanwhile) or fail the checks are left out.
  static std::vector<QueueEntry> peek(const std::filesystem::path& dir);

  // Writes `text` (e.g. "flush\n") as a new request into dir/control/ for the owner to apply.
  // Returns the request's path, or nullopt with `error` set.
  static std::optional<std::filesystem::path> request(const std::filesystem::path& dir,
                                                      std::string_view text, std::string& error);

  // Reads and verifies one entry. nullopt with *err = not_found (unknown or invalid id),
  // corrupt (fails the checks) or io.
  std::optional<QueueEntry> load(const std::string& id, SpoolError* err = nullptr) const;

  // Every entry that loads, metadata and data, ordered by id (that is, by enqueue time).
  // Entries that fail to load are left out; load() them one by one to see why.
  std::vector<QueueEntry> list() const;

  // Ids with next_attempt <= now, ordered by id. From the index: no disk access.
  // At most `limit` of them (the oldest), so that a long queue costs no full scan per wake.
  std::vector<std::string> due(std::int64_t now,
                               std::size_t limit = static_cast<std::size_t>(-1)) const;

  std::size_t size() const { return index_.size(); }

  // The failing system call and errno text of the last update()/remove() that did not return
  // none; empty after one that did.
  const std::string& last_detail() const { return last_detail_; }

  const std::filesystem::path& dir() const { return dir_; }

 private:
  struct IndexEntry {
    std::int64_t next_attempt = 0;
  };
  Spool() = default;
  // Writes tmp/<id>, fsyncs, renames to queue/<id>, fsyncs queue/. `renamed` tells whether the
  // new file replaced the old name (so a later failure left it visible but maybe not durable).
  // With sync_dir false the caller fsyncs queue/ itself (once for a batch).
  SpoolError write_entry(const QueueEntry& entry, std::string& detail, bool& renamed,
                         bool sync_dir = true);
  static SpoolError write_entry_at(const std::filesystem::path& dir, const QueueEntry& entry,
                                   std::string& detail, bool& renamed, bool sync_dir);
  std::string new_id(std::int64_t now);

  std::filesystem::path dir_;
  std::size_t max_entries_ = 0;
  int lock_fd_ = -1;
  std::int64_t last_stamp_ = 0;  // microseconds of the last id, to keep ids increasing
  std::map<std::string, IndexEntry> index_;
  std::size_t reserved_ = 0;  // entries between reserve() and commit()
  std::string last_detail_;
};

// The serialized form of an entry (the format above), and its inverse. parse_spool_entry
// returns nullopt and sets `why` on any truncation, checksum mismatch, bad number or trailing
// byte. Exposed for tests and for tools that inspect the queue.
std::string serialize_spool_entry(const QueueEntry&);
std::optional<QueueEntry> parse_spool_entry(std::string_view bytes, std::string& why);

}  // namespace ipconfirm::responder

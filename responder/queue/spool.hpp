// The durable outbound queue: every reply that ipconfirm has promised to send.
//
// Once the receiver has answered 250 to a message, the reply it owes must survive kill -9 and
// power loss. New entries are appended, a batch at a time, to a segment file shared by many
// (spool_segment.hpp: framed records with a CRC-32 each), and the batch is made durable with
// one fdatasync(2) of that file (and, for a segment just created, one fsync of segments/).
// Only when enqueue() or commit() returns SpoolError::none may the caller answer 250; any other
// result (a full disk, an I/O or sync error, a full queue) must become 451 4.3.0.
//
// An entry that is delivered, bounced, expired or deleted gets a D (done) record in its
// segment instead of an unlink; a segment whose entries are all done is unlinked. An entry whose
// schedule changes (a retry, a flush) moves into a file of its own, queue/<id>, written the
// classic way (tmp/, fsync, rename, fsync queue/), and its segment gets a D record for the old
// copy: retries are rare, their rewrites then reuse the one-file-per-entry code, and a reply
// that is retried for days does not keep a whole segment alive. queue/ also holds the entries
// of a spool written before segments existed (version 1 files, below): open() reads them.
//
// Layout under Options::dir (created on open):
//   segments/ segment files, segments/<16-digit sequence number>, appended to in order
//   tmp/      files being written; whatever is left here at open() is half-written and removed
//   queue/    one file per entry, named by its id: moved out of a segment, or from an old spool
//   corrupt/  files that failed their checks at open(), moved aside for a human to look at
//   control/  requests from `ipconfirm queue flush|delete` while a server owns the spool: one
//             small file each ("flush\n" or "delete <id>\n"), written under a name starting
//             with '.' and renamed, so the owner only ever sees whole requests
//   lock      flock()ed for the lifetime of the Spool: a second process cannot open the spool
//
// Only the owner (the process holding the lock) changes segments/ and queue/. Other processes
// may read them (peek(): a segment is read up to its last whole record, a file in queue/ is
// complete thanks to the rename) and drop requests into control/ (request()); the owner applies
// them (take_requests(), flush(), remove()) and unlinks each.
//
// Recovery (open()): every segment is read up to its first record that is cut short or fails
// its checksum (what a crash during an append leaves; never acknowledged, since the 250 waits
// for the fdatasync after it) and cut there; its entries minus its D records, plus the files in
// queue/ (a file there wins over a segment copy of the same id: the move wrote it first), are
// the queue. A segment left with no live entry is unlinked; new entries go to a new segment.
//
// Entry format (version 1), the payload of an E record and the content of a file in queue/. A
// magic line, then named length-prefixed fields in a fixed order, then a trailer with the
// CRC-32 (IEEE 802.3, as in zlib) of every byte before it:
//   "ipconfirm-spool 1\n"
//   for each of id, recipient, sender, origin, created, next-attempt, attempts, last-error, data:
//     "<name> <decimal byte length>\n" <exactly that many bytes> "\n"
//   "crc32 <8 lower-case hex digits>\n"   and nothing after it.
// The lengths catch truncation, the checksum catches flipped bytes, the magic line catches
// foreign files; any of these sends a file of queue/ to corrupt/ at open() (reported, never
// fatal), skips a segment record (reported), and makes load() answer SpoolError::corrupt.
//
// The disk work is split between two objects so that it can run off the event loop: the Spool
// (the index: ids, schedules, where each entry is; reads) and its SpoolWriter (appends, syncs,
// done marks, moves, segment removal), which the server hands to its committer thread.
//
// What this file does not do: it does not decide when to retry (see retry.hpp) nor deliver
// (see delivery.hpp); it never deletes an entry on its own. It does no Asio and no threads.
//
// Thread safety: thread-compatible. A Spool has one owner; calls on one Spool must not overlap.
// Its SpoolWriter may be used on another thread, but then only there: the Spool's own
// convenience calls that write (enqueue, enqueue_batch, update, remove, flush) use it on the
// caller's thread, so a server that hands the writer to another thread must not call them.
// Distinct Spool objects on distinct directories are independent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
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
  corrupt,    // the entry fails the format checks
  not_found,  // no such entry, or the id is not a valid entry name
};
std::string_view to_string(SpoolError);

struct SpoolOpenReport {
  std::size_t recovered = 0;          // valid entries found (segments and queue/) and indexed
  std::size_t temp_removed = 0;       // half-written files removed from tmp/
  std::size_t set_aside = 0;          // files moved from queue/ or segments/ to corrupt/
  std::size_t segments = 0;           // segment files read
  std::size_t truncated = 0;          // segments cut back to their last whole record
  std::vector<std::string> problems;  // one human-readable line per file set aside or skipped
};

// True if `id` can name an entry: 1 to 64 characters of [A-Za-z0-9._-], not starting with '.'.
// Ids that fail this ("../x", "a/b", "") are never turned into paths.
bool is_valid_spool_id(std::string_view id);

// Where an entry's bytes are: the payload of an E record in segments/<segment> (`offset` and
// `length` of the payload in the file), or, with segment 0, a file of its own in queue/.
struct SpoolPlace {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

class SpoolWriter;

class Spool {
 public:
  struct Options {
    std::filesystem::path dir;
    std::size_t max_entries = 10000;
    // A new segment is started once the current one has passed this size. Smaller segments
    // are freed sooner (a segment goes only when all its entries are done); each new one costs
    // one more fsync of segments/.
    std::uint64_t segment_bytes = 8u << 20;
  };

  // Creates dir and its subfolders if needed (mode 0700), takes the lock, removes half-written
  // temporary files, reads the segments (cutting each back to its last whole record), moves
  // corrupt files aside into dir/corrupt/ (each one reported in `report`, never fatal) and
  // builds the in-memory index from segments/ and queue/. Returns nullopt with `error` set only
  // when the spool cannot be used at all (a directory cannot be created or read, or another
  // process holds the lock).
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
  // now; writes the entry durably. Returns none only once its record is on stable storage. On
  // any error nothing that a restart would read is left behind and the index is unchanged.
  Enqueued enqueue(QueueEntry entry, std::int64_t now);

  // enqueue() for several entries at once (group commit): the same guarantees for each, one
  // result per entry in the same order, one append and one fdatasync for the whole batch.
  std::vector<Enqueued> enqueue_batch(std::vector<QueueEntry> entries, std::int64_t now);

  // enqueue_batch in three steps, so that the disk work can run on another thread while the
  // owner goes on serving (responder/service.cpp):
  //  1. reserve() (owner): assigns ids and times, checks the cap (counting reserved entries);
  //  2. SpoolWriter::write_batch() (the writer's thread): appends every reserved entry to the
  //     current segment in one write and makes them durable with one fdatasync;
  //  3. commit() (owner): indexes what was written and releases the reservations; returns the
  //     results and leaves the entries (with their ids) in the batch for the caller.
  // An entry is durable, and may be acknowledged, only after commit() returned none for it. A
  // crash before the fdatasync can leave a cut or unsynced tail in the segment, which open()
  // cuts off or reads as written: it was never acknowledged either way (a reply sent for a
  // message whose client saw no 250 is the at-least-once side, as before).
  struct Batch {
    std::vector<QueueEntry> entries;
    std::vector<Enqueued> results;   // error none: reserved, then written
    std::vector<SpoolPlace> places;  // set by write_batch for each entry written
  };
  Batch reserve(std::vector<QueueEntry> entries, std::int64_t now);
  std::vector<Enqueued> commit(Batch& batch);

  // The writer of this spool, for the thread that does its disk work (see SpoolWriter).
  const std::shared_ptr<SpoolWriter>& writer() const { return writer_; }

  // Durably rewrites attempts, next_attempt and last_error of the stored entry entry.id (it
  // moves into a file of its own); the other fields are taken from disk, not from `entry`.
  // not_found for an unknown or invalid id.
  SpoolError update(const QueueEntry& entry);

  // update() in two halves, so that the rewrite (a write, two syncs and a rename) runs off the
  // event loop: reschedule() (owner) sets the entry's next attempt in the index (not_found for
  // an unknown or invalid id); SpoolWriter::rewrite() (the writer's thread) stores the new
  // fields in the entry's own file. A crash before the rewrite only leaves the older schedule
  // on disk: an earlier retry.
  struct Rewrite {
    std::string id;
    std::int64_t next_attempt = 0;
    std::optional<int> attempts;            // unchanged when empty
    std::optional<std::string> last_error;  // unchanged when empty
  };
  SpoolError reschedule(const std::string& id, std::int64_t next_attempt);

  // Marks the entry done (a D record, or the unlink of its own file). Done marks are not
  // synced: delivery is at-least-once, so a mark that a crash undoes only sends that reply
  // again. not_found for an unknown or invalid id.
  SpoolError remove(const std::string& id);

  // remove() in two halves, so that the disk work runs off the event loop: forget() (owner)
  // drops the entry from the index (not_found for an unknown or invalid id);
  // SpoolWriter::done() (the writer's thread) marks it done on disk. A crash between the two,
  // or a failed mark, only sends that reply again after a restart, as with remove().
  SpoolError forget(const std::string& id);

  // Makes every entry due at `now`: in the index always, on disk (like update()) where the
  // rewrite succeeds. Returns how many were rewritten on disk.
  std::size_t flush(std::int64_t now);

  // Reads, unlinks and returns the pending requests in control/, oldest name first. A request
  // that cannot be read is dropped with a line in `problems`.
  std::vector<std::string> take_requests(std::vector<std::string>& problems);

  // True when another process (a running server) holds the lock of the spool at `dir`.
  static bool in_use(const std::filesystem::path& dir);

  // Every entry of the spool at `dir` (segments and queue/), ordered by id, read without the
  // lock and without changing anything: safe while a server owns the spool. Entries marked
  // done, files that vanish while being read (delivered meanwhile) or fail the checks are left
  // out.
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

  // Where the entry is (segment 0: a file of its own, or being moved into one); nullopt for an
  // unknown id. For tests and tools.
  std::optional<SpoolPlace> place(const std::string& id) const;

  // The failing system call and errno text of the last update()/remove() that did not return
  // none; empty after one that did.
  const std::string& last_detail() const { return last_detail_; }

  const std::filesystem::path& dir() const { return dir_; }

 private:
  struct IndexEntry {
    std::int64_t next_attempt = 0;
    SpoolPlace place;       // its segment copy (segment 0: none)
    bool own_file = false;  // in queue/<id>, or moving there (then read the segment copy)
  };
  Spool() = default;
  std::string new_id(std::int64_t now);

  std::filesystem::path dir_;
  std::size_t max_entries_ = 0;
  int lock_fd_ = -1;
  std::int64_t last_stamp_ = 0;  // microseconds of the last id, to keep ids increasing
  std::map<std::string, IndexEntry> index_;
  std::set<std::string> unread_;  // names in queue/ that could not be read at open()
  std::size_t reserved_ = 0;      // entries between reserve() and commit()
  std::string last_detail_;
  std::shared_ptr<SpoolWriter> writer_;
};

// The disk side of a Spool: appends to the current segment, syncs, done marks, moves into a
// file of its own, and unlinks segments whose entries are all done. It keeps, for each entry
// still live in a segment, where its record is, and for each such segment a descriptor and its
// count of live entries. Made by Spool::open(); use it on one thread at a time (the server's
// committer thread), which may be another than the Spool's.
class SpoolWriter {
 public:
  ~SpoolWriter();
  SpoolWriter(const SpoolWriter&) = delete;
  SpoolWriter& operator=(const SpoolWriter&) = delete;

  // Appends every entry of `batch` whose result is still none to the current segment (a new
  // one first if there is none) in one write, and makes them durable with one fdatasync (and,
  // for a new segment, an fsync of segments/). On any failure every entry of the batch fails
  // with the error and the segment is cut back to where it was, so that nothing of the batch
  // is read back at a restart. Fills batch.places. Starts a new segment next time once the
  // current one has passed Options::segment_bytes.
  void write_batch(Spool::Batch& batch);

  // Stores the new schedule: an entry still in a segment is written into queue/<id> (tmp/,
  // fsync, rename, fsync queue/) with the new fields and its segment copy marked done; an entry
  // in its own file gets that file rewritten. An entry already done (delivered or deleted
  // meanwhile) is left done, and no error. Returns "" or the failing call and errno text (and
  // the error in *error when given).
  std::string rewrite(const Spool::Rewrite& rewrite, SpoolError* error = nullptr);

  // Marks the entry done: a D record in its segment (not synced), or the unlink of its own
  // file; a segment whose entries are now all done is unlinked instead (unless it is the one
  // being appended to). An entry already done is no error. Returns "" or the failing call.
  std::string done(const std::string& id);

  // Segment files this writer holds open: the current one and those with live entries.
  std::size_t open_segments() const { return segments_.size(); }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  friend class Spool;
  struct Segment {
    int fd = -1;             // -1: not writable (could not be opened, or cut back)
    std::size_t live = 0;    // entries in it not yet done
    std::uint64_t size = 0;  // its length: where the next record goes (O_APPEND)
  };
  explicit SpoolWriter(std::filesystem::path dir, std::uint64_t segment_bytes)
      : dir_(std::move(dir)), segment_bytes_(segment_bytes) {}
  std::filesystem::path segment_path(std::uint64_t seq) const;
  // The current segment is no longer appended to; it goes if none of its entries is live.
  void retire_current();
  // Closes and unlinks a segment with no live entry.
  std::string drop_segment(std::uint64_t seq);
  // Appends `bytes` to the segment; on failure cuts it back to where it was, so that no record
  // follows a half-written one (a segment that cannot be cut back is appended to no more).
  std::string append(std::uint64_t seq, Segment& segment, std::string_view bytes,
                     SpoolError* error = nullptr);

  std::filesystem::path dir_;
  std::uint64_t segment_bytes_;
  std::map<std::uint64_t, Segment> segments_;  // the current one and those with live entries
  std::uint64_t current_ = 0;                  // being appended to; 0: none yet
  std::uint64_t next_seq_ = 1;
  std::unordered_map<std::string, SpoolPlace> places_;  // entries live in a segment
};

// The serialized form of an entry (the format above), and its inverse. parse_spool_entry
// returns nullopt and sets `why` on any truncation, checksum mismatch, bad number or trailing
// byte. Exposed for tests and for tools that inspect the queue.
// `crc`, when given, receives crc32_ieee of the whole result (for its segment record).
std::string serialize_spool_entry(const QueueEntry&, std::uint32_t* crc = nullptr);
std::optional<QueueEntry> parse_spool_entry(std::string_view bytes, std::string& why);

}  // namespace ipconfirm::responder

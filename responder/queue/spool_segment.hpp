// The spool's segment files: replies appended to a file that many share, made durable with one
// fdatasync(2) per batch, and marked done instead of unlinked (see spool.hpp for the layout and
// the guarantees).
//
// A segment is segments/<16-digit sequence number>: the line "ipconfirm-segment 1\n", then
// records, each
//   "<type> <payload length> <CRC-32 of the payload, 8 lower-case hex digits>\n" <payload> "\n"
// with the types
//   E  an entry: the payload is the entry in the spool's file format (serialize_spool_entry);
//   D  done: the payload is the id of an entry of this same segment that was delivered,
//      bounced, expired, deleted or moved into a file of its own.
// A D record only ever names an entry of its own segment, so a segment can be removed as soon
// as all its entries are done, whatever the other segments hold.
//
// Appends go to the end; a crash can cut the last record short (kill -9 during a write) or, on
// power loss, leave garbage after the last fdatasync. scan_segment() reads records up to the
// first one that is incomplete or fails its checksum and reports where it stopped; everything
// before that point is whole. Entries are acknowledged (250) only after the fdatasync that
// follows their record, so what a crash cuts off was never acknowledged; done marks are not
// synced (a lost one sends a reply again: at-least-once).
//
// What this file does not do: it keeps no index and decides nothing about delivery (spool.hpp
// and delivery.hpp do); SpoolWriter is used by one thread only (the committer's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "responder/queue/spool.hpp"

namespace ipconfirm::responder {

inline constexpr std::string_view kSegmentMagic = "ipconfirm-segment 1\n";

// One record as read back: its type, its payload and where the payload starts in the file.
struct SegmentRecord {
  char type = 0;
  std::string_view payload;
  std::uint64_t offset = 0;
};

struct SegmentScan {
  std::vector<SegmentRecord> records;  // every whole record, in file order
  std::uint64_t good_bytes = 0;        // the bytes up to the end of the last whole record
  std::string problem;                 // why it stopped before the end; empty if it did not
  bool bad_magic = false;              // the first line is not kSegmentMagic (or is cut)
};

// Appends one framed record to `out`.
void append_segment_record(std::string& out, char type, std::string_view payload);

// Reads the records of a whole segment file (pure). Stops at the first record that is cut
// short, has a bad header or a wrong checksum; never reads past `bytes`.
SegmentScan scan_segment(std::string_view bytes);

// "0000000000000042" for 42; parse_segment_name is its inverse (nullopt for any other name).
std::string segment_name(std::uint64_t seq);
std::optional<std::uint64_t> parse_segment_name(std::string_view name);

// The committer's half of the spool: it owns the segment files' descriptors and knows which
// segment holds which entry, so that it can mark entries done, move them into files of their
// own, and remove a segment once all its entries are done. Made by Spool::open() from what it
// recovered; one thread only.
class SpoolWriter {
 public:
  // A new segment is started once the current one holds this many bytes.
  static constexpr std::uint64_t kSegmentBytes = 8u << 20;

  struct Recovered {
    std::uint64_t seq = 0;
    std::uint64_t size = 0;  // the bytes of its whole records (a cut tail is truncated away)
    // id -> payload offset, payload length and next-attempt of each entry it still holds
    struct Entry {
      std::uint64_t offset = 0;
      std::uint32_t length = 0;
      std::int64_t next_attempt = 0;
    };
    std::unordered_map<std::string, Entry> entries;
  };
  SpoolWriter(std::filesystem::path dir, std::uint64_t next_seq, std::vector<Recovered> segments);
  ~SpoolWriter();
  SpoolWriter(const SpoolWriter&) = delete;
  SpoolWriter& operator=(const SpoolWriter&) = delete;

  // Appends every entry of the batch whose result is still none to the current segment (a new
  // one when it is full), in one write, and makes them durable with one fdatasync. Sets the
  // result's error and detail for every entry on failure (the segment is cut back to where it
  // was and a new one is started for the next batch), and batch.locations for the others.
  void write_batch(Spool::Batch& batch);

  // The entry `id` is finished: its file in queue/ is unlinked, or a done mark is appended to
  // its segment (not synced), and a segment whose entries are all done is removed. An unknown
  // id is no error (finished before). Returns "" or the failing call and errno text.
  std::string finish(const std::string& id);

  // Stores a new schedule (Spool::Rewrite). An entry in a file of its own is rewritten there
  // (write, fsync, rename, fsync of queue/); an entry in a segment moves into such a file
  // (then a done mark in its segment), except when only its next attempt changes and the
  // segment already has an earlier or equal one (an earlier retry after a restart is always
  // safe). An unknown id is left alone (delivered or deleted before). Returns "" or the
  // failing call and errno text.
  std::string rewrite(const Spool::Rewrite& rewrite);

  // Segments currently kept (for tests and the log).
  std::size_t segments() const { return segments_.size(); }

 private:
  struct Segment {
    int fd = -1;
    std::uint64_t size = 0;
    std::size_t live = 0;  // entries not yet done
  };
  struct Where {
    std::uint64_t seq = 0;
    std::uint64_t offset = 0;
    std::uint32_t length = 0;
    std::int64_t next_attempt = 0;
  };
  // Opens a new current segment (header written, directory fsynced). "" or the failure.
  std::string start_segment();
  // Removes `seq` if it is not the current one and holds no live entry.
  std::string remove_if_done(std::uint64_t seq);
  // Appends a done mark for `id` to its segment and counts it; removes the segment when empty.
  std::string mark_done(const std::string& id, const Where& where);

  std::filesystem::path dir_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t current_ = 0;  // 0: none open yet
  std::map<std::uint64_t, Segment> segments_;
  std::unordered_map<std::string, Where> in_segments_;  // live entries held by segments
  std::string buffer_;                                  // a batch's records, reused
};

}  // namespace ipconfirm::responder

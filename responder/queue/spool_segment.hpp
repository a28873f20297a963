// The record format of the spool's segment files, for an append-only spool: replies appended to
// a file that many share, made durable with one fdatasync(2) per batch, and marked done instead
// of unlinked.
//
// A segment is segments/<16-digit sequence number>: the line "ipconfirm-segment 1\n", then
// records, each
//   "<type> <payload length> <CRC-32 of type and payload, 8 lower-case hex digits>\n" <payload>
//   "\n"
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
// Used by the spool (spool.hpp): SpoolWriter appends E records a batch at a time (one
// fdatasync) and D records as entries are done, moves an entry that is rescheduled into a file
// of its own (then marks its copy here done), and unlinks a segment whose entries are all done;
// Spool::open() and Spool::peek() read segments with scan_segment(). This file itself is pure:
// no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// Appends one framed record to `out`. `payload_crc`, when given, is crc32_ieee(payload), known
// already (the spool's and the report store's formats end with it), so the payload is not read
// twice.
void append_segment_record(std::string& out, char type, std::string_view payload,
                           std::optional<std::uint32_t> payload_crc = std::nullopt);

// Reads the records of a whole segment file (pure). Stops at the first record that is cut
// short, has a bad header or a wrong checksum; never reads past `bytes`.
SegmentScan scan_segment(std::string_view bytes);

// "0000000000000042" for 42; parse_segment_name is its inverse (nullopt for any other name).
std::string segment_name(std::uint64_t seq);
std::optional<std::uint64_t> parse_segment_name(std::string_view name);

}  // namespace ipconfirm::responder

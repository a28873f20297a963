// Reading DNS answers: a bounded parser for the wire format of RFC 1035 §4.1 and the decision
// that turns a parsed answer into the outcome of one lookup (ok, nxdomain, nodata, temperror,
// permerror).
//
// Pure: bytes in, values out; no sockets, no c-ares. The resolver (responder/dns_resolver.hpp)
// sends the query and hands the raw answer here. We parse it ourselves rather than with c-ares'
// ares_parse_*_reply helpers because those drop TTLs and reject or rewrite hostile names, while
// the analysis must see a hostile PTR name (CR/LF inside, over 255 bytes) to report it invalid.
//
// The parser follows name compression (RFC 1035 §4.1.4) without recursion; every pointer must
// point before the start of the labels read so far, which makes loops impossible, and the number
// of jumps is capped. Every read is bounds-checked. It does not validate names (that is the
// analysis' job) and does not read the additional section. parse_dns_answer does not check
// that the answer matches the question (c-ares does, ignoring case; answers_query and
// question_is below check it exactly, for 0x20). Only class IN
// records of the types in RrType are returned; others are skipped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/ip_address.hpp"

namespace ipconfirm::responder {

enum class RrType : std::uint16_t {
  a = 1,
  ns = 2,
  cname = 5,
  ptr = 12,
  mx = 15,
  txt = 16,
  aaaa = 28
};

// "A", "NS", "CNAME", "PTR", "MX", "TXT", "AAAA"; "TYPE<n>" for anything else.
std::string to_string(RrType type);

struct DnsRecord {
  RrType type = RrType::a;
  std::uint32_t ttl = 0;  // seconds; a TTL with the top bit set reads as 0 (RFC 2181 §8)
  std::string name;       // owner name, raw label bytes joined with '.', no trailing dot
  // PTR/CNAME/NS target and MX exchange: raw label bytes joined with '.', no trailing dot,
  // unprintable bytes kept (the analysis validates). The root name reads as ".". A label that
  // itself contains a '.' byte is not escaped. Names longer than kMaxNameText are cut there.
  // TXT: the character-strings concatenated.
  std::string text;
  std::uint16_t preference = 0;      // MX
  std::optional<IpAddress> address;  // A/AAAA
};

// Most answer-section records of the known types one parsed answer keeps. A 64 KB answer can
// hold about 3,600 PTR or 4,000 A records; nothing legitimate needs more than a few dozen, and
// every record kept costs memory in the cache and work in the report. Records beyond this are
// counted (ParsedAnswer::omitted), not kept.
inline constexpr std::size_t kMaxAnswerRecords = 100;

// Longest name text the parser produces. A legal name has at most 253 characters; anything
// longer is kept (cut at this length) so that the analysis can report it as invalid.
inline constexpr std::size_t kMaxNameText = 1024;

// RCODE of the header (RFC 1035 §4.1.1). Other values are kept as their number.
enum class DnsRcode {
  noerror = 0,
  formerr = 1,
  servfail = 2,
  nxdomain = 3,
  notimp = 4,
  refused = 5
};

struct ParsedAnswer {
  bool ok = false;  // false: malformed, `error` says where
  DnsRcode rcode{};
  bool truncated = false;          // TC bit
  std::vector<DnsRecord> answers;  // at most kMaxAnswerRecords
  // Answer records of the known types beyond kMaxAnswerRecords, by type: counted, not kept.
  std::vector<std::pair<RrType, std::size_t>> omitted;
  // RFC 2308 §5: the negative-caching TTL, min(SOA TTL, SOA MINIMUM), when the authority
  // section carries an SOA record.
  std::optional<std::uint32_t> negative_ttl;
  std::string error;
};

// Parses one DNS response message. Never throws on bad input and never reads outside
// [data, data + size): a message that is not a response, ends early, has a bad label type, a
// compression pointer that does not point backwards, or an RDATA that disagrees with its length
// yields ok = false and a short `error`.
ParsedAnswer parse_dns_answer(const std::uint8_t* data, std::size_t size);

// The outcome of one lookup.
//   temperror: timeout, SERVFAIL, REFUSED, network error, truncated answer;
//   permerror: malformed answer, FORMERR, NOTIMP, invalid query name.
enum class DnsStatus { ok, nxdomain, nodata, temperror, permerror };
std::string_view to_string(DnsStatus status);

struct DnsResult {
  DnsStatus status = DnsStatus::temperror;
  std::vector<DnsRecord> records;  // of the asked type only; non-empty iff status == ok
  std::string detail;              // short human text: "NXDOMAIN", "timeout", ...
  // Records of the asked type the answer held beyond what the parser keeps (kMaxAnswerRecords;
  // their owner names were not checked). records.size() + omitted is how many there were.
  std::size_t omitted = 0;
};

// Decides the outcome of a lookup for (`qname`, `type`) from a parsed answer: follows the
// CNAME chain that starts at `qname` (case-insensitively, at most 16 links) and keeps the
// records of `type` owned by the last name of the chain. Asking for CNAME returns the CNAME
// records of `qname` itself.
DnsResult interpret_answer(const ParsedAnswer& answer, std::string_view qname, RrType type);

// How long `result` of a lookup may be cached, in seconds (0: not at all). Positive answers: the
// lowest TTL among the records; NXDOMAIN/NODATA: `negative_ttl` when known, else 60 s; errors:
// never. Capped by `max_ttl`.
std::uint32_t cache_ttl(const DnsResult& result, std::optional<std::uint32_t> negative_ttl,
                        std::uint32_t max_ttl);

// 0x20 (draft-vixie-dnsext-dns0x20-00): `name` with each ASCII letter upper-cased where the next
// bit of `bits` is set (the bits are used in order, and again from the start when they run
// out). Other characters are unchanged. The resolver sends this form and accepts only an answer
// whose question repeats it exactly, which an off-path attacker must guess along with the ID
// and the port.
std::string mix_case(std::string_view name, std::span<const std::uint8_t> bits);

// Whether `answer` is a reply to `query` (both whole DNS messages): the same ID, the QR bit
// set, one question each, and the question's bytes (the name with its letter case, type,
// class) identical. False for anything malformed.
bool answers_query(std::span<const std::uint8_t> query, std::span<const std::uint8_t> answer);

// Whether the first question of the message `answer` is exactly `name` (dot-separated labels,
// letter case included) with `type` and class IN.
bool question_is(std::span<const std::uint8_t> answer, std::string_view name, RrType type);

// Lower-cases the ASCII letters of the first question's name of `message` in place, so that
// names compressed against it read as they were asked before mix_case. False (and nothing
// changed) when the question cannot be read.
bool lower_question_name(std::span<std::uint8_t> message);

// The heap and object bytes `result` occupies (its records, their strings, the detail), as the
// resolver's cache counts them against its byte budget. An estimate from sizes and capacities:
// it does not know the allocator's rounding.
std::size_t memory_bytes(const DnsResult& result);

// A query name in the form the resolver accepts: trailing dot removed, ASCII lower-cased.
// Returns nullopt unless the name has 1 to 253 characters, labels of 1 to 63 characters, and
// only letters, digits, '-' and '_' (no escapes, spaces or control bytes reach the wire).
std::optional<std::string> normalise_query_name(std::string_view name);

}  // namespace ipconfirm::responder

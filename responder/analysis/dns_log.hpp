// The log of the DNS queries made for one report (the report's `dns_log`): every lookup of the
// connection's checks (PTR, forward confirmation, HELO, DNSBL: lookups.cpp) and of the message's
// authentication checks (SPF, DKIM and ARC keys, the DMARC tree walk: auth_lookups.cpp), each as
// {name, type, rcode, answers, ms}. Users ask "which lookup failed?" more than anything else.
//
// Bounded, because a sender controls how many lookups its records cause and what they answer:
// at most kMaxDnsLogEntries entries (the rest are counted, `omitted`), at most
// kMaxDnsLogAnswers answer texts per entry and kMaxDnsLogAnswerBytes bytes per text, and at most
// kMaxDnsLogTextBytes of answer text in the whole log (answers beyond any of these are counted in
// the entry's answers_omitted). Every text is valid UTF-8 without control characters, so it may
// go into JSON, a log line and the reply as it is.
//
// Pure: values and the time points the caller passes in; no clock, no I/O.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "responder/dns/dns_answers.hpp"
#include "responder/dns/dns_message.hpp"

namespace ipconfirm::responder {

inline constexpr std::size_t kMaxDnsLogEntries = 100;
inline constexpr std::size_t kMaxDnsLogAnswers = 10;
inline constexpr std::size_t kMaxDnsLogAnswerBytes = 512;
inline constexpr std::size_t kMaxDnsLogTextBytes = 64 * 1024;

// The response code of a lookup as the log shows it: "NOERROR" (records or none), "NXDOMAIN",
// "SERVFAIL", "REFUSED", "FORMERR", "NOTIMP", "RCODE <n>", "timeout", or for a lookup that ended
// without a response code its reason ("connection refused or REFUSED", "truncated answer",
// "malformed answer: ...", "invalid query name", ...).
std::string dns_rcode_text(const DnsResult& result);

// Each record of `result` as text: an address, a name, "10 mx.example.org", a TXT record's
// strings joined. Not bounded (DnsLog bounds what it keeps).
std::vector<std::string> dns_answer_texts(const DnsResult& result);

class DnsLog {
 public:
  using Clock = std::chrono::steady_clock;

  // One entry with the time its query went out (logs of several sources are merged by it).
  struct Timed {
    DnsLogEntry entry;
    std::size_t answers_omitted = 0;  // answers not listed (see the bounds above)
    Clock::time_point started{};
    bool open = true;  // no outcome yet
  };

  // A query goes out now. Returns its ticket for finish(), or nullopt when the log is full
  // (the query is then only counted in omitted()).
  std::optional<std::size_t> start(std::string_view name, RrType type, Clock::time_point now);
  // The query of `ticket` ended with `result`. A ticket that is already closed is left as it is.
  void finish(std::size_t ticket, const DnsResult& result, Clock::time_point now);
  // The query of `ticket` ended without being sent or answered: its rcode is `rcode`
  // ("timeout", "not sent").
  void close(std::size_t ticket, std::string_view rcode, Clock::time_point now);
  // Logs a question that was answered without a query: `rcode` says why.
  void note(std::string_view name, RrType type, std::string_view rcode, Clock::time_point now);

  const std::vector<Timed>& entries() const { return entries_; }
  std::size_t omitted() const { return omitted_; }

 private:
  std::vector<Timed> entries_;
  std::size_t omitted_ = 0;
  std::size_t text_bytes_ = 0;
};

// The report's view of several logs: every entry in the order its query went out, those still
// open shown as "timeout" with the time they had at `now`, at most kMaxDnsLogEntries (the rest,
// and what each log omitted, counted in `omitted`).
struct MergedDnsLog {
  std::vector<DnsLogEntry> entries;
  std::vector<std::size_t> answers_omitted;  // per entry
  std::size_t omitted = 0;
};
MergedDnsLog merge_dns_logs(const std::vector<const DnsLog*>& logs, DnsLog::Clock::time_point now);

// `dns_log`: [{name, type, rcode, answers, ms}] (and answers_omitted when answers were left
// out).
nlohmann::ordered_json to_json(const std::vector<DnsLogEntry>& entries,
                               const std::vector<std::size_t>& answers_omitted);

}  // namespace ipconfirm::responder

// The answers a DNS-driven check reads, and the log of the queries behind them.
//
// SPF, DMARC and DKIM's key lookups are decisions that need a chain of DNS answers, where each
// answer says which query comes next (an SPF include, a DMARC tree walk). They are written as
// pure checks that run against a DnsSource: where a check meets a question whose answer is not
// there yet, it collects the question and stops, returning the questions it needs. The I/O side
// (responder/analysis/auth_lookups.cpp) asks them all at once, adds the answers and runs the
// check again from the start; a check is deterministic, so every run gets further, and a
// question is never asked twice. Tests run the same checks on answers from a table (the RFC 7208
// suite's zone data, a DKIM key) with no network at all.
//
// A question that could not be answered in time gets a temperror DnsResult ("timeout"), which
// the check must treat as an answer (SPF and DMARC temperror), never as "still missing".
//
// Pure: values only, no sockets, no c-ares.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "responder/dns/dns_message.hpp"

namespace ipconfirm::responder {

struct DnsQuestion {
  std::string name;  // as the check wants it asked; DnsAnswers normalises for lookup
  RrType type = RrType::txt;
  friend bool operator==(const DnsQuestion&, const DnsQuestion&) = default;
};

// Read-only view a check runs against.
class DnsSource {
 public:
  virtual ~DnsSource() = default;
  // The answer to (name, type), or nullptr while it is not known. Names compare
  // case-insensitively and without a trailing dot.
  virtual const DnsResult* find(std::string_view name, RrType type) const = 0;
};

// One query as it went over the wire (or came from the cache), for the report's dns_log.
struct DnsLogEntry {
  std::string name;
  RrType type = RrType::txt;
  std::string rcode;                 // "NOERROR", "NXDOMAIN", "SERVFAIL", "timeout", ...
  std::vector<std::string> answers;  // each record as text (address, name, "10 mx.example", TXT)
  std::uint32_t ms = 0;
};

// Every answer a report's checks have read, keyed by normalised (name, type).
class DnsAnswers : public DnsSource {
 public:
  const DnsResult* find(std::string_view name, RrType type) const override;
  // Adds (or replaces) the answer to (name, type).
  void put(std::string_view name, RrType type, DnsResult result);
  std::size_t size() const { return answers_.size(); }

 private:
  std::map<std::pair<std::string, RrType>, DnsResult> answers_;
};

// A question list without duplicates, in first-asked order: what a check returns when it stops.
class DnsNeeds {
 public:
  // Adds (name, type) unless it is already there (compared like DnsAnswers does).
  void add(std::string_view name, RrType type);
  bool empty() const { return questions_.empty(); }
  const std::vector<DnsQuestion>& questions() const { return questions_; }

 private:
  std::vector<DnsQuestion> questions_;
};

// The key DnsAnswers and DnsNeeds use for a name: ASCII lower case, no trailing dot.
std::string dns_key(std::string_view name);

}  // namespace ipconfirm::responder

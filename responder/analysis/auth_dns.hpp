// The DNS state of one transaction's authentication checks (SPF for both identities, the DKIM
// and ARC keys, the DMARC tree walks), as values: one answer table that every check reads, so a
// question two checks share is asked once; the questions in flight; and the log of what was
// asked. The I/O driver (auth_lookups.hpp) runs each check, hands its DnsNeeds to take_new(),
// sends what comes back, and puts the answers with answer(); this file decides everything else,
// and is unit-tested without a network.
//
// Rules:
//   1. A question is sent at most once per transaction; one that has an answer, or is in
//      flight, is not sent again.
//   2. A name the resolver would not send (normalise_query_name: only letters, digits, '-' and
//      '_' reach the wire; an SPF macro can expand a local part such as "first+last" into a
//      name) is not sent: it is answered NXDOMAIN at once and logged as "not sent". On the
//      internet nearly every such name is NXDOMAIN too (it counts as a void lookup in SPF, as
//      the real answer would), so the verdict is the one a receiver would most likely reach;
//      the log says that it was not asked.
//   3. An answer, once there, is never replaced: a late answer to a question that has timed
//      out is dropped, so that every check reads the same answers.
//   4. time_out() answers every open question of a check temperror ("timeout"): a timeout is an
//      answer (SPF, DKIM and DMARC temperror), never "still missing", so the next run of the
//      check completes.
//
// Pure: no clock (the caller passes the time), no I/O.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "responder/analysis/dns_log.hpp"
#include "responder/dns/dns_answers.hpp"

namespace ipconfirm::responder {

class AuthDns {
 public:
  using Clock = DnsLog::Clock;

  const DnsAnswers& answers() const { return answers_; }
  const DnsLog& log() const { return log_; }

  // Of `needs`, the questions to send now (rule 1), marked in flight and logged as started.
  // Questions the resolver would refuse are answered at once instead (rule 2).
  std::vector<DnsQuestion> take_new(const DnsNeeds& needs, Clock::time_point now);
  // The answer to a question that was taken: put and logged, unless the question has an
  // answer already (rule 3).
  void answer(const DnsQuestion& question, const DnsResult& result, Clock::time_point now);
  // Every question of `needs` has an answer.
  bool has_all(const DnsNeeds& needs) const;
  // Answers each question of `needs` that has no answer yet with temperror `why` ("timeout",
  // "too many rounds"); those in flight are logged with it and their late answers dropped.
  void time_out(const DnsNeeds& needs, std::string_view why, Clock::time_point now);
  // time_out() for every question in flight.
  void time_out_all(std::string_view why, Clock::time_point now);
  std::size_t in_flight() const { return in_flight_.size(); }

 private:
  DnsAnswers answers_;
  DnsLog log_;
  // In flight: the log ticket of each question sent and not answered (none when the log is
  // full).
  std::map<std::pair<std::string, RrType>, std::optional<std::size_t>> in_flight_;
};

}  // namespace ipconfirm::responder

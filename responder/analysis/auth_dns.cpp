#include "responder/analysis/auth_dns.hpp"

namespace ipconfirm::responder {

std::vector<DnsQuestion> AuthDns::take_new(const DnsNeeds& needs, Clock::time_point now) {
  std::vector<DnsQuestion> out;
  for (const DnsQuestion& q : needs.questions()) {
    std::pair<std::string, RrType> key{dns_key(q.name), q.type};
    if (answers_.find(key.first, q.type) || in_flight_.count(key)) continue;
    if (!normalise_query_name(q.name)) {
      answers_.put(key.first, q.type,
                   DnsResult{DnsStatus::nxdomain,
                             {},
                             "not sent: the name holds characters other than letters, digits, "
                             "'-' and '_'"});
      log_.note(q.name, q.type, "not sent", now);
      continue;
    }
    in_flight_.emplace(std::move(key), log_.start(q.name, q.type, now));
    out.push_back(q);
  }
  return out;
}

void AuthDns::answer(const DnsQuestion& question, const DnsResult& result, Clock::time_point now) {
  const std::pair<std::string, RrType> key{dns_key(question.name), question.type};
  const auto it = in_flight_.find(key);
  if (it == in_flight_.end()) return;  // timed out: its answer is there already
  if (it->second) log_.finish(*it->second, result, now);
  in_flight_.erase(it);
  if (!answers_.find(key.first, key.second)) answers_.put(key.first, key.second, result);
}

bool AuthDns::has_all(const DnsNeeds& needs) const {
  for (const DnsQuestion& q : needs.questions())
    if (!answers_.find(q.name, q.type)) return false;
  return true;
}

void AuthDns::time_out(const DnsNeeds& needs, std::string_view why, Clock::time_point now) {
  for (const DnsQuestion& q : needs.questions()) {
    const std::pair<std::string, RrType> key{dns_key(q.name), q.type};
    if (answers_.find(key.first, key.second)) continue;
    if (const auto it = in_flight_.find(key); it != in_flight_.end()) {
      if (it->second) log_.close(*it->second, why, now);
      in_flight_.erase(it);
    } else {
      log_.note(q.name, q.type, why, now);
    }
    answers_.put(key.first, key.second, DnsResult{DnsStatus::temperror, {}, std::string(why)});
  }
}

void AuthDns::time_out_all(std::string_view why, Clock::time_point now) {
  DnsNeeds open;
  for (const auto& [key, ticket] : in_flight_) open.add(key.first, key.second);
  time_out(open, why, now);
}

}  // namespace ipconfirm::responder

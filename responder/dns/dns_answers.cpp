#include "responder/dns/dns_answers.hpp"

#include "core/ascii.hpp"

namespace ipconfirm::responder {

std::string dns_key(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return ascii::lower(name);
}

const DnsResult* DnsAnswers::find(std::string_view name, RrType type) const {
  const auto it = answers_.find({dns_key(name), type});
  return it == answers_.end() ? nullptr : &it->second;
}

void DnsAnswers::put(std::string_view name, RrType type, DnsResult result) {
  answers_[{dns_key(name), type}] = std::move(result);
}

void DnsNeeds::add(std::string_view name, RrType type) {
  std::string key = dns_key(name);
  for (const auto& q : questions_) {
    if (q.type == type && q.name == key) return;
  }
  questions_.push_back({std::move(key), type});
}

}  // namespace ipconfirm::responder

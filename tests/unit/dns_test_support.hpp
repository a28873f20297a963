// A small authoritative "zone" for the unit tests of the DNS-driven checks (SPF, DMARC): the
// tests list records, and drive() runs a check the way the server does — run, answer every
// question it returns, run again — while counting rounds and refusing repeated questions.
// Names not in the zone answer NXDOMAIN (NODATA when a name below them exists).
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "core/ip_address.hpp"
#include "responder/dns/dns_answers.hpp"

namespace ipconfirm::responder::test {

class TestZone {
 public:
  TestZone& txt(const std::string& name, const std::string& text) {
    DnsRecord r;
    r.type = RrType::txt;
    r.text = text;
    add(name, RrType::txt, std::move(r));
    return *this;
  }
  TestZone& a(const std::string& name, const std::string& ip) {
    DnsRecord r;
    r.address = IpAddress::parse(ip);
    REQUIRE(r.address);
    r.type = r.address->is_v4() ? RrType::a : RrType::aaaa;
    add(name, r.type, std::move(r));
    return *this;
  }
  TestZone& mx(const std::string& name, std::uint16_t preference, const std::string& host) {
    DnsRecord r;
    r.type = RrType::mx;
    r.preference = preference;
    r.text = host;
    add(name, RrType::mx, std::move(r));
    return *this;
  }
  TestZone& ptr(const IpAddress& ip, const std::string& host) {
    DnsRecord r;
    r.type = RrType::ptr;
    r.text = host;
    add(ip.reverse_name(), RrType::ptr, std::move(r));
    return *this;
  }
  // Every question for (name, type) times out.
  TestZone& timeout(const std::string& name, RrType type) {
    failures_[{dns_key(name), type}] = "timeout";
    return *this;
  }
  // A name that exists with no records (an empty non-terminal).
  TestZone& exists(const std::string& name) {
    existing_.insert(dns_key(name));
    return *this;
  }

  DnsResult answer(const std::string& qname, RrType type) const {
    const std::string name = dns_key(qname);
    DnsResult r;
    if (auto f = failures_.find({name, type}); f != failures_.end()) {
      r.status = DnsStatus::temperror;
      r.detail = f->second;
      return r;
    }
    if (auto it = records_.find({name, type}); it != records_.end()) {
      r.status = DnsStatus::ok;
      r.records = it->second;
      return r;
    }
    r.status = name_exists(name) ? DnsStatus::nodata : DnsStatus::nxdomain;
    r.detail = r.status == DnsStatus::nodata ? "NODATA" : "NXDOMAIN";
    return r;
  }

 private:
  void add(const std::string& name, RrType type, DnsRecord r) {
    r.name = dns_key(name);
    records_[{dns_key(name), type}].push_back(std::move(r));
    existing_.insert(dns_key(name));
  }
  bool name_exists(const std::string& name) const {
    for (const auto& n : existing_)
      if (n == name || (n.size() > name.size() && n.ends_with("." + name))) return true;
    return false;
  }

  std::map<std::pair<std::string, RrType>, std::vector<DnsRecord>> records_;
  std::map<std::pair<std::string, RrType>, std::string> failures_;
  std::set<std::string> existing_;
};

// What drive() saw: the questions of each round, in order.
struct DriveLog {
  std::vector<std::vector<DnsQuestion>> rounds;
  std::size_t questions() const {
    std::size_t n = 0;
    for (const auto& r : rounds) n += r.size();
    return n;
  }
  bool asked(const std::string& name, RrType type) const {
    for (const auto& r : rounds)
      for (const auto& q : r)
        if (q.name == dns_key(name) && q.type == type) return true;
    return false;
  }
};

// Runs `check(answers)` until its verdict is complete, answering from `zone`. Fails the test
// on a repeated question or a run that stops without questions.
template <typename Check>
auto drive(const TestZone& zone, Check check, DriveLog* log = nullptr) {
  DnsAnswers answers;
  std::set<std::pair<std::string, RrType>> asked;
  for (int round = 0;; ++round) {
    auto verdict = check(static_cast<const DnsSource&>(answers));
    if (verdict.complete) return verdict;
    REQUIRE_MESSAGE(!verdict.needs.empty(), "incomplete verdict without questions");
    REQUIRE_MESSAGE(round < 64, "no end to the rounds");
    if (log) log->rounds.push_back(verdict.needs.questions());
    for (const auto& q : verdict.needs.questions()) {
      REQUIRE_MESSAGE(asked.insert({q.name, q.type}).second,
                      "asked twice: " << q.name << " " << to_string(q.type));
      answers.put(q.name, q.type, zone.answer(q.name, q.type));
    }
  }
}

}  // namespace ipconfirm::responder::test

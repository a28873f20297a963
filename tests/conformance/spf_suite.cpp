// Driver for the OpenSPF test suites (RFC 7208 and RFC 4408), fed by spf_suite.py.
//
// Each scenario's zone data becomes the answers of a DNS server, with the conventions of the
// suite's reference driver (pyspf's testspf.py):
//   - a name with SPF (type 99) records and no TXT records also answers them as TXT; "TXT:
//     NONE" stops that (RFC 7208 no longer uses type 99, so check_spf() never asks for it);
//   - "TIMEOUT" in a name's list times out every query of a type not answered before it;
//   - a CNAME is followed (a loop or more than 8 links is a server failure);
//   - a name not in the zone is NXDOMAIN, unless a name below it exists (then NODATA).
// check_spf() runs as the server would drive it: run, answer every question it returns, run
// again, until it is complete. The driver fails a case when the result is not one the suite
// allows, when the explanation differs (where the suite gives one; "DEFAULT" means none), when
// the check asks a question twice, or when it asks for a name no DNS query can carry.
//
// Usage: spf_suite SUITE.json [--known-differences FILE]
// FILE lists cases (one id per line, '#' comments) that are expected to differ, with the reason
// next to them: used for the RFC 4408 suite, where RFC 7208 changed the rules. A listed case
// that passes fails the run, so that the list stays true.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ascii.hpp"
#include "responder/analysis/spf.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;
using json = nlohmann::json;

namespace {

// Explanations compared without regard to case, and why.
const std::map<std::string, std::string> kCaseInsensitiveExplanation = {
    {"v-macro-ip6",
     "%{ir} of an IPv6 address: RFC 7208 §7.4 writes the nibbles in lower case, the suite's "
     "text has the upper case of its reference implementation"},
};

struct Entry {
  bool timeout = false;
  std::string type;
  json value;
};

bool queryable(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = name.find('.', start);
    const std::size_t end = dot == std::string_view::npos ? name.size() : dot;
    if (end == start || end - start > 63) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::string joined(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  std::string out;
  for (const auto& s : v) out += s.get<std::string>();
  return out;
}

class Zone {
 public:
  explicit Zone(const json& zonedata) {
    for (const auto& [name, entries] : zonedata.items()) {
      std::vector<Entry> list, spf;
      bool has_txt = false;
      for (const auto& e : entries) {
        if (e.is_string()) {  // "TIMEOUT"
          list.push_back({true, "", {}});
          continue;
        }
        for (const auto& [type, value] : e.items()) {
          if (type == "TXT") {
            has_txt = true;
            if (value.is_string() && value.get<std::string>() == "NONE") continue;
          }
          if (type == "SPF") spf.push_back({false, "TXT", value});
          list.push_back({false, type, value});
        }
      }
      if (!has_txt) list.insert(list.end(), spf.begin(), spf.end());
      names_[dns_key(name)] = std::move(list);
    }
  }

  DnsResult resolve(const std::string& qname, RrType type) const {
    std::string name = dns_key(qname);
    for (int links = 0; links <= 8; ++links) {
      const auto it = names_.find(name);
      if (it == names_.end()) return negative(name);
      DnsResult r;
      bool seen = false;
      std::optional<std::string> cname;
      for (const auto& e : it->second) {
        if (e.timeout) {
          if (!seen) return timeout();
          break;
        }
        if (e.type == "CNAME" && !cname) cname = dns_key(e.value.get<std::string>());
        if (e.type != to_string(type)) continue;
        seen = true;
        r.records.push_back(record(name, type, e.value));
      }
      if (!r.records.empty()) {
        r.status = DnsStatus::ok;
        return r;
      }
      if (!cname || type == RrType::cname) {
        r.status = DnsStatus::nodata;
        r.detail = "NODATA";
        return r;
      }
      name = *cname;
    }
    DnsResult loop;
    loop.status = DnsStatus::temperror;
    loop.detail = "SERVFAIL";
    return loop;
  }

 private:
  static DnsResult timeout() {
    DnsResult r;
    r.status = DnsStatus::temperror;
    r.detail = "timeout";
    return r;
  }

  DnsResult negative(const std::string& name) const {
    DnsResult r;
    r.status = DnsStatus::nxdomain;
    r.detail = "NXDOMAIN";
    const std::string suffix = "." + name;
    for (const auto& [n, entries] : names_) {
      (void)entries;
      if (n.size() > suffix.size() &&
          n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
        r.status = DnsStatus::nodata;
        r.detail = "NODATA";
        break;
      }
    }
    return r;
  }

  static DnsRecord record(const std::string& owner, RrType type, const json& value) {
    DnsRecord rec;
    rec.type = type;
    rec.name = owner;
    switch (type) {
      case RrType::a:
      case RrType::aaaa:
        rec.address = IpAddress::parse(value.get<std::string>());
        break;
      case RrType::mx: {
        rec.preference = static_cast<std::uint16_t>(value.at(0).get<int>());
        std::string host = value.at(1).get<std::string>();
        if (!host.empty() && host.back() == '.') host.pop_back();
        rec.text = host.empty() ? "." : host;
        break;
      }
      case RrType::txt:
        rec.text = joined(value);
        break;
      default: {
        std::string target = value.get<std::string>();
        if (!target.empty() && target.back() == '.') target.pop_back();
        rec.text = target;
        break;
      }
    }
    return rec;
  }

  std::map<std::string, std::vector<Entry>> names_;
};

struct CaseOutcome {
  bool ok = true;
  bool interpreted = false;
  std::string alternative;  // the allowed result given, when the suite prefers another
  std::string message;
};

CaseOutcome run_case(const Zone& zone, const json& t) {
  CaseOutcome out;
  SpfInput in;
  const std::string host = t.at("host").get<std::string>();
  const auto ip = IpAddress::parse(host);
  if (!ip) {
    out.ok = false;
    out.message = "host does not parse: " + host;
    return out;
  }
  in.ip = *ip;
  in.mail_from = t.at("mailfrom").get<std::string>();
  in.helo = t.at("helo").get<std::string>();

  DnsAnswers answers;
  std::set<std::pair<std::string, RrType>> asked;
  SpfVerdict v;
  int rounds = 0;
  for (;; ++rounds) {
    v = check_spf(in, SpfIdentity::mail_from, answers);
    if (v.complete) break;
    if (v.needs.empty() || rounds > 64) {
      out.ok = false;
      out.message = "the check stopped without questions or did not finish";
      return out;
    }
    for (const auto& q : v.needs.questions()) {
      if (!asked.insert({q.name, q.type}).second) {
        out.ok = false;
        out.message = "asked twice: " + q.name + " " + to_string(q.type);
        return out;
      }
      if (!queryable(q.name)) {
        out.ok = false;
        out.message = "asked for a name no DNS query can carry: " + q.name;
        return out;
      }
      answers.put(q.name, q.type, zone.resolve(q.name, q.type));
    }
  }

  const std::string got(to_string(v.result));
  bool result_ok = false;
  std::string allowed;
  for (const auto& r : t.at("result")) {
    if (!allowed.empty()) allowed += "|";
    allowed += r.get<std::string>();
    if (r.get<std::string>() == got) result_ok = true;
  }
  if (result_ok && got != t.at("result").at(0).get<std::string>())
    out.alternative = got + " (the suite prefers " + t.at("result").at(0).get<std::string>() + ")";
  std::ostringstream msg;
  if (!result_ok) {
    out.ok = false;
    msg << "result " << got << ", the suite allows " << allowed;
  }
  if (!t.at("explanation").is_null()) {
    std::string want = t.at("explanation").get<std::string>();
    if (want == "DEFAULT") want.clear();
    if (want != v.explanation) {
      if (ascii::iequals(want, v.explanation)) {
        out.interpreted = true;
      } else {
        out.ok = false;
        msg << (result_ok ? "" : "; ") << "explanation \"" << v.explanation
            << "\", the suite expects \"" << want << "\"";
      }
    }
  }
  if (!out.ok) msg << " (problem: " << v.problem << "; mechanism: " << v.mechanism << ")";
  out.message = msg.str();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: spf_suite SUITE.json [--known-differences FILE]\n";
    return 2;
  }
  std::map<std::string, std::string> known;  // id -> reason
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) != "--known-differences") {
      std::cerr << "unknown argument " << argv[i] << "\n";
      return 2;
    }
    std::ifstream f(argv[i + 1]);
    if (!f) {
      std::cerr << "cannot read " << argv[i + 1] << "\n";
      return 2;
    }
    for (std::string line; std::getline(f, line);) {
      if (line.empty() || line[0] == '#') continue;
      const std::size_t sp = line.find_first_of(" \t");
      known[line.substr(0, sp)] =
          sp == std::string::npos ? "" : std::string(ascii::trim(line.substr(sp)));
    }
  }

  std::ifstream in(argv[1]);
  const json suite = json::parse(in);
  int total = 0, passed = 0, interpreted = 0, alternatives = 0, expected_differences = 0,
      failures = 0;
  std::set<std::string> seen_known;
  for (const auto& scenario : suite.at("scenarios")) {
    const Zone zone(scenario.at("zonedata"));
    for (const auto& [id, t] : scenario.at("tests").items()) {
      ++total;
      CaseOutcome o = run_case(zone, t);
      const auto k = known.find(id);
      if (k != known.end()) {
        seen_known.insert(id);
        if (o.ok) {
          ++failures;
          std::cout << "STALE " << id << ": listed as a known difference but passes\n";
        } else {
          ++expected_differences;
          std::cout << "known difference " << id << ": " << o.message << " [" << k->second << "]\n";
        }
        continue;
      }
      if (!o.ok) {
        ++failures;
        std::cout << "FAIL " << id << " (" << scenario.at("description").get<std::string>()
                  << ", spec " << t.at("spec").get<std::string>() << "): " << o.message << "\n";
        continue;
      }
      ++passed;
      if (!o.alternative.empty()) {
        ++alternatives;
        std::cout << "allowed alternative " << id << ": " << o.alternative << "\n";
      }
      if (o.interpreted) {
        ++interpreted;
        const auto why = kCaseInsensitiveExplanation.find(id);
        if (why == kCaseInsensitiveExplanation.end()) {
          ++failures;
          --passed;
          std::cout << "FAIL " << id << ": explanation differs in case only, not a listed case\n";
        } else {
          std::cout << "interpreted " << id << ": " << why->second << "\n";
        }
      }
    }
  }
  for (const auto& [id, reason] : known) {
    if (!seen_known.count(id)) {
      ++failures;
      std::cout << "STALE " << id << ": listed as a known difference but not in the suite\n";
    }
  }
  std::cout << suite.at("suite").get<std::string>() << ": " << passed << " of " << total
            << " cases pass";
  if (interpreted) std::cout << " (" << interpreted << " with an interpreted explanation)";
  if (alternatives)
    std::cout << ", " << alternatives << " with a result the suite allows but does not prefer";
  if (expected_differences) std::cout << ", " << expected_differences << " known differences";
  std::cout << ", " << failures << " failures\n";
  return failures == 0 ? 0 : 1;
}

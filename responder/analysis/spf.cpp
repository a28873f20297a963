// SPF evaluation against a DnsSource. See spf.hpp.
#include "responder/analysis/spf.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include "core/ascii.hpp"
#include "responder/analysis/idna.hpp"
#include "responder/analysis/spf_record.hpp"

namespace ipconfirm::responder {

namespace {

constexpr int kMaxDnsTerms = 10;    // §4.6.4
constexpr int kMaxVoidLookups = 2;  // §4.6.4
constexpr std::size_t kMaxMxHosts = 10;
constexpr std::size_t kMaxPtrNames = 10;

std::string printable(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c < 0x20 || c > 0x7e) c = '?';
  return out;
}

std::string strip_dot(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  return std::string(s);
}

bool ends_with_domain(std::string_view name, std::string_view domain) {
  if (ascii::iequals(name, domain)) return true;
  return name.size() > domain.size() && name[name.size() - domain.size() - 1] == '.' &&
         ascii::iequals(name.substr(name.size() - domain.size()), domain);
}

// A name a DNS query can carry: labels of 1 to 63 bytes, at most 253 in all.
bool queryable(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = name.find('.', start);
    const std::size_t end = dot == std::string_view::npos ? name.size() : dot;
    if (end == start || end - start > 63) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool is_void(const DnsResult& r) {
  return r.status == DnsStatus::nxdomain || r.status == DnsStatus::nodata;
}

bool is_error(const DnsResult& r) {
  return r.status == DnsStatus::temperror || r.status == DnsStatus::permerror;
}

std::string describe(const DnsResult& r) {
  if (!r.detail.empty()) return r.detail;
  return std::string(to_string(r.status));
}

enum class Outcome { pass, fail, softfail, neutral, none, temperror, permerror, suspended };
enum class Match { yes, no, temperror, permerror, suspended };

struct ExpSource {
  std::string spec;    // the exp= domain-spec
  std::string domain;  // <domain> of the record that carried it
};

struct HostResult {
  Outcome outcome = Outcome::none;
  std::string mechanism;  // the term of this record that decided
  std::string matched_domain, matched_term;
  std::optional<ExpSource> exp;
};

Outcome from_qualifier(SpfQualifier q) {
  switch (q) {
    case SpfQualifier::pass:
      return Outcome::pass;
    case SpfQualifier::fail:
      return Outcome::fail;
    case SpfQualifier::softfail:
      return Outcome::softfail;
    case SpfQualifier::neutral:
      return Outcome::neutral;
  }
  return Outcome::neutral;
}

class Evaluator {
 public:
  Evaluator(const SpfInput& in, const DnsSource& dns, SpfVerdict& v, std::string local,
            std::string sender_domain)
      : in_(in),
        dns_(dns),
        v_(v),
        local_(std::move(local)),
        sender_domain_(std::move(sender_domain)),
        sender_(local_ + "@" + sender_domain_),
        address_type_(in.ip.is_v4() ? RrType::a : RrType::aaaa) {}

  HostResult check_host(const std::string& domain, int depth, const std::string& via);

  // The expanded explanation of a fail; "" when there is none; nullopt while answers are
  // missing.
  std::optional<std::string> explain(const ExpSource& exp);

 private:
  const DnsResult* ask(std::string_view name, RrType type) {
    const DnsResult* r = dns_.find(name, type);
    if (!r) v_.needs.add(name, type);
    return r;
  }

  // The cause of a none, temperror or permerror: the first error met is the one that ended
  // the evaluation.
  void note(std::string problem) {
    if (v_.problem.empty()) v_.problem = std::move(problem);
  }

  // Something the report should say although it did not decide the result.
  void remark(std::string text) {
    if (v_.notes.size() < 10 && std::find(v_.notes.begin(), v_.notes.end(), text) == v_.notes.end())
      v_.notes.push_back(std::move(text));
  }

  SpfMacroContext context(const std::string& domain) const {
    SpfMacroContext c;
    c.sender = sender_;
    c.local_part = local_;
    c.sender_domain = sender_domain_;
    c.domain = domain;
    c.ip = in_.ip;
    c.helo = in_.helo;
    c.receiver = in_.receiver;
    c.now = in_.now;
    return c;
  }

  std::optional<std::string> validated_ptr(const std::string& domain);
  std::optional<SpfTarget> target(const std::string& spec, const std::string& domain);
  bool count_dns_term(const std::string& term, const std::string& domain);
  bool count_void(const DnsResult& r, const std::string& term, const std::string& name);
  Match evaluate(const SpfMechanism& m, const std::string& domain, int depth, HostResult& inner);
  Match match_addresses(const SpfMechanism& m, const std::string& domain);
  Match match_mx(const SpfMechanism& m, const std::string& domain);
  Match match_ptr(const SpfMechanism& m, const std::string& domain);
  Match match_exists(const SpfMechanism& m, const std::string& domain);
  void prefetch(const SpfRecord& rec, std::size_t from, const std::string& domain);

  bool contains_ip(const DnsResult& r, int cidr4, int cidr6) const {
    for (const auto& rec : r.records) {
      if (!rec.address) continue;
      if (rec.address->is_v4() != in_.ip.is_v4()) continue;
      if (rec.address->same_network(in_.ip, in_.ip.is_v4() ? cidr4 : cidr6)) return true;
    }
    return false;
  }

  const SpfInput& in_;
  const DnsSource& dns_;
  SpfVerdict& v_;
  std::string local_, sender_domain_, sender_;
  RrType address_type_;
};

// The validated domain name of the connecting address for %{p} (§7.3, §5.5): PTR names whose
// address lookup gives the address back; the current domain first, then one of its
// subdomains, then any; "unknown" if none (errors included).
std::optional<std::string> Evaluator::validated_ptr(const std::string& domain) {
  const DnsResult* ptr = ask(in_.ip.reverse_name(), RrType::ptr);
  if (!ptr) return std::nullopt;
  if (ptr->status != DnsStatus::ok) return "unknown";
  std::vector<std::string> validated;
  bool missing = false;
  std::size_t seen = 0;
  for (const auto& rec : ptr->records) {
    if (rec.type != RrType::ptr) continue;
    if (seen++ == kMaxPtrNames) break;
    const std::string name = strip_dot(rec.text);
    if (!queryable(name)) continue;
    const DnsResult* a = ask(name, address_type_);
    if (!a) {
      missing = true;
      continue;
    }
    if (a->status == DnsStatus::ok && contains_ip(*a, 32, 128)) validated.push_back(name);
  }
  if (missing) return std::nullopt;
  for (const auto& n : validated)
    if (ascii::iequals(n, domain)) return n;
  for (const auto& n : validated)
    if (ends_with_domain(n, domain)) return n;
  if (!validated.empty()) return validated.front();
  return "unknown";
}

std::optional<SpfTarget> Evaluator::target(const std::string& spec, const std::string& domain) {
  if (spec.empty()) return SpfTarget{SpfTarget::Status::ok, domain};
  SpfMacroContext ctx = context(domain);
  std::string p;
  if (uses_p_macro(spec)) {
    auto vp = validated_ptr(domain);
    if (!vp) return std::nullopt;
    p = std::move(*vp);
    ctx.validated_ptr = p;
  }
  return expand_domain_spec(spec, ctx);
}

// Counts a DNS term against the limit of 10; false (and a permerror) once it is passed.
bool Evaluator::count_dns_term(const std::string& term, const std::string& domain) {
  if (++v_.dns_lookups <= kMaxDnsTerms) return true;
  v_.lookup_limit_exceeded = true;
  note("more than " + std::to_string(kMaxDnsTerms) +
       " DNS lookups (RFC 7208 §4.6.4): the limit was passed at '" + printable(term) +
       "' in the SPF record of " + printable(domain));
  return false;
}

// Counts a void answer of a term's lookup; false (and a permerror) once more than 2.
bool Evaluator::count_void(const DnsResult& r, const std::string& term, const std::string& name) {
  if (!is_void(r)) return true;
  if (++v_.void_lookups <= kMaxVoidLookups) return true;
  v_.void_limit_exceeded = true;
  note("more than " + std::to_string(kMaxVoidLookups) +
       " lookups found nothing (RFC 7208 §4.6.4), the last for '" + printable(term) + "' (" +
       printable(name) + ": " + describe(r) + ")");
  return false;
}

Match Evaluator::match_addresses(const SpfMechanism& m, const std::string& domain) {
  auto t = target(m.domain_spec, domain);
  if (!t) return Match::suspended;
  if (t->status != SpfTarget::Status::ok) {
    remark("'" + printable(m.text) + "' names '" + printable(t->name) +
           "', which no DNS query can carry: treated as no match");
    return Match::no;
  }
  const DnsResult* r = ask(t->name, address_type_);
  if (!r) return Match::suspended;
  if (is_error(*r)) {
    note(to_string(address_type_) + " lookup of " + printable(t->name) + " for '" +
         printable(m.text) + "': " + describe(*r));
    return Match::temperror;
  }
  if (!count_void(*r, m.text, t->name)) return Match::permerror;
  return contains_ip(*r, m.cidr4, m.cidr6) ? Match::yes : Match::no;
}

Match Evaluator::match_mx(const SpfMechanism& m, const std::string& domain) {
  auto t = target(m.domain_spec, domain);
  if (!t) return Match::suspended;
  if (t->status != SpfTarget::Status::ok) {
    remark("'" + printable(m.text) + "' names '" + printable(t->name) +
           "', which no DNS query can carry: treated as no match");
    return Match::no;
  }
  const DnsResult* r = ask(t->name, RrType::mx);
  if (!r) return Match::suspended;
  if (is_error(*r)) {
    note("MX lookup of " + printable(t->name) + " for '" + printable(m.text) +
         "': " + describe(*r));
    return Match::temperror;
  }
  if (!count_void(*r, m.text, t->name)) return Match::permerror;
  std::vector<const DnsRecord*> hosts;
  for (const auto& rec : r->records)
    if (rec.type == RrType::mx) hosts.push_back(&rec);
  if (hosts.size() > kMaxMxHosts) {
    note("the MX record set of " + printable(t->name) + " lists " + std::to_string(hosts.size()) +
         " hosts; '" + printable(m.text) + "' may look at " + std::to_string(kMaxMxHosts) +
         " at most (RFC 7208 §4.6.4)");
    return Match::permerror;
  }
  std::stable_sort(hosts.begin(), hosts.end(), [](const DnsRecord* a, const DnsRecord* b) {
    return a->preference < b->preference;
  });
  bool missing = false;
  const DnsResult* failed = nullptr;
  std::string failed_name;
  for (const DnsRecord* h : hosts) {
    const std::string name = strip_dot(h->text);
    if (name.empty() || name == "." || !queryable(name)) continue;  // null MX (RFC 7505)
    const DnsResult* a = ask(name, address_type_);
    if (!a) {
      missing = true;
      continue;
    }
    if (is_error(*a)) {
      if (!failed) {
        failed = a;
        failed_name = name;
      }
      continue;
    }
    if (contains_ip(*a, m.cidr4, m.cidr6)) return Match::yes;
  }
  if (missing) return Match::suspended;
  if (failed) {
    note(to_string(address_type_) + " lookup of MX host " + printable(failed_name) + " for '" +
         printable(m.text) + "': " + describe(*failed));
    return Match::temperror;
  }
  return Match::no;
}

Match Evaluator::match_ptr(const SpfMechanism& m, const std::string& domain) {
  auto t = target(m.domain_spec, domain);
  if (!t) return Match::suspended;
  if (t->status != SpfTarget::Status::ok) {
    remark("'" + printable(m.text) + "' names '" + printable(t->name) +
           "', which no DNS query can carry: treated as no match");
    return Match::no;
  }
  const DnsResult* r = ask(in_.ip.reverse_name(), RrType::ptr);
  if (!r) return Match::suspended;
  if (r->status != DnsStatus::ok) {  // §5.5: a DNS error makes ptr not match
    if (!count_void(*r, m.text, in_.ip.reverse_name())) return Match::permerror;
    return Match::no;
  }
  bool missing = false;
  std::size_t seen = 0;
  for (const auto& rec : r->records) {
    if (rec.type != RrType::ptr) continue;
    if (seen++ == kMaxPtrNames) break;
    const std::string name = strip_dot(rec.text);
    if (!queryable(name) || !ends_with_domain(name, t->name)) continue;
    const DnsResult* a = ask(name, address_type_);
    if (!a) {
      missing = true;
      continue;
    }
    // §5.5: an error on the address lookup skips the name.
    if (a->status == DnsStatus::ok && contains_ip(*a, 32, 128)) return Match::yes;
  }
  return missing ? Match::suspended : Match::no;
}

Match Evaluator::match_exists(const SpfMechanism& m, const std::string& domain) {
  auto t = target(m.domain_spec, domain);
  if (!t) return Match::suspended;
  if (t->status != SpfTarget::Status::ok) {
    remark("'" + printable(m.text) + "' names '" + printable(t->name) +
           "', which no DNS query can carry: treated as no match");
    return Match::no;
  }
  const DnsResult* r = ask(t->name, RrType::a);  // always A, even for IPv6 (§5.7)
  if (!r) return Match::suspended;
  if (is_error(*r)) {
    note("A lookup of " + printable(t->name) + " for '" + printable(m.text) + "': " + describe(*r));
    return Match::temperror;
  }
  if (!count_void(*r, m.text, t->name)) return Match::permerror;
  return r->status == DnsStatus::ok ? Match::yes : Match::no;
}

Match Evaluator::evaluate(const SpfMechanism& m, const std::string& domain, int depth,
                          HostResult& inner) {
  switch (m.kind) {
    case SpfMechanismKind::all:
      return Match::yes;
    case SpfMechanismKind::ip4:
    case SpfMechanismKind::ip6: {
      const bool v6 = m.kind == SpfMechanismKind::ip6;
      return spf_network_contains(m.network, v6, v6 ? m.cidr6 : m.cidr4, in_.ip) ? Match::yes
                                                                                 : Match::no;
    }
    case SpfMechanismKind::a:
      return match_addresses(m, domain);
    case SpfMechanismKind::mx:
      return match_mx(m, domain);
    case SpfMechanismKind::ptr:
      return match_ptr(m, domain);
    case SpfMechanismKind::exists:
      return match_exists(m, domain);
    case SpfMechanismKind::include: {
      auto t = target(m.domain_spec, domain);
      if (!t) return Match::suspended;
      if (t->status != SpfTarget::Status::ok) {
        note("'" + printable(m.text) + "' names '" + printable(t->name) +
             "', which is not a valid domain name");
        return Match::permerror;
      }
      inner = check_host(t->name, depth + 1, m.text);
      switch (inner.outcome) {
        case Outcome::pass:
          return Match::yes;
        case Outcome::fail:
        case Outcome::softfail:
        case Outcome::neutral:
          return Match::no;
        case Outcome::temperror:
          return Match::temperror;
        case Outcome::none:
          note("'" + printable(m.text) + "': " + printable(t->name) +
               " publishes no SPF record (an include of a domain without one is a permerror)");
          return Match::permerror;
        case Outcome::permerror:
          return Match::permerror;
        case Outcome::suspended:
          return Match::suspended;
      }
      return Match::permerror;
    }
  }
  return Match::permerror;
}

// Adds the first lookup of each later DNS term of `rec` (from index `from`, then redirect=)
// to the needs, within what is left of the limit of 10, so that independent lookups are asked
// together. Targets that need %{p} are left for their turn.
void Evaluator::prefetch(const SpfRecord& rec, std::size_t from, const std::string& domain) {
  int budget = kMaxDnsTerms - v_.dns_lookups;
  auto want = [&](const std::string& spec, RrType type) {
    if (budget-- <= 0 || uses_p_macro(spec)) return;
    const SpfTarget t = spec.empty() ? SpfTarget{SpfTarget::Status::ok, domain}
                                     : expand_domain_spec(spec, context(domain));
    if (t.status == SpfTarget::Status::ok && !dns_.find(t.name, type)) v_.needs.add(t.name, type);
  };
  for (std::size_t i = from; i < rec.mechanisms.size() && budget > 0; ++i) {
    const SpfMechanism& m = rec.mechanisms[i];
    switch (m.kind) {
      case SpfMechanismKind::include:
        want(m.domain_spec, RrType::txt);
        break;
      case SpfMechanismKind::a:
        want(m.domain_spec, address_type_);
        break;
      case SpfMechanismKind::mx:
        want(m.domain_spec, RrType::mx);
        break;
      case SpfMechanismKind::exists:
        want(m.domain_spec, RrType::a);
        break;
      case SpfMechanismKind::ptr:
        if (budget-- > 0 && !dns_.find(in_.ip.reverse_name(), RrType::ptr))
          v_.needs.add(in_.ip.reverse_name(), RrType::ptr);
        break;
      default:
        break;
    }
  }
  if (rec.redirect && budget > 0) want(*rec.redirect, RrType::txt);
}

HostResult Evaluator::check_host(const std::string& domain, int depth, const std::string& via) {
  HostResult hr;
  const DnsResult* txt = ask(domain, RrType::txt);
  if (!txt) {
    hr.outcome = Outcome::suspended;
    return hr;
  }
  if (is_error(*txt)) {
    note("TXT lookup of " + printable(domain) + ": " + describe(*txt));
    hr.outcome = Outcome::temperror;
    return hr;
  }
  std::vector<const std::string*> records;
  if (txt->status == DnsStatus::ok)
    for (const auto& r : txt->records)
      if (r.type == RrType::txt && is_spf1_record(r.text)) records.push_back(&r.text);
  if (depth == 0) v_.spf_records = static_cast<int>(records.size());
  if (records.empty()) {
    // The TXT lookup of an include or redirect target is that term's lookup (void count).
    if (depth > 0 && !count_void(*txt, via, domain)) {
      hr.outcome = Outcome::permerror;
      return hr;
    }
    if (depth == 0)
      note(printable(domain) + (txt->status == DnsStatus::nxdomain
                                    ? " does not exist (NXDOMAIN)"
                                    : " publishes no SPF record (no TXT record starting with "
                                      "\"v=spf1\")"));
    hr.outcome = Outcome::none;
    return hr;
  }
  if (records.size() > 1) {
    note(std::to_string(records.size()) + " SPF records at " + printable(domain) +
         " (RFC 7208 §4.5 allows one)");
    hr.outcome = Outcome::permerror;
    if (depth == 0) v_.record = *records.front();
    return hr;
  }
  const std::string& text = *records.front();
  if (depth == 0) v_.record = text;
  v_.chain.push_back({domain, text, via, depth});
  const SpfParse parsed = parse_spf_record(text);
  if (!parsed.record) {
    note("the SPF record of " + printable(domain) + ": " + printable(parsed.error));
    hr.outcome = Outcome::permerror;
    return hr;
  }
  const SpfRecord& rec = *parsed.record;

  for (std::size_t i = 0; i < rec.mechanisms.size(); ++i) {
    const SpfMechanism& m = rec.mechanisms[i];
    const bool dns_term = queries_dns(m.kind);
    const int before = v_.dns_lookups;
    if (dns_term && !count_dns_term(m.text, domain)) {
      hr.outcome = Outcome::permerror;
      return hr;
    }
    HostResult inner;
    const Match match = evaluate(m, domain, depth, inner);
    if (depth == 0 && dns_term) v_.term_costs.push_back({m.text, v_.dns_lookups - before});
    switch (match) {
      case Match::yes:
        hr.outcome = from_qualifier(m.qualifier);
        hr.mechanism = m.text;
        if (m.kind == SpfMechanismKind::include) {
          hr.matched_domain = inner.matched_domain;
          hr.matched_term = inner.matched_term;
        } else {
          hr.matched_domain = domain;
          hr.matched_term = m.text;
        }
        if (hr.outcome == Outcome::fail && rec.exp) hr.exp = ExpSource{*rec.exp, domain};
        return hr;
      case Match::no:
        continue;
      case Match::temperror:
        hr.outcome = Outcome::temperror;
        return hr;
      case Match::permerror:
        hr.outcome = Outcome::permerror;
        return hr;
      case Match::suspended:
        prefetch(rec, i + 1, domain);
        hr.outcome = Outcome::suspended;
        return hr;
    }
  }

  if (rec.redirect) {
    const int before = v_.dns_lookups;
    if (!count_dns_term(rec.redirect_text, domain)) {
      hr.outcome = Outcome::permerror;
      return hr;
    }
    auto t = target(*rec.redirect, domain);
    if (!t) {
      hr.outcome = Outcome::suspended;
      return hr;
    }
    if (t->status != SpfTarget::Status::ok) {
      note("'" + printable(rec.redirect_text) + "' names '" + printable(t->name) +
           "', which is not a valid domain name");
      hr.outcome = Outcome::permerror;
      return hr;
    }
    HostResult child = check_host(t->name, depth + 1, rec.redirect_text);
    if (depth == 0) v_.term_costs.push_back({rec.redirect_text, v_.dns_lookups - before});
    if (child.outcome == Outcome::none) {
      note("'" + printable(rec.redirect_text) + "': " + printable(t->name) +
           " publishes no SPF record (a redirect to a domain without one is a permerror)");
      child.outcome = Outcome::permerror;
    }
    child.mechanism = rec.redirect_text;
    return child;
  }
  hr.outcome = Outcome::neutral;  // §4.7: no term matched, no redirect
  return hr;
}

std::optional<std::string> Evaluator::explain(const ExpSource& exp) {
  SpfMacroContext ctx = context(exp.domain);
  std::string p;
  if (uses_p_macro(exp.spec)) {
    auto vp = validated_ptr(exp.domain);
    if (!vp) return std::nullopt;
    p = *vp;
    ctx.validated_ptr = p;
  }
  const SpfTarget t = expand_domain_spec(exp.spec, ctx);
  if (t.status != SpfTarget::Status::ok) return "";
  const DnsResult* r = ask(t.name, RrType::txt);
  if (!r) return std::nullopt;
  // §6.2: any error, no record or more than one: as if there were no exp=.
  if (r->status != DnsStatus::ok) return "";
  const std::string* text = nullptr;
  for (const auto& rec : r->records) {
    if (rec.type != RrType::txt) continue;
    if (text) return "";
    text = &rec.text;
  }
  if (!text || !is_valid_macro_string(*text, true)) return "";
  if (p.empty() && uses_p_macro(*text)) {
    auto vp = validated_ptr(exp.domain);
    if (!vp) return std::nullopt;
    p = *vp;
    ctx.validated_ptr = p;
  }
  return expand_macros(*text, ctx, true).value_or("");
}

SpfResult to_result(Outcome o) {
  switch (o) {
    case Outcome::pass:
      return SpfResult::pass;
    case Outcome::fail:
      return SpfResult::fail;
    case Outcome::softfail:
      return SpfResult::softfail;
    case Outcome::neutral:
      return SpfResult::neutral;
    case Outcome::none:
      return SpfResult::none;
    case Outcome::temperror:
      return SpfResult::temperror;
    case Outcome::permerror:
    case Outcome::suspended:
      return SpfResult::permerror;
  }
  return SpfResult::permerror;
}

// §4.3: a domain check_host() can start from: no address literal, labels of 1 to 63 bytes of
// visible ASCII, at most 253 bytes, at least two labels.
std::string initial_domain_problem(std::string_view d) {
  if (d.empty()) return "no domain to check";
  if (d.front() == '[') return "an address literal, not a domain: no SPF record can exist";
  for (char c : d)
    if (c < 0x21 || c > 0x7e) return "not a valid domain name (RFC 7208 §4.3)";
  if (!queryable(d) || d.find('.') == std::string_view::npos)
    return "not a valid multi-label domain name (RFC 7208 §4.3)";
  return {};
}

std::string ip_term(const std::string& ip) {
  return (ip.find(':') == std::string::npos ? "ip4:" : "ip6:") + ip;
}

}  // namespace

std::string_view to_string(SpfResult result) {
  switch (result) {
    case SpfResult::none:
      return "none";
    case SpfResult::neutral:
      return "neutral";
    case SpfResult::pass:
      return "pass";
    case SpfResult::fail:
      return "fail";
    case SpfResult::softfail:
      return "softfail";
    case SpfResult::temperror:
      return "temperror";
    case SpfResult::permerror:
      return "permerror";
  }
  return "permerror";
}

SpfVerdict check_spf(const SpfInput& input, SpfIdentity identity, const DnsSource& dns) {
  SpfVerdict v;
  v.identity = identity;
  v.ip = input.ip.to_string();

  // §2.3, §2.4, §4.3: the <sender> and the domain to start from.
  std::string local = "postmaster";
  std::string domain = input.helo;
  if (identity == SpfIdentity::mail_from && !input.mail_from.empty()) {
    const std::size_t at = input.mail_from.rfind('@');
    if (at == std::string::npos) {
      domain = input.mail_from;
    } else {
      if (at > 0) local = input.mail_from.substr(0, at);
      domain = input.mail_from.substr(at + 1);
    }
  }
  domain = strip_dot(ascii::trim(domain));
  if (auto a = to_a_labels(domain)) domain = std::move(*a);
  v.domain = printable(domain);
  v.sender = printable(local) + "@" + v.domain;

  if (std::string problem = initial_domain_problem(domain); !problem.empty()) {
    v.problem = "'" + v.domain + "': " + problem;
    v.result = SpfResult::none;
    v.domain_invalid = true;
    v.complete = true;
    return v;
  }

  Evaluator ev(input, dns, v, local, domain);
  const HostResult hr = ev.check_host(domain, 0, "");
  if (hr.outcome == Outcome::suspended) return v;  // complete = false, needs set
  v.result = to_result(hr.outcome);
  v.mechanism = hr.mechanism;
  v.matched_domain = hr.matched_domain;
  v.matched_term = hr.matched_term;
  if (hr.outcome == Outcome::fail && hr.exp) {
    auto text = ev.explain(*hr.exp);
    if (!text) return v;
    v.explanation = std::move(*text);
  }
  v.needs = DnsNeeds{};
  v.complete = true;
  return v;
}

nlohmann::ordered_json to_json(const SpfVerdict& v) {
  nlohmann::ordered_json j;
  j["result"] = std::string(to_string(v.result));
  j["domain"] = v.domain;
  j["record"] = printable(v.record);
  j["mechanism"] = printable(v.mechanism);
  j["dns_lookups"] = v.dns_lookups;
  j["void_lookups"] = v.void_lookups;
  j["explanation"] = printable(v.explanation);
  j["identity"] = v.identity == SpfIdentity::helo ? "helo" : "mail_from";
  j["sender"] = v.sender;
  j["problem"] = printable(v.problem);
  auto notes = nlohmann::ordered_json::array();
  for (const auto& n : v.notes) notes.push_back(printable(n));
  j["notes"] = std::move(notes);
  j["matched"] = {{"domain", printable(v.matched_domain)}, {"term", printable(v.matched_term)}};
  auto chain = nlohmann::ordered_json::array();
  for (const auto& s : v.chain)
    chain.push_back({{"domain", printable(s.domain)},
                     {"record", printable(s.record)},
                     {"via", printable(s.via)}});
  j["chain"] = std::move(chain);
  return j;
}

std::vector<Hint> spf_hints(const SpfVerdict& v) {
  std::vector<Hint> hints;
  if (!v.complete) return hints;
  const bool helo = v.identity == SpfIdentity::helo;
  const std::string add = "`" + ip_term(v.ip) + "`";
  const std::string where = v.matched_domain.empty() ? v.domain : printable(v.matched_domain);
  const std::string expl = v.explanation.empty()
                               ? ""
                               : " The domain's explanation: \"" + printable(v.explanation) + "\".";
  auto hint = [&](std::string code, std::string severity, std::string text) {
    hints.push_back(Hint{std::move(code), std::move(severity), std::move(text)});
  };

  if (helo) {
    switch (v.result) {
      case SpfResult::fail:
      case SpfResult::softfail:
        hint(v.result == SpfResult::fail ? "spf-helo-fail" : "spf-helo-softfail", "warning",
             "The HELO name " + v.domain + " has an SPF record that does not allow " + v.ip +
                 " (SPF " + std::string(to_string(v.result)) + " for the HELO identity): add " +
                 add + " to the SPF record of " + where +
                 ", or greet with a name whose SPF record lists this address." + expl);
        break;
      case SpfResult::permerror:
        hint("spf-helo-permerror", "warning",
             "The SPF record of the HELO name " + v.domain +
                 " is broken (permerror): " + printable(v.problem) + ".");
        break;
      default:
        break;
    }
    return hints;
  }

  const std::string identity_name = "the MAIL FROM domain " + v.domain;
  switch (v.result) {
    case SpfResult::none:
      if (v.domain_invalid) {
        hint("spf-none", "warning",
             "SPF cannot be checked: " + printable(v.problem) +
                 ". Send with a MAIL FROM address in a domain you control.");
      } else {
        hint("spf-none", "warning",
             v.domain +
                 " publishes no SPF record, so receivers cannot tell which servers may "
                 "send its mail (large mailbox providers require SPF or DKIM, and DMARC "
                 "needs one of them aligned). Publish a TXT record at " +
                 v.domain + " such as `v=spf1 " + ip_term(v.ip) +
                 " ~all` (or `include:` your mail provider's record).");
      }
      break;
    case SpfResult::fail:
      hint("spf-fail", "error",
           "SPF fail: " + v.ip + " is not allowed to send mail for " + v.domain +
               " (the SPF record ends in `" + printable(v.matched_term) +
               "`). Receivers may reject this mail. Add " + add + " to the SPF record of " + where +
               ", or send through a server that record lists." + expl);
      break;
    case SpfResult::softfail:
      hint("spf-softfail", "warning",
           "SPF softfail: " + v.ip + " is not listed in the SPF record of " + v.domain +
               " (it matched `" + printable(v.matched_term) +
               "`), so receivers treat this mail as suspicious. Add " + add +
               " to the SPF record of " + where + ".");
      break;
    case SpfResult::neutral:
      hint("spf-neutral", "warning",
           "SPF neutral: the SPF record of " + v.domain + " neither allows nor forbids " + v.ip +
               (v.matched_term.empty() ? " (no term matched)"
                                       : " (`" + printable(v.matched_term) + "`)") +
               ", which counts as not authenticated. Add " + add + " to the SPF record of " +
               where + ".");
      break;
    case SpfResult::permerror: {
      std::string text;
      if (v.spf_records > 1) {
        text = "There are " + std::to_string(v.spf_records) + " SPF records at " + v.domain +
               "; receivers treat that as a permanent error. Publish one: merge them into a "
               "single `v=spf1 ...` TXT record.";
      } else if (v.lookup_limit_exceeded) {
        std::vector<SpfTermCost> costs = v.term_costs;
        std::stable_sort(
            costs.begin(), costs.end(),
            [](const SpfTermCost& a, const SpfTermCost& b) { return a.lookups > b.lookups; });
        std::string list;
        for (const auto& c : costs) {
          if (!list.empty()) list += ", ";
          list += "`" + printable(c.term) + "` " + std::to_string(c.lookups);
        }
        text = "The SPF record of " + v.domain +
               " needs more than 10 DNS lookups (the limit of RFC 7208 §4.6.4); receivers treat "
               "it as a permanent error. Lookups per term: " +
               list +
               ". Flatten the largest include (replace it with the ip4:/ip6: ranges it "
               "lists) or remove terms you no longer need.";
      } else if (v.void_limit_exceeded) {
        text = "The SPF record of " + v.domain +
               " names domains that do not exist or have no records: " + printable(v.problem) +
               ". More than 2 such lookups are a permanent error (RFC 7208 §4.6.4): remove those "
               "terms.";
      } else {
        text = "The SPF record of " + v.domain +
               " cannot be used (permerror): " + printable(v.problem) +
               ". Receivers treat it as a permanent error: fix the record.";
      }
      hint("spf-permerror", "error", text);
      break;
    }
    case SpfResult::temperror:
      hint("spf-temperror", "warning",
           "SPF could not be checked for " + identity_name + ": " + printable(v.problem) +
               ". A DNS lookup failed temporarily (timeout or server failure); if it persists, "
               "check the name servers of the domain named.");
      break;
    case SpfResult::pass: {
      const std::string term = ascii::lower(v.matched_term);
      if (term == "all" || term == "+all")
        hint("spf-pass-all", "warning",
             "The SPF record of " + where + " ends in `" + printable(v.matched_term) +
                 "`, which lets every address on the internet send as " + v.domain +
                 ". List your servers and end the record with `~all` or `-all`.");
      break;
    }
  }
  return hints;
}

}  // namespace ipconfirm::responder

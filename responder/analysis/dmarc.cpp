// DMARC evaluation against a DnsSource. See dmarc.hpp.
#include "responder/analysis/dmarc.hpp"

#include <algorithm>
#include <map>

#include "core/ascii.hpp"
#include "core/domain.hpp"
#include "mime/address.hpp"
#include "responder/analysis/idna.hpp"

namespace ipconfirm::responder {

namespace {

constexpr std::size_t kMaxDkimDomains = 10;
constexpr std::size_t kWalkLabelLimit = 8;  // §4.10: at most eight queries per walk

std::string printable(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c < 0x20 || c > 0x7e) c = '?';
  return out;
}

std::vector<std::string_view> labels(std::string_view d) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= d.size()) {
    std::size_t dot = d.find('.', start);
    if (dot == std::string_view::npos) dot = d.size();
    out.push_back(d.substr(start, dot - start));
    start = dot + 1;
  }
  return out;
}

// The `n` right-most labels of `d`.
std::string suffix(std::string_view d, std::size_t n) {
  const auto l = labels(d);
  std::string out;
  for (std::size_t i = l.size() - std::min(n, l.size()); i < l.size(); ++i) {
    if (!out.empty()) out += '.';
    out += l[i];
  }
  return out;
}

std::string last_label(std::string_view d) {
  const std::size_t dot = d.rfind('.');
  return ascii::lower(dot == std::string_view::npos ? d : d.substr(dot + 1));
}

// The names a tree walk from `start` looks at, in order (§4.10 steps 1-7): the start, then
// (past 7 labels, jumping to 7) one label less each time, down to one label.
std::vector<std::string> walk_names(const std::string& start) {
  std::vector<std::string> out{start};
  const std::size_t x = labels(start).size();
  for (std::size_t k = x >= kWalkLabelLimit ? kWalkLabelLimit - 1 : x - 1; k >= 1; --k)
    out.push_back(suffix(start, k));
  return out;
}

struct Level {
  enum class State { none, one, many, error };
  std::string domain;
  State state = State::none;
  std::optional<DmarcRecord> record;
  std::string text;
  std::string outcome;
};

struct Walk {
  std::vector<Level> levels;  // up to the stop, or to the failed lookup
  bool complete = false;      // every answer it needed was there
  bool error = false;         // a lookup failed before the walk could stop
  std::string error_detail;
  std::string org;                    // complete and no error: the Organizational Domain (§4.10.2)
  std::vector<std::string> multiple;  // names with more than one DMARC record
};

Level classify(const std::string& domain, const DnsResult& r) {
  Level l;
  l.domain = domain;
  if (r.status == DnsStatus::temperror || r.status == DnsStatus::permerror) {
    l.state = Level::State::error;
    l.outcome = r.detail.empty() ? std::string(to_string(r.status)) : r.detail;
    return l;
  }
  std::size_t count = 0;
  std::string near_miss;
  if (r.status == DnsStatus::ok) {
    for (const auto& rec : r.records) {
      if (rec.type != RrType::txt) continue;
      if (auto parsed = parse_dmarc_record(rec.text)) {
        if (++count == 1) {
          l.record = std::move(parsed);
          l.text = rec.text;
        }
      } else if (near_miss.empty() && rec.text.size() >= 7 &&
                 ascii::iequals(ascii::trim(rec.text).substr(0, 7), "v=dmarc")) {
        near_miss = rec.text.substr(0, 40);
      }
    }
  }
  if (count == 1) {
    l.state = Level::State::one;
    l.outcome = l.record->psd == 'u' ? "record" : std::string("record (psd=") + l.record->psd + ")";
  } else if (count > 1) {
    l.state = Level::State::many;
    l.record.reset();
    l.text.clear();
    l.outcome = std::to_string(count) + " records (all ignored, RFC 9989 §4.10)";
  } else {
    l.state = Level::State::none;
    l.outcome = near_miss.empty()
                    ? (r.status == DnsStatus::nxdomain ? "no record (NXDOMAIN)" : "no record")
                    : "no record: '" + printable(near_miss) +
                          "' is not a DMARC record (it must start with exactly \"v=DMARC1;\")";
  }
  return l;
}

// The DNS Tree Walk of §4.10 from `start`. Every name it may need is asked at once: they do
// not depend on each other, and without psd= tags the walk reads them all anyway.
Walk tree_walk(const std::string& start, const DnsSource& dns, DnsNeeds& needs) {
  Walk w;
  const std::vector<std::string> names = walk_names(start);
  std::vector<const DnsResult*> answers;
  bool missing = false;
  for (const auto& n : names) {
    const std::string q = "_dmarc." + n;
    const DnsResult* r = q.size() > 253 ? nullptr : dns.find(q, RrType::txt);
    if (!r && q.size() <= 253) {
      needs.add(q, RrType::txt);
      missing = true;
    }
    answers.push_back(r);
  }
  (void)missing;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string q = "_dmarc." + names[i];
    if (q.size() > 253) {  // no such name can exist
      Level l;
      l.domain = names[i];
      l.outcome = "no record (name too long)";
      w.levels.push_back(std::move(l));
      continue;
    }
    if (!answers[i]) return w;  // incomplete
    Level l = classify(names[i], *answers[i]);
    if (l.state == Level::State::many) w.multiple.push_back(q);
    const bool stop =
        l.state == Level::State::one && (l.record->psd == 'y' || l.record->psd == 'n');
    const bool failed = l.state == Level::State::error;
    if (failed) {
      w.error = true;
      w.error_detail = "TXT lookup of " + q + ": " + l.outcome;
    }
    w.levels.push_back(std::move(l));
    if (stop || failed) break;
  }
  w.complete = true;
  if (w.error) return w;
  // §4.10.2: from the longest name to the shortest; the walk stopped at a psd= record.
  const Level* last = nullptr;
  std::size_t last_index = 0;
  for (std::size_t i = 0; i < w.levels.size(); ++i)
    if (w.levels[i].state == Level::State::one) {
      last = &w.levels[i];
      last_index = i;
    }
  if (!last)
    w.org = start;
  else if (last->record->psd == 'y' && last_index != 0)
    w.org = suffix(start, labels(last->domain).size() + 1);
  else
    w.org = last->domain;
  return w;
}

enum class Align { yes, no, unknown, suspended };

}  // namespace

std::string_view to_string(DmarcResult result) {
  switch (result) {
    case DmarcResult::none:
      return "none";
    case DmarcResult::pass:
      return "pass";
    case DmarcResult::fail:
      return "fail";
    case DmarcResult::temperror:
      return "temperror";
    case DmarcResult::permerror:
      return "permerror";
  }
  return "permerror";
}

DmarcVerdict check_dmarc(const DmarcInput& input, const DnsSource& dns) {
  DmarcVerdict v;
  v.spf_pass = input.spf_pass;
  v.spf_domain = printable(ascii::lower(input.spf_domain));
  auto finish = [&v](DmarcResult r, std::string problem) {
    v.result = r;
    if (!problem.empty() && v.problem.empty()) v.problem = std::move(problem);
    v.needs = DnsNeeds{};
    v.complete = true;
    return v;
  };

  // §5.3.1: exactly one Author Domain.
  if (input.from_fields.empty())
    return finish(DmarcResult::permerror, "the message has no From: field (RFC 5322 requires one)");
  if (input.from_fields.size() > 1)
    return finish(DmarcResult::permerror, "the message has " +
                                              std::to_string(input.from_fields.size()) +
                                              " From: fields (RFC 5322 allows one)");
  const mime::AddressList from = mime::parse_address_list(input.from_fields.front());
  v.from_addresses = from.mailboxes.size();
  const std::vector<std::string> domains = mime::distinct_domains(from);
  if (domains.size() == 1) v.from_domain = printable(domains.front());
  if (!from.well_formed)
    return finish(DmarcResult::permerror, "the From: field does not parse: " + from.error);
  if (domains.empty()) return finish(DmarcResult::permerror, "the From: field holds no address");
  if (domains.size() > 1) {
    std::string list;
    for (std::size_t i = 0; i < domains.size() && i < 5; ++i)
      list += (i ? ", " : "") + printable(domains[i]);
    return finish(DmarcResult::permerror, "the From: field holds addresses in " +
                                              std::to_string(domains.size()) + " domains (" + list +
                                              "): DMARC needs exactly one (RFC 9989 §5.3.1)");
  }
  std::string author = domains.front();
  if (auto a = to_a_labels(author)) author = std::move(*a);
  if (!author.empty() && author.back() == '.') author.pop_back();
  v.from_domain = printable(author);
  if (!is_valid_domain(author))
    return finish(DmarcResult::permerror,
                  "the From: domain '" + v.from_domain + "' is not a valid domain name");

  // The walks: the Author Domain's, and (for relaxed alignment) each authenticated domain's.
  DnsNeeds& needs = v.needs;
  const Walk aw = tree_walk(author, dns, needs);
  if (!dns.find(author, RrType::a)) needs.add(author, RrType::a);  // existence, for np=
  std::vector<std::string> ids;
  auto add_id = [&](const std::string& raw) {
    std::string d = to_a_labels(raw).value_or(ascii::lower(raw));
    if (!d.empty() && d.back() == '.') d.pop_back();
    if (d.empty() || std::find(ids.begin(), ids.end(), d) != ids.end()) return;
    ids.push_back(std::move(d));
  };
  if (input.spf_pass && !input.spf_domain.empty()) add_id(input.spf_domain);
  for (const auto& k : input.dkim) {
    if (!k.pass || k.domain.empty()) continue;
    if (v.dkim_pass_domains.size() == kMaxDkimDomains) break;
    const std::string d = printable(ascii::lower(k.domain));
    if (std::find(v.dkim_pass_domains.begin(), v.dkim_pass_domains.end(), d) ==
        v.dkim_pass_domains.end())
      v.dkim_pass_domains.push_back(d);
    add_id(k.domain);
  }
  std::map<std::string, Walk> id_walks;
  for (const auto& d : ids)
    if (d != author && is_valid_domain(d) && last_label(d) == last_label(author))
      id_walks.emplace(d, tree_walk(d, dns, needs));
  if (!aw.complete) return v;

  for (const auto& l : aw.levels) v.walk.push_back({"_dmarc." + l.domain, l.outcome});
  v.multiple_records = aw.multiple;
  if (!aw.levels.empty() && aw.levels.front().state == Level::State::error)
    return finish(DmarcResult::temperror, aw.error_detail);

  // §4.10.1: the Author Domain's record, else its Organizational Domain's, else its PSD's.
  const Level* policy = nullptr;
  if (!aw.levels.empty() && aw.levels.front().state == Level::State::one) {
    policy = &aw.levels.front();
  } else if (aw.error) {
    return finish(DmarcResult::temperror, aw.error_detail);
  } else {
    for (const auto& l : aw.levels)
      if (l.state == Level::State::one && ascii::iequals(l.domain, aw.org)) policy = &l;
    if (!policy)
      for (const auto& l : aw.levels)
        if (l.state == Level::State::one && l.record->psd == 'y') policy = &l;
  }
  if (!aw.error) v.org_domain = aw.org;
  if (!policy) {
    std::string where = "_dmarc." + author;
    if (aw.levels.size() > 1) where += " or any of its parents";
    return finish(DmarcResult::none, "no DMARC record at " + where);
  }
  const DmarcRecord& rec = *policy->record;
  v.policy_domain = policy->domain;
  v.record = printable(policy->text);
  v.record_problems = rec.problems;
  v.removed_tags = rec.removed_tags;
  v.adkim_strict = rec.adkim_strict;
  v.aspf_strict = rec.aspf_strict;
  v.testing = rec.testing;
  const bool invalid_policy = rec.p_invalid || rec.sp_invalid || rec.np_invalid;
  if (invalid_policy && !rec.rua_valid)
    return finish(DmarcResult::none,
                  "the DMARC record at _dmarc." + v.policy_domain +
                      " has an invalid p=, sp= or np= and no valid rua=: receivers apply no "
                      "DMARC processing (RFC 9989 §4.10.1)");
  if (invalid_policy)
    v.problem = "the DMARC record at _dmarc." + v.policy_domain +
                " has an invalid p=, sp= or np=; with its rua= it counts as p=none";

  // §4.4, §4.10.2: alignment.
  auto align = [&](const std::string& id, bool strict) {
    if (ascii::iequals(id, author)) return Align::yes;
    if (strict || last_label(id) != last_label(author) || !is_valid_domain(id)) return Align::no;
    const auto it = id_walks.find(id);
    if (it == id_walks.end() || !it->second.complete) return Align::suspended;
    if (aw.error || it->second.error) {
      if (v.problem.empty())
        v.problem = "the Organizational Domain of " + printable(aw.error ? author : id) +
                    " is unknown: " + (aw.error ? aw.error_detail : it->second.error_detail);
      return Align::unknown;
    }
    return ascii::iequals(it->second.org, aw.org) ? Align::yes : Align::no;
  };
  bool suspended = false, unknown = false;
  auto note = [&](Align a) {
    suspended = suspended || a == Align::suspended;
    unknown = unknown || a == Align::unknown;
    return a == Align::yes;
  };
  if (input.spf_pass && !input.spf_domain.empty()) {
    std::string d = to_a_labels(input.spf_domain).value_or(ascii::lower(input.spf_domain));
    if (!d.empty() && d.back() == '.') d.pop_back();
    v.spf_aligned = note(align(d, rec.aspf_strict));
  }
  for (const auto& k : input.dkim) {
    if (!k.pass || k.domain.empty() || v.dkim_aligned) continue;
    std::string d = to_a_labels(k.domain).value_or(ascii::lower(k.domain));
    if (!d.empty() && d.back() == '.') d.pop_back();
    if (note(align(d, rec.adkim_strict))) {
      v.dkim_aligned = true;
      v.aligned_dkim_domain = printable(d);
    }
  }
  const bool pass = v.spf_aligned || v.dkim_aligned;
  // §4.10.2: when the Author Domain has its own record and every authenticated identifier is
  // that same domain, it is treated as its own Organizational Domain.
  if (policy == &aw.levels.front() && !ids.empty() &&
      std::all_of(ids.begin(), ids.end(), [&](const std::string& d) { return d == author; }))
    v.org_domain = author;
  if (!pass && suspended) return v;

  // §4.10.1: p for the record's own domain; sp or np for a subdomain.
  DmarcPolicy applied = rec.p.value_or(DmarcPolicy::none);
  v.policy_tag = "p";
  if (!invalid_policy && !ascii::iequals(policy->domain, author)) {
    const DnsResult* a = dns.find(author, RrType::a);
    if (!a) {
      needs.add(author, RrType::a);
      return v;
    }
    bool exists = a->status != DnsStatus::nxdomain;
    if (a->status == DnsStatus::temperror || a->status == DnsStatus::permerror) {
      exists = true;
      if (v.problem.empty())
        v.problem = "could not tell whether " + v.from_domain + " exists (" + a->detail +
                    "): np= may apply instead of sp=";
    }
    v.from_exists = exists;
    if (!exists && rec.np) {
      applied = *rec.np;
      v.policy_tag = "np";
    } else if (rec.sp) {
      applied = *rec.sp;
      v.policy_tag = "sp";
    }
  }
  v.policy = applied;

  DmarcResult result = pass ? DmarcResult::pass : DmarcResult::fail;
  if (!pass && unknown) result = DmarcResult::temperror;
  if (result == DmarcResult::fail) {
    v.disposition = applied;
    if (rec.testing)  // §4.7 t=y: one step below the policy
      v.disposition = applied == DmarcPolicy::reject ? DmarcPolicy::quarantine : DmarcPolicy::none;
  }
  return finish(result, "");
}

nlohmann::ordered_json to_json(const DmarcVerdict& v) {
  nlohmann::ordered_json j;
  j["result"] = std::string(to_string(v.result));
  j["from_domain"] = v.from_domain;
  j["policy_domain"] = v.policy_domain;
  j["org_domain"] = v.org_domain;
  j["policy"] = v.policy ? nlohmann::ordered_json(std::string(to_string(*v.policy))) : nullptr;
  j["spf_aligned"] = v.spf_aligned;
  j["dkim_aligned"] = v.dkim_aligned;
  j["record"] = v.record;
  j["policy_tag"] = v.policy_tag;
  j["testing"] = v.testing;
  j["disposition"] = std::string(to_string(v.disposition));
  j["alignment"] = {{"spf", v.aspf_strict ? "strict" : "relaxed"},
                    {"dkim", v.adkim_strict ? "strict" : "relaxed"}};
  j["aligned_dkim_domain"] = v.aligned_dkim_domain;
  auto walk = nlohmann::ordered_json::array();
  for (const auto& s : v.walk)
    walk.push_back({{"name", printable(s.name)}, {"outcome", printable(s.outcome)}});
  j["walk"] = std::move(walk);
  j["from_exists"] = v.from_exists ? nlohmann::ordered_json(*v.from_exists) : nullptr;
  j["problem"] = printable(v.problem);
  auto problems = nlohmann::ordered_json::array();
  for (const auto& p : v.record_problems) problems.push_back(printable(p));
  j["record_problems"] = std::move(problems);
  return j;
}

std::vector<Hint> dmarc_hints(const DmarcVerdict& v) {
  std::vector<Hint> hints;
  if (!v.complete) return hints;
  auto hint = [&](std::string code, std::string severity, std::string text) {
    hints.push_back(Hint{std::move(code), std::move(severity), std::move(text)});
  };
  const std::string& from = v.from_domain;
  const std::string where = "_dmarc." + (v.policy_domain.empty() ? from : v.policy_domain);

  for (const auto& name : v.multiple_records)
    hint("dmarc-multiple-records", "error",
         "There is more than one DMARC record at " + printable(name) +
             "; receivers ignore them all (RFC 9989 §4.10). Publish exactly one.");

  switch (v.result) {
    case DmarcResult::none:
      if (!v.record.empty()) {
        hint("dmarc-invalid-record", "error",
             "The DMARC record at " + where + " is not usable: " + printable(v.problem) +
                 ". Set p= to none, quarantine or reject.");
      } else {
        hint("dmarc-none", "warning",
             from + " publishes no DMARC record (looked up " + std::to_string(v.walk.size()) +
                 " name" + (v.walk.size() == 1 ? "" : "s") + ", from _dmarc." + from +
                 " up). Large mailbox providers require one from bulk senders. Publish a TXT "
                 "record at _dmarc." +
                 from +
                 " (or at your organizational domain, to cover its subdomains): "
                 "`v=DMARC1; p=none; rua=mailto:dmarc-reports@" +
                 from + "`, then raise p= once the reports show that your mail passes.");
      }
      break;
    case DmarcResult::fail: {
      std::string spf;
      if (!v.spf_pass)
        spf = "SPF did not pass";
      else
        spf = "SPF passed for " + v.spf_domain + ", which is not aligned with " + from +
              (v.aspf_strict ? " (aspf=s requires the same name)" : "");
      std::string dkim;
      if (v.dkim_pass_domains.empty()) {
        dkim = "no DKIM signature verified";
      } else {
        dkim = "DKIM verified for d=";
        for (std::size_t i = 0; i < v.dkim_pass_domains.size(); ++i)
          dkim += (i ? ", d=" : "") + v.dkim_pass_domains[i];
        dkim += ", not aligned with " + from + (v.adkim_strict ? " (adkim=s)" : "");
      }
      std::string effect;
      if (v.disposition == DmarcPolicy::reject)
        effect = " Receivers will reject it (p=reject).";
      else if (v.disposition == DmarcPolicy::quarantine)
        effect = " Receivers will put it in spam (quarantine).";
      hint("dmarc-fail", "error",
           "DMARC fail for " + from + ": " + spf + "; " + dkim + "." + effect +
               " Sign with DKIM as d=" + from +
               " (or a subdomain of it, with relaxed alignment), or send with a MAIL FROM "
               "address in " +
               from + " that its SPF record allows.");
      break;
    }
    case DmarcResult::temperror:
      hint("dmarc-temperror", "warning",
           "DMARC could not be evaluated for " + from + ": " + printable(v.problem) +
               ". A DNS lookup failed temporarily; if it persists, check the name servers.");
      break;
    case DmarcResult::permerror:
      hint("dmarc-permerror", "error",
           "DMARC cannot be applied: " + printable(v.problem) +
               ". Receivers that require DMARC refuse such mail: send with a single, "
               "well-formed From: address.");
      break;
    case DmarcResult::pass:
      break;
  }

  if ((v.result == DmarcResult::pass || v.result == DmarcResult::fail) && v.policy &&
      *v.policy == DmarcPolicy::none)
    hint("dmarc-policy-none", "info",
         "The DMARC policy for " + from + " is " + v.policy_tag + "=none (record at " + where +
             "): receivers take no action on mail that fails DMARC, so anyone can still send as " +
             from +
             ". Once the aggregate reports show all your mail passes, move to p=quarantine and "
             "then p=reject.");
  if (v.testing && v.policy && *v.policy != DmarcPolicy::none)
    hint("dmarc-testing", "info",
         "The DMARC record at " + where +
             " has t=y (testing): receivers apply one step less than " + v.policy_tag + "=" +
             std::string(to_string(*v.policy)) + ". Remove t=y when you are ready to enforce.");
  if (!v.record.empty() && v.result != DmarcResult::none && !v.record_problems.empty()) {
    std::string list;
    for (const auto& p : v.record_problems) list += (list.empty() ? "" : "; ") + printable(p);
    hint("dmarc-invalid-record", "warning",
         "Parts of the DMARC record at " + where + " are ignored: " + list + ".");
  }
  for (const auto& t : v.removed_tags)
    hint("dmarc-removed-tag", "info",
         "The DMARC record at " + where + " has " + t +
             "=, which RFC 9989 removed from DMARC; receivers ignore it" +
             (t == "pct" ? " (use t=y to test a policy instead)." : ". Remove it."));
  return hints;
}

}  // namespace ipconfirm::responder

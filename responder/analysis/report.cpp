#include "responder/analysis/report.hpp"

#include <algorithm>

#include "mime/date.hpp"
#include "responder/analysis/auth_report.hpp"
#include "responder/analysis/dnsbl.hpp"
#include "responder/analysis/helo_check.hpp"
#include "responder/analysis/path_analysis.hpp"
#include "responder/analysis/rdns_heuristics.hpp"
#include "responder/analysis/received_parser.hpp"
#include "responder/analysis/requirements.hpp"

namespace ipconfirm::responder {

namespace {

using json = nlohmann::ordered_json;

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::vector<IpAddress> addresses_of(const Lookup& l) {
  std::vector<IpAddress> out;
  if (l.status != DnsStatus::ok) return out;
  for (const auto& r : l.records)
    if (r.address) out.push_back(*r.address);
  return out;
}

bool temporary(const Lookup& l) {
  return !l.done || l.status == DnsStatus::temperror;
}

std::string_view iprev_name(int v) {
  static const char* names[] = {"pass", "fail", "none", "temperror", "permerror"};
  return names[v];
}

// PTR names a report lists (and forward-confirms: responder/analysis/lookups.cpp looks up as
// many). A hostile reverse zone can answer with thousands; the report says how many there were.
constexpr std::size_t kMaxReportedPtrNames = 10;

struct RdnsVerdict {
  int status = 2;                  // index into iprev_name
  std::vector<std::string> names;  // valid, normalised, at most kMaxReportedPtrNames
  std::size_t ptr_count = 0;       // PTR records the answer held, valid or not
  bool names_cut = false;          // the answer held more valid names than `names` lists
  std::size_t invalid = 0;         // PTR targets that are not valid host names
  bool confirmed = false;
  std::vector<std::string> confirmed_names;
  bool forward_temporary = false;
};

RdnsVerdict judge_rdns(const Observation& obs) {
  RdnsVerdict v;
  if (temporary(obs.ptr)) {
    v.status = 3;
    return v;
  }
  if (obs.ptr.status == DnsStatus::permerror) {
    v.status = 4;
    return v;
  }
  if (obs.ptr.status != DnsStatus::ok) {  // nxdomain, nodata
    v.status = 2;
    return v;
  }
  v.ptr_count = obs.ptr.omitted;
  v.names_cut = obs.ptr.omitted > 0;
  for (const auto& r : obs.ptr.records) {
    if (r.type != RrType::ptr) continue;
    ++v.ptr_count;
    if (auto name = normalise_ptr_name(r.text)) {
      if (std::find(v.names.begin(), v.names.end(), *name) != v.names.end()) continue;
      if (v.names.size() < kMaxReportedPtrNames)
        v.names.push_back(*name);
      else
        v.names_cut = true;
    } else {
      ++v.invalid;
    }
  }
  if (v.names.empty()) {
    v.status = v.invalid > 0 ? 4 : 2;
    return v;
  }
  for (const auto& f : obs.forward) {
    auto addrs = addresses_of(obs.ip.is_v4() ? f.a : f.aaaa);
    if (std::find(addrs.begin(), addrs.end(), obs.ip) != addrs.end()) {
      v.confirmed = true;
      v.confirmed_names.push_back(f.name);
    }
    if (temporary(obs.ip.is_v4() ? f.a : f.aaaa)) v.forward_temporary = true;
  }
  if (v.confirmed)
    v.status = 0;
  else if (v.forward_temporary)
    v.status = 3;
  else
    v.status = 1;
  return v;
}

}  // namespace

Report build_report(const Observation& obs, const ReportOptions& options) {
  Report rep;
  auto& hints = rep.hints;
  const std::string ip = obs.ip.to_string();
  auto hint = [&](std::string code, std::string severity, std::string text) {
    hints.push_back(Hint{std::move(code), std::move(severity), std::move(text)});
  };

  // --- Connection.
  json connection;
  connection["ip"] = ip;
  connection["port"] = obs.port;
  connection["scope"] = std::string(obs.ip.scope());
  connection["proxied"] = obs.proxied;
  // Only the socket, or a PROXY header from a trusted load balancer, gives this address.
  connection["source"] = obs.proxied ? "proxy-protocol" : "socket";
  if (obs.tls_version)
    connection["tls"] =
        json{{"version", *obs.tls_version}, {"cipher", obs.tls_cipher.value_or("")}};
  else
    connection["tls"] = nullptr;

  // --- Reverse DNS.
  RdnsVerdict rdns = judge_rdns(obs);
  GenericVerdict generic;
  bool is_generic = false;
  std::string generic_name;
  for (const auto& name : rdns.names) {
    GenericVerdict g = judge_generic_ptr(name, obs.ip);
    if (g.generic && (!is_generic || g.score > generic.score)) {
      generic = g;
      is_generic = true;
      generic_name = name;
    }
  }
  json rdns_json;
  rdns_json["status"] = std::string(iprev_name(rdns.status));
  rdns_json["ptr"] = rdns.names;
  rdns_json["ptr_count"] = rdns.ptr_count;
  rdns_json["ptr_truncated"] = rdns.names_cut;
  rdns_json["forward_confirmed"] = rdns.confirmed;
  rdns_json["confirmed_names"] = rdns.confirmed_names;
  rdns_json["invalid_ptr_count"] = rdns.invalid;
  rdns_json["generic"] = is_generic;
  rdns_json["generic_signals"] = generic.signals;
  rdns_json["generic_counter_signals"] = generic.counter_signals;
  rdns_json["query"] = obs.ip.reverse_name();

  // --- HELO.
  HeloFacts helo_facts = classify_helo(obs.helo);
  std::optional<std::vector<IpAddress>> helo_addrs;
  bool helo_temporary = false;
  if (helo_facts.kind == HeloKind::fqdn) {
    if (temporary(obs.helo_a) || temporary(obs.helo_aaaa)) {
      helo_temporary = true;
    } else {
      std::vector<IpAddress> all = addresses_of(obs.helo_a);
      for (auto& a : addresses_of(obs.helo_aaaa)) all.push_back(a);
      helo_addrs = std::move(all);
    }
  }
  HeloJudgement helo = judge_helo(helo_facts, obs.ip, rdns.names, helo_addrs);
  json helo_json;
  helo_json["name"] = helo_facts.name;
  static const char* kinds[] = {"fqdn", "address_literal", "bare_name", "invalid", "empty"};
  helo_json["kind"] = kinds[static_cast<int>(helo_facts.kind)];
  helo_json["esmtp"] = obs.esmtp;
  if (helo.resolves)
    helo_json["resolves"] = *helo.resolves;
  else
    helo_json["resolves"] = nullptr;
  helo_json["resolves_to_ip"] = helo.resolves_to_ip;
  helo_json["matches_ptr"] = helo.matches_ptr;
  helo_json["literal"] = helo_facts.literal ? json(helo_facts.literal->to_string()) : json(nullptr);
  helo_json["literal_mismatch"] = helo.literal_mismatch;

  // --- Received chain and path.
  std::vector<ReceivedHop> hops;
  json received = json::array();
  for (const auto& value : obs.message.received) {
    hops.push_back(parse_received(value));
    json hop = json(to_json(hops.back()));
    hop["claimed"] = true;  // written by the sender's servers: a claim, not an observation
    received.push_back(std::move(hop));
  }
  PathAnalysis path = analyse_path(hops, obs.ip, helo_facts.name);
  json path_json = json(to_json(path));
  path_json["notes"] = path.notes;
  path_json["received_count"] = obs.message.received_count;

  // --- DNSBL.
  json dnsbl = json::array();
  std::vector<DnsblResult> dnsbl_results;  // for the providers' rules
  std::vector<std::string> listed_zones, refused_zones;
  bool dnsbl_temporary = false;
  for (const auto& d : obs.dnsbl) {
    DnsblResult r;
    r.zone = d.zone;
    if (temporary(d.a)) {
      r.outcome = DnsblOutcome::error;
      dnsbl_temporary = true;
    } else if (d.a.status == DnsStatus::nxdomain || d.a.status == DnsStatus::nodata) {
      r.outcome = DnsblOutcome::not_listed;
    } else if (d.a.status == DnsStatus::ok) {
      auto addrs = addresses_of(d.a);
      r.outcome = interpret_dnsbl_answers(addrs);
      for (const auto& a : addrs) r.answers.push_back(a.to_string());
      std::vector<std::string> txt;
      if (d.txt.status == DnsStatus::ok)
        for (const auto& t : d.txt.records) txt.push_back(t.text);
      r.reason = sanitise_dnsbl_reason(txt);
    } else {
      r.outcome = DnsblOutcome::error;
    }
    if (r.outcome == DnsblOutcome::listed) listed_zones.push_back(d.zone);
    if (r.outcome == DnsblOutcome::refused) refused_zones.push_back(d.zone);
    json entry = json(to_json(r));
    entry["query"] = obs.ip.dnsbl_name(d.zone);
    dnsbl.push_back(std::move(entry));
    dnsbl_results.push_back(std::move(r));
  }

  // --- Message facts.
  json message;
  message["message_id"] = obs.message.message_id;
  message["date"] = obs.message.date;
  std::optional<std::int64_t> skew;
  if (obs.message.date_epoch && obs.arrival > 0) skew = *obs.message.date_epoch - obs.arrival;
  message["clock_skew_seconds"] = skew ? json(*skew) : json(nullptr);
  // The earliest Received timestamp is the sender's first server taking the message: a Date
  // close to it and far from our clock means the time went by on the way, not a wrong clock.
  const ReceivedHop* first_hop = nullptr;
  std::optional<std::int64_t> first_received;
  for (const auto& hop : hops) {
    if (!hop.parsed || hop.date.empty()) continue;
    auto t = mime::parse_rfc5322_date(hop.date);
    if (t && (!first_received || *t < *first_received)) {
      first_received = t;
      first_hop = &hop;
    }
  }
  std::optional<std::int64_t> first_skew;
  if (obs.message.date_epoch && first_received)
    first_skew = *obs.message.date_epoch - *first_received;
  message["first_received_skew_seconds"] = first_skew ? json(*first_skew) : json(nullptr);

  // --- Hints, most important first.
  // A peer on a loopback or private address is a local test: the advice about PTR records,
  // HELO names, blocklists, TLS and NAT is about how the internet sees a sender, and none of it
  // can be true of an address the internet never sees.
  const bool local_test = obs.ip.is_non_public() &&
                          std::none_of(options.lab_networks.begin(), options.lab_networks.end(),
                                       [&](const config::Network& n) {
                                         return obs.ip.same_network(n.address, n.prefix);
                                       });
  if (local_test)
    hint("non-public-ip", "info",
         "This was a local test: the address that connected, " + ip + ", is " +
             std::string(obs.ip.scope()) + (obs.ip.is_loopback() ? " (this machine itself)" : "") +
             ", so the message did not cross the internet and no receiver on the internet ever "
             "sees this address. Sent from the server that sends your mail to an ipconfirm on "
             "the internet, this report would check the public address your mail leaves from, "
             "its reverse DNS (PTR) name and whether that name resolves back to it, whether it "
             "looks like a home or dynamic connection, your server's HELO name against the DNS, "
             "DNS blocklists and TLS.");
  if (rdns.status == 2)
    hint("no-ptr", "error",
         "Your address " + ip +
             " has no reverse DNS (PTR) record. Many receivers refuse or penalise mail from "
             "such addresses. Ask whoever owns the address (your ISP or hosting provider) to "
             "publish a PTR record that names your mail server, e.g. mail.your-domain, and "
             "publish an A record for that name pointing back to " +
             ip + ".");
  if (rdns.status == 4)
    hint("ptr-invalid", "error",
         "The reverse DNS (PTR) data for " + ip +
             " is unusable: the answer was malformed or named no valid host name. Ask the "
             "owner of the address to publish one PTR record with a valid host name.");
  if (rdns.status == 1)
    hint("ptr-not-confirmed", "error",
         "Your address " + ip + " has the reverse DNS name " + join(rdns.names, ", ") +
             ", but that name does not resolve back to " + ip +
             " (forward-confirmed reverse DNS fails). Receivers check both directions: add "
             "an A" +
             std::string(obs.ip.is_v4() ? "" : "AAAA") +
             " record for the name that "
             "points to " +
             ip + ", or have the PTR changed to a name that does.");
  if (is_generic)
    hint("generic-ptr", "warning",
         "The reverse DNS name " + generic_name +
             " looks like a generic name for a dynamic or residential address (" +
             join(generic.signals, "; ") +
             "). Large mailbox providers often refuse mail from such addresses. Send "
             "through your provider's smarthost, or ask for a static address with a PTR "
             "record that names your mail server.");
  if (!listed_zones.empty())
    hint("dnsbl-listed", "error",
         "Your address " + ip + " is listed on " + join(listed_zones, ", ") +
             ". Receivers that use these lists will refuse your mail. Find and stop the "
             "cause (an infected machine, an open relay, a compromised account), then ask "
             "each list for removal via its web site.");
  if (!refused_zones.empty())
    hint("dnsbl-refused", "info",
         "The blocklist(s) " + join(refused_zones, ", ") +
             " refused our query (an answer of 127.0.0.1 or in 127.255.255.0/24), so we cannot "
             "say whether "
             "you are listed there. This is the report server's resolver setup, not your "
             "listing.");
  switch (helo_facts.kind) {
    case HeloKind::empty:
    case HeloKind::invalid:
    case HeloKind::bare_name:
      hint("helo-not-fqdn", "warning",
           "Your server introduced itself (HELO/EHLO) as '" + helo_facts.name +
               "', which is not a fully qualified domain name. Configure it to introduce "
               "itself with its public host name" +
               (rdns.confirmed && !is_generic
                    ? ", " + rdns.confirmed_names.front() + " (the name its PTR record gives)."
                    : ", a name whose A record is " + ip + " and which the PTR record of " + ip +
                          " names as well."));
      break;
    case HeloKind::address_literal:
      if (helo.literal_mismatch)
        hint("helo-literal-mismatch", "warning",
             "Your server introduced itself with the address " +
                 (helo_facts.literal ? helo_facts.literal->to_string() : helo_facts.name) +
                 ", but it connected from " + ip +
                 ". It sits behind NAT or a proxy and does not know its public address. "
                 "Configure its HELO name to a host name whose A record is " +
                 ip + ".");
      break;
    case HeloKind::fqdn:
      if (!helo_temporary && !helo.matches_ptr && !helo.resolves_to_ip)
        hint("helo-mismatch", "warning",
             "Your server introduced itself as " + helo_facts.name + ", but that name " +
                 (helo.resolves && *helo.resolves ? "does not resolve to " + ip
                                                  : std::string("does not resolve")) +
                 " and does not match the reverse DNS name" +
                 (rdns.names.empty() ? std::string("") : " " + rdns.names.front()) +
                 ". Set the HELO name to the name the PTR record of " + ip + " gives.");
      break;
  }
  if (path.behind_nat) {
    std::string believed = path.sender_believed_ip ? path.sender_believed_ip->to_string()
                                                   : std::string("another address");
    hint("behind-nat", "info",
         "Your mail server believes it is " + believed + ", but it reaches the internet as " + ip +
             ": it sits behind NAT, a firewall or a proxy. That is fine, but receivers judge " +
             ip + ", not " + believed +
             ": the PTR record, the blocklist listings and your SPF "
             "record must all be about " +
             ip +
             ", and the server's HELO name should be a "
             "name that resolves to " +
             ip + ".");
  }
  // Sender authentication: SPF, DKIM, DMARC, ARC (responder/analysis/auth_report.hpp).
  for (auto& h : auth_hints(obs.auth, local_test, ip)) hints.push_back(std::move(h));
  // Would Gmail, Yahoo and Microsoft accept it (requirements.hpp)? On the verdicts above. A
  // local test cannot show what the internet sees of the sender's connection: its reverse DNS,
  // TLS and blocklist rules are unknown there, never a pass or a fail for 127.0.0.1.
  std::optional<RequirementsResult> requirements;
  if (const RequirementsTableLoad& rules = builtin_requirements_table(); rules.table) {
    RequirementsInput in;
    if (obs.auth.spf) in.spf = &*obs.auth.spf;
    if (obs.auth.dkim) in.dkim = &*obs.auth.dkim;
    if (obs.auth.dmarc) in.dmarc = &*obs.auth.dmarc;
    if (obs.auth.arc) in.arc = &*obs.auth.arc;
    in.iprev = parse_iprev(iprev_name(rdns.status));
    for (const auto& d : obs.dnsbl) in.dnsbl_zones.push_back(d.zone);
    in.dnsbl = dnsbl_results;
    in.local_test = local_test;
    in.ptr_names = rdns.names;
    in.ip = ip;
    in.tls_version = obs.tls_version;
    in.raw_header = obs.raw_header;
    in.header_cut = obs.header_cut;
    in.smtputf8 = obs.smtputf8;
    requirements = evaluate_requirements(*rules.table, in);
    for (auto& h : requirements_hints(*requirements)) hints.push_back(std::move(h));
  }
  if (rdns.status == 3 || helo_temporary || dnsbl_temporary)
    hint("dns-temperror", "warning",
         "Some DNS lookups failed temporarily or did not finish in time, so parts of this "
         "report are incomplete (marked temperror). This says nothing bad about you; send "
         "another test in a few minutes.");
  auto beyond = [&](std::int64_t d) {
    return d > options.max_clock_skew || d < -options.max_clock_skew;
  };
  auto seconds = [](std::int64_t d) { return std::to_string(d > 0 ? d : -d) + " seconds"; };
  const std::string first_server =
      first_hop && !first_hop->by.empty() ? sanitise_header_text(first_hop->by, 100) : "";
  const std::string first_text = "the earliest Received header" +
                                 (first_server.empty() ? "" : " (written by " + first_server + ")");
  if (skew && beyond(*skew) && first_skew && !beyond(*first_skew) && *skew < 0) {
    hint("delivery-delay", "info",
         "Your message reached us " + seconds(*skew) +
             " after its Date, but the Date agrees with " + first_text +
             ", so the clock that wrote it is right: the time went by on the way (a queue, "
             "retries or greylisting between your first server and us).");
  } else if (skew && beyond(*skew)) {
    std::string compared;
    if (!first_skew)
      compared = " There is no Received header with a date to compare it with.";
    else if (!beyond(*first_skew))
      compared = " It agrees with " + first_text +
                 ", so that server's clock is off too, not only the one that wrote the Date.";
    else
      compared = " It is also " + seconds(*first_skew) + " " +
                 (*first_skew > 0 ? "ahead of " : "behind ") + first_text + ".";
    hint("clock-skew", "warning",
         "The Date header of your message is " + seconds(*skew) + " " +
             (*skew > 0 ? "ahead of" : "behind") + " our clock." + compared +
             " Synchronise your server's clock with NTP.");
  }
  if (!obs.tls_version)
    hint("no-tls", "info",
         "Your message arrived without TLS encryption. Enable STARTTLS in your mail server's "
         "outgoing (client) settings so that mail is encrypted in transit.");

  if (local_test) {
    // Advice about how the internet sees the sender cannot be true of an address the internet
    // never sees (no "ask your ISP for a PTR for 127.0.0.1"); the non-public-ip hint says what
    // would be checked instead. The facts stay in the JSON and the details.
    static constexpr std::string_view kInternetOnly[] = {
        "no-ptr",        "ptr-invalid",   "ptr-not-confirmed",     "generic-ptr", "dnsbl-listed",
        "helo-not-fqdn", "helo-mismatch", "helo-literal-mismatch", "behind-nat",  "no-tls"};
    std::erase_if(hints, [](const Hint& h) {
      return std::find(std::begin(kInternetOnly), std::end(kInternetOnly), h.code) !=
             std::end(kInternetOnly);
    });
  }

  json hints_json = json::array();
  for (const auto& h : hints)
    hints_json.push_back(json{{"code", h.code}, {"severity", h.severity}, {"text", h.text}});

  json& j = rep.json;
  j["ipconfirm"] = 1;
  j["reporter"] = options.reporter;
  j["arrival"] = mime::format_rfc5322_date(obs.arrival);
  j["connection"] = std::move(connection);
  j["helo"] = std::move(helo_json);
  j["rdns"] = std::move(rdns_json);
  j["envelope"] = json{{"mail_from", obs.mail_from}, {"rcpt_to", obs.rcpt_to}};
  j["message"] = std::move(message);
  j["received"] = std::move(received);
  j["path"] = std::move(path_json);
  j["dnsbl"] = std::move(dnsbl);
  const std::string auth_results = authentication_results(
      obs.auth, AuthResultsContext{options.reporter, ip, std::string(iprev_name(rdns.status)),
                                   obs.mail_from});
  j["auth"] = auth_to_json(obs.auth, auth_results);
  j["hints"] = std::move(hints_json);
  j["dns_log"] = to_json(obs.dns_log.entries, obs.dns_log.answers_omitted);
  j["dns_log_omitted"] = obs.dns_log.omitted;
  if (requirements) {
    // requirements, verdicts, requirements_summary, ... (requirements.hpp's to_json), merged
    // into the top level; room first, as ordered_json copies its members when it grows.
    json req = to_json(*requirements);
    j.get_ref<json::object_t&>().reserve(j.size() + req.size());
    for (auto& [key, value] : req.items()) j[key] = std::move(value);
  }

  // The summary goes into the SMTP 250 line: short and made only of safe characters.
  if (rdns.status == 0)
    rep.summary = "PTR " + rdns.confirmed_names.front() + ", forward-confirmed";
  else if (!rdns.names.empty())
    rep.summary = "PTR " + rdns.names.front() + ", " + std::string(iprev_name(rdns.status));
  else
    rep.summary = "rDNS " + std::string(iprev_name(rdns.status));
  if (std::string auth = auth_summary(obs.auth); !auth.empty()) rep.summary += "; " + auth;
  return rep;
}

}  // namespace ipconfirm::responder

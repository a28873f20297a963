#include "responder/analysis/requirements.hpp"

#include <algorithm>

#include "core/ascii.hpp"
#include "responder/analysis/dkim_verify.hpp"

namespace ipconfirm::responder {

namespace {

using json = nlohmann::ordered_json;
using Check = RequirementCheck;
using Status = RuleStatus;

// Values that come from the message or DNS, made safe for a report.
std::string safe(std::string_view s, std::size_t max = 200) {
  return report_text(s, max);
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

std::string lower_domain(std::string_view d) {
  std::string s = ascii::lower(d);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

bool within(const std::string& name, const std::string& base) {
  return name == base || (name.size() > base.size() && name.ends_with("." + base));
}

// `s` with its first letter in upper case, to start a sentence.
std::string sentence(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

RequirementOutcome outcome(Status status, std::string evidence, std::string brief = "",
                           std::string fix = "") {
  RequirementOutcome o;
  o.status = status;
  o.evidence = std::move(evidence);
  o.brief = std::move(brief);
  o.fix = std::move(fix);
  return o;
}

RequirementOutcome not_checked(std::string what, std::string brief) {
  return outcome(Status::unknown, what + " was not checked for this message.", std::move(brief));
}

// What the checks share, computed once per message.
struct Facts {
  const RequirementsInput& in;
  bool header_given = false;
  MessageFormat format;
  UnsubscribeFields unsub;

  bool spf_known = false;  // a complete SPF verdict
  bool dkim_known = false;
  bool dmarc_known = false;
  const DkimSignatureResult* dkim_pass = nullptr;  // the first passing signature
  bool dkim_temperror = false;                     // some signature could not get its key
  const DkimSignatureResult* one_click_signer = nullptr;

  explicit Facts(const RequirementsInput& input) : in(input) {
    header_given = !in.raw_header.empty();
    format = check_message_format(in.raw_header, in.smtputf8, in.header_cut);
    unsub = read_unsubscribe_fields(split_raw_header(in.raw_header));
    spf_known = in.spf && in.spf->complete;
    dkim_known = in.dkim && in.dkim->complete;
    dmarc_known = in.dmarc && in.dmarc->complete;
    if (dkim_known) {
      for (const auto& s : in.dkim->signatures) {
        if (!s.checked) continue;
        if (s.result == DkimResultCode::pass && !dkim_pass) dkim_pass = &s;
        if (s.result == DkimResultCode::temperror) dkim_temperror = true;
        if (!one_click_signer &&
            dkim_signature_covers(s, {"list-unsubscribe", "list-unsubscribe-post"}))
          one_click_signer = &s;
      }
    }
  }
};

std::string spf_evidence(const SpfVerdict& s, const std::string& ip) {
  const std::string d = safe(s.domain.empty() ? "(no domain)" : s.domain);
  const std::string r(to_string(s.result));
  const std::string problem = s.problem.empty() ? "" : ": " + safe(s.problem);
  switch (s.result) {
    case SpfResult::pass:
      return "SPF pass for " + d + (s.mechanism.empty() ? "" : " (" + safe(s.mechanism) + ")");
    case SpfResult::none:
      return "SPF none for " + d + (problem.empty() ? ": it publishes no SPF record" : problem);
    case SpfResult::temperror:
    case SpfResult::permerror:
      return "SPF " + r + " for " + d + problem;
    default:
      return "SPF " + r + " for " + d + ": its record does not allow " +
             (ip.empty() ? std::string("the sending address") : safe(ip, 60)) +
             (s.mechanism.empty() ? "" : " (" + safe(s.mechanism) + ")");
  }
}

std::string dkim_signature_text(const DkimSignatureResult& s) {
  std::string out = "DKIM " + std::string(to_string(s.result)) + " for d=" + safe(s.domain, 100) +
                    " (s=" + safe(s.selector, 60);
  if (s.result == DkimResultCode::pass && !s.algorithm.empty())
    out += ", " + safe(s.algorithm, 30) +
           (s.key_bits > 0 ? ", " + std::to_string(s.key_bits) + " bits" : "");
  out += ")";
  if (s.result != DkimResultCode::pass && !s.error.empty()) out += ": " + safe(s.error);
  return out;
}

std::string dkim_evidence(const Facts& f) {
  const DkimResults& d = *f.in.dkim;
  if (f.dkim_pass) return dkim_signature_text(*f.dkim_pass);
  if (d.signatures.empty()) return "the message has no DKIM-Signature";
  return dkim_signature_text(d.signatures.front()) +
         (d.signatures.size() > 1
              ? " (and " + std::to_string(d.signatures.size() - 1) + " more, none passing)"
              : "");
}

// --- Authentication -----------------------------------------------------------------------

RequirementOutcome check_spf_or_dkim(const Facts& f) {
  if (!f.in.spf && !f.in.dkim)
    return outcome(Status::unknown, "SPF and DKIM were not checked for this message.",
                   "SPF/DKIM (not checked)");
  const bool spf_pass = f.spf_known && f.in.spf->result == SpfResult::pass;
  std::vector<std::string> parts;
  if (f.spf_known) parts.push_back(spf_evidence(*f.in.spf, f.in.ip));
  if (f.dkim_known) parts.push_back(dkim_evidence(f));
  if (spf_pass || f.dkim_pass) {
    std::vector<std::string> passing;
    if (spf_pass) passing.push_back(spf_evidence(*f.in.spf, f.in.ip));
    if (f.dkim_pass) passing.push_back(dkim_signature_text(*f.dkim_pass));
    return outcome(Status::pass, join(passing, "; ") + ".");
  }
  const bool spf_unknown = !f.spf_known || f.in.spf->result == SpfResult::temperror;
  const bool dkim_unknown = !f.dkim_known || f.dkim_temperror;
  if (spf_unknown || dkim_unknown)
    return outcome(
        Status::unknown,
        (parts.empty() ? std::string("SPF and DKIM did not finish") : join(parts, "; ")) +
            ". A DNS lookup failed or was not done, so whether one of them passes is "
            "not known.",
        "SPF/DKIM (DNS error)");
  return outcome(Status::fail, join(parts, "; ") + ".", "neither SPF nor DKIM passes",
                 "Publish an SPF record for the MAIL FROM domain that allows the sending "
                 "address, or sign the message with DKIM; the SPF and DKIM sections of this "
                 "report say exactly what to change.");
}

RequirementOutcome check_spf(const Facts& f) {
  if (!f.spf_known) return not_checked("SPF", "SPF (not checked)");
  const SpfVerdict& s = *f.in.spf;
  const std::string ev = spf_evidence(s, f.in.ip) + ".";
  switch (s.result) {
    case SpfResult::pass:
      return outcome(Status::pass, ev);
    case SpfResult::temperror:
      return outcome(Status::unknown, ev + " A DNS lookup failed: SPF is not known.",
                     "SPF (DNS error)");
    case SpfResult::none:
      return outcome(
          Status::fail, ev, "missing SPF",
          "Publish an SPF record (a TXT record \"v=spf1 ... -all\") at " + safe(s.domain) +
              " that allows " +
              (f.in.ip.empty() ? std::string("your sending address") : safe(f.in.ip, 60)) + ".");
    case SpfResult::permerror:
      return outcome(Status::fail, ev, "SPF permerror",
                     "Fix the SPF record of " + safe(s.domain) +
                         " (see the SPF section: it names the broken term).");
    default:
      return outcome(
          Status::fail, ev, "SPF " + std::string(to_string(s.result)),
          "Add " + (f.in.ip.empty() ? std::string("your sending address") : safe(f.in.ip, 60)) +
              " (or the include: of your mail provider) to the SPF record of " + safe(s.domain) +
              ".");
  }
}

RequirementOutcome check_dkim(const Facts& f) {
  if (!f.dkim_known) return not_checked("DKIM", "DKIM (not checked)");
  const std::string ev = sentence(dkim_evidence(f)) + ".";
  if (f.dkim_pass) return outcome(Status::pass, ev);
  if (f.dkim_temperror)
    return outcome(Status::unknown, ev + " A key lookup failed: DKIM is not known.",
                   "DKIM (DNS error)");
  const std::string fix =
      "Sign every message with DKIM (RSA of 2048 bits, or at least 1024, or Ed25519) and "
      "publish the key at <selector>._domainkey.<your domain>; the DKIM section says what "
      "failed.";
  if (f.in.dkim->signatures.empty()) return outcome(Status::fail, ev, "missing DKIM", fix);
  return outcome(Status::fail, ev, "DKIM fails", fix);
}

std::string from_text(const DmarcVerdict& d) {
  return d.from_domain.empty() ? std::string("the From domain") : safe(d.from_domain);
}

RequirementOutcome check_dmarc_record(const Facts& f) {
  if (!f.dmarc_known) return not_checked("DMARC", "DMARC (not checked)");
  const DmarcVerdict& d = *f.in.dmarc;
  switch (d.result) {
    case DmarcResult::temperror:
      if (d.record.empty())
        return outcome(Status::unknown,
                       "The DMARC record lookup failed (" + safe(d.problem) + "): whether " +
                           from_text(d) + " publishes DMARC is not known.",
                       "DMARC (DNS error)");
      break;
    case DmarcResult::none:
      return outcome(Status::fail,
                     "No DMARC policy applies to " + from_text(d) + ": " + safe(d.problem) + ".",
                     "no DMARC record",
                     "Publish a DMARC record: a TXT record at _dmarc." +
                         (d.org_domain.empty() ? from_text(d) : safe(d.org_domain)) +
                         " with \"v=DMARC1; p=none; rua=mailto:<an address of yours>\" (p=none "
                         "is enough to start; it asks receivers for reports only).");
    case DmarcResult::permerror:
      return outcome(Status::fail, "DMARC cannot apply to this message: " + safe(d.problem) + ".",
                     "no single From domain",
                     "Send with exactly one From field holding one address of your domain.");
    default:
      break;
  }
  const std::string policy = d.policy ? std::string(to_string(*d.policy)) : std::string("none");
  return outcome(Status::pass, "_dmarc." + safe(d.policy_domain) + " publishes \"" +
                                   safe(d.record, 160) + "\" (" +
                                   (d.policy_tag.empty() ? "p" : d.policy_tag) + "=" + policy +
                                   " applies to " + from_text(d) + ").");
}

RequirementOutcome check_dmarc_aligned(const Facts& f) {
  if (!f.dmarc_known) return not_checked("DMARC", "DMARC (not checked)");
  const DmarcVerdict& d = *f.in.dmarc;
  const std::string from = from_text(d);
  const std::string fix =
      "Make the From domain match a domain that passes: the MAIL FROM (Return-Path) domain "
      "that SPF checks, or the d= of a DKIM signature (a subdomain of the same organisational "
      "domain is enough, unless the DMARC record says adkim=s or aspf=s). Signing with DKIM "
      "for " +
      from + " is the usual fix.";
  auto what_passed = [&] {
    std::vector<std::string> parts;
    parts.push_back(d.spf_pass ? "SPF passed for " + safe(d.spf_domain)
                               : std::string("SPF did not pass"));
    parts.push_back(d.dkim_pass_domains.empty()
                        ? std::string("no DKIM signature passed")
                        : "DKIM passed for d=" + safe(join(d.dkim_pass_domains, ", d=")));
    return join(parts, "; ");
  };
  switch (d.result) {
    case DmarcResult::pass: {
      std::vector<std::string> aligned;
      if (d.spf_aligned) aligned.push_back("the SPF domain " + safe(d.spf_domain));
      if (d.dkim_aligned) aligned.push_back("the DKIM domain " + safe(d.aligned_dkim_domain));
      return outcome(Status::pass, "From domain " + from + " is aligned with " +
                                       join(aligned, " and ") + " (DMARC pass).");
    }
    case DmarcResult::fail:
      return outcome(
          Status::fail,
          "From domain " + from + " is aligned with no passing domain: " + what_passed() + ".",
          "From not aligned", fix);
    case DmarcResult::temperror:
      return outcome(
          Status::unknown,
          "DMARC could not be decided (" + safe(d.problem) + "), so alignment is not known.",
          "DMARC (DNS error)");
    case DmarcResult::permerror:
      return outcome(Status::fail, "DMARC cannot apply to this message: " + safe(d.problem) + ".",
                     "no single From domain",
                     "Send with exactly one From field holding one address of your domain.");
    case DmarcResult::none:
      break;
  }
  // No DMARC record: relaxed alignment, as DMARC would compute it by default, against the
  // Organizational Domain the walk found (or, without one, a name within the other).
  const std::string author = lower_domain(d.from_domain);
  if (author.empty())
    return outcome(Status::unknown, "The From domain is not known, so alignment is not known.",
                   "From domain (not known)");
  const std::string org = lower_domain(d.org_domain);
  auto aligned = [&](const std::string& raw) {
    const std::string id = lower_domain(raw);
    if (id.empty()) return false;
    if (id == author) return true;
    if (!org.empty()) return within(id, org);
    const std::string& shorter = id.size() < author.size() ? id : author;
    const std::string& longer = id.size() < author.size() ? author : id;
    return shorter.find('.') != std::string::npos && within(longer, shorter);
  };
  std::vector<std::string> aligned_with;
  if (d.spf_pass && aligned(d.spf_domain))
    aligned_with.push_back("the SPF domain " + safe(d.spf_domain));
  for (const auto& k : d.dkim_pass_domains)
    if (aligned(k)) {
      aligned_with.push_back("the DKIM domain " + safe(k));
      break;
    }
  if (!aligned_with.empty())
    return outcome(Status::pass, "From domain " + from + " is aligned with " +
                                     join(aligned_with, " and ") +
                                     " (relaxed alignment; the domain has no DMARC record).");
  return outcome(Status::fail,
                 "From domain " + from + " is aligned with no passing domain: " + what_passed() +
                     " (relaxed alignment; the domain has no DMARC record).",
                 "From not aligned", fix);
}

RequirementOutcome check_dmarc_policy(const Facts& f, DmarcPolicy which) {
  if (!f.dmarc_known) return not_checked("DMARC", "DMARC (not checked)");
  const DmarcVerdict& d = *f.in.dmarc;
  const std::string from = from_text(d);
  const std::string name(to_string(which));
  switch (d.result) {
    case DmarcResult::none:
      return outcome(Status::not_applicable,
                     from + " publishes no DMARC policy, so no receiver applies one.");
    case DmarcResult::permerror:
      return outcome(Status::not_applicable, "DMARC is undefined for this message (" +
                                                 safe(d.problem) +
                                                 "); the format rules cover that.");
    case DmarcResult::temperror:
      return outcome(Status::unknown, "DMARC could not be decided (" + safe(d.problem) + ").",
                     "DMARC (DNS error)");
    case DmarcResult::pass:
      return outcome(Status::pass, "DMARC passes for " + from + ".");
    case DmarcResult::fail:
      break;
  }
  const std::string tag = (d.policy_tag.empty() ? "p" : d.policy_tag) + "=" +
                          (d.policy ? std::string(to_string(*d.policy)) : std::string("none"));
  const std::string testing = d.testing ? " (t=y lowers it one step)" : "";
  if (d.disposition == which)
    return outcome(Status::fail,
                   "DMARC fails for " + from + ", whose policy " + tag + testing +
                       " asks receivers to " +
                       (which == DmarcPolicy::reject ? "refuse such mail"
                                                     : "put such mail in the spam folder") +
                       ".",
                   "DMARC fails under " + tag,
                   "Make the message pass DMARC for " + from +
                       ": SPF or DKIM must pass for a domain aligned with it (see the DMARC "
                       "section).");
  if (d.disposition == DmarcPolicy::none)
    return outcome(Status::pass, "DMARC fails for " + from + ", but its policy " + tag + testing +
                                     " asks receivers to do nothing about it.");
  return outcome(Status::not_applicable, "DMARC fails for " + from + " under " + tag + testing +
                                             ", which asks for " +
                                             std::string(to_string(d.disposition)) + ", not " +
                                             name + " (the other DMARC policy rule covers it).");
}

RequirementOutcome check_not_impersonating_gmail(const Facts& f) {
  if (!f.dmarc_known) return not_checked("DMARC", "DMARC (not checked)");
  const DmarcVerdict& d = *f.in.dmarc;
  const std::string author = lower_domain(d.from_domain);
  if (author != "gmail.com" && author != "googlemail.com")
    return outcome(Status::not_applicable, "The From address is not a gmail.com address.");
  if (d.result == DmarcResult::pass)
    return outcome(Status::pass, "The gmail.com From address passes DMARC.");
  if (d.result == DmarcResult::temperror)
    return outcome(Status::unknown, "DMARC could not be decided (" + safe(d.problem) + ").",
                   "DMARC (DNS error)");
  return outcome(Status::fail,
                 "The From address is at " + author +
                     ", but the message does not pass DMARC for it: it was not sent through "
                     "Gmail.",
                 "forged gmail.com From",
                 "Do not send with a gmail.com From address from servers other than Gmail's: "
                 "use an address of your own domain (a Reply-To can still name the Gmail "
                 "address).");
}

RequirementOutcome check_arc(const Facts& f) {
  if (!f.in.arc) return not_checked("ARC", "ARC (not checked)");
  const ArcResult& a = *f.in.arc;
  if (!a.complete) return not_checked("ARC", "ARC (not checked)");
  if (a.result == "none")
    return outcome(Status::not_applicable,
                   "The message carries no ARC chain (it was not forwarded by a server that adds "
                   "ARC).");
  if (a.result == "pass")
    return outcome(Status::pass, "ARC pass (" + std::to_string(a.instances) + " instance" +
                                     (a.instances == 1 ? "" : "s") + ").");
  if (a.result == "temperror")
    return outcome(Status::unknown, "An ARC key lookup failed: " + safe(a.reason) + ".",
                   "ARC (DNS error)");
  return outcome(Status::fail,
                 "The ARC chain does not validate" +
                     (a.failed_instance ? " at instance " + std::to_string(a.failed_instance)
                                        : std::string()) +
                     ": " + safe(a.reason) + ".",
                 "broken ARC chain",
                 "The forwarder that added the ARC set should sign it correctly (RFC 8617), "
                 "or add none.");
}

// --- Connection ---------------------------------------------------------------------------

std::string ip_text(const Facts& f) {
  return f.in.ip.empty() ? std::string("the sending address") : safe(f.in.ip, 60);
}

std::string ptr_text(const Facts& f) {
  std::vector<std::string> names;
  for (const auto& n : f.in.ptr_names) {
    if (names.size() == 5) break;
    names.push_back(safe(n, 100));
  }
  return join(names, ", ");
}

RequirementOutcome check_fcrdns(const Facts& f) {
  if (!f.in.iprev) return not_checked("Reverse DNS", "rDNS (not checked)");
  const std::string ip = ip_text(f);
  const std::string fix = "Ask whoever owns " + ip +
                          " (your ISP or hosting provider) for a PTR record that names your mail "
                          "server, and give that name an A (or AAAA) record pointing back to " +
                          ip + ".";
  switch (*f.in.iprev) {
    case IprevResult::pass:
      return outcome(Status::pass,
                     f.in.ptr_names.empty()
                         ? "The reverse DNS of " + ip + " is forward-confirmed."
                         : "The PTR name " + ptr_text(f) + " of " + ip + " resolves back to it.");
    case IprevResult::fail:
      return outcome(Status::fail,
                     "The PTR name" + std::string(f.in.ptr_names.size() > 1 ? "s " : " ") +
                         ptr_text(f) + " of " + ip + " do" +
                         (f.in.ptr_names.size() > 1 ? "" : "es") + " not resolve back to it.",
                     "rDNS not forward-confirmed", fix);
    case IprevResult::none:
      return outcome(Status::fail, ip + " has no PTR record.", "no PTR record", fix);
    case IprevResult::permerror:
      return outcome(Status::fail,
                     "The PTR data of " + ip + " is unusable (malformed, or no valid host name).",
                     "unusable PTR record", fix);
    case IprevResult::temperror:
      break;
  }
  return outcome(Status::unknown, "The reverse DNS lookup of " + ip + " failed temporarily.",
                 "rDNS (DNS error)");
}

RequirementOutcome check_reverse_dns(const Facts& f) {
  if (!f.in.iprev) return not_checked("Reverse DNS", "rDNS (not checked)");
  const std::string ip = ip_text(f);
  const std::string fix = "Ask whoever owns " + ip +
                          " (your ISP or hosting provider) for a PTR record that names your mail "
                          "server.";
  switch (*f.in.iprev) {
    case IprevResult::pass:
      return outcome(Status::pass, ip + " has the PTR record " + ptr_text(f) + ".");
    case IprevResult::fail:
      return outcome(Status::pass, ip + " has the PTR record " + ptr_text(f) +
                                       " (it does not resolve back, which Gmail and Yahoo ask "
                                       "for).");
    case IprevResult::none:
      return outcome(Status::fail, ip + " has no PTR record.", "no PTR record", fix);
    case IprevResult::permerror:
      return outcome(Status::fail,
                     "The PTR data of " + ip + " is unusable (malformed, or no valid host name).",
                     "unusable PTR record", fix);
    case IprevResult::temperror:
      break;
  }
  return outcome(Status::unknown, "The reverse DNS lookup of " + ip + " failed temporarily.",
                 "rDNS (DNS error)");
}

RequirementOutcome check_tls(const Facts& f) {
  if (f.in.tls_version)
    return outcome(Status::pass,
                   "The message came over TLS (" + safe(*f.in.tls_version, 40) + ").");
  return outcome(Status::fail, "The message came without TLS: the client did not use STARTTLS.",
                 "no TLS",
                 "Enable STARTTLS in your mail server's outgoing (client) settings, e.g. "
                 "Postfix smtp_tls_security_level = may.");
}

RequirementOutcome check_dnsbl(const Facts& f) {
  if (f.in.dnsbl_zones.empty()) {
    RequirementOutcome o = outcome(
        Status::unknown, "This ipconfirm server queries no blocklists ([dns] dnsbl is empty).");
    o.inherent = true;
    return o;
  }
  std::vector<std::string> listed, unknown, clean;
  for (const auto& zone : f.in.dnsbl_zones) {
    const std::string z = lower_domain(zone);
    const DnsblResult* r = nullptr;
    for (const auto& d : f.in.dnsbl)
      if (lower_domain(d.zone) == z) r = &d;
    const std::string name = safe(zone, 100);
    if (!r) {
      unknown.push_back(name + " (not queried)");
      continue;
    }
    switch (r->outcome) {
      case DnsblOutcome::listed:
        listed.push_back(name +
                         (r->answers.empty() ? "" : " (" + safe(join(r->answers, ", "), 60) + ")") +
                         (r->reason.empty() ? "" : ": " + safe(r->reason, 160)));
        break;
      case DnsblOutcome::not_listed:
        clean.push_back(name);
        break;
      case DnsblOutcome::refused:
        unknown.push_back(name + " (the list refused our query)");
        break;
      case DnsblOutcome::invalid_answer:
        unknown.push_back(name + " (an answer that is no listing)");
        break;
      case DnsblOutcome::error:
        unknown.push_back(name + " (the lookup failed)");
        break;
    }
  }
  const std::string ip = ip_text(f);
  if (!listed.empty()) {
    std::vector<std::string> zones;
    for (const auto& zone : f.in.dnsbl_zones)
      for (const auto& d : f.in.dnsbl)
        if (lower_domain(d.zone) == lower_domain(zone) && d.outcome == DnsblOutcome::listed)
          zones.push_back(safe(zone, 100));
    return outcome(Status::fail, ip + " is listed on " + join(listed, "; ") + ".",
                   "listed on " + join(zones, ", "),
                   "Find and stop the cause of the listing (an infected machine, an open relay, "
                   "a compromised account), then ask each list for removal on its web site.");
  }
  if (!unknown.empty())
    return outcome(Status::unknown,
                   "Not known for " + join(unknown, ", ") +
                       (clean.empty() ? "" : "; not listed on " + join(clean, ", ")) + ".",
                   "blocklists (lookup failed)");
  return outcome(Status::pass, ip + " is not listed on " + join(clean, ", ") + ".");
}

RequirementOutcome check_complaint_rate() {
  RequirementOutcome o =
      outcome(Status::unknown,
              "One message cannot show a complaint rate: the provider measures it over all of your "
              "mail. Watch it in the provider's tools (Gmail Postmaster Tools, Yahoo's Complaint "
              "Feedback Loop, Microsoft SNDS and JMRP).");
  o.inherent = true;
  return o;
}

// --- Message form -------------------------------------------------------------------------

std::string finding_brief(const FormatFinding& f) {
  if (f.code == "duplicate-field") return "duplicate " + f.field;
  if (f.code == "missing-from") return "no From";
  if (f.code == "missing-date") return "no Date";
  if (f.code == "malformed-from") return "malformed From";
  if (f.code == "from-needs-sender") return "several authors without Sender";
  if (f.code == "malformed-date") return "malformed Date";
  if (f.code == "malformed-message-id") return "malformed Message-ID";
  if (f.code == "8bit-header") return "8-bit header without SMTPUTF8";
  if (f.code == "invalid-utf8") return "invalid UTF-8 in the header";
  if (f.code == "line-too-long") return "header line over 998 bytes";
  if (f.code == "bare-cr" || f.code == "bare-lf") return "bare CR or LF in the header";
  if (f.code == "malformed-line") return "malformed header line";
  return f.code;
}

RequirementOutcome check_format(const Facts& f) {
  if (!f.header_given) return not_checked("The header", "header (not checked)");
  const MessageFormat& m = f.format;
  std::vector<std::string> texts, briefs;
  std::size_t errors = 0;
  for (const auto& x : m.findings) {
    if (!x.error) continue;
    ++errors;
    if (texts.size() < 3) texts.push_back(x.text);
    const std::string b = finding_brief(x);
    if (briefs.size() < 2 && std::find(briefs.begin(), briefs.end(), b) == briefs.end())
      briefs.push_back(b);
  }
  errors += m.omitted;
  if (errors > 0) {
    std::string ev = join(texts, " ");
    if (errors > texts.size())
      ev += " (" + std::to_string(errors - texts.size()) + " more in the format section)";
    return outcome(Status::fail, ev, join(briefs, ", "),
                   "Fix the header as the format section says: each finding names the field "
                   "and the line.");
  }
  std::string ev = "No RFC 5322 errors in the header (" + std::to_string(m.fields) + " fields";
  std::vector<std::string> notes;
  for (const auto& x : m.findings)
    if (!x.error) notes.push_back(x.code);
  if (!notes.empty()) ev += "; notes: " + join(notes, ", ");
  return outcome(Status::pass, ev + ").");
}

RequirementOutcome check_message_id(const Facts& f) {
  if (!f.header_given) return not_checked("The header", "header (not checked)");
  const MessageFormat& m = f.format;
  const std::string fix =
      "Let your mail program or the first server add exactly one Message-ID: "
      "<unique-part@your-domain>.";
  if (m.message_id_fields == 0 && m.truncated)
    return outcome(Status::unknown,
                   "The header was too long to read whole; no Message-ID came before the cut.",
                   "Message-ID (header too long)");
  if (m.message_id_fields == 0)
    return outcome(Status::fail, "The message has no Message-ID field.", "no Message-ID", fix);
  if (m.message_id_fields > 1)
    return outcome(Status::fail,
                   "The message has " + std::to_string(m.message_id_fields) + " Message-ID fields.",
                   "several Message-IDs", fix);
  if (!m.message_id_valid)
    return outcome(Status::fail, "Message-ID '" + m.message_id + "' is not a valid msg-id.",
                   "malformed Message-ID", fix);
  return outcome(Status::pass, "Message-ID " + m.message_id + ".");
}

RequirementOutcome check_single_from(const Facts& f) {
  if (!f.header_given) return not_checked("The header", "header (not checked)");
  const MessageFormat& m = f.format;
  const std::string fix = "Send with one From field that holds exactly one address.";
  if (m.from_fields == 0 && m.truncated)
    return outcome(Status::unknown,
                   "The header was too long to read whole; no From came before the cut.",
                   "From (header too long)");
  if (m.from_fields == 0)
    return outcome(Status::fail, "The message has no From field.", "no From", fix);
  if (m.from_fields > 1)
    return outcome(Status::fail,
                   "The message has " + std::to_string(m.from_fields) + " From fields.",
                   "several From fields", fix);
  if (!m.from_well_formed)
    return outcome(Status::fail, "The From field does not parse as an address.", "malformed From",
                   fix);
  if (m.from_mailboxes != 1)
    return outcome(Status::fail,
                   "The From field holds " + std::to_string(m.from_mailboxes) + " addresses.",
                   "several From addresses", fix);
  return outcome(Status::pass, "The From field holds one address.");
}

// --- Unsubscribe --------------------------------------------------------------------------

const char* kNotBulk =
    "The message has no List-Unsubscribe field and no Precedence: bulk or list, so it does not "
    "look like marketing or list mail; unsubscribe rules are for that mail (transactional mail "
    "is exempt). If this is marketing mail, it needs them.";

std::string bulk_because(const Facts& f) {
  return "The message looks like bulk mail (" + f.unsub.bulk_reason + ")";
}

RequirementOutcome check_one_click(const Facts& f) {
  if (!f.header_given) return not_checked("The header", "header (not checked)");
  const UnsubscribeFields& u = f.unsub;
  if (!u.bulk_looking) return outcome(Status::not_applicable, kNotBulk);
  std::vector<std::string> problems;
  std::string unknown;
  if (u.list_unsubscribe_fields == 0) {
    problems.push_back("there is no List-Unsubscribe field");
  } else {
    if (u.list_unsubscribe_fields > 1)
      problems.push_back("there are " + std::to_string(u.list_unsubscribe_fields) +
                         " List-Unsubscribe fields (send one)");
    if (!u.list.well_formed)
      problems.push_back("List-Unsubscribe does not parse (" + safe(u.list.error) + ")");
    if (u.https_uri.empty())
      problems.push_back(
          "List-Unsubscribe has no https URI (mailto: and http: URIs are not one-click)");
  }
  if (u.post_fields == 0)
    problems.push_back("there is no List-Unsubscribe-Post field");
  else if (u.post_fields > 1)
    problems.push_back("there are " + std::to_string(u.post_fields) +
                       " List-Unsubscribe-Post fields (send one)");
  else if (!u.one_click_post)
    problems.push_back("List-Unsubscribe-Post is '" + u.post_value +
                       "', not List-Unsubscribe=One-Click");
  if (u.list_unsubscribe_fields > 0 && u.post_fields > 0 && !f.one_click_signer) {
    if (!f.dkim_known)
      unknown = "DKIM was not checked, so whether a signature covers both fields is not known";
    else if (f.dkim_temperror)
      unknown = "a DKIM key lookup failed, so whether a signature covers both fields is not known";
    else
      problems.push_back(
          "no passing DKIM signature covers List-Unsubscribe and List-Unsubscribe-Post (RFC "
          "8058 §4 requires one: add both names to the signature's h=)");
  }
  if (!problems.empty())
    return outcome(Status::fail, bulk_because(f) + ", but " + join(problems, "; ") + ".",
                   "no one-click unsubscribe",
                   "Add List-Unsubscribe: <https://your-site/unsubscribe/opaque-token> and "
                   "List-Unsubscribe-Post: List-Unsubscribe=One-Click, and sign both fields with "
                   "DKIM (RFC 8058).");
  if (!unknown.empty())
    return outcome(Status::unknown,
                   "List-Unsubscribe and List-Unsubscribe-Post are right, but " + unknown + ".",
                   "one-click DKIM (not known)");
  return outcome(Status::pass, "List-Unsubscribe <" + safe(u.https_uri, 120) +
                                   "> with List-Unsubscribe-Post: List-Unsubscribe=One-Click, "
                                   "both signed by d=" +
                                   safe(f.one_click_signer->domain, 100) + ".");
}

RequirementOutcome check_list_unsubscribe(const Facts& f) {
  if (!f.header_given) return not_checked("The header", "header (not checked)");
  const UnsubscribeFields& u = f.unsub;
  if (!u.bulk_looking) return outcome(Status::not_applicable, kNotBulk);
  const std::string fix =
      "Add List-Unsubscribe with an https URI and List-Unsubscribe-Post: "
      "List-Unsubscribe=One-Click (RFC 8058), or at least a mailto: URI.";
  if (u.list_unsubscribe_fields == 0)
    return outcome(Status::fail, bulk_because(f) + ", but there is no List-Unsubscribe field.",
                   "no List-Unsubscribe", fix);
  if (!u.https_uri.empty() && u.one_click_post)
    return outcome(Status::pass,
                   "List-Unsubscribe <" + safe(u.https_uri, 120) +
                       "> with List-Unsubscribe-Post: List-Unsubscribe=One-Click" +
                       (f.one_click_signer ? std::string(".")
                                           : std::string(" (RFC 8058 also asks for a DKIM "
                                                         "signature over both fields).")));
  if (!u.mailto_uri.empty())
    return outcome(Status::pass, "List-Unsubscribe has the mailto: URI <" +
                                     safe(u.mailto_uri, 120) +
                                     "> (acceptable; Yahoo recommends the one-click POST of "
                                     "RFC 8058).");
  return outcome(Status::fail,
                 "List-Unsubscribe has neither a mailto: URI nor an https URI with "
                 "List-Unsubscribe-Post: List-Unsubscribe=One-Click.",
                 "no working List-Unsubscribe", fix);
}

RequirementOutcome check_unsubscribe_link(const Facts& f) {
  if (!f.header_given) return not_checked("The header", "header (not checked)");
  const UnsubscribeFields& u = f.unsub;
  if (!u.bulk_looking) return outcome(Status::not_applicable, kNotBulk);
  std::string ev =
      "Microsoft asks for a clearly visible unsubscribe link in the body of marketing mail; "
      "ipconfirm does not read the body.";
  if (!u.list.uris.empty())
    ev += " The List-Unsubscribe field offers <" + safe(u.list.uris.front(), 120) + ">.";
  RequirementOutcome o = outcome(Status::unknown, ev);
  o.inherent = true;
  return o;
}

// The rules about the sender's connection, which a local test cannot show.
bool about_the_connection(Check check) {
  return check == Check::fcrdns || check == Check::reverse_dns || check == Check::tls ||
         check == Check::dnsbl_not_listed;
}

RequirementOutcome local_test_outcome(const Facts& f) {
  return outcome(Status::unknown,
                 "This was a local test from " + ip_text(f) +
                     ", an address the internet never sees: a test from your mail server "
                     "over the internet shows this rule.",
                 "local test");
}

RequirementOutcome run_check(Check check, const Facts& f) {
  if (f.in.local_test && about_the_connection(check)) return local_test_outcome(f);
  switch (check) {
    case Check::spf_or_dkim_pass:
      return check_spf_or_dkim(f);
    case Check::spf_pass:
      return check_spf(f);
    case Check::dkim_pass:
      return check_dkim(f);
    case Check::dmarc_record:
      return check_dmarc_record(f);
    case Check::dmarc_aligned:
      return check_dmarc_aligned(f);
    case Check::dmarc_policy_reject:
      return check_dmarc_policy(f, DmarcPolicy::reject);
    case Check::dmarc_policy_quarantine:
      return check_dmarc_policy(f, DmarcPolicy::quarantine);
    case Check::not_impersonating_gmail:
      return check_not_impersonating_gmail(f);
    case Check::fcrdns:
      return check_fcrdns(f);
    case Check::reverse_dns:
      return check_reverse_dns(f);
    case Check::tls:
      return check_tls(f);
    case Check::rfc5322_format:
      return check_format(f);
    case Check::message_id:
      return check_message_id(f);
    case Check::single_from_address:
      return check_single_from(f);
    case Check::dnsbl_not_listed:
      return check_dnsbl(f);
    case Check::one_click_unsubscribe:
      return check_one_click(f);
    case Check::list_unsubscribe:
      return check_list_unsubscribe(f);
    case Check::unsubscribe_link:
      return check_unsubscribe_link(f);
    case Check::arc_valid:
      return check_arc(f);
    case Check::complaint_rate:
      return check_complaint_rate();
  }
  return outcome(Status::unknown, "Unknown check.");
}

void account(ClassVerdict& v, const RequirementResult& r, std::size_t index) {
  if (r.outcome.status == Status::fail) {
    v.failing.push_back(index);
    const Acceptance a =
        r.rule->severity == RuleSeverity::reject ? Acceptance::reject : Acceptance::at_risk;
    if (a > v.verdict) v.verdict = a;
  } else if (r.outcome.status == Status::unknown && !r.outcome.inherent) {
    v.unknown.push_back(index);
  }
}

}  // namespace

std::optional<IprevResult> parse_iprev(std::string_view status) {
  if (status == "pass") return IprevResult::pass;
  if (status == "fail") return IprevResult::fail;
  if (status == "none") return IprevResult::none;
  if (status == "temperror") return IprevResult::temperror;
  if (status == "permerror") return IprevResult::permerror;
  return std::nullopt;
}

std::string_view to_string(RuleStatus status) {
  switch (status) {
    case RuleStatus::pass:
      return "pass";
    case RuleStatus::fail:
      return "fail";
    case RuleStatus::unknown:
      return "unknown";
    case RuleStatus::not_applicable:
      return "not-applicable";
  }
  return "unknown";
}

std::string_view to_string(Acceptance verdict) {
  switch (verdict) {
    case Acceptance::accept:
      return "accept";
    case Acceptance::at_risk:
      return "at-risk";
    case Acceptance::reject:
      return "reject";
  }
  return "accept";
}

RequirementsResult evaluate_requirements(const RequirementsTable& table,
                                         const RequirementsInput& input) {
  RequirementsResult result;
  const Facts facts(input);
  std::array<std::optional<RequirementOutcome>, kRequirementCheckCount> outcomes;
  for (const auto& rule : table.rules) {
    auto& o = outcomes[static_cast<std::size_t>(rule.check)];
    if (!o) o = run_check(rule.check, facts);
    RequirementResult r;
    r.rule = &rule;
    r.source = &table.sources[rule.source];
    r.outcome = *o;
    result.rules.push_back(std::move(r));
  }
  for (std::size_t p = 0; p < kMailboxProviders.size(); ++p) {
    ProviderVerdict& pv = result.verdicts[p];
    pv.provider = kMailboxProviders[p];
    std::vector<Check> bulk_checks;
    for (const auto& r : result.rules)
      if (r.rule->provider == pv.provider && r.rule->applies_to == SenderClass::bulk)
        bulk_checks.push_back(r.rule->check);
    for (std::size_t i = 0; i < result.rules.size(); ++i) {
      const RequirementResult& r = result.rules[i];
      if (r.rule->provider != pv.provider) continue;
      const bool all = r.rule->applies_to == SenderClass::all;
      const bool replaced = all && std::find(bulk_checks.begin(), bulk_checks.end(),
                                             r.rule->check) != bulk_checks.end();
      if (all) account(pv.all, r, i);
      if (!replaced) account(pv.bulk, r, i);
    }
  }
  result.header_checked = facts.header_given;
  result.format = facts.format;
  result.unsubscribe = facts.unsub;
  result.one_click_dkim_covered = facts.one_click_signer != nullptr;
  if (facts.one_click_signer) result.one_click_dkim_domain = safe(facts.one_click_signer->domain);
  return result;
}

namespace {

// An object with room for `n` members. ordered_json keeps members in a vector whose element,
// pair<const string, json>, cannot be moved: each time the vector grows, every member already
// in it is deep-copied. With room reserved it never grows.
json object_with_room(std::size_t n) {
  json j = json::object();
  j.get_ref<json::object_t&>().reserve(n);
  return j;
}

}  // namespace

nlohmann::ordered_json to_json(const RequirementsResult& result) {
  // One entry per rule, with what a reader needs beside the contract's fields (name and
  // severity). What the provider says and the sources' titles and dates are the same for every
  // message: the sources are listed once, the rest is in the table and docs/requirements.md
  // (every JSON value costs allocations, and there are some forty rules).
  json requirements = json::array();
  requirements.get_ref<json::array_t&>().reserve(result.rules.size());
  for (const auto& r : result.rules) {
    json e = object_with_room(8);
    e["provider"] = to_string(r.rule->provider);
    e["rule"] = r.rule->id;
    e["applies_to"] = to_string(r.rule->applies_to);
    e["status"] = to_string(r.outcome.status);
    e["evidence"] = r.outcome.evidence;
    e["source"] = r.source->url;
    e["name"] = r.rule->name;
    e["severity"] = to_string(r.rule->severity);
    requirements.push_back(std::move(e));
  }
  json sources = json::array();
  std::vector<const RequirementSource*> listed;
  for (const auto& r : result.rules) {
    if (std::find(listed.begin(), listed.end(), r.source) != listed.end()) continue;
    listed.push_back(r.source);
    json s = json::object();
    s["url"] = r.source->url;
    s["title"] = r.source->title;
    s["read"] = r.source->read;
    sources.push_back(std::move(s));
  }
  json verdicts = object_with_room(kMailboxProviders.size());
  json failing = object_with_room(kMailboxProviders.size());
  for (const auto& pv : result.verdicts) {
    const std::string key(to_string(pv.provider));
    verdicts[key] = {{"all", std::string(to_string(pv.all.verdict))},
                     {"bulk", std::string(to_string(pv.bulk.verdict))}};
    auto list = [&](const ClassVerdict& v) {
      json out = json::array();
      for (std::size_t i : v.failing) {
        const RequirementRule& rule = *result.rules[i].rule;
        out.push_back({{"rule", rule.id},
                       {"applies_to", std::string(to_string(rule.applies_to))},
                       {"severity", std::string(to_string(rule.severity))},
                       {"name", rule.name}});
      }
      return out;
    };
    failing[key] = {{"all", list(pv.all)}, {"bulk", list(pv.bulk)}};
  }
  const UnsubscribeFields& u = result.unsubscribe;
  json summary = json::array();
  for (const auto& row : requirements_summary(result))
    summary.push_back({{"provider", row.provider},
                       {"name", row.name},
                       {"all", std::string(to_string(row.all))},
                       {"bulk", std::string(to_string(row.bulk))},
                       {"text", row.text}});
  json j = object_with_room(10);
  j["requirements"] = std::move(requirements);
  j["requirements_sources"] = std::move(sources);
  j["verdicts"] = std::move(verdicts);
  j["verdicts_failing"] = std::move(failing);
  j["bulk_looking"] = u.bulk_looking;
  j["bulk_looking_reason"] = u.bulk_reason;
  j["format"] = result.header_checked ? to_json(result.format) : json(nullptr);
  j["unsubscribe"] = {{"list_unsubscribe", u.list.uris},
                      {"https_uri", u.https_uri},
                      {"mailto_uri", u.mailto_uri},
                      {"list_unsubscribe_post", u.post_value},
                      {"one_click_post", u.one_click_post},
                      {"dkim_covered", result.one_click_dkim_covered},
                      {"dkim_domain", result.one_click_dkim_domain}};
  j["requirements_summary"] = std::move(summary);
  return j;
}

std::vector<Hint> requirements_hints(const RequirementsResult& result) {
  std::vector<Hint> hints;
  // "[name] evidence says"; the format rule points to the format-error hint instead of
  // repeating every finding.
  auto rule_text = [&](std::size_t i) {
    const RequirementResult& r = result.rules[i];
    const std::string evidence = r.rule->check == RequirementCheck::rfc5322_format
                                     ? "The header has RFC 5322 errors: " + r.outcome.brief +
                                           " (the format-error hint lists them)."
                                     : r.outcome.evidence;
    return "[" + r.rule->name + "] " + evidence + " " + r.rule->says;
  };
  // The text of one provider hint: the rules that fail for every sender, then those that fail
  // for bulk senders only, then what to change (each fix once).
  auto describe = [&](const std::string& opening, const std::vector<std::size_t>& for_all,
                      const std::vector<std::size_t>& bulk_only) {
    std::string text = opening;
    std::vector<std::string> fixes;
    auto add = [&](std::size_t i) {
      text += " " + rule_text(i);
      const std::string& fix = result.rules[i].outcome.fix;
      if (!fix.empty() && std::find(fixes.begin(), fixes.end(), fix) == fixes.end())
        fixes.push_back(fix);
    };
    for (std::size_t i : for_all) add(i);
    if (!for_all.empty() && !bulk_only.empty()) text += " If it comes from a bulk sender, also:";
    for (std::size_t i : bulk_only) add(i);
    if (!fixes.empty()) text += " What to change: " + join(fixes, " ");
    return text;
  };
  for (const auto& pv : result.verdicts) {
    const std::string name(display_name(pv.provider));
    // The failing rules of one severity: those of every sender, then the bulk-only ones.
    auto split = [&](RuleSeverity severity, const std::vector<Check>& skip) {
      std::pair<std::vector<std::size_t>, std::vector<std::size_t>> out;
      auto wanted = [&](std::size_t i) {
        const RequirementRule& rule = *result.rules[i].rule;
        return rule.severity == severity &&
               std::find(skip.begin(), skip.end(), rule.check) == skip.end();
      };
      for (std::size_t i : pv.all.failing)
        if (wanted(i)) out.first.push_back(i);
      for (std::size_t i : pv.bulk.failing)
        if (wanted(i) &&
            std::find(pv.all.failing.begin(), pv.all.failing.end(), i) == pv.all.failing.end())
          out.second.push_back(i);
      return out;
    };
    const auto [reject_all, reject_bulk] = split(RuleSeverity::reject, {});
    if (!reject_all.empty() || !reject_bulk.empty()) {
      const bool for_all = !reject_all.empty();
      hints.push_back({"provider-reject",
                       for_all || result.unsubscribe.bulk_looking ? "error" : "warning",
                       describe(name + " would refuse this message" +
                                    (for_all ? std::string(", whatever the sender's volume.")
                                             : std::string(" if it comes from a bulk sender.")),
                                reject_all, reject_bulk)});
    }
    // A check that already fails as a reject rule (Gmail's TLS for bulk senders) is not
    // repeated as a risk.
    std::vector<Check> rejected;
    for (std::size_t i : reject_all) rejected.push_back(result.rules[i].rule->check);
    for (std::size_t i : reject_bulk) rejected.push_back(result.rules[i].rule->check);
    const auto [risk_all, risk_bulk] = split(RuleSeverity::at_risk, rejected);
    if (!risk_all.empty() || !risk_bulk.empty())
      hints.push_back(
          {"provider-at-risk", "warning",
           describe(name + " may put this message in the spam folder or slow it down" +
                        (risk_all.empty() ? std::string(" if it comes from a bulk sender.")
                                          : std::string(".")),
                    risk_all, risk_bulk)});
  }
  for (const auto& r : result.rules) {
    if (r.rule->check != RequirementCheck::one_click_unsubscribe ||
        r.outcome.status != RuleStatus::fail)
      continue;
    hints.push_back({"no-one-click-unsubscribe", "warning",
                     r.outcome.evidence +
                         " Gmail and Yahoo require one-click unsubscribe (RFC 8058) of bulk "
                         "senders' marketing mail. What to change: " +
                         r.outcome.fix});
    break;
  }
  if (result.header_checked && result.format.has_errors()) {
    std::vector<std::string> texts;
    for (const auto& f : result.format.findings)
      if (f.error && texts.size() < 5) texts.push_back(f.text);
    const std::size_t errors = result.format.error_count();
    std::string text = "The message header breaks RFC 5322 (" + std::to_string(errors) + " error" +
                       (errors == 1 ? "" : "s") + "): " + join(texts, " ");
    if (errors > texts.size())
      text += " And " + std::to_string(errors - texts.size()) + " more (see the format section).";
    text += " Gmail and Yahoo refuse messages that do not follow RFC 5322.";
    hints.push_back({"format-error", "error", text});
  }
  return hints;
}

std::vector<RequirementsSummaryRow> requirements_summary(const RequirementsResult& result) {
  // The briefs of `rules` but `except`, each once: reject rules first, then at-risk ones.
  auto briefs = [&](const std::vector<std::size_t>& rules, const std::vector<std::size_t>& except) {
    std::vector<std::string> out;
    for (RuleSeverity severity : {RuleSeverity::reject, RuleSeverity::at_risk})
      for (std::size_t i : rules) {
        if (result.rules[i].rule->severity != severity ||
            std::find(except.begin(), except.end(), i) != except.end())
          continue;
        const std::string& b = result.rules[i].outcome.brief;
        if (!b.empty() && std::find(out.begin(), out.end(), b) == out.end()) out.push_back(b);
      }
    if (out.size() > 3) {
      const std::size_t more = out.size() - 3;
      out.resize(3);
      out.push_back(std::to_string(more) + " more");
    }
    return join(out, ", ");
  };
  // Rules that fail for every sender, compared by what they say (Gmail's TLS rule exists in
  // both classes with different severities).
  auto same_failures = [&](const ClassVerdict& a, const ClassVerdict& b) {
    return briefs(a.failing, {}) == briefs(b.failing, {});
  };
  std::vector<RequirementsSummaryRow> rows;
  for (const auto& pv : result.verdicts) {
    RequirementsSummaryRow row;
    row.provider = std::string(to_string(pv.provider));
    row.name = std::string(display_name(pv.provider));
    row.all = pv.all.verdict;
    row.bulk = pv.bulk.verdict;
    const std::string all_failing = briefs(pv.all.failing, {});
    std::string text;
    if (pv.all.verdict == pv.bulk.verdict && same_failures(pv.all, pv.bulk)) {
      switch (pv.all.verdict) {
        case Acceptance::accept:
          text = "would accept, from small and bulk senders";
          break;
        case Acceptance::at_risk:
          text = "at risk, from small and bulk senders (" + all_failing + ")";
          break;
        case Acceptance::reject:
          text = "would reject (" + all_failing + ")";
          break;
      }
    } else {
      switch (pv.all.verdict) {
        case Acceptance::accept:
          text = "would accept as a small sender";
          break;
        case Acceptance::at_risk:
          text = "at risk as a small sender (" + all_failing + ")";
          break;
        case Acceptance::reject:
          text = "would reject (" + all_failing + ")";
          break;
      }
      // The bulk failures not already named; Gmail's TLS rule counts once.
      std::vector<std::size_t> named;
      for (std::size_t i : pv.all.failing)
        for (std::size_t k : pv.bulk.failing)
          if (result.rules[k].outcome.brief == result.rules[i].outcome.brief) named.push_back(k);
      const std::string extra = briefs(pv.bulk.failing, named);
      const std::string listed =
          extra.empty() ? all_failing : (pv.all.failing.empty() ? "" : "also ") + extra;
      switch (pv.bulk.verdict) {
        case Acceptance::accept:
          text += "; bulk: would accept";
          break;
        case Acceptance::at_risk:
          text += "; bulk: at risk (" + listed + ")";
          break;
        case Acceptance::reject:
          text += "; bulk: would reject (" + listed + ")";
          break;
      }
    }
    const std::string unknown = briefs(pv.bulk.unknown, {});
    if (!unknown.empty()) text += "; not known: " + unknown;
    row.text = std::move(text);
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace ipconfirm::responder

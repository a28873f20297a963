#include "responder/reply/render.hpp"

#include <deque>
#include <fstream>
#include <kainjow/mustache.hpp>
#include <memory>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/embedded_files.hpp"

namespace ipconfirm::responder {

namespace {

using json = nlohmann::ordered_json;
using kainjow::mustache::data;
using kainjow::mustache::mustache;

// The mustache data of `j`, built in place: kainjow's set() and push_back() copy their
// argument, so adding finished subtrees would copy every value once per level above it.
// Containers are added empty and then filled through the library's own (const) accessors.
data scalar_data(const json& j) {
  switch (j.type()) {
    case json::value_t::string:
      return data{j.get_ref<const std::string&>()};
    case json::value_t::boolean:
      return data{j.get<bool>()};
    case json::value_t::null:
      return data{false};
    default:
      return data{j.dump()};
  }
}

void fill_data(data& d, const json& j) {
  auto child = [](const json& v) {
    return v.is_object()  ? data{data::type::object}
           : v.is_array() ? data{data::type::list}
                          : scalar_data(v);
  };
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      // set() copies its argument: a placeholder that costs nothing to copy goes in, and the
      // value is moved over it.
      d.set(it.key(), data{false});
      auto& slot = const_cast<data&>(*d.get(it.key()));
      slot = child(it.value());
      if (it->is_object() || it->is_array()) fill_data(slot, it.value());
    }
  } else if (j.is_array()) {
    for (const auto& e : j) {
      d.push_back(child(e));
      if (e.is_object() || e.is_array()) fill_data(const_cast<data&>(d.list_value().back()), e);
    }
  }
}

data to_data(const json& j) {
  if (!j.is_object() && !j.is_array()) return scalar_data(j);
  data d{j.is_object() ? data::type::object : data::type::list};
  fill_data(d, j);
  return d;
}

// The string member `key` of `j`, or "" (a reference: most uses only read or append it).
const std::string& str(const json& j, const char* key) {
  static const std::string kEmpty;
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return kEmpty;
  return it->get_ref<const std::string&>();
}

std::string yes_no(const json& v, const char* unknown = "unknown (lookup failed)") {
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  return unknown;
}

std::string join_strings(const json& list, std::string_view sep) {
  std::string out;
  if (!list.is_array()) return out;
  for (const auto& e : list) {
    if (!e.is_string()) continue;
    if (!out.empty()) out += sep;
    out += e.get<std::string>();
  }
  return out;
}

// Plain words for each hint code: a headline a person who knows nothing of SMTP understands,
// and who can fix it. The hint's own text (from the report) explains and says what to do.
struct HintGuide {
  std::string_view code, title, who;
};
constexpr HintGuide kGuides[] = {
    {"non-public-ip", "This test did not cross the internet",
     "you: send the test from the server that sends your mail out"},
    {"no-ptr", "Your address has no name in the DNS (no \"reverse DNS\")",
     "whoever gave you the address: your internet provider or hosting company"},
    {"ptr-invalid", "The reverse DNS of your address is broken",
     "whoever gave you the address: your internet provider or hosting company"},
    {"ptr-not-confirmed", "Your address's name does not point back to your address",
     "whoever runs the DNS of that name, or your provider"},
    {"generic-ptr", "Your address looks like a home or dynamic connection",
     "you (send through your provider's mail server), or your provider (a static address)"},
    {"dnsbl-listed", "Your address is on a blocklist",
     "you: find the cause (an infected machine, an open relay, a stolen password), then "
     "ask the list"},
    {"dnsbl-refused", "A blocklist would not answer us", "nobody on your side"},
    {"helo-not-fqdn", "Your server introduces itself with an incomplete name",
     "whoever runs your mail server"},
    {"helo-literal-mismatch", "Your server does not know its public address",
     "whoever runs your mail server"},
    {"helo-mismatch", "Your server introduces itself with the wrong name",
     "whoever runs your mail server"},
    {"behind-nat", "Your mail leaves through a gateway", "nobody, if this is what you expect"},
    {"dns-temperror", "Some checks could not finish", "nobody: try again in a few minutes"},
    {"clock-skew", "Your server's clock is wrong", "whoever runs your mail server"},
    {"delivery-delay", "Your message took long to reach us",
     "nobody, if your mail is queued on purpose; else whoever runs your mail server"},
    {"no-tls", "Your mail was not encrypted on the way", "whoever runs your mail server"},
    {"open-relay", "Your server relays mail for anyone", "whoever runs your mail server"},
    {"spf-none", "Your domain does not say which servers may send its mail (no SPF)",
     "whoever runs the DNS of your domain"},
    {"spf-fail", "Your domain's SPF record forbids the server that sent this",
     "whoever runs the DNS of your domain"},
    {"spf-softfail", "Your domain's SPF record does not list the server that sent this",
     "whoever runs the DNS of your domain"},
    {"spf-neutral", "Your domain's SPF record does not vouch for the server that sent this",
     "whoever runs the DNS of your domain"},
    {"spf-permerror", "Your domain's SPF record is broken", "whoever runs the DNS of your domain"},
    {"spf-temperror", "SPF could not be checked just now", "nobody: try again in a few minutes"},
    {"spf-pass-all", "Your SPF record lets anyone send as your domain",
     "whoever runs the DNS of your domain"},
    {"spf-helo-fail", "The SPF record of your server's name forbids it",
     "whoever runs your mail server or the DNS of its name"},
    {"spf-helo-softfail", "The SPF record of your server's name does not list it",
     "whoever runs your mail server or the DNS of its name"},
    {"spf-helo-permerror", "The SPF record of your server's name is broken",
     "whoever runs the DNS of your server's name"},
    {"spf-local-test", "SPF was checked for the address of a local test",
     "you: send the test from the server that sends your mail out"},
    {"dkim-none", "Your message is not signed (no DKIM)",
     "whoever runs your mail server or your mail provider"},
    {"dkim-fail", "Your message's DKIM signature does not verify",
     "whoever runs your mail server, or what changes mail after it (a list, a gateway)"},
    {"dkim-no-key", "The key of your DKIM signature is not in the DNS",
     "whoever runs the DNS of your domain"},
    {"dkim-permerror", "Your DKIM signature or its key is broken",
     "whoever runs your mail server or the DNS of your domain"},
    {"dkim-temperror", "DKIM could not be checked just now", "nobody: try again in a few minutes"},
    {"dkim-weak-key", "Your DKIM key is too small", "whoever runs your mail server and your DNS"},
    {"dkim-sha1", "Your DKIM signature uses an algorithm receivers refuse",
     "whoever runs your mail server"},
    {"dkim-expired", "Your DKIM signature is out of date", "whoever runs your mail server"},
    {"dkim-policy", "Your DKIM signature is not accepted", "whoever runs your mail server"},
    {"dkim-body-length", "Your DKIM signature covers only part of the message",
     "whoever runs your mail server"},
    {"dkim-testing", "Your DKIM key is marked as a test", "whoever runs the DNS of your domain"},
    {"dmarc-none", "Your domain has no DMARC policy", "whoever runs the DNS of your domain"},
    {"dmarc-fail", "Your message fails DMARC: its From domain is not authenticated",
     "whoever runs your mail server and the DNS of your domain"},
    {"dmarc-policy-none", "Your DMARC policy asks receivers to do nothing",
     "whoever runs the DNS of your domain"},
    {"dmarc-testing", "Your DMARC policy is in test mode", "whoever runs the DNS of your domain"},
    {"dmarc-temperror", "DMARC could not be checked just now",
     "nobody: try again in a few minutes"},
    {"dmarc-permerror", "Your message's From address cannot be checked with DMARC",
     "whoever runs your mail program or server"},
    {"dmarc-multiple-records", "Your domain has more than one DMARC record",
     "whoever runs the DNS of your domain"},
    {"dmarc-invalid-record", "Your DMARC record has errors", "whoever runs the DNS of your domain"},
    {"dmarc-removed-tag", "Your DMARC record uses a tag that no longer exists",
     "whoever runs the DNS of your domain"},
    {"arc-fail", "The message's ARC chain does not verify",
     "whoever runs the list or forwarder that added it"},
    {"provider-reject", "A large mailbox provider would refuse this message",
     "whoever runs your mail server and the DNS of your domain"},
    {"provider-at-risk", "A large mailbox provider may put this message in spam",
     "whoever runs your mail server and the DNS of your domain"},
    {"no-one-click-unsubscribe", "Your bulk mail has no one-click unsubscribe",
     "whoever runs your mailing software"},
    {"format-error", "Your message's header is not well-formed",
     "whoever runs your mail program or server"},
};

std::string severity_word(std::string_view severity) {
  if (severity == "error") return "Must fix";
  if (severity == "warning") return "Should fix";
  return "Good to know";
}

// The colours of the design, one tone per severity and one for "nothing to fix". The mail's
// HTML takes them as inline styles from the view (mail clients drop most <style> elements);
// the page's stylesheet (report.page.html.mustache) spells the same values, which a unit test
// holds to these.
struct Tone {
  std::string_view name, fg, bg, border, badge_fg, badge_bg;
};
constexpr Tone kTones[] = {
    {"error", "#7a271a", "#fef3f2", "#d92d20", "#ffffff", "#b42318"},
    {"warning", "#7a2e0e", "#fffaeb", "#f79009", "#ffffff", "#b54708"},
    {"info", "#194185", "#eff8ff", "#2e90fa", "#ffffff", "#175cd3"},
    {"ok", "#054f31", "#ecfdf3", "#12b76a", "#ffffff", "#067647"},
};

const Tone& tone_of(std::string_view name) {
  for (const auto& t : kTones)
    if (t.name == name) return t;
  return kTones[2];  // info
}

json tone_json(std::string_view name) {
  const Tone& t = tone_of(name);
  return json{{"name", t.name},
              {"fg", t.fg},
              {"bg", t.bg},
              {"border", t.border},
              {"badge_fg", t.badge_fg},
              {"badge_bg", t.badge_bg}};
}

// The member `key` of `j`, or null when `j` is not an object or lacks it (an older report,
// or a custom one, may have no `auth`).
const json& member(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

std::string number(const json& v) {
  return v.is_number() ? v.dump() : std::string();
}

// `text` appended to `out` with `n` spaces after each of its line breaks.
void append_indented(std::string& out, std::string_view text, std::size_t n) {
  std::size_t pos = 0;
  for (std::size_t nl; (nl = text.find('\n', pos)) != std::string_view::npos; pos = nl + 1)
    out.append(text, pos, nl + 1 - pos).append(n, ' ');
  out.append(text, pos, std::string_view::npos);
}

// One row of a details section: the text template shows `text` (the label in a column of 20,
// the value wrapped to end by column 76), the HTML one label and value.
json row(const std::string& label, const std::string& value) {
  std::string padded = "  " + label + ":";
  if (padded.size() < 22)
    padded += std::string(22 - padded.size(), ' ');
  else
    padded += "\n" + std::string(22, ' ');
  std::string text = std::move(padded);
  append_indented(text, wrap(value, 54), 22);
  return json{{"label", label}, {"value", value}, {"text", std::move(text)}};
}

json titled(const std::string& title, json rows) {
  return json{{"title", title}, {"title_text", wrap(title, 74, 2)}, {"rows", std::move(rows)}};
}

// The texts of the report's hints whose code `wanted` accepts: the change to make, shown again
// in the section of the protocol it is about.
template <typename Wanted>
std::vector<std::string> hint_texts(const json& r, Wanted wanted) {
  std::vector<std::string> out;
  for (const auto& h : member(r, "hints"))
    if (wanted(str(h, "code"))) out.push_back(str(h, "text"));
  return out;
}

void add_fixes(json& rows, const std::vector<std::string>& texts) {
  for (const auto& t : texts) rows.push_back(row("What to change", t));
}

json spf_section(const json& r, const json& spf, bool helo) {
  json rows = json::array();
  const std::string result = str(spf, "result");
  const std::string domain = str(spf, "domain");
  std::string result_text = result;
  const json& matched = member(spf, "matched");
  const std::string term = str(matched, "term");
  const std::string ip = str(member(r, "connection"), "ip");
  if (result == "pass")
    result_text += ": " + ip + " may send for " + domain;
  else if (result == "fail" || result == "softfail")
    result_text += ": " + ip + " is not allowed to send for " + domain;
  else if (result == "neutral")
    result_text += ": the record neither allows nor forbids " + ip;
  else if (result == "none")
    result_text += domain.empty() ? "" : ": " + domain + " publishes no SPF record";
  else if (result == "temperror")
    result_text += ": a DNS lookup failed temporarily, no verdict";
  else if (result == "permerror")
    result_text += ": the record cannot be used";
  if (!term.empty()) {
    result_text += " (it matched `" + term + "`";
    const std::string where = str(matched, "domain");
    if (!where.empty() && where != domain) result_text += " in the record of " + where;
    result_text += ")";
  }
  rows.push_back(row("Domain checked", domain.empty() ? "(none)" : domain));
  rows.push_back(row("Result", result_text));
  const std::string record = str(spf, "record");
  rows.push_back(row("Record", record.empty() ? "(none published)" : record));
  for (const auto& step : member(spf, "chain")) {
    const std::string via = str(step, "via");
    if (via.empty()) continue;  // the identity's own record, shown above
    rows.push_back(
        row("Then read", str(step, "domain") + " (" + via + "): " + str(step, "record")));
  }
  rows.push_back(row("DNS lookups", number(member(spf, "dns_lookups")) +
                                        " of 10 allowed; lookups that found nothing: " +
                                        number(member(spf, "void_lookups")) + " of 2"));
  if (!str(spf, "explanation").empty())
    rows.push_back(row("Explanation", "\"" + str(spf, "explanation") + "\""));
  if (!str(spf, "problem").empty()) rows.push_back(row("Problem", str(spf, "problem")));
  for (const auto& n : member(spf, "notes"))
    if (n.is_string()) rows.push_back(row("Note", n.get<std::string>()));
  add_fixes(rows, hint_texts(r, [&](const std::string& code) {
              const bool helo_code = code.rfind("spf-helo-", 0) == 0;
              return code.rfind("spf-", 0) == 0 && helo_code == helo;
            }));
  std::string title = helo ? "SPF for the HELO name " : "SPF for the MAIL FROM domain ";
  title += domain.empty() ? "(none)" : domain;
  return titled(title + " (RFC 7208)", std::move(rows));
}

void dkim_sections(const json& r, const json& dkim, json& sections) {
  json rows = json::array();
  std::size_t n = 0, passed = 0;
  for (const auto& s : dkim) {
    ++n;
    passed += str(s, "result") == "pass";
  }
  if (n == 0)
    rows.push_back(row("Signatures", "none: the message is not signed"));
  else
    rows.push_back(row("Signatures", std::to_string(n) + ", of which " + std::to_string(passed) +
                                         " verif" + (passed == 1 ? "ies" : "y")));
  add_fixes(rows, hint_texts(r, [](const std::string& c) { return c.rfind("dkim-", 0) == 0; }));
  sections.push_back(titled("DKIM signatures (RFC 6376)", std::move(rows)));
  std::size_t i = 0;
  for (const auto& s : dkim) {
    ++i;
    json sig = json::array();
    const std::string result = str(s, "result");
    const std::string error = str(s, "error");
    sig.push_back(row("Result", error.empty() ? result : result + ": " + error));
    sig.push_back(row("Signed by", "d=" + str(s, "domain") + ", selector s=" + str(s, "selector") +
                                       " (key at " + str(s, "key_name") + ")"));
    std::string algorithm = str(s, "algorithm");
    if (member(s, "key_bits").is_number())
      algorithm += ", " + number(member(s, "key_bits")) + "-bit key";
    sig.push_back(row("Algorithm", algorithm));
    sig.push_back(row("Canonicalization", str(s, "canonicalization")));
    sig.push_back(row("Signed headers", join_strings(member(s, "signed_headers"), ", ")));
    const std::string expected = str(s, "body_hash_expected");
    const std::string computed = str(s, "body_hash_computed");
    if (!expected.empty()) sig.push_back(row("Body hash (bh=)", expected));
    if (!computed.empty())
      sig.push_back(row(
          "Body hash computed",
          computed + (computed == expected ? " (the same: the body is as signed)"
                                           : " (DIFFERENT: the body was changed after signing)")));
    if (member(s, "length").is_number())
      sig.push_back(row("Body length (l=)", number(member(s, "length")) + " of " +
                                                number(member(s, "body_length")) + " bytes"));
    sections.push_back(titled("DKIM signature " + std::to_string(i) + " of " + std::to_string(n) +
                                  ": d=" + str(s, "domain") + ", s=" + str(s, "selector"),
                              std::move(sig)));
  }
}

json dmarc_section(const json& r, const json& d) {
  json rows = json::array();
  const std::string result = str(d, "result");
  const std::string from = str(d, "from_domain");
  rows.push_back(row("From domain", from.empty() ? "(none)" : from));
  std::string result_text = result;
  if (result == "pass" || result == "fail") {
    result_text += " (SPF aligned: " + yes_no(member(d, "spf_aligned")) +
                   ", DKIM aligned: " + yes_no(member(d, "dkim_aligned"));
    if (!str(d, "aligned_dkim_domain").empty())
      result_text += " with d=" + str(d, "aligned_dkim_domain");
    result_text += ")";
  }
  rows.push_back(row("Result", result_text));
  const json& policy = member(d, "policy");
  const std::string tag = str(d, "policy_tag");
  if (policy.is_string())
    rows.push_back(row("Policy", tag + "=" + policy.get<std::string>() + ", published at _dmarc." +
                                     str(d, "policy_domain") +
                                     (member(d, "testing") == true ? " (t=y: testing)" : "")));
  if (!str(d, "org_domain").empty())
    rows.push_back(row("Organizational domain", str(d, "org_domain")));
  rows.push_back(row("Record", str(d, "record").empty() ? "(none found)" : str(d, "record")));
  std::string action;
  const std::string disposition = str(d, "disposition");
  if (result == "pass")
    action = "deliver it: DMARC passes";
  else if (result == "fail" && disposition == "reject")
    action = "reject it (" + tag + "=reject)";
  else if (result == "fail" && disposition == "quarantine")
    action = "put it in the spam folder (quarantine)";
  else if (result == "fail")
    action =
        "deliver it anyway: the policy asks for no action, but the message counts as "
        "unauthenticated";
  else if (result == "none")
    action = "apply no DMARC policy: there is none to apply";
  else if (result == "temperror")
    action = "decide later or on other grounds: DMARC could not be evaluated";
  else
    action = "most likely refuse it: DMARC cannot be applied to it";
  rows.push_back(row("A receiver would", action));
  std::string walk;
  for (const auto& step : member(d, "walk")) {
    if (!walk.empty()) walk += "; ";
    walk += str(step, "name") + ": " + str(step, "outcome");
  }
  if (!walk.empty()) rows.push_back(row("Names looked up", walk));
  if (!str(d, "problem").empty()) rows.push_back(row("Problem", str(d, "problem")));
  add_fixes(rows, hint_texts(r, [](const std::string& c) { return c.rfind("dmarc-", 0) == 0; }));
  return titled("DMARC for the From domain " + (from.empty() ? "(none)" : from) + " (RFC 9989)",
                std::move(rows));
}

json arc_section(const json& r, const json& a) {
  json rows = json::array();
  const std::string result = str(a, "result");
  std::string text = result;
  if (result == "none")
    text += ": the message carries no ARC headers (only lists and forwarders add them)";
  else if (result == "pass")
    text += ": " + number(member(a, "instances")) + " set(s) verify";
  else if (!str(a, "reason").empty())
    text += ": " + str(a, "reason");
  rows.push_back(row("Result", text));
  add_fixes(rows, hint_texts(r, [](const std::string& c) { return c.rfind("arc-", 0) == 0; }));
  return titled("ARC (RFC 8617)", std::move(rows));
}

// The sections of the authentication part, and the DNS log, for both templates.
void auth_view(const json& r, json& v) {
  const json& auth = member(r, "auth");
  json sections = json::array();
  if (member(auth, "spf").is_object())
    sections.push_back(spf_section(r, member(auth, "spf"), false));
  if (member(auth, "spf_helo").is_object())
    sections.push_back(spf_section(r, member(auth, "spf_helo"), true));
  if (auth.is_object()) dkim_sections(r, member(auth, "dkim"), sections);
  if (member(auth, "dmarc").is_object())
    sections.push_back(dmarc_section(r, member(auth, "dmarc")));
  if (member(auth, "arc").is_object()) sections.push_back(arc_section(r, member(auth, "arc")));
  v["auth_sections"] = std::move(sections);
  v["auth_results"] = str(auth, "authentication_results");
  v["auth_results_text"] = "  " + wrap(str(auth, "authentication_results"), 72, 4);

  json lines = json::array();
  json rows = json::array();
  for (const auto& e : member(r, "dns_log")) {
    std::string answers = join_strings(member(e, "answers"), " | ");
    // The text shows the start of each answer (a DKIM key is a 400-byte word); the HTML and
    // the JSON have them whole.
    std::string short_answers;
    for (const auto& a : member(e, "answers")) {
      if (!a.is_string()) continue;
      std::string t = a.get<std::string>();
      if (t.size() > 60) {
        std::size_t cut = 57;
        while (cut > 0 && (static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) --cut;
        t = t.substr(0, cut) + "...";
      }
      short_answers += (short_answers.empty() ? "" : " | ") + t;
    }
    if (member(e, "answers_omitted").is_number()) {
      const std::string more = "(and " + number(member(e, "answers_omitted")) + " more)";
      answers += (answers.empty() ? "" : " ") + more;
      short_answers += (short_answers.empty() ? "" : " ") + more;
    }
    const std::string head = str(e, "type") + " " + str(e, "name") + ": " + str(e, "rcode") + ", " +
                             number(member(e, "ms")) + " ms";
    lines.push_back(wrap(head + (short_answers.empty() ? "" : ": " + short_answers), 72, 6));
    rows.push_back(json{{"type", str(e, "type")},
                        {"name", str(e, "name")},
                        {"rcode", str(e, "rcode")},
                        {"ms", number(member(e, "ms"))},
                        {"answers", answers}});
  }
  v["has_dns_log"] = !lines.empty();
  std::string count = std::to_string(lines.size());
  v["dns_log_lines"] = std::move(lines);
  v["dns_log_rows"] = std::move(rows);
  if (member(r, "dns_log_omitted").is_number() && member(r, "dns_log_omitted") != 0)
    count += ", and " + number(member(r, "dns_log_omitted")) + " more not listed";
  v["dns_log_count"] = count;
}

// The providers' rules (responder/analysis/requirements.hpp): the short table at the top of the
// reply (`requirements_summary`), whether the message looks like bulk mail, and per provider
// every rule with its status; the evidence is shown for the rules that fail or cannot be told.
void requirements_view(const json& r, json& v) {
  json lines = json::array();
  json rows = json::array();
  for (const auto& s : member(r, "requirements_summary")) {
    lines.push_back(wrap(str(s, "name") + ": " + str(s, "text"), 72, 4));
    rows.push_back(json{{"name", str(s, "name")},
                        {"all", str(s, "all")},
                        {"bulk", str(s, "bulk")},
                        {"text", str(s, "text")}});
  }
  v["has_requirements"] = !lines.empty();
  v["requirements_lines"] = std::move(lines);
  v["requirements_rows"] = std::move(rows);
  std::string bulk;
  if (member(r, "bulk_looking") == true)
    bulk = "This message looks like bulk mail (" + str(r, "bulk_looking_reason") +
           "): the bulk senders' rules apply to it.";
  else
    bulk =
        "Bulk senders send a provider many messages a day (Gmail and Microsoft count 5,000); "
        "this message does not look like bulk mail (no List-Unsubscribe, no Precedence: bulk), "
        "but only you know your volume.";
  v["requirements_bulk"] = bulk;
  v["requirements_bulk_text"] = wrap(bulk, 72);

  // Below, per provider, the rules that fail (with what the message showed) and those that
  // cannot be told; the rules that pass or do not apply are counted (the JSON lists them all,
  // and a reply has to stay small).
  json providers = json::array();
  for (const auto& s : member(r, "requirements_summary")) {
    const std::string provider = str(s, "provider");
    json text_lines = json::array();
    json html_rows = json::array();
    std::size_t passed = 0, not_applicable = 0;
    for (const auto& q : member(r, "requirements")) {
      if (str(q, "provider") != provider) continue;
      const std::string status = str(q, "status");
      if (status == "pass") ++passed;
      if (status == "not-applicable") ++not_applicable;
      if (status != "fail" && status != "unknown") continue;
      const std::string who = str(q, "applies_to") == "bulk" ? "bulk senders" : "all senders";
      const std::string evidence = status == "fail" ? str(q, "evidence") : std::string();
      std::string line = "[" + status + "] " + str(q, "name") + " (" + who + ")";
      if (!evidence.empty()) line += ": " + evidence;
      text_lines.push_back(wrap(line, 72, 6));
      html_rows.push_back(json{{"status", status},
                               {"name", str(q, "name")},
                               {"applies_to", who},
                               {"evidence", evidence},
                               {"source", str(q, "source")}});
    }
    const std::string counted = std::to_string(passed) + " rule" + (passed == 1 ? "" : "s") +
                                " pass, " + std::to_string(not_applicable) +
                                " do not apply to this message.";
    providers.push_back(json{{"name", str(s, "name")},
                             {"verdict_text", wrap(str(s, "name") + ": " + str(s, "text"), 74, 2)},
                             {"text", str(s, "text")},
                             {"lines", std::move(text_lines)},
                             {"rows", std::move(html_rows)},
                             {"counted", counted},
                             {"counted_text", wrap(counted, 70, 4)}});
  }
  v["requirements_providers"] = std::move(providers);
}

json build_view(const json& r) {
  // Room for every member up front: ordered_json's members are a vector whose elements have a
  // const key, so each growth copies every value added so far instead of moving it.
  json v = json::object();
  v.get_ref<json::object_t&>().reserve(48);
  const json& conn = r["connection"];
  const json& rdns = r["rdns"];
  const json& helo = r["helo"];
  v["rcpt_to"] = join_strings(r["envelope"]["rcpt_to"], ", ");
  std::string mail_from = str(r["envelope"], "mail_from");
  v["mail_from"] = mail_from.empty() ? "<>" : "<" + mail_from + ">";

  std::string scope = str(conn, "scope");
  if (scope == "public")
    v["ip_scope_text"] = wrap(
        "That is the address the rest of the internet sees when your server sends mail. It is a "
        "public address.",
        72);
  else
    v["ip_scope_text"] = wrap("It is a " + scope +
                                  " address: this was a local test, and the message did not "
                                  "cross the internet. See below for what a test from your mail "
                                  "server over the internet would check.",
                              72);

  std::string ptrs = join_strings(rdns["ptr"], ", ");
  // A reverse zone may answer with thousands of names: the report lists the first ten.
  if (!ptrs.empty() && rdns.value("ptr_truncated", false))
    ptrs += " (the first " + std::to_string(rdns["ptr"].size()) + " of " +
            std::to_string(rdns.value("ptr_count", std::size_t{0})) + " names)";
  std::string status = str(rdns, "status");
  if (status == "temperror")
    v["ptr_text"] = ptrs.empty() ? "unknown: the lookup failed temporarily" : ptrs;
  else if (status == "permerror")
    v["ptr_text"] = "unusable (malformed answer or invalid names)";
  else
    v["ptr_text"] = ptrs.empty() ? "none: no PTR record is published" : ptrs;
  if (ptrs.empty())
    v["fcrdns_text"] = "-";
  else if (status == "temperror")
    v["fcrdns_text"] = "unknown (lookup failed)";
  else
    v["fcrdns_text"] =
        rdns.value("forward_confirmed", false)
            ? "yes (" + join_strings(rdns["confirmed_names"], ", ") + " -> " + str(conn, "ip") + ")"
            : "no";
  v["generic_text"] =
      rdns.value("generic", false) ? "yes: " + join_strings(rdns["generic_signals"], "; ") : "no";

  std::string helo_name = str(helo, "name");
  v["helo_text"] = helo_name.empty() ? "(none)" : helo_name;
  v["helo_resolves_text"] = yes_no(helo["resolves"], "not checked");
  v["helo_ptr_text"] = yes_no(helo["matches_ptr"]);
  if (conn["tls"].is_object())
    v["tls_text"] = str(conn["tls"], "version") + " " + str(conn["tls"], "cipher");
  else
    v["tls_text"] = "none (plain text)";

  json dnsbl_lines = json::array();
  for (const auto& d : r["dnsbl"]) {
    std::string line = str(d, "zone") + ": ";
    std::string st = str(d, "status");
    if (d.value("listed", false))
      line += "LISTED (" + join_strings(d["answers"], ", ") + ")" +
              (str(d, "reason").empty() ? "" : " " + str(d, "reason"));
    else if (st.empty())
      line += "not listed";
    else
      line += st == "not_listed" ? "not listed" : st;
    dnsbl_lines.push_back(wrap(line, 70, 4));
  }
  v["dnsbl_lines"] = std::move(dnsbl_lines);

  json path_lines = json::array();
  int n = 0;
  for (const auto& hop : r["received"]) {
    std::string line = std::to_string(++n) + ". ";
    if (!hop.value("parsed", false)) {
      path_lines.push_back(line + "(a Received header we could not read)");
      continue;
    }
    std::string from = str(hop, "from_helo");
    if (from.empty()) from = str(hop, "from_name");
    if (from.empty() && !hop["from_ip"].is_string() && str(hop, "by").empty()) {
      // qmail's "(qmail N invoked ...)" and similar companion lines.
      path_lines.push_back(line + "(a line that names no server)");
      continue;
    }
    if (!from.empty() || hop["from_ip"].is_string()) line += "from";
    if (!from.empty()) line += " " + from;
    if (hop["from_ip"].is_string()) {
      line += " [" + hop["from_ip"].get<std::string>() + "]";
      std::string s = str(hop, "from_ip_scope");
      if (!s.empty() && s != "public") line += " (" + s + ")";
    }
    if (!str(hop, "by").empty()) line += (line.back() == ' ' ? "by " : " by ") + str(hop, "by");
    if (!str(hop, "with").empty()) line += " with " + str(hop, "with");
    if (hop["tls"].is_string()) line += ", TLS";
    path_lines.push_back(wrap(line, 70, 5));
  }
  for (const auto& note : r["path"]["notes"])
    if (note.is_string())
      path_lines.push_back(wrap("Our reading: " + note.get<std::string>(), 68, 2));
  v["path_lines"] = std::move(path_lines);

  json blocks = json::array();
  std::size_t must = 0, should = 0;
  for (const auto& h : r["hints"]) {
    const std::string code = str(h, "code");
    const std::string severity = str(h, "severity");
    std::string title = code, who;
    for (const auto& g : kGuides) {
      if (g.code == code) {
        title = std::string(g.title);
        who = std::string(g.who);
      }
    }
    must += severity == "error";
    should += severity == "warning";
    const std::string number = std::to_string(blocks.size() + 1) + ". ";
    blocks.push_back(json{
        {"code", code},
        {"severity", severity},
        {"tone", tone_json(severity == "error" || severity == "warning" ? severity : "info")},
        {"severity_text", severity_word(severity)},
        {"number", blocks.size() + 1},
        {"title", title},
        {"heading", wrap(number + title, 72, number.size())},
        {"label", std::string(number.size(), ' ') + severity_word(severity) + " (" + code + ")"},
        {"who", who},
        {"who_text", who.empty() ? "" : "   " + wrap("Who can fix it: " + who, 69, 5)},
        {"text", "   " + wrap(str(h, "text"), 69, 3)},
        {"text_flat", str(h, "text")}});
  }
  v["hint_blocks"] = std::move(blocks);
  // The text template's values in the details column start at column 22: wrap them to end by
  // column 76 (a single long token, like a long host name, still goes on one line).
  for (const char* key : {"ptr_text", "fcrdns_text", "generic_text", "helo_text",
                          "helo_resolves_text", "helo_ptr_text", "tls_text"}) {
    std::string out;
    append_indented(out, wrap(v[key].get_ref<const std::string&>(), 54), 22);
    v[key] = std::move(out);
  }
  // A local test checked nothing of how the internet sees the sender: it says so.
  bool local_test = false;
  for (const auto& h : r["hints"]) local_test = local_test || str(h, "code") == "non-public-ip";
  const std::string nothing = local_test
                                  ? "Nothing to fix here, but this was a local test: see below."
                                  : "Nothing to fix: everything we checked looks right.";
  std::string verdict;
  if (must + should == 0)
    verdict = nothing;
  else
    verdict = std::to_string(must) + " thing" + (must == 1 ? "" : "s") + " to fix, " +
              std::to_string(should) + " worth fixing; see WHAT TO DO below.";
  v["verdict"] = verdict;
  // The verdict box takes the tone of the worst finding.
  std::size_t infos = v["hint_blocks"].size() - must - should;  // blocks was moved there
  v["verdict_tone"] = tone_json(must ? "error" : should ? "warning" : infos ? "info" : "ok");
  v["verdict_html"] = must + should == 0 ? nothing
                                         : std::to_string(must) + " must be fixed, " +
                                               std::to_string(should) + " should be fixed.";
  v["intro_text"] =
      wrap("This is ipconfirm at " + str(r, "reporter") + ", answering the message you sent to " +
               join_strings(r["envelope"]["rcpt_to"], ", ") + " on " + str(r, "arrival") + ".",
           72);
  auth_view(r, v);
  requirements_view(r, v);
  // The stored report's page (when the server keeps reports: [http] public_url): relative
  // links from the page to its other forms.
  const std::string url = str(r, "report_url");
  if (!url.empty()) {
    const std::string token = url.substr(url.rfind('/') + 1);
    v["report_json_link"] = token + ".json";
    v["report_text_link"] = token + ".txt";
    // The address in two parts, so that the HTML may break the line between them (<wbr>): a
    // URL has no other place to break, and a mail client without styles would scroll sideways.
    v["report_url_base"] = url.substr(0, url.size() - token.size());
    v["report_url_token"] = token;
  }
  return v;
}

// `j` with every control character in its strings (CR, LF and TAB included) made a space, so
// that no value a sender controls can start a new line in the text part; line breaks in the
// rendered report come only from the templates and from wrap().
json single_line_strings(const json& j) {
  switch (j.type()) {
    case json::value_t::object: {
      json out = json::object();
      for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = single_line_strings(*it);
      return out;
    }
    case json::value_t::array: {
      json out = json::array();
      for (const auto& e : j) out.push_back(single_line_strings(e));
      return out;
    }
    case json::value_t::string: {
      std::string s = j.get<std::string>();
      for (auto& c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
      return s;
    }
    default:
      return j;
  }
}

// True if some string in `j` holds a control character, that is, if single_line_strings(j)
// would change it. Most reports hold none, and then they are rendered without that copy.
bool has_control_characters(const json& j) {
  switch (j.type()) {
    case json::value_t::object:
    case json::value_t::array:
      for (const auto& e : j)
        if (has_control_characters(e)) return true;
      return false;
    case json::value_t::string:
      for (char c : j.get_ref<const std::string&>())
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) return true;
      return false;
    default:
      return false;
  }
}

// What the templates see: the report plus its view under "view". Nothing is converted to
// mustache data up front: a name is looked up in the JSON itself, and only what a lookup
// finds becomes data, once (a scalar as its value; an object as an empty stand-in whose
// members are looked up in its JSON in turn; an array as a list of such stand-ins, which the
// library walks for a section). The whole report is converted only for a bare {{.}} at the
// top. The result is what to_data(report), with the view set, would render.
class Model {
 public:
  Model(const json& report, json view) : report_(report), view_(std::move(view)) {}

  // The top-level member `name` as JSON, or nullptr.
  const json* top(std::string_view name) const {
    if (!report_.is_object()) return nullptr;
    if (name == "view") return &view_;
    auto f = report_.find(name);
    return f == report_.end() ? nullptr : &*f;
  }

  // The JSON a stand-in was made for, or nullptr (a scalar, or data of the library's own).
  const json* origin(const data* d) const {
    auto it = origins_.find(d);
    return it == origins_.end() ? nullptr : it->second;
  }

  // `j` as data: made the first time, the same pointer after.
  const data* wrap(const json& j) {
    auto [it, added] = wrapped_.try_emplace(&j, nullptr);
    if (!added) return it->second;
    data& d = made_.emplace_back(j.is_object()  ? data{data::type::object}
                                 : j.is_array() ? data{data::type::list}
                                                : scalar_data(j));
    if (j.is_array()) stand_ins(d, j);
    if (j.is_object() || j.is_array()) origins_.emplace(&d, &j);
    it->second = &d;
    return &d;
  }

  // A name resolved at the top level, cached by the whole dotted name.
  std::unordered_map<std::string, const data*>& top_cache() { return top_cache_; }

  const data* whole() {
    if (!whole_) {
      whole_ = std::make_unique<data>(to_data(report_));
      if (whole_->is_object()) {
        whole_->set("view", data{data::type::object});
        fill_data(const_cast<data&>(*whole_->get("view")), view_);
      }
    }
    return whole_.get();
  }

 private:
  // Fills the list `d` with a stand-in for each element of the array `j`.
  void stand_ins(data& d, const json& j) {
    for (const auto& e : j)
      d.push_back(e.is_object()  ? data{data::type::object}
                  : e.is_array() ? data{data::type::list}
                                 : scalar_data(e));
    // The list is complete: its elements stay where they are now.
    auto& items = const_cast<kainjow::mustache::basic_list<std::string>&>(d.list_value());
    std::size_t k = 0;
    for (const auto& e : j) {
      data& item = items[k++];
      if (e.is_array()) stand_ins(item, e);
      if (e.is_object() || e.is_array()) origins_.emplace(&item, &e);
    }
  }

  const json& report_;
  json view_;
  std::deque<data> made_;  // stable addresses
  std::unordered_map<const json*, const data*> wrapped_;
  std::unordered_map<const data*, const json*> origins_;
  std::unordered_map<std::string, const data*> top_cache_;
  std::unique_ptr<data> whole_;
};

// The parts of a dotted name as std::getline would give them (a trailing '.' adds no empty
// last part), each passed to `step` until it returns false; true if every part was taken.
template <typename Step>
bool walk_parts(const std::string& name, Step step) {
  std::size_t pos = 0;
  while (pos < name.size()) {
    std::size_t dot = name.find('.', pos);
    if (dot == std::string::npos) dot = name.size();
    if (!step(std::string_view(name).substr(pos, dot - pos))) return false;
    pos = dot + 1;
  }
  return true;
}

// kainjow's own context splits every dotted name ({{view.x}}) with a std::stringstream at each
// lookup; this one looks the parts up in place, with the same result: the innermost section's
// data first, then the outer ones, then the model's top level (nullptr in items_).
class Context : public kainjow::mustache::basic_context<std::string> {
 public:
  explicit Context(Model& model) : model_(model) { items_.push_back(nullptr); }
  void push(const data* d) override { items_.push_back(d); }
  void pop() override { items_.pop_back(); }

  const data* get(const std::string& name) const override {
    if (name == ".") return items_.back() ? items_.back() : model_.whole();
    for (auto item = items_.rbegin(); item != items_.rend(); ++item)
      if (const data* var = in(*item, name)) return var;
    return nullptr;
  }

  const data* get_partial(const std::string& name) const override {
    for (auto item = items_.rbegin(); item != items_.rend(); ++item)
      if (const data* var = in(*item, name, false)) return var;
    return nullptr;
  }

 private:
  // `name` looked up in one item of the stack (nullptr: the top level): its dotted parts one
  // after the other, or, with `dotted` false, the name as one key.
  const data* in(const data* item, const std::string& name, bool dotted = true) const {
    if (item == nullptr) {
      auto& cache = model_.top_cache();
      if (auto it = cache.find(name); it != cache.end()) return it->second;
      const json* node = nullptr;
      bool first = true;
      const auto step = [&](std::string_view part) {
        node = first ? model_.top(part) : child(*node, part);
        first = false;
        return node != nullptr;
      };
      const bool found = dotted ? walk_parts(name, step) : step(name);
      const data* var = found && node ? model_.wrap(*node) : nullptr;
      cache.emplace(name, var);
      return var;
    }
    if (const json* node = model_.origin(item)) {
      const auto step = [&](std::string_view part) {
        node = child(*node, part);
        return node != nullptr;
      };
      if (!(dotted ? walk_parts(name, step) : step(name)) || !node) return nullptr;
      return node == model_.origin(item) ? item : model_.wrap(*node);  // "" names the item
    }
    // Data of the library's own (the whole report of a {{#.}} at the top, or a scalar).
    const data* var = item;
    const auto step = [&](std::string_view part) {
      var = var->get(std::string(part));
      return var != nullptr;
    };
    return (dotted ? walk_parts(name, step) : step(name)) ? var : nullptr;
  }

  static const json* child(const json& node, std::string_view key) {
    if (!node.is_object()) return nullptr;
    auto it = node.find(key);
    return it == node.end() ? nullptr : &*it;
  }

  Model& model_;
  std::vector<const data*> items_;  // the innermost last
};

// What the library's render(context, stream) writes to: a string, without an ostringstream.
struct StringSink {
  std::string out;
  StringSink& operator<<(const std::string& s) {
    out += s;
    return *this;
  }
};

std::string render_with(mustache& tmpl, Model& model) {
  Context ctx(model);
  StringSink sink;
  sink.out.reserve(8192);
  tmpl.render(ctx, sink);
  return std::move(sink.out);
}

// kainjow's html_escape, the same five characters and entities, but appending the runs between
// them whole instead of one character at a time.
std::string escape_html(const std::string& s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  std::size_t pos = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    std::string_view entity;
    switch (s[i]) {
      case '&':
        entity = "&amp;";
        break;
      case '<':
        entity = "&lt;";
        break;
      case '>':
        entity = "&gt;";
        break;
      case '"':
        entity = "&quot;";
        break;
      case '\'':
        entity = "&apos;";
        break;
      default:
        continue;
    }
    out.append(s, pos, i - pos).append(entity);
    pos = i + 1;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

// The text template is rendered without HTML escaping, the HTML one with it.
mustache parse(const std::string& text, bool html) {
  mustache tmpl{text};
  if (html)
    tmpl.set_custom_escape(escape_html);
  else
    tmpl.set_custom_escape([](const std::string& s) { return s; });
  return tmpl;
}

}  // namespace

struct Templates::Parsed {
  mustache subject, text, html, page;
};

std::string wrap(std::string_view text, std::size_t width, std::size_t indent) {
  std::string out, line;
  std::size_t pos = 0;
  auto flush = [&] {
    if (!out.empty()) out.append(1, '\n').append(indent, ' ');
    out += line;
    line.clear();
  };
  while (pos < text.size()) {
    auto end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(pos, end - pos);
    std::size_t limit = out.empty() ? width : width - std::min(width - 1, indent);
    if (!line.empty() && line.size() + 1 + word.size() > limit) flush();
    if (!line.empty()) line += ' ';
    line += word;
    pos = end + 1;
  }
  if (!line.empty()) flush();
  return out;
}

std::optional<Templates> load_templates(const std::string& dir, std::string& error) {
  Templates t;
  struct Slot {
    const char* name;
    std::string* out;
  } slots[] = {{"subject.mustache", &t.subject},
               {"report.txt.mustache", &t.text},
               {"report.html.mustache", &t.html},
               {"report.page.html.mustache", &t.page}};
  for (auto& slot : slots) {
    const bool optional = std::string_view(slot.name) == "report.page.html.mustache";
    if (dir.empty() ||
        (optional && !std::ifstream(dir + "/" + slot.name, std::ios::binary).is_open())) {
      *slot.out = embedded_files().at(slot.name);
    } else {
      std::ifstream in(dir + "/" + slot.name, std::ios::binary);
      if (!in) {
        error = dir + "/" + slot.name + ": cannot read the template";
        return std::nullopt;
      }
      std::ostringstream s;
      s << in.rdbuf();
      *slot.out = s.str();
    }
  }
  t.parsed = std::make_shared<Templates::Parsed>(Templates::Parsed{
      parse(t.subject, false), parse(t.text, false), parse(t.html, true), parse(t.page, true)});
  for (const auto& [name, tmpl] :
       {std::pair{slots[0].name, &t.parsed->subject}, std::pair{slots[1].name, &t.parsed->text},
        std::pair{slots[2].name, &t.parsed->html}, std::pair{slots[3].name, &t.parsed->page}}) {
    if (!tmpl->is_valid()) {
      error = std::string(name) + ": " + tmpl->error_message();
      return std::nullopt;
    }
  }
  return t;
}

namespace {

std::shared_ptr<Templates::Parsed> parsed_of(const Templates& templates) {
  if (templates.parsed) return templates.parsed;
  // Built by hand rather than by load_templates (a hand-built set may leave the page empty).
  return std::make_shared<Templates::Parsed>(Templates::Parsed{
      parse(templates.subject, false), parse(templates.text, false), parse(templates.html, true),
      parse(templates.page.empty() ? embedded_files().at("report.page.html.mustache")
                                   : templates.page,
            true)});
}

// The report as the templates see it: without control characters in its strings (a copy only
// when there are any). Neither copied nor moved: `report` may point at `copy`.
struct Cleaned {
  explicit Cleaned(const nlohmann::ordered_json& r) : report(&r) {
    if (has_control_characters(r)) {
      copy = single_line_strings(r);
      report = &copy;
    }
  }
  Cleaned(const Cleaned&) = delete;
  Cleaned& operator=(const Cleaned&) = delete;

  json view() const { return report->is_object() ? build_view(*report) : json(); }

  json copy;
  const json* report;
};

}  // namespace

std::string render_text(const Templates& templates, const nlohmann::ordered_json& report) {
  Cleaned c(report);
  Model m(*c.report, c.view());
  return render_with(parsed_of(templates)->text, m);
}

std::string render_page(const Templates& templates, const nlohmann::ordered_json& report) {
  Cleaned c(report);
  json view = c.view();
  // The whole report, as the .json link gives it (its strings keep their line breaks here: the
  // page shows them escaped inside a <pre>).
  view["report_json"] = report.dump(2, ' ', false, json::error_handler_t::replace);
  Model m(*c.report, std::move(view));
  return render_with(parsed_of(templates)->page, m);
}

Rendered render_report(const Templates& templates, const nlohmann::ordered_json& report) {
  Cleaned c(report);
  Model d(*c.report, c.view());
  auto parsed = parsed_of(templates);
  Rendered out;
  out.subject = render_with(parsed->subject, d);
  while (!out.subject.empty() && (out.subject.back() == '\n' || out.subject.back() == '\r'))
    out.subject.pop_back();
  out.text = render_with(parsed->text, d);
  out.html = render_with(parsed->html, d);
  return out;
}

}  // namespace ipconfirm::responder

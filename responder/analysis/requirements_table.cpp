#include "responder/analysis/requirements_table.hpp"

#include <toml++/toml.h>

#include <cstdio>
#include <initializer_list>
#include <sstream>

#include "core/embedded_files.hpp"

namespace ipconfirm::responder {

namespace {

constexpr std::array<std::string_view, kRequirementCheckCount> kCheckNames = {
    "spf-or-dkim-pass",
    "spf-pass",
    "dkim-pass",
    "dmarc-record",
    "dmarc-aligned",
    "dmarc-policy-reject",
    "dmarc-policy-quarantine",
    "not-impersonating-gmail",
    "fcrdns",
    "reverse-dns",
    "tls",
    "rfc5322-format",
    "message-id",
    "single-from-address",
    "dnsbl-not-listed",
    "one-click-unsubscribe",
    "list-unsubscribe",
    "unsubscribe-link",
    "arc-valid",
    "complaint-rate",
};
static_assert(static_cast<std::size_t>(RequirementCheck::complaint_rate) + 1 ==
              kRequirementCheckCount);

// Thrown inside the loader only; parse_requirements_table turns it into an error string.
struct TableError {
  std::string message;
};

class Loader {
 public:
  explicit Loader(std::string_view name) : name_(name) {}

  [[noreturn]] void fail(const toml::node* node, const std::string& what, const std::string& why) {
    std::ostringstream out;
    out << name_;
    if (node) out << ":" << node->source().begin.line;
    out << ": " << what << ": " << why;
    throw TableError{out.str()};
  }

  RequirementsTable load(const toml::table& root) {
    RequirementsTable t;
    for (auto&& [k, v] : root)
      if (k.str() != "source" && k.str() != "rule")
        fail(&v, "key '" + std::string(k.str()) + "'",
             "unknown key (a table has [[source]] and [[rule]] entries only)");
    for (const toml::table* s : entries(root, "source")) t.sources.push_back(source(*s, t));
    for (const toml::table* r : entries(root, "rule")) t.rules.push_back(rule(*r, t));
    if (t.sources.size() > kMaxRuleSources)
      fail(nullptr, "[[source]]", "more than " + std::to_string(kMaxRuleSources) + " sources");
    if (t.rules.size() > kMaxRules)
      fail(nullptr, "[[rule]]", "more than " + std::to_string(kMaxRules) + " rules");
    for (MailboxProvider p : kMailboxProviders) {
      bool any = false;
      for (const auto& r : t.rules) any = any || r.provider == p;
      if (!any) fail(nullptr, "provider " + std::string(to_string(p)), "has no rules");
    }
    return t;
  }

 private:
  std::vector<const toml::table*> entries(const toml::table& root, std::string_view key) {
    std::vector<const toml::table*> out;
    const toml::node* n = root.get(key);
    if (!n) return out;
    const std::string what = "[[" + std::string(key) + "]]";
    if (!n->is_array_of_tables())
      fail(n, what, "must be an array of tables ([[" + std::string(key) + "]])");
    for (auto&& e : *n->as_array()) out.push_back(e.as_table());
    return out;
  }

  void only_known(const toml::table& t, const std::string& what,
                  std::initializer_list<std::string_view> known) {
    for (auto&& [k, v] : t) {
      bool found = false;
      for (auto name : known) found = found || k.str() == name;
      if (!found) fail(&v, what, "unknown key '" + std::string(k.str()) + "'");
    }
  }

  // A required string of printable ASCII, 1 to `max` bytes.
  std::string text(const toml::table& t, std::string_view key, const std::string& what,
                   std::size_t max, bool required = true) {
    const toml::node* n = t.get(key);
    if (!n) {
      if (!required) return "";
      fail(&t, what, "missing '" + std::string(key) + "'");
    }
    if (!n->is_string()) fail(n, what, "'" + std::string(key) + "' must be a string");
    std::string s = *n->value<std::string>();
    if (s.empty() || s.size() > max)
      fail(n, what,
           "'" + std::string(key) + "' must be 1 to " + std::to_string(max) + " characters");
    for (char c : s)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
        fail(n, what, "'" + std::string(key) + "' must be printable ASCII");
    return s;
  }

  // A short name: lower-case letters, digits and '-'.
  std::string identifier(const toml::table& t, std::string_view key, const std::string& what) {
    std::string s = text(t, key, what, 60);
    for (char c : s)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
        fail(t.get(key), what,
             "'" + std::string(key) + "' may hold only a-z, 0-9 and '-' ('" + s + "')");
    return s;
  }

  std::string date(const toml::table& t, std::string_view key, const std::string& what,
                   bool required) {
    const toml::node* n = t.get(key);
    if (!n) {
      if (!required) return "";
      fail(&t, what, "missing '" + std::string(key) + "'");
    }
    if (!n->is_date()) fail(n, what, "'" + std::string(key) + "' must be a date (2026-12-06)");
    const toml::date d = *n->value<toml::date>();
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04u-%02u-%02u", static_cast<unsigned>(d.year),
                  static_cast<unsigned>(d.month), static_cast<unsigned>(d.day));
    return buf;
  }

  RequirementSource source(const toml::table& t, const RequirementsTable& table) {
    const std::string what = "source " + std::to_string(table.sources.size() + 1);
    only_known(t, what, {"id", "url", "title", "read", "copy"});
    RequirementSource s;
    s.id = identifier(t, "id", what);
    const std::string named = "source '" + s.id + "'";
    for (const auto& other : table.sources)
      if (other.id == s.id) fail(&t, named, "listed twice");
    s.url = text(t, "url", named, 400);
    if (s.url.rfind("https://", 0) != 0)
      fail(t.get("url"), named, "'url' must start with https://");
    s.title = text(t, "title", named, 300);
    s.read = date(t, "read", named, true);
    s.copy = date(t, "copy", named, false);
    return s;
  }

  RequirementRule rule(const toml::table& t, const RequirementsTable& table) {
    std::string what = "rule " + std::to_string(table.rules.size() + 1);
    RequirementRule r;
    r.line = t.source().begin.line;
    const std::string provider = text(t, "provider", what, 20);
    if (provider == "gmail")
      r.provider = MailboxProvider::gmail;
    else if (provider == "yahoo")
      r.provider = MailboxProvider::yahoo;
    else if (provider == "microsoft")
      r.provider = MailboxProvider::microsoft;
    else
      fail(t.get("provider"), what,
           "unknown provider '" + provider + "' (gmail, yahoo or microsoft)");
    r.id = identifier(t, "id", what);
    what = "rule " + provider + "/" + r.id;
    only_known(t, what,
               {"provider", "id", "applies_to", "check", "severity", "name", "says", "source"});
    const std::string applies_to = text(t, "applies_to", what, 10);
    if (applies_to == "all")
      r.applies_to = SenderClass::all;
    else if (applies_to == "bulk")
      r.applies_to = SenderClass::bulk;
    else
      fail(t.get("applies_to"), what, "'applies_to' must be \"all\" or \"bulk\"");
    const std::string check = text(t, "check", what, 60);
    if (auto c = parse_requirement_check(check)) {
      r.check = *c;
    } else {
      std::string known;
      for (auto n : kCheckNames) known += (known.empty() ? "" : ", ") + std::string(n);
      fail(t.get("check"), what,
           "unknown check '" + check + "' (the code implements: " + known + ")");
    }
    const std::string severity = text(t, "severity", what, 10);
    if (severity == "reject")
      r.severity = RuleSeverity::reject;
    else if (severity == "at-risk")
      r.severity = RuleSeverity::at_risk;
    else
      fail(t.get("severity"), what, "'severity' must be \"reject\" or \"at-risk\"");
    r.name = text(t, "name", what, 200);
    r.says = text(t, "says", what, 400);
    const std::string src = identifier(t, "source", what);
    bool found = false;
    for (std::size_t i = 0; i < table.sources.size(); ++i)
      if (table.sources[i].id == src) {
        r.source = i;
        found = true;
      }
    if (!found)
      fail(t.get("source"), what, "source '" + src + "' is not listed as a [[source]] above");
    for (const auto& other : table.rules) {
      if (other.provider != r.provider || other.applies_to != r.applies_to) continue;
      if (other.id == r.id)
        fail(&t, what,
             "listed twice for the same sender class (line " + std::to_string(other.line) + ")");
      if (other.check == r.check)
        fail(&t, what,
             "check '" + check + "' is already used by rule " + other.id +
                 " for the same provider and sender class");
    }
    return r;
  }

  std::string name_;
};

}  // namespace

std::string_view to_string(MailboxProvider provider) {
  switch (provider) {
    case MailboxProvider::gmail:
      return "gmail";
    case MailboxProvider::yahoo:
      return "yahoo";
    case MailboxProvider::microsoft:
      return "microsoft";
  }
  return "gmail";
}

std::string_view display_name(MailboxProvider provider) {
  switch (provider) {
    case MailboxProvider::gmail:
      return "Gmail";
    case MailboxProvider::yahoo:
      return "Yahoo";
    case MailboxProvider::microsoft:
      return "Microsoft Outlook.com";
  }
  return "Gmail";
}

std::string_view to_string(SenderClass sender_class) {
  return sender_class == SenderClass::all ? "all" : "bulk";
}

std::string_view to_string(RuleSeverity severity) {
  return severity == RuleSeverity::reject ? "reject" : "at-risk";
}

std::string_view to_string(RequirementCheck check) {
  return kCheckNames[static_cast<std::size_t>(check)];
}

std::optional<RequirementCheck> parse_requirement_check(std::string_view name) {
  for (std::size_t i = 0; i < kCheckNames.size(); ++i)
    if (kCheckNames[i] == name) return static_cast<RequirementCheck>(i);
  return std::nullopt;
}

RequirementsTableLoad parse_requirements_table(std::string_view toml_text,
                                               std::string_view source_name) {
  RequirementsTableLoad result;
  toml::table root;
  try {
    root = toml::parse(toml_text, std::string_view{source_name});
  } catch (const toml::parse_error& e) {
    std::ostringstream out;
    out << source_name << ":" << e.source().begin.line << ": " << e.description();
    result.error = out.str();
    return result;
  }
  try {
    result.table = Loader(source_name).load(root);
  } catch (const TableError& e) {
    result.error = e.message;
  }
  return result;
}

const RequirementsTableLoad& builtin_requirements_table() {
  static const RequirementsTableLoad load = [] {
    const auto& files = embedded_files();
    const auto it = files.find("requirements.toml");
    if (it == files.end())
      return RequirementsTableLoad{std::nullopt, "requirements.toml is not compiled in"};
    return parse_requirements_table(it->second, "requirements.toml");
  }();
  return load;
}

}  // namespace ipconfirm::responder

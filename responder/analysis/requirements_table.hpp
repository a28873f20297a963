// The mailbox providers' sender rules as data: the table in requirements.toml (compiled into
// the binary, see core/embedded_files.hpp), read and validated into values that
// requirements.hpp evaluates on a message.
//
// The table names, for each rule, the provider, the sender class it applies to, the check that
// decides it (one of RequirementCheck: data cannot ask for a check the code does not implement),
// the severity of a failure, a short English name, what the provider says happens, and its source
// (a page and the date it was read). The loader is strict, like the config loader: an unknown
// key, a missing or mistyped value, an unknown check, provider, class or severity, a rule whose
// source is not listed, a repeated rule, or a provider without rules is an error that names
// the line, and the table is refused.
//
// Pure: text in, values out (toml++ parses). Nothing here looks at a message.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ipconfirm::responder {

enum class MailboxProvider { gmail, yahoo, microsoft };
inline constexpr std::array<MailboxProvider, 3> kMailboxProviders = {
    MailboxProvider::gmail, MailboxProvider::yahoo, MailboxProvider::microsoft};
std::string_view to_string(MailboxProvider provider);  // "gmail", "yahoo", "microsoft"
std::string_view display_name(
    MailboxProvider provider);  // "Gmail", "Yahoo", "Microsoft Outlook.com"

// Who a rule is for: every sender, or the provider's bulk (high-volume) senders.
enum class SenderClass { all, bulk };
std::string_view to_string(SenderClass sender_class);  // "all", "bulk"

// What a failure costs: the provider documents refusing such mail, or it puts the mail at risk
// (spam folder, rate limits, no delivery support, or a consequence it does not state).
enum class RuleSeverity { reject, at_risk };
std::string_view to_string(RuleSeverity severity);  // "reject", "at-risk"

// The checks the code implements (requirements.cpp says what each one looks at).
enum class RequirementCheck {
  spf_or_dkim_pass,
  spf_pass,
  dkim_pass,
  dmarc_record,
  dmarc_aligned,
  dmarc_policy_reject,
  dmarc_policy_quarantine,
  not_impersonating_gmail,
  fcrdns,
  reverse_dns,
  tls,
  rfc5322_format,
  message_id,
  single_from_address,
  dnsbl_not_listed,
  one_click_unsubscribe,
  list_unsubscribe,
  unsubscribe_link,
  arc_valid,
  complaint_rate,
};
inline constexpr std::size_t kRequirementCheckCount = 20;
std::string_view to_string(RequirementCheck check);  // "spf-or-dkim-pass", ...
std::optional<RequirementCheck> parse_requirement_check(std::string_view name);

struct RequirementSource {
  std::string id;     // what rules refer to, e.g. "gmail-guidelines"
  std::string url;    // https://...
  std::string title;  // the page's title
  std::string read;   // the date we read it, YYYY-MM-DD
  std::string copy;   // the date of the stored copy read, YYYY-MM-DD ("" if not given)
};

struct RequirementRule {
  MailboxProvider provider = MailboxProvider::gmail;
  std::string id;  // the rule's name in the report; unique per provider and class
  SenderClass applies_to = SenderClass::all;
  RequirementCheck check = RequirementCheck::spf_or_dkim_pass;
  RuleSeverity severity = RuleSeverity::reject;
  std::string name;        // short English name
  std::string says;        // what the provider says happens when it is not met
  std::size_t source = 0;  // index into RequirementsTable::sources
  std::size_t line = 0;    // where the rule starts in the table's text
};

struct RequirementsTable {
  std::vector<RequirementSource> sources;
  std::vector<RequirementRule> rules;  // in the table's order
};

// Bounds on the table (it is ours, but a mistake should not make a huge report).
inline constexpr std::size_t kMaxRules = 200;
inline constexpr std::size_t kMaxRuleSources = 50;

struct RequirementsTableLoad {
  std::optional<RequirementsTable> table;
  std::string error;  // "requirements.toml:12: rule gmail/spf: unknown check 'spf-pas' (...)"
};

// Parses and validates a table; `source_name` names it in error messages. Never throws.
RequirementsTableLoad parse_requirements_table(std::string_view toml_text,
                                               std::string_view source_name);

// The table compiled into the binary (requirements.toml), parsed once on first use. The server
// calls it at start and refuses to start on an error; a unit test checks that it loads.
const RequirementsTableLoad& builtin_requirements_table();

}  // namespace ipconfirm::responder

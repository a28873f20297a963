// DMARC record parser. See dmarc_record.hpp.
#include "responder/analysis/dmarc_record.hpp"

#include <algorithm>

#include "core/ascii.hpp"

namespace ipconfirm::responder {

namespace {

constexpr std::size_t kMaxProblems = 20;
constexpr std::size_t kMaxUris = 20;
constexpr std::size_t kMaxShown = 64;  // bytes of a bad value quoted in a problem

bool is_wsp(char c) {
  return c == ' ' || c == '\t';
}

std::string shown(std::string_view v) {
  std::string out(v.substr(0, kMaxShown));
  for (char& c : out)
    if (c < 0x20 || c > 0x7e) c = '?';
  if (v.size() > kMaxShown) out += "...";
  return out;
}

void add_problem(DmarcRecord& r, std::string text) {
  if (r.problems.size() < kMaxProblems) r.problems.push_back(std::move(text));
}

std::optional<DmarcPolicy> policy_value(std::string_view v) {
  if (ascii::iequals(v, "none")) return DmarcPolicy::none;
  if (ascii::iequals(v, "quarantine")) return DmarcPolicy::quarantine;
  if (ascii::iequals(v, "reject")) return DmarcPolicy::reject;
  return std::nullopt;
}

// A URI of RFC 3986 in the loose sense a reporting address needs: scheme ":" something, no
// white space; the obsolete "!size" suffix is dropped first.
bool is_uri(std::string_view u) {
  if (const auto bang = u.rfind('!'); bang != std::string_view::npos) {
    std::string_view size = u.substr(bang + 1);
    if (!size.empty() && std::string_view("kmgtKMGT").find(size.back()) != std::string_view::npos)
      size.remove_suffix(1);
    if (!size.empty() && std::all_of(size.begin(), size.end(), ascii::is_digit))
      u = u.substr(0, bang);
  }
  const auto colon = u.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == u.size()) return false;
  if (!ascii::is_alpha(u.front())) return false;
  for (char c : u.substr(0, colon))
    if (!ascii::is_alnum(c) && c != '+' && c != '-' && c != '.') return false;
  for (char c : u)
    if (c <= 0x20 || c > 0x7e) return false;
  return true;
}

void read_uris(std::string_view value, DmarcRecord& r) {
  std::size_t start = 0;
  while (start <= value.size()) {
    std::size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view u = value.substr(start, comma - start);
    while (!u.empty() && is_wsp(u.front())) u.remove_prefix(1);
    while (!u.empty() && is_wsp(u.back())) u.remove_suffix(1);
    if (is_uri(u)) {
      r.rua_valid = true;
      if (r.rua.size() < kMaxUris) r.rua.emplace_back(u);
    } else {
      add_problem(r, "rua= entry '" + shown(u) + "' is not a URI (use mailto:address)");
    }
    start = comma + 1;
  }
}

bool is_tag_name(std::string_view n) {
  return !n.empty() && std::all_of(n.begin(), n.end(), ascii::is_alpha);
}

}  // namespace

std::string_view to_string(DmarcPolicy policy) {
  switch (policy) {
    case DmarcPolicy::none:
      return "none";
    case DmarcPolicy::quarantine:
      return "quarantine";
    case DmarcPolicy::reject:
      return "reject";
  }
  return "none";
}

std::optional<DmarcRecord> parse_dmarc_record(std::string_view text) {
  // dmarc-version = "v" *WSP "=" *WSP %s"DMARC1", first in the record.
  std::size_t i = 0;
  if (text.empty() || ascii::to_lower(text[0]) != 'v') return std::nullopt;
  i = 1;
  while (i < text.size() && is_wsp(text[i])) ++i;
  if (i >= text.size() || text[i] != '=') return std::nullopt;
  ++i;
  while (i < text.size() && is_wsp(text[i])) ++i;
  if (text.substr(i, 6) != "DMARC1") return std::nullopt;
  i += 6;
  std::size_t j = i;
  while (j < text.size() && is_wsp(text[j])) ++j;
  if (j < text.size() && text[j] != ';') return std::nullopt;

  DmarcRecord r;
  std::vector<std::string> seen;
  std::size_t pos = j;
  while (pos < text.size()) {
    ++pos;  // past ';'
    std::size_t end = text.find(';', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view tag = text.substr(pos, end - pos);
    pos = end;
    while (!tag.empty() && is_wsp(tag.front())) tag.remove_prefix(1);
    while (!tag.empty() && is_wsp(tag.back())) tag.remove_suffix(1);
    if (tag.empty()) continue;  // "v=DMARC1;" or ";;"
    const std::size_t eq = tag.find('=');
    std::string_view name = tag.substr(0, eq);
    while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
    if (eq == std::string_view::npos || !is_tag_name(name)) {
      add_problem(r, "'" + shown(tag) + "' is not a tag=value pair: ignored");
      continue;
    }
    std::string_view value = tag.substr(eq + 1);
    while (!value.empty() && is_wsp(value.front())) value.remove_prefix(1);
    const std::string lname = ascii::lower(name);
    if (std::find(seen.begin(), seen.end(), lname) != seen.end()) {
      add_problem(r, "'" + lname + "=' appears more than once: the first one counts");
      continue;
    }
    if (seen.size() < 64) seen.push_back(lname);
    auto bad = [&](const char* rule) {
      add_problem(r, lname + "=" + shown(value) + " is not valid (" + rule + ")");
    };
    if (lname == "p" || lname == "sp" || lname == "np") {
      const auto v = policy_value(value);
      auto& slot = lname == "p" ? r.p : lname == "sp" ? r.sp : r.np;
      bool& invalid = lname == "p" ? r.p_invalid : lname == "sp" ? r.sp_invalid : r.np_invalid;
      if (v)
        slot = v;
      else {
        invalid = true;
        bad("none, quarantine or reject");
      }
    } else if (lname == "adkim" || lname == "aspf") {
      bool& strict = lname == "adkim" ? r.adkim_strict : r.aspf_strict;
      if (ascii::iequals(value, "s"))
        strict = true;
      else if (!ascii::iequals(value, "r"))
        bad("r or s; relaxed applies");
    } else if (lname == "psd") {
      if (value.size() == 1 &&
          std::string_view("ynu").find(ascii::to_lower(value[0])) != std::string_view::npos)
        r.psd = ascii::to_lower(value[0]);
      else
        bad("y, n or u; u applies");
    } else if (lname == "t") {
      if (ascii::iequals(value, "y"))
        r.testing = true;
      else if (!ascii::iequals(value, "n"))
        bad("y or n; n applies");
    } else if (lname == "rua") {
      read_uris(value, r);
    } else if (lname == "pct" || lname == "ri" || lname == "rf") {
      r.removed_tags.push_back(lname);
    } else if (lname == "v") {
      add_problem(r, "a second v= tag: ignored");
    }
    // ruf, fo and unknown tags: nothing that a policy decision reads.
  }
  return r;
}

}  // namespace ipconfirm::responder

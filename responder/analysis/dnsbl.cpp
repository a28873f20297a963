// DNSBL answer interpretation. See dnsbl.hpp.
#include "responder/analysis/dnsbl.hpp"

#include <algorithm>

#include "responder/analysis/rdns_heuristics.hpp"

namespace ipconfirm::responder {
namespace {

bool is_printable(char c) {
  return c >= 0x20 && c <= 0x7e;
}
bool is_blank_or_control(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f || c == ' ';
}

// One record: runs of blanks and control bytes to one space, other non-printable bytes to
// '?', trimmed.
std::string clean_record(std::string_view s) {
  std::string out;
  out.reserve(std::min(s.size(), kMaxDnsblReason + 1));
  bool pending_space = false;
  for (char c : s) {
    if (is_blank_or_control(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += is_printable(c) ? c : '?';
    if (out.size() > kMaxDnsblReason) break;  // enough to know it will be cut
  }
  return out;
}

std::string printable(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (!is_printable(c)) c = '?';
  return out;
}

}  // namespace

std::string_view to_string(DnsblOutcome outcome) {
  switch (outcome) {
    case DnsblOutcome::not_listed:
      return "not_listed";
    case DnsblOutcome::listed:
      return "listed";
    case DnsblOutcome::refused:
      return "refused";
    case DnsblOutcome::invalid_answer:
      return "invalid_answer";
    case DnsblOutcome::error:
      return "error";
  }
  return "error";
}

DnsblOutcome interpret_dnsbl_answers(const std::vector<IpAddress>& a_records) {
  if (a_records.empty()) return DnsblOutcome::not_listed;
  bool refused = false;
  for (const auto& a : a_records) {
    const auto& b = a.bytes();
    if (!a.is_v4() || b[0] != 127) return DnsblOutcome::invalid_answer;
    const bool refusal_block = b[1] == 255 && b[2] == 255;
    const bool loopback_one = b[1] == 0 && b[2] == 0 && b[3] == 1;
    refused = refused || refusal_block || loopback_one;
  }
  return refused ? DnsblOutcome::refused : DnsblOutcome::listed;
}

std::string sanitise_dnsbl_reason(const std::vector<std::string>& txt) {
  std::vector<std::string> parts;
  for (const auto& record : txt) {
    auto cleaned = clean_record(record);
    if (cleaned.empty() || std::find(parts.begin(), parts.end(), cleaned) != parts.end()) continue;
    parts.push_back(std::move(cleaned));
  }
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += "; ";
    out += p;
    if (out.size() > kMaxDnsblReason) break;
  }
  if (out.size() > kMaxDnsblReason) {
    out.resize(kMaxDnsblReason - 3);
    out += "...";
  }
  return out;
}

std::string dnsbl_query_name(const IpAddress& ip, std::string_view zone) {
  const auto normalised = normalise_ptr_name(zone);
  if (!normalised) return {};
  std::string name = ip.dnsbl_name(*normalised);
  if (name.size() > 253) return {};
  return name;
}

nlohmann::json to_json(const DnsblResult& result) {
  nlohmann::json answers = nlohmann::json::array();
  for (const auto& a : result.answers) answers.push_back(printable(a));
  return {{"zone", printable(result.zone)},
          {"listed", result.outcome == DnsblOutcome::listed},
          {"answers", std::move(answers)},
          {"reason", printable(result.reason)},
          {"status", std::string(to_string(result.outcome))}};
}

}  // namespace ipconfirm::responder

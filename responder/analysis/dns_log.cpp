#include "responder/analysis/dns_log.hpp"

#include <algorithm>

#include "mime/incoming.hpp"

namespace ipconfirm::responder {

namespace {

// Names and answers come from strangers' zones: valid UTF-8, no control characters, bounded.
std::string log_text(std::string_view text, std::size_t max) {
  std::string out = mime::to_valid_utf8(text.substr(0, std::min(text.size(), max + 4)));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  mime::cap_utf8(out, max);
  return out;
}

std::uint32_t elapsed_ms(DnsLog::Clock::time_point from, DnsLog::Clock::time_point to) {
  if (to <= from) return 0;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
  return ms > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(ms);
}

}  // namespace

std::string dns_rcode_text(const DnsResult& result) {
  switch (result.status) {
    case DnsStatus::ok:
    case DnsStatus::nodata:
      return "NOERROR";
    case DnsStatus::nxdomain:
      return "NXDOMAIN";
    case DnsStatus::temperror:
    case DnsStatus::permerror:
      break;
  }
  return result.detail.empty() ? std::string(to_string(result.status))
                               : log_text(result.detail, 120);
}

std::vector<std::string> dns_answer_texts(const DnsResult& result) {
  std::vector<std::string> out;
  if (result.status != DnsStatus::ok) return out;
  for (const auto& r : result.records) {
    switch (r.type) {
      case RrType::a:
      case RrType::aaaa:
        out.push_back(r.address ? r.address->to_string() : std::string("?"));
        break;
      case RrType::mx:
        out.push_back(std::to_string(r.preference) + " " + r.text);
        break;
      default:
        out.push_back(r.text);
        break;
    }
  }
  return out;
}

std::optional<std::size_t> DnsLog::start(std::string_view name, RrType type,
                                         Clock::time_point now) {
  if (entries_.size() >= kMaxDnsLogEntries) {
    ++omitted_;
    return std::nullopt;
  }
  Timed t;
  t.entry.name = log_text(name, 255);
  t.entry.type = type;
  t.started = now;
  entries_.push_back(std::move(t));
  return entries_.size() - 1;
}

void DnsLog::finish(std::size_t ticket, const DnsResult& result, Clock::time_point now) {
  if (ticket >= entries_.size() || !entries_[ticket].open) return;
  Timed& t = entries_[ticket];
  t.open = false;
  t.entry.rcode = dns_rcode_text(result);
  t.entry.ms = elapsed_ms(t.started, now);
  const std::vector<std::string> texts = dns_answer_texts(result);
  t.answers_omitted = result.omitted;
  for (const auto& text : texts) {
    std::string kept = log_text(text, kMaxDnsLogAnswerBytes);
    if (t.entry.answers.size() >= kMaxDnsLogAnswers ||
        text_bytes_ + kept.size() > kMaxDnsLogTextBytes) {
      ++t.answers_omitted;
      continue;
    }
    text_bytes_ += kept.size();
    t.entry.answers.push_back(std::move(kept));
  }
}

void DnsLog::close(std::size_t ticket, std::string_view rcode, Clock::time_point now) {
  if (ticket >= entries_.size() || !entries_[ticket].open) return;
  Timed& t = entries_[ticket];
  t.open = false;
  t.entry.rcode = std::string(rcode);
  t.entry.ms = elapsed_ms(t.started, now);
}

void DnsLog::note(std::string_view name, RrType type, std::string_view rcode,
                  Clock::time_point now) {
  if (auto ticket = start(name, type, now)) close(*ticket, rcode, now);
}

MergedDnsLog merge_dns_logs(const std::vector<const DnsLog*>& logs, DnsLog::Clock::time_point now) {
  std::vector<const DnsLog::Timed*> all;
  MergedDnsLog out;
  for (const DnsLog* log : logs) {
    if (!log) continue;
    out.omitted += log->omitted();
    for (const auto& t : log->entries()) all.push_back(&t);
  }
  std::stable_sort(all.begin(), all.end(), [](const DnsLog::Timed* a, const DnsLog::Timed* b) {
    return a->started < b->started;
  });
  for (const DnsLog::Timed* t : all) {
    if (out.entries.size() >= kMaxDnsLogEntries) {
      ++out.omitted;
      continue;
    }
    DnsLogEntry e = t->entry;
    if (t->open) {
      e.rcode = "timeout";
      e.ms = elapsed_ms(t->started, now);
    }
    out.entries.push_back(std::move(e));
    out.answers_omitted.push_back(t->answers_omitted);
  }
  return out;
}

nlohmann::ordered_json to_json(const std::vector<DnsLogEntry>& entries,
                               const std::vector<std::size_t>& answers_omitted) {
  auto list = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const DnsLogEntry& e = entries[i];
    nlohmann::ordered_json j;
    j["name"] = e.name;
    j["type"] = to_string(e.type);
    j["rcode"] = e.rcode;
    j["answers"] = e.answers;
    j["ms"] = e.ms;
    if (i < answers_omitted.size() && answers_omitted[i] > 0)
      j["answers_omitted"] = answers_omitted[i];
    list.push_back(std::move(j));
  }
  return list;
}

}  // namespace ipconfirm::responder

#include "responder/analysis/message_format.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include "core/ascii.hpp"
#include "mime/address.hpp"
#include "mime/date.hpp"
#include "mime/incoming.hpp"
#include "responder/analysis/dkim_signature.hpp"

namespace ipconfirm::responder {

namespace {

// Line findings are kept up to this many, so that the field findings (at most 20: eleven
// duplicates, From, Sender, Date, Message-ID, three missing fields) always have room.
constexpr std::size_t kMaxLineFindings = kMaxFormatFindings - 20;

// RFC 5322 §3.6: the fields that may appear at most once, in the table's order.
constexpr std::array<std::string_view, 11> kSingle = {
    "from",       "sender",      "reply-to",   "to",      "cc",  "bcc",
    "message-id", "in-reply-to", "references", "subject", "date"};
constexpr std::size_t kFrom = 0, kSender = 1, kMessageId = 6, kDate = 10;

// `text` as printable ASCII ('?' for anything else), at most `max` bytes.
std::string printable(std::string_view text, std::size_t max = 120) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    out += u >= 0x20 && u < 0x7f ? c : '?';
  }
  return out;
}

std::string_view trim_fws(std::string_view s) {
  auto fws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && fws(s.front())) s.remove_prefix(1);
  while (!s.empty() && fws(s.back())) s.remove_suffix(1);
  return s;
}

// One line of the header: its content without the line end, and where the next one starts.
struct Line {
  std::size_t begin = 0;
  std::string_view content;  // without "\r\n" or "\n"
  std::size_t next = 0;
  bool lf = false;    // it ended with a line feed
  bool crlf = false;  // ... preceded by a CR
};

// The same cut as split_raw_header: a line ends at LF; one CR before it belongs to the end.
Line read_line(std::string_view h, std::size_t pos) {
  Line l;
  l.begin = pos;
  const void* p = std::memchr(h.data() + pos, '\n', h.size() - pos);
  const std::size_t lf =
      p ? static_cast<std::size_t>(static_cast<const char*>(p) - h.data()) : std::string_view::npos;
  l.next = lf == std::string_view::npos ? h.size() : lf + 1;
  l.content = h.substr(pos, (lf == std::string_view::npos ? h.size() : lf) - pos);
  l.lf = lf != std::string_view::npos;
  if (!l.content.empty() && l.content.back() == '\r') {
    l.content.remove_suffix(1);
    l.crlf = l.lf;
  }
  return l;
}

std::string lines_text(const std::vector<std::size_t>& lines, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i) out += i + 1 == lines.size() && lines.size() == count ? " and " : ", ";
    out += std::to_string(lines[i]);
  }
  if (count > lines.size()) out += ", ...";
  return out;
}

}  // namespace

bool MessageFormat::has_errors() const {
  return error_count() > 0;
}

std::size_t MessageFormat::error_count() const {
  std::size_t n = omitted;
  for (const auto& f : findings) n += f.error ? 1 : 0;
  return n;
}

MessageFormat check_message_format(std::string_view raw_header, bool smtputf8, bool header_cut) {
  MessageFormat out;
  const RawHeader raw = split_raw_header(raw_header);
  out.truncated = raw.truncated || header_cut;
  // The value of the last field read may be incomplete when the header was cut: not judged.
  auto complete = [&](std::size_t field_index) {
    return !(out.truncated && field_index + 1 == raw.fields.size());
  };
  out.fields = raw.fields.size();
  std::string_view h = raw_header.substr(0, std::min(raw_header.size(), kDkimMaxHeaderBytes));
  auto offset_of = [&](std::string_view v) {
    return static_cast<std::size_t>(v.data() - raw_header.data());
  };
  // When the field bound was hit, lines after the last field read were not looked at.
  if (raw.truncated && !raw.fields.empty() && raw.fields.size() >= kDkimMaxHeaderFields)
    h = h.substr(0, offset_of(raw.fields.back().raw) + raw.fields.back().raw.size());

  // Pass 1: where the header ends, and whether it has any CR (LF-only storage, see the header).
  std::size_t end = 0;
  for (std::size_t pos = 0; pos < h.size();) {
    const Line l = read_line(h, pos);
    if (l.content.empty()) break;
    end = l.next;
    pos = l.next;
  }
  h = h.substr(0, end);
  const bool lf_only = h.find('\r') == std::string_view::npos;

  std::vector<FormatFinding> line_findings, field_findings;
  auto add_line = [&](std::string code, std::string field, std::size_t line, std::string text) {
    if (line_findings.size() >= kMaxLineFindings) {
      ++out.omitted;
      return;
    }
    line_findings.push_back({std::move(code), std::move(field), line, true, std::move(text)});
  };

  struct Single {
    std::size_t count = 0;
    std::string name;                // as first written
    std::vector<std::size_t> lines;  // of the first few
    std::size_t first_field = 0;     // index into raw.fields
  };
  std::array<Single, kSingle.size()> single;

  // Pass 2: line by line, with the field each line belongs to.
  std::size_t field = 0;                   // index of the field the current line may belong to
  std::size_t line_no = 0;                 // 1-based number of the current line
  std::size_t eight_bit_field = SIZE_MAX;  // last field already reported for 8-bit bytes
  for (std::size_t pos = 0; pos < h.size();) {
    const Line l = read_line(h, pos);
    pos = l.next;
    ++line_no;
    while (field < raw.fields.size() &&
           offset_of(raw.fields[field].raw) + raw.fields[field].raw.size() <= l.begin)
      ++field;
    const bool in_field = field < raw.fields.size() && offset_of(raw.fields[field].raw) <= l.begin;
    const std::string name = in_field ? std::string(raw.fields[field].name) : std::string();

    if (!in_field) {
      std::string why;
      if (ascii::is_wsp(l.content.front()))
        why =
            "starts with white space, so it would continue a field, but the line before it is "
            "no field line";
      else if (l.content.find(':') == std::string_view::npos)
        why =
            "is not a field: it has no colon (a missing empty line between header and body, "
            "or a broken fold?)";
      else
        why = "is not a field: its name has spaces or bytes outside printable ASCII";
      add_line("malformed-line", "", line_no,
               "Line " + std::to_string(line_no) + " of the header " + why + ".");
    } else if (offset_of(raw.fields[field].raw) == l.begin) {
      const std::string lower = ascii::lower(name);
      for (std::size_t i = 0; i < kSingle.size(); ++i) {
        if (lower != kSingle[i]) continue;
        Single& s = single[i];
        if (s.count == 0) {
          s.name = name;
          s.first_field = field;
        }
        if (s.lines.size() < 4) s.lines.push_back(line_no);
        ++s.count;
      }
    }

    auto where = [&] {
      return "Line " + std::to_string(line_no) + (name.empty() ? "" : " (" + name + ")");
    };
    if (l.content.size() > kMaxHeaderLineBytes)
      add_line("line-too-long", name, line_no,
               where() + " is " + std::to_string(l.content.size()) +
                   " bytes long; RFC 5322 allows 998 (plus CRLF). Fold the field: break it "
                   "before white space onto a continuation line.");
    if (l.content.find('\r') != std::string_view::npos)
      add_line("bare-cr", name, line_no,
               where() +
                   " holds a CR that is not followed by LF; RFC 5322 allows CR only as "
                   "part of CRLF.");
    if (l.lf && !l.crlf && !lf_only)
      add_line("bare-lf", name, line_no,
               where() + " ends with a bare LF; RFC 5322 lines end with CRLF.");
    if (in_field && field != eight_bit_field) {
      const bool eight_bit = std::any_of(l.content.begin(), l.content.end(), [](char c) {
        return static_cast<unsigned char>(c) >= 0x80;
      });
      if (eight_bit) {
        eight_bit_field = field;
        if (!smtputf8) {
          add_line("8bit-header", name, line_no,
                   "The " + name +
                       " field holds bytes above 0x7F (UTF-8 or another 8-bit charset), but "
                       "the message was not sent with SMTPUTF8. Without it a header must be "
                       "ASCII: encode the text as RFC 2047 encoded-words (=?UTF-8?B?...?=), "
                       "or send with SMTPUTF8 (RFC 6531).");
        } else if (const std::string_view v = raw.fields[field].raw; mime::to_valid_utf8(v) != v) {
          add_line("invalid-utf8", name, line_no,
                   "The " + name +
                       " field is not valid UTF-8; with SMTPUTF8, header fields must be UTF-8 "
                       "(RFC 6532).");
        }
      }
    }
  }
  out.lines = line_no;

  // Fields: duplicates, and the values of From, Date and Message-ID.
  auto add_field = [&](std::string code, std::string field_name, std::size_t line, bool error,
                       std::string text) {
    field_findings.push_back(
        {std::move(code), std::move(field_name), line, error, std::move(text)});
  };
  for (std::size_t i = 0; i < kSingle.size(); ++i) {
    const Single& s = single[i];
    if (s.count < 2) continue;
    add_field("duplicate-field", s.name, s.lines[1], true,
              "The " + s.name + " field appears " + std::to_string(s.count) + " times (lines " +
                  lines_text(s.lines, s.count) +
                  "); RFC 5322 allows it once. Remove the extra ones: receivers may read a "
                  "different one than you meant, and Gmail and Yahoo refuse such messages.");
  }
  const Single& from = single[kFrom];
  out.from_fields = from.count;
  if (from.count == 0 && !out.truncated) {
    add_field("missing-from", "From", 0, true,
              "The message has no From field; RFC 5322 requires exactly one. Add "
              "From: with the author's address.");
  } else if (from.count > 0 && complete(from.first_field)) {
    const mime::AddressList list = mime::parse_address_list(raw.fields[from.first_field].value);
    out.from_well_formed = list.well_formed;
    out.from_mailboxes = list.mailboxes.size();
    if (!list.well_formed) {
      add_field("malformed-from", from.name, from.lines[0], true,
                "The " + from.name + " field does not parse as an address list (" +
                    printable(list.error.empty() ? "no address" : list.error) +
                    "). Write it as Name <user@example.org> or user@example.org.");
    } else if (list.mailboxes.size() > 1 && single[kSender].count == 0) {
      add_field("from-needs-sender", from.name, from.lines[0], true,
                "The " + from.name + " field names " + std::to_string(list.mailboxes.size()) +
                    " authors but there is no Sender field; RFC 5322 §3.6.2 then requires "
                    "one. Better: one address in From (Gmail refuses several).");
    }
  }
  const Single& date = single[kDate];
  if (date.count == 0) {
    if (!out.truncated)
      add_field("missing-date", "Date", 0, true,
                "The message has no Date field; RFC 5322 requires exactly one. Let the mail "
                "program or the first server add it.");
  } else if (complete(date.first_field) &&
             !mime::parse_rfc5322_date(raw.fields[date.first_field].value)) {
    add_field("malformed-date", date.name, date.lines[0], true,
              "The " + date.name + " field '" +
                  printable(trim_fws(raw.fields[date.first_field].value), 60) +
                  "' is not an RFC 5322 date-time such as 'Tue, 1 Jul 2025 10:52:37 +0200'.");
  }
  const Single& mid = single[kMessageId];
  out.message_id_fields = mid.count;
  if (mid.count == 0) {
    if (!out.truncated)
      add_field("missing-message-id", "Message-ID", 0, false,
                "The message has no Message-ID field. RFC 5322 says every message should have "
                "one, and Gmail refuses messages without a valid one: let the mail program or "
                "the first server add Message-ID: <unique@your-domain>.");
  } else if (complete(mid.first_field)) {
    const std::string_view v = trim_fws(raw.fields[mid.first_field].value);
    out.message_id = printable(v);
    const bool valid = mime::is_msg_id(v);
    out.message_id_valid = valid && mid.count == 1;
    if (!valid)
      add_field("malformed-message-id", mid.name, mid.lines[0], true,
                "The " + mid.name + " field '" + printable(v, 80) +
                    "' is not one msg-id of the form <unique@domain> (RFC 5322 §3.6.4).");
  }
  if (out.truncated)
    add_field("header-truncated", "", 0, false,
              "The header is longer than " + std::to_string(kDkimMaxHeaderBytes / 1024) +
                  " KiB or " + std::to_string(kDkimMaxHeaderFields) +
                  " fields; what follows was not checked (nor whether From, Date and Message-ID "
                  "come later). Receivers refuse headers far smaller than that (Gmail: see its "
                  "message header limits).");

  // One list in header order; findings without a line (missing fields) last.
  out.findings = std::move(line_findings);
  for (auto& f : field_findings) out.findings.push_back(std::move(f));
  std::stable_sort(out.findings.begin(), out.findings.end(),
                   [](const FormatFinding& a, const FormatFinding& b) {
                     const std::size_t la = a.line ? a.line : SIZE_MAX;
                     const std::size_t lb = b.line ? b.line : SIZE_MAX;
                     return la < lb;
                   });
  return out;
}

nlohmann::ordered_json to_json(const MessageFormat& format) {
  nlohmann::ordered_json findings = nlohmann::ordered_json::array();
  for (const auto& f : format.findings)
    findings.push_back({{"code", f.code},
                        {"field", f.field},
                        {"line", f.line},
                        {"error", f.error},
                        {"text", f.text}});
  nlohmann::ordered_json j;
  j["findings"] = std::move(findings);
  j["omitted"] = format.omitted;
  j["errors"] = format.error_count();
  j["lines"] = format.lines;
  j["fields"] = format.fields;
  j["truncated"] = format.truncated;
  return j;
}

}  // namespace ipconfirm::responder

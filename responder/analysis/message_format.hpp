// The form of a received message's header, as RFC 5322 (and RFC 6532 for UTF-8) asks, checked
// on the exact bytes that arrived: what Gmail's and Yahoo's "format messages according to RFC
// 5322" comes down to for a header. Each finding names the field and the line and explains the
// problem in plain words.
//
// Findings (code: what it means; "error" breaks a MUST of the RFCs, the others do not):
//   duplicate-field (error)    a field RFC 5322 §3.6 allows at most once appears again: From,
//                              Sender, Reply-To, To, Cc, Bcc, Message-ID, In-Reply-To,
//                              References, Subject, Date (one finding per name, with its count)
//   missing-from (error)       no From field (§3.6: exactly one)
//   missing-date (error)       no Date field (§3.6: exactly one)
//   missing-message-id         no Message-ID field (§3.6.4: SHOULD; Gmail refuses such mail)
//   malformed-from (error)     From does not parse as a mailbox-list (mime/address.hpp)
//   from-needs-sender (error)  From holds several mailboxes and there is no Sender (§3.6.2)
//   malformed-date (error)     Date is not a date-time (mime/date.hpp; obsolete forms accepted)
//   malformed-message-id (error)  Message-ID is not one msg-id "<left@right>" (§3.6.4)
//   8bit-header (error)        bytes above 0x7F in a field, and the client did not use SMTPUTF8
//                              (RFC 6531/6532): without it a header is ASCII (RFC 5322 §2.2)
//   invalid-utf8 (error)       with SMTPUTF8, a field that is not valid UTF-8 (RFC 6532 §3.2)
//   line-too-long (error)      a line of more than 998 bytes, CRLF not counted (§2.1.1)
//   bare-cr, bare-lf (error)   a CR not followed by LF, or an LF without CR (§2.2: CRLF only)
//   malformed-line (error)     a line that is neither a field (name ":" value, name of printable
//                              ASCII) nor the continuation of one
//   header-truncated           the header is longer than the bounds (or was cut before it came
//                              here): later lines were not read
//
// What it does not do: judge field values other than From, Date and Message-ID (To, Cc and
// Reply-To are the sender's business; Gmail asks that From be one address, which
// requirements.hpp checks from the facts here); read the body; decode RFC 2047 words.
//
// Line ends: a header received over SMTP has CRLF line ends (ipconfirm's receiver refuses bare
// CR and LF before the message is stored). A header stored with LF line ends only (no CR at
// all: a file on disk, `ipconfirm check`) is read with LF as the line end and gets no bare-lf
// findings; any other mix is reported.
//
// Pure, bounded and linear: one pass over at most kDkimMaxHeaderBytes of header and
// kDkimMaxHeaderFields fields (the fields come from split_raw_header, dkim_signature.hpp), at
// most kMaxFormatFindings findings kept (the rest counted).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace ipconfirm::responder {

inline constexpr std::size_t kMaxFormatFindings = 50;
inline constexpr std::size_t kMaxHeaderLineBytes = 998;  // RFC 5322 §2.1.1, CRLF not counted

struct FormatFinding {
  std::string code;      // see the list above
  std::string field;     // the field's name as first written ("Subject"); "" for a line that is
                         // no field, and for a missing field the name it should have
  std::size_t line = 0;  // 1-based line of the header where it is (the first occurrence); 0
                         // for a missing field
  bool error = true;     // breaks a MUST of RFC 5322 / 6532
  std::string text;      // plain English, ASCII, no control characters
};

struct MessageFormat {
  std::vector<FormatFinding> findings;  // in header order, missing fields last
  std::size_t omitted = 0;              // findings beyond kMaxFormatFindings (counted only)
  std::size_t lines = 0;                // header lines read
  std::size_t fields = 0;               // fields read
  bool truncated = false;               // a bound was hit

  // Facts the requirement checks use.
  std::size_t from_fields = 0;     // From fields
  std::size_t from_mailboxes = 0;  // mailboxes in the first From field
  bool from_well_formed = false;   // the first From field parses
  std::size_t message_id_fields = 0;
  bool message_id_valid = false;  // exactly one Message-ID, and it is a msg-id
  std::string message_id;         // the first Message-ID value, trimmed, made printable

  bool has_errors() const;  // any finding with error = true
  // Findings with error = true, counting the omitted ones as errors too.
  std::size_t error_count() const;
};

// Checks the header block `raw_header` (the exact bytes; it may go on into the body: reading
// stops at the empty line that ends the header). `smtputf8`: the client sent the message with
// SMTPUTF8 (RFC 6531), so UTF-8 in the header is allowed. `header_cut`: the header went on
// beyond the bytes given (smtp::HeaderSplitter::header_cut). A header cut there or at the
// bounds is `truncated`: fields that may come later are not reported missing, and the value of
// the last field read is not judged. Never throws.
MessageFormat check_message_format(std::string_view raw_header, bool smtputf8,
                                   bool header_cut = false);

// {findings: [{code, field, line, error, text}], omitted, errors, lines, fields, truncated}.
nlohmann::ordered_json to_json(const MessageFormat& format);

}  // namespace ipconfirm::responder

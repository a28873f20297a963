// Composing the reply: an RFC 5322 message with a MIME (RFC 2045-2049) body, ready for SMTP
// DATA (CRLF line endings, not yet dot-stuffed).
//
// Structure: multipart/mixed { multipart/alternative { text/plain, text/html } or text/plain
// alone, then one part per attachment }. Every line ends in CRLF and is at most 998 bytes
// (RFC 5322 §2.1.1); header fields are folded at 78 columns where the content allows.
//
// Nothing given here can add a header field or a MIME part: header values are stripped of
// control characters (runs of CR, LF and TAB become one space, the rest are dropped), invalid
// UTF-8 becomes U+FFFD, and non-ASCII text is written as RFC 2047 encoded-words (UTF-8, Q or B,
// at most 75 characters each, split between characters). Non-ASCII file names use RFC 2231.
// Bodies go out as 7bit when they are ASCII with short lines, otherwise quoted-printable (text)
// or base64 (anything else); text bodies have their line breaks made CRLF first. Boundaries are
// random and checked against the content. The composer does not sign (DKIM), does not
// dot-stuff, and does not validate addresses beyond removing what could break the syntax.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ipconfirm::mime {

struct Attachment {
  std::string content_type;  // "type/subtype[; params]"; application/octet-stream if invalid
  std::string filename;      // UTF-8; path separators and control characters are replaced
  std::string body;          // the bytes, sent unchanged (base64 unless plainly 7bit-safe)
};

struct OutgoingMessage {
  std::string from_address, from_display;  // addr-spec, display name (may be UTF-8)
  std::string to_address;
  std::string subject;     // UTF-8, anything: a hostile value must not add a header
  std::string message_id;  // full "<...>"; a fresh one is made if this is not a valid msg-id
  std::string in_reply_to, references;  // msg-ids; dropped if not syntactically valid
  std::int64_t date_epoch = 0;
  // Added after References, e.g. {"Auto-Submitted", "auto-replied"}. A field with an invalid
  // name, or with a name the composer writes itself (From, Content-Type, Bcc...), is dropped.
  std::vector<std::pair<std::string, std::string>> extra_headers;
  std::string text_body;                // UTF-8
  std::string html_body;                // optional ("" = none): then multipart/alternative
  std::vector<Attachment> attachments;  // e.g. application/json ipconfirm.json
};

// The complete message: header, empty line, body. Never fails; see the file comment for how
// bad input is neutralised.
std::string compose(const OutgoingMessage& m);

// "<time.random@hostname>": seconds since the epoch, 64 random bits in hex, and `hostname`
// reduced to letters, digits, '-' and non-empty dot-separated labels ("localhost" if nothing
// is left). Unique per call.
std::string make_message_id(std::string_view hostname);

}  // namespace ipconfirm::mime

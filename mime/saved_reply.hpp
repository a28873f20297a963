// Reading a reply that ipconfirm sent, as it was saved: a Maildir file, a message saved from a
// mail client (.eml, CRLF or LF line ends), an mbox message with its "From " line, or a
// smtp-sink dump. Used by `ipconfirm show` to print the report without base64 in the way.
//
// The message is walked as MIME (RFC 2045-2046): multipart bodies are split at their boundary
// lines, leaves are decoded from base64 or quoted-printable. The walk is one linear pass per
// level with hard limits (bytes, nesting depth, parts), so a hostile file costs bounded time and
// memory. It looks only for the parts a reply of ours has: the report JSON (the part named
// ipconfirm.json, or else the first application/json part), the first text/plain and the first
// text/html part that are not attachments. Charsets are not converted (ours are UTF-8), and
// RFC 2231 file names are not decoded (ours is plain ASCII).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ipconfirm::mime {

struct SavedReplyLimits {
  std::size_t max_bytes = 64 * 1024 * 1024;  // larger input is refused
  std::size_t max_depth = 8;                 // multipart nesting walked
  std::size_t max_parts = 256;               // parts looked at in all
};

struct SavedReply {
  std::string subject;   // RFC 2047 decoded, control characters removed
  std::string queue_id;  // X-Ipconfirm-Queue-Id, "" when absent
  // Decoded bodies with LF line ends; nullopt when the message has no such part.
  std::optional<std::string> json, text, html;
};

// nullopt with `error` set when the input is over max_bytes or has no header; otherwise the
// parts found (any of them may be missing: the caller decides what it needs).
std::optional<SavedReply> read_saved_reply(std::string_view message, std::string& error,
                                           const SavedReplyLimits& limits = {});

// Base64 (RFC 2045 §6.8): characters outside the alphabet are skipped, decoding stops at the
// first '='. Quoted-printable (RFC 2045 §6.7): soft line breaks removed, =XX decoded, a
// malformed '=' kept as it is. Never fail.
std::string decode_base64(std::string_view in);
std::string decode_quoted_printable(std::string_view in);

}  // namespace ipconfirm::mime

// The client side of SMTP as pure functions: reading server replies, parsing the EHLO
// capabilities, building the envelope commands and the DATA payload.
//
// Follows RFC 5321 (§4.1.1 commands, §4.2 reply syntax, §4.5.2 dot-stuffing, §4.5.3.1 limits),
// RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8), RFC 4954 and RFC 4616 (AUTH PLAIN).
// The reader is strict: a reply line is three digits, then '-' or ' ' or the end of the line,
// then text, ending in CRLF; every line of a reply carries the same code. Bare LF, bare CR, NUL
// and other control characters in a reply, a line over 2048 octets or a reply over 100 lines are
// protocol errors, and the reader stays in error once it has seen one.
//
// Not here: sockets, timeouts, TLS, the order of the dialogue (smtp/client.cpp drives it), and
// the check that the server sent nothing after a reply — that needs to know what the client has
// sent, so the caller does it with the `consumed` count the reader returns.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/reply.hpp"

namespace ipconfirm::smtp {

// Reads server replies line by line (RFC 5321 §4.2): "250-..." continuation, "250 ..." last.
//
// next() is given everything received and not yet consumed. It consumes complete lines only and
// remembers the lines of a reply that is not finished yet, so the caller must drop the first
// `consumed` bytes of its buffer after every call, whatever the status. On Status::reply the
// bytes after `consumed` (if any) belong to whatever the server sent next. Reply::lines holds
// the text after the separator, enhanced status codes included; Reply::enhanced stays empty.
class ReplyReader {
 public:
  static constexpr std::size_t max_line = 2048;  // octets, CRLF included
  static constexpr std::size_t max_lines = 100;

  enum class Status { need_more, reply, error };
  struct Out {
    Status status = Status::need_more;
    std::size_t consumed = 0;
    Reply reply;
    std::string error;  // set with Status::error
  };

  // One reply at a time. After an error every further call returns the same error.
  Out next(std::string_view buf);

 private:
  Reply partial_;
  std::string error_;
};

// Builds the DATA payload: dot-stuffs lines starting with '.', converts bare LF and bare CR to
// CRLF, ensures a final CRLF, appends ".\r\n". An empty message gives ".\r\n".
std::string dot_stuff(std::string_view message);

// True if any octet has the high bit set (the message then needs BODY=8BITMIME).
bool has_8bit(std::string_view text);

// The ESMTP extensions the server announced in its EHLO reply (RFC 5321 §4.1.1.1).
struct Capabilities {
  bool starttls = false, pipelining = false, eightbitmime = false, smtputf8 = false;
  // Set when SIZE is announced: the limit in octets, 0 when the server names none (RFC 1870 §4).
  std::optional<std::size_t> size;
  std::vector<std::string> auth;  // SASL mechanisms, upper-cased
};

// Parses the EHLO reply. The first line (the server's name and greeting) is skipped; keywords
// are matched case-insensitively; unknown keywords and a SIZE with a malformed number (read as
// "no limit") are ignored.
Capabilities parse_ehlo(const Reply& r);

// An address as MAIL FROM or RCPT TO carry it between the angle brackets.
struct SmtpAddress {
  std::string text;   // the mailbox, its local part quoted where the grammar needs it; "" = <>
  bool utf8 = false;  // it has non-ASCII octets: the transaction needs SMTPUTF8 (RFC 6531)
};
struct SmtpAddressResult {
  std::optional<SmtpAddress> address;  // nullopt: the address cannot be sent
  std::string error;                   // why, when it cannot
};

// Reads a mailbox as RFC 5321 §4.1.2 writes it (Mailbox::to_string()'s form: a local part that
// is not a Dot-string is a Quoted-string, e.g. "\"john doe\"@example.org"), with UTF-8 where
// RFC 6531 §3.3 allows it, and gives it in its minimally quoted form. The same strict parser
// that reads the server's MAIL and RCPT (smtp/command_parser.hpp) decides; address literals
// are accepted, source routes, parameters after the path, control characters, invalid UTF-8,
// a local part over 64 octets and a domain over 255 are not. "" is the null sender <>.
SmtpAddressResult smtp_address(std::string_view address);

// True if `name` is usable as the EHLO argument: 1-255 octets of letters, digits, '-', '.',
// or an address literal in brackets made of those and ':'.
bool is_safe_helo_name(std::string_view name);

// The ESMTP parameters of MAIL FROM.
struct MailParameters {
  std::optional<std::size_t> size;  // SIZE=n (RFC 1870)
  bool body_8bitmime = false;       // BODY=8BITMIME (RFC 6152)
  bool smtputf8 = false;            // SMTPUTF8 (RFC 6531)
};

// "MAIL FROM:<sender> [SIZE=n] [BODY=8BITMIME] [SMTPUTF8]\r\n"; "" gives "MAIL FROM:<>".
// The address is an SmtpAddress::text (smtp_address() checked it).
std::string mail_from_command(std::string_view sender, const MailParameters& params);
// "RCPT TO:<recipient>\r\n". The address is an SmtpAddress::text (smtp_address() checked it).
std::string rcpt_to_command(std::string_view recipient);

// Standard base64 (RFC 4648 §4) with padding and no line breaks.
std::string base64_encode(std::string_view data);

// The RFC 4616 initial response "\0user\0password", base64-encoded. Returns nullopt if either
// part contains NUL, which PLAIN cannot carry.
std::optional<std::string> auth_plain_response(std::string_view user, std::string_view password);

// The reply as one printable line for logs and delivery outcomes: "550 5.1.1 text / more",
// octets outside printable ASCII replaced by '?', cut at `max` octets.
std::string describe(const Reply& r, std::size_t max = 512);

}  // namespace ipconfirm::smtp

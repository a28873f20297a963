// Parses SMTP command lines and the paths of MAIL and RCPT (RFC 5321 §4.1.1, §4.1.2,
// §4.5.3.1; RFC 6531 SMTPUTF8; RFC 1870 SIZE; RFC 6152 8BITMIME).
//
// Pure and strict: parse_command() splits a line (without its CRLF, see line_reader.hpp) into a
// verb and its argument; parse_mail_from() and parse_rcpt_to() read "FROM:<path> params" and
// "TO:<path> params" by the §4.1.2 grammar. Quoted local parts are unquoted (so
// "a@b"@example.test has the local part a@b), percent hacks and bang paths are kept literally
// in the local part, and Mailbox::to_string() quotes again where the grammar needs it.
//
// What it does not do: it does not decide whether a sender or recipient is accepted (the
// session does), does not interpret parameters beyond their syntax (except that SIZE must be
// a number and SMTPUTF8 takes no value), and does not check IDNA rules beyond UTF-8 validity.
// Domains keep the case they were written in.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ipconfirm::smtp {

enum class Verb {
  ehlo,
  helo,
  mail,
  rcpt,
  data,
  rset,
  noop,
  quit,
  vrfy,
  expn,
  help,
  starttls,
  auth,
  bdat,
  unknown
};

struct Command {
  Verb verb;
  std::string_view verb_text;  // as sent, views into the line
  std::string_view arg;        // everything after the first SP, verbatim; empty if none
};

// Splits a command line at its first SP. The verb is matched case-insensitively; anything that
// is not a known verb (including an empty one) is Verb::unknown.
Command parse_command(std::string_view line);

struct Mailbox {
  std::string local;   // unquoted: quoted-pairs resolved, surrounding quotes removed
  std::string domain;  // as written; "[192.0.2.1]" for an address literal; empty for the
                       // bare <Postmaster> of RCPT
  // The mailbox in its minimally quoted form (RFC 5321 §4.1.2), e.g. "\"a b\"@example.test".
  std::string to_string() const;
};

struct PathParam {
  std::string keyword;  // upper-cased
  std::string value;    // empty when the parameter has none
};

enum class PathError {
  none,
  syntax,            // not "FROM:" / "TO:", a control character, a stray character, <> in RCPT
  missing_brackets,  // the path is not enclosed in < >
  source_route,      // <@relay:user@domain>; `mailbox` holds the final mailbox if it parses
  bad_local_part,
  bad_domain,
  address_literal,   // user@[192.0.2.1]; `mailbox` holds it, with the brackets in the domain
  too_long,          // local part > 64, domain > 255, or path > 256 octets (§4.5.3.1)
  utf8_not_allowed,  // 8-bit in the path without SMTPUTF8
  bad_parameter,
};

struct PathResult {
  PathError error = PathError::none;
  // Set when the path itself is good: error none, source_route (the final mailbox, if it
  // parses), address_literal or bad_parameter; nullopt for the null path <> and on other errors.
  std::optional<Mailbox> mailbox;
  std::vector<PathParam> params;  // in order; empty unless error is none, source_route or
                                  // address_literal
  std::string detail;             // short English reason for a 5xx text; empty when error is none
};

// Parses the argument of MAIL, e.g. "FROM:<a@example.test> SIZE=1000 BODY=8BITMIME".
// `utf8_allowed` says that SMTPUTF8 is offered in this session; then 8-bit (valid UTF-8) is
// accepted in the path and parameter values, but a path with 8-bit still needs the SMTPUTF8
// parameter in this same command (RFC 6531 §3.4), else utf8_not_allowed.
PathResult parse_mail_from(std::string_view arg, bool utf8_allowed);

// Parses the argument of RCPT, e.g. "TO:<ipconfirm@example.test>". `utf8_allowed` says that
// the transaction's MAIL carried SMTPUTF8. <> is refused; <Postmaster> (any case) is accepted
// with an empty domain (§4.1.1.3).
PathResult parse_rcpt_to(std::string_view arg, bool utf8_allowed);

}  // namespace ipconfirm::smtp

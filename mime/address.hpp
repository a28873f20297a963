// Addresses in header fields: the address-list and mailbox-list of RFC 5322 §3.4 (From:, To:,
// Cc:, Reply-To:, Sender:), as DMARC needs them (exactly one author domain, RFC 9989 §5.3.1)
// and as a check of the message's form can report them ("From: is malformed").
//
// Pure and linear: the field value is cut into tokens once (atoms, quoted strings, domain
// literals, specials; comments and folding white space skipped, nested comments counted, not
// recursed), and the grammar reads the tokens with a look-ahead that never goes past the
// current address. Bounded: at most kMaxAddresses addresses are returned.
//
// Accepted beyond the strict grammar, as RFC 5322 §4 (obsolete syntax) asks a reader to:
// phrases with '.' (obs-phrase), CFWS between the dots of a local-part or domain (obs-local-part,
// obs-domain), source routes in angle addresses (obs-angle-addr; the route is dropped), and
// empty list elements (",,", obs-addr-list). UTF-8 in atoms and quoted strings is accepted
// (RFC 6532). Not done: RFC 2047 decoding of display names; the syntax of the domain beyond
// dot-atom (callers judge the name).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ipconfirm::mime {

inline constexpr std::size_t kMaxAddresses = 1000;

struct Mailbox {
  std::string display_name;  // the phrase, quotes and quoted-pairs undone, words joined by ' '
  std::string local_part;    // as written, without CFWS (a quoted local-part keeps its quotes)
  std::string domain;        // as written, without CFWS; a domain literal keeps its brackets
  std::string group;         // the group's display name when the mailbox is inside a group
};

struct AddressList {
  // True when the whole value follows the grammar (with the obsolete forms above) and holds
  // at least one address. Mailboxes that parsed are returned even when it is false.
  bool well_formed = false;
  std::vector<Mailbox> mailboxes;
  std::size_t groups = 0;  // groups seen (an empty group adds no mailbox)
  bool truncated = false;  // more than kMaxAddresses: the rest was not read
  std::string error;       // the first problem and its byte offset; "" when well formed
};

// Parses an address-list (groups allowed). Never throws; bad input gives well_formed = false
// and an `error` such as "unterminated quoted string at offset 6".
AddressList parse_address_list(std::string_view value);

// The distinct domains of the mailboxes, ASCII lower-cased, in first-seen order.
std::vector<std::string> distinct_domains(const AddressList& list);

}  // namespace ipconfirm::mime

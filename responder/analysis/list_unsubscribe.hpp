// Unsubscribe fields of a received message: List-Unsubscribe (RFC 2369 §3.2), its one-click
// signal List-Unsubscribe-Post (RFC 8058), and Precedence, which with List-Unsubscribe makes a
// message look like bulk or list mail (the mail the providers' bulk-sender rules are about).
//
// RFC 2369 §2 reads a list field as angle-bracket enclosed URIs separated by commas, with
// comments in parentheses allowed around them and white space inside the brackets ignored
// (folding). RFC 8058 §3.1: one-click needs an https URI in List-Unsubscribe and a
// List-Unsubscribe-Post field with the single key/value pair List-Unsubscribe=One-Click;
// RFC 8058 §4: both fields must be covered by a valid DKIM signature (checked where the DKIM
// results are, in requirements.cpp, with dkim_signature_covers()).
//
// What it does not do: fetch or POST to anything (ipconfirm never acts on a sender's URIs),
// judge what the URI does, or read the body for an unsubscribe link.
//
// Pure and bounded: at most kMaxUnsubscribeUris URIs of at most kMaxUnsubscribeUriBytes each
// are kept, comments nest at most 20 deep, one linear pass. Never throws.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "responder/analysis/dkim.hpp"
#include "responder/analysis/dkim_signature.hpp"

namespace ipconfirm::responder {

inline constexpr std::size_t kMaxUnsubscribeUris = 16;
inline constexpr std::size_t kMaxUnsubscribeUriBytes = 2048;

struct UnsubscribeUriList {
  std::vector<std::string> uris;  // white space removed; printable ASCII ('?' for other bytes)
  bool well_formed = false;       // the whole value is a list of <URI> (with comments)
  bool truncated = false;         // more URIs than kMaxUnsubscribeUris, or one longer than the cap
  std::string error;              // the first problem, "" when well formed
};

// Parses a List-Unsubscribe value (RFC 2369). A value that does not start with '<' (after
// comments and white space) holds no URI; text after a URI that is not a comma ends the list
// with an error, keeping the URIs before it.
UnsubscribeUriList parse_list_unsubscribe(std::string_view value);

// True when `value` is exactly List-Unsubscribe=One-Click (RFC 8058 §3.1), allowing folding
// white space around it and either letter case.
bool is_one_click_post(std::string_view value);

// "https" for "https://host/...", "mailto", "http", or "" for anything else. An https or http
// URI needs a host after "//".
std::string uri_kind(std::string_view uri);

// What the header says about unsubscribing and bulk mail.
struct UnsubscribeFields {
  std::size_t list_unsubscribe_fields = 0;  // List-Unsubscribe fields
  std::size_t post_fields = 0;              // List-Unsubscribe-Post fields
  UnsubscribeUriList list;                  // the first List-Unsubscribe field's URIs
  std::string https_uri;                    // the first https URI, "" if none
  std::string mailto_uri;                   // the first mailto URI, "" if none
  bool has_http_uri = false;                // a plain http URI (never one-click)
  std::string post_value;                   // the first List-Unsubscribe-Post value, printable
  bool one_click_post = false;              // that value is List-Unsubscribe=One-Click
  std::string precedence;                   // the Precedence value's first word, lower-cased
  bool bulk_looking = false;                // List-Unsubscribe present, or Precedence bulk/list
  std::string bulk_reason;                  // "List-Unsubscribe" or "Precedence: bulk", ...
};

// Reads the fields of a raw header (split_raw_header, dkim_signature.hpp).
UnsubscribeFields read_unsubscribe_fields(const RawHeader& header);

// True when `signature` passed and its h= lists every name in `fields` (case-insensitively).
bool dkim_signature_covers(const DkimSignatureResult& signature,
                           const std::vector<std::string_view>& fields);

}  // namespace ipconfirm::responder

// The text of a DMARC policy record (RFC 9989 §4.7, §4.8): what its tags say.
//
// Pure and linear: a string in, values out; no DNS (dmarc.hpp finds records and decides).
// RFC 9989 is lenient past the version tag: a record is one that starts with "v=DMARC1";
// unknown tags are ignored, and a tag whose value does not follow its rule is discarded in
// favour of the default (§4.8) — the parser keeps a note of each such problem so that the
// report can say what to fix. p, sp and np remember whether they were present with a bad value,
// because §4.10.1 treats that differently from their absence.
//
// Read as the ABNF of §4.8 (RFC 5234 strings are case-insensitive except the %s"DMARC1"):
// tag names and values compare case-insensitively, "DMARC1" exactly; white space is allowed
// around '=' and ';'. The tags RFC 9989 removed (pct, ri, rf) are ignored and listed.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ipconfirm::responder {

enum class DmarcPolicy { none, quarantine, reject };

// "none", "quarantine", "reject".
std::string_view to_string(DmarcPolicy policy);

struct DmarcRecord {
  std::optional<DmarcPolicy> p, sp, np;   // valid values only
  bool p_invalid = false;                 // p= present with a value outside none/quarantine/reject
  bool sp_invalid = false;                // likewise sp=
  bool np_invalid = false;                // likewise np=
  bool adkim_strict = false;              // adkim=s (default r)
  bool aspf_strict = false;               // aspf=s (default r)
  char psd = 'u';                         // psd=y / n / u (default u)
  bool testing = false;                   // t=y (default n)
  std::vector<std::string> rua;           // the URIs of rua=, as written (at most 20 kept)
  bool rua_valid = false;                 // rua= holds at least one syntactically valid URI
  std::vector<std::string> removed_tags;  // pct, ri, rf found: no longer part of DMARC
  std::vector<std::string> problems;      // each ignored or defaulted part, in words
};

// Parses a TXT record. Returns nullopt unless it starts with the version tag "v=DMARC1"
// (followed by ';', white space or the end): such records are not DMARC records and are
// discarded (§4.10 step 2). Never throws.
std::optional<DmarcRecord> parse_dmarc_record(std::string_view text);

}  // namespace ipconfirm::responder

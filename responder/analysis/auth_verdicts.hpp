// The verdicts of the sender authentication checks for one message, as values: SPF for the
// MAIL FROM and the HELO identity (spf.hpp), every DKIM signature (dkim.hpp), the ARC chain
// (arc.hpp) and DMARC (dmarc.hpp). The I/O driver (auth_lookups.hpp, or `ipconfirm check`
// through it) fills them in; the report (auth_report.hpp) reads them. A verdict that is absent
// was not evaluated (a message without a transaction: only in tests); one that is present is
// complete: a lookup that did not finish made it temperror, never a guess.
//
// Also the two small decisions that join the checks, kept pure so that tests see them: which
// From fields DMARC reads, and how the SPF and DKIM verdicts become DMARC's input.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "responder/analysis/arc.hpp"
#include "responder/analysis/dkim.hpp"
#include "responder/analysis/dmarc.hpp"
#include "responder/analysis/spf.hpp"

namespace ipconfirm::responder {

struct AuthVerdicts {
  std::optional<SpfVerdict> spf;       // MAIL FROM identity (for <>: postmaster@HELO)
  std::optional<SpfVerdict> spf_helo;  // HELO identity
  std::optional<DkimResults> dkim;
  std::optional<ArcResult> arc;
  std::optional<DmarcVerdict> dmarc;
};

// At most this many From field values are kept for DMARC (which only needs to know that there
// is more than one).
inline constexpr std::size_t kMaxFromFields = 5;

// The value of each From field of a raw header (CRLF or LF line ends, folding kept), in order,
// at most kMaxFromFields.
std::vector<std::string> from_field_values(std::string_view raw_header);

// DMARC's input from the other verdicts (dmarc.hpp): SPF of the MAIL FROM identity passes and
// its domain; every checked DKIM signature with whether it passed and its d=.
DmarcInput dmarc_input(std::vector<std::string> from_fields, const SpfVerdict* spf,
                       const DkimResults* dkim);

// The same input with every identifier taken to pass: a DMARC run on it asks every name the
// real run can need (the Organizational Domain walks of the SPF domain and of each d=), so
// those lookups can start before SPF and DKIM have their verdicts. `spf_domain` is the MAIL
// FROM identity's domain; `dkim_domains` every signature's d=.
DmarcInput dmarc_prefetch_input(std::vector<std::string> from_fields, std::string spf_domain,
                                const std::vector<std::string>& dkim_domains);

}  // namespace ipconfirm::responder

// Domain names for the authentication checks in the form the DNS holds them: A-labels.
//
// RFC 8616 (SPF, DKIM and DMARC for internationalized mail) and RFC 9989 §5.3.1 say that a
// domain written with U-labels (UTF-8, as SMTPUTF8 allows in MAIL FROM and From:) is converted
// to A-labels ("xn--...") before any lookup or comparison. The conversion is IDNA2008 with the
// UTS #46 non-transitional mapping, done by libidn2.
//
// Pure: no DNS, no I/O. It does not judge whether an ASCII name is a valid host name; callers
// apply their own rules to the result.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ipconfirm::responder {

// The domain in lower case with every U-label converted to its A-label. An all-ASCII name is
// only lower-cased (libidn2 is not asked, so "_spf" and other non-host names pass through).
// Returns nullopt when a name with non-ASCII bytes is not valid IDNA2008 (bad UTF-8,
// disallowed code points) or is longer than 1024 bytes.
std::optional<std::string> to_a_labels(std::string_view domain);

}  // namespace ipconfirm::responder

// Domain-name syntax shared by every layer: the SMTP parser, the config loader and the
// analysis. RFC 5321 §4.1.2 Domain (dot-separated LDH labels) with the length limits of
// RFC 5321 §4.5.3.1.2 and RFC 1035 §2.3.4. Pure, no DNS: it says whether a name is well formed,
// not whether it exists.
#pragma once

#include <string_view>

namespace ipconfirm {

// True for an RFC 5321 Domain: dot-separated LDH labels (letter or digit first and last), each
// 1 to 63 octets, 255 octets at most in all, no trailing dot. ASCII only, unless `allow_8bit`
// (RFC 6531 U-labels in a SMTPUTF8 path), which also lets bytes above 0x7f be label characters.
bool is_valid_domain(std::string_view d, bool allow_8bit = false);

}  // namespace ipconfirm

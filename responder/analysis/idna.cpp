// A-labels for the authentication checks. See idna.hpp.
#include "responder/analysis/idna.hpp"

#include <idn2.h>

#include <cstdlib>
#include <memory>

#include "core/ascii.hpp"

namespace ipconfirm::responder {

std::optional<std::string> to_a_labels(std::string_view domain) {
  bool ascii_only = true;
  for (char c : domain)
    if (static_cast<unsigned char>(c) >= 0x80) ascii_only = false;
  if (ascii_only) return ascii::lower(domain);
  if (domain.size() > 1024) return std::nullopt;
  const std::string input(domain);  // libidn2 wants a NUL-terminated string
  if (input.find('\0') != std::string::npos) return std::nullopt;
  char* out = nullptr;
  const int rc =
      idn2_lookup_u8(reinterpret_cast<const uint8_t*>(input.c_str()),
                     reinterpret_cast<uint8_t**>(&out), IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
  std::unique_ptr<char, decltype(&idn2_free)> owned(out, &idn2_free);
  if (rc != IDN2_OK || !out) return std::nullopt;
  return ascii::lower(out);
}

}  // namespace ipconfirm::responder

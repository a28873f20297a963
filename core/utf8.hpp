// One UTF-8 sequence, decoded strictly (RFC 3629): the code point and the length of the
// well-formed sequence at s[i], or length 0 when the bytes there are not one (a stray
// continuation byte, an overlong form, a surrogate, a code point above U+10FFFF, a sequence cut
// by the end of `s`). Pure, header-only; the log, the MIME reader and the reply's encoder share
// it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ipconfirm::utf8 {

struct Decoded {
  std::uint32_t code_point = 0;
  std::size_t length = 0;  // 0: not a well-formed sequence
};

// s[i] is usually >= 0x80; an ASCII byte there is not a multi-byte sequence (length 0).
inline Decoded decode(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t len = 0;
  std::uint32_t cp = 0, min = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2, cp = c & 0x1Fu, min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3, cp = c & 0x0Fu, min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4, cp = c & 0x07u, min = 0x10000;
  }
  if (len == 0 || i + len > s.size()) return {};
  for (std::size_t k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return {};
    cp = (cp << 6) | (cc & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {};
  return {cp, len};
}

}  // namespace ipconfirm::utf8

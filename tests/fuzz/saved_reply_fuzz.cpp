// Fuzz target for mime/saved_reply (ipconfirm show): read_saved_reply on arbitrary bytes, with
// the default limits and with tiny ones; the decoders on their own. Checks that the decoded
// parts are never larger than the input (decoding only shrinks) and the subject is clean.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mime/saved_reply.hpp"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

void check(std::string_view input, const ipconfirm::mime::SavedReplyLimits& limits) {
  std::string error;
  auto r = ipconfirm::mime::read_saved_reply(input, error, limits);
  if (!r) {
    require(!error.empty());
    return;
  }
  for (const auto* part : {&r->json, &r->text, &r->html})
    if (*part) require((*part)->size() <= input.size());
  for (char c : r->subject) require(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F);
  require(r->queue_id.size() <= 128);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check(input, {});
  ipconfirm::mime::SavedReplyLimits tiny;
  tiny.max_bytes = 4096;
  tiny.max_depth = 2;
  tiny.max_parts = 4;
  check(input, tiny);
  require(ipconfirm::mime::decode_base64(input).size() <= input.size());
  require(ipconfirm::mime::decode_quoted_printable(input).size() <= input.size());
  return 0;
}

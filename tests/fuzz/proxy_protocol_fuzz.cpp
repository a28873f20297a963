// libFuzzer target for the PROXY protocol parser. Besides not crashing, it checks the promises of
// the interface: an accepted header fits the input and the limits, parses the same on its own,
// and one byte less only asks for more; a refusal always says why.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "smtp/proxy_protocol.hpp"

using ipconfirm::smtp::parse_proxy_header;
using ipconfirm::smtp::ProxyStatus;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto r = parse_proxy_header(input);
  switch (r.status) {
    case ProxyStatus::ok: {
      if (r.consumed == 0 || r.consumed > input.size() || r.consumed > 16 + 536) std::abort();
      if (!r.header.local && (!r.header.source || !r.header.destination)) std::abort();
      const auto alone = parse_proxy_header(input.substr(0, r.consumed));
      if (alone.status != ProxyStatus::ok || alone.consumed != r.consumed) std::abort();
      if (parse_proxy_header(input.substr(0, r.consumed - 1)).status != ProxyStatus::need_more)
        std::abort();
      break;
    }
    case ProxyStatus::invalid:
      if (r.error.empty() || r.consumed != 0) std::abort();
      break;
    case ProxyStatus::need_more:
      // Never wait past the longest header: 107 bytes for v1, 16 + 536 for v2.
      if (r.consumed != 0 || input.size() >= 16 + 536) std::abort();
      break;
  }
  return 0;
}

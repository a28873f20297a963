// Fuzz target for mime/incoming: read_incoming on arbitrary bytes, with the default limits and
// with tiny ones, checking the promises of the interface (valid UTF-8, no control characters,
// the caps) on every result.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mime/incoming.hpp"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

void check_text(const std::string& s) {
  require(ipconfirm::mime::to_valid_utf8(s) == s);
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    require(u >= 0x20 && u != 0x7F);
  }
}

void check(const ipconfirm::mime::IncomingMessage& m, const ipconfirm::mime::IncomingLimits& l) {
  require(m.subject.size() <= 998);
  require(m.received.size() <= l.max_received);
  require(m.received.size() <= m.received_count);
  require(m.header_fields <= l.max_header_fields);
  require(m.message_id.empty() || ipconfirm::mime::is_msg_id(m.message_id));
  for (const auto* s : {&m.message_id, &m.subject, &m.from, &m.date, &m.auto_submitted,
                        &m.precedence, &m.references}) {
    check_text(*s);
  }
  for (const auto& r : m.received) check_text(r);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const ipconfirm::mime::IncomingLimits defaults;
  check(ipconfirm::mime::read_incoming(input, defaults), defaults);
  ipconfirm::mime::IncomingLimits tiny;
  tiny.max_header_bytes = 200;
  tiny.max_header_fields = 5;
  tiny.max_received = 2;
  check(ipconfirm::mime::read_incoming(input, tiny), tiny);
  return 0;
}

// Fuzzes the client's reply reader, the EHLO parser and dot-stuffing. The first octet picks a
// chunk size so that replies are also fed split across reads, as the socket delivers them.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "smtp/client_protocol.hpp"

using namespace ipconfirm::smtp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t chunk = static_cast<std::size_t>(data[0] % 64) + 1;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  ReplyReader reader;
  std::string buffer;
  for (std::size_t pos = 0; pos < input.size(); pos += chunk) {
    buffer += input.substr(pos, chunk);
    for (;;) {
      ReplyReader::Out out = reader.next(buffer);
      if (out.consumed > buffer.size()) std::abort();
      buffer.erase(0, out.consumed);
      if (out.status != ReplyReader::Status::reply) break;
      if (out.reply.lines.empty() || out.reply.lines.size() > ReplyReader::max_lines) std::abort();
      if (out.reply.code < 200 || out.reply.code > 599) std::abort();
      Capabilities caps = parse_ehlo(out.reply);
      (void)caps;
      (void)describe(out.reply);
    }
    if (buffer.size() >= ReplyReader::max_line) break;  // the reader must have failed by now
  }

  // dot_stuff: CRLF only, and the only "CRLF . CRLF" is the terminator.
  std::string stuffed = dot_stuff(input);
  if (stuffed.size() < 3 || stuffed.compare(stuffed.size() - 3, 3, ".\r\n") != 0) std::abort();
  for (std::size_t i = 0; i < stuffed.size(); ++i) {
    if (stuffed[i] == '\r' && (i + 1 >= stuffed.size() || stuffed[i + 1] != '\n')) std::abort();
    if (stuffed[i] == '\n' && (i == 0 || stuffed[i - 1] != '\r')) std::abort();
  }
  std::size_t end = stuffed.find("\r\n.\r\n");
  if (end != std::string::npos && end + 5 != stuffed.size()) std::abort();
  if (stuffed.size() > 3 && stuffed.compare(0, 3, ".\r\n") == 0) std::abort();
  return 0;
}

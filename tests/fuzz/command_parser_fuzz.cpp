// Fuzzes the command line path: LineReader cuts the input into lines, and every line goes
// through parse_command, parse_mail_from and parse_rcpt_to; a mailbox that parses must parse
// back from its to_string() form unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "smtp/command_parser.hpp"
#include "smtp/line_reader.hpp"

using namespace ipconfirm::smtp;

namespace {

void check(const PathResult& r) {
  if (r.detail.empty() != (r.error == PathError::none)) std::abort();
  if (r.error != PathError::none || !r.mailbox) return;
  const auto back = parse_rcpt_to("TO:<" + r.mailbox->to_string() + ">", true);
  if (!back.mailbox || back.mailbox->local != r.mailbox->local ||
      back.mailbox->domain != r.mailbox->domain) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  LineReader reader;
  while (!rest.empty()) {
    const auto out = reader.next(rest);
    if (out.consumed > rest.size()) std::abort();
    if (out.result == LineReader::Result::need_more && out.consumed == 0) break;
    if (out.result == LineReader::Result::line) {
      const Command cmd = parse_command(out.line);
      for (bool utf8 : {false, true}) {
        check(parse_mail_from(cmd.arg, utf8));
        check(parse_rcpt_to(cmd.arg, utf8));
      }
    }
    rest.remove_prefix(out.consumed);
  }
  return 0;
}

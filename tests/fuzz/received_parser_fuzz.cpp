// Fuzz target for the Received-header parser and the path analysis: any bytes must parse
// without crashing, give sanitised strings that serialise as JSON, and analyse in bounded work.
// The input is split at NUL bytes: the first part is the HELO, each further part one field body.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "responder/analysis/path_analysis.hpp"
#include "responder/analysis/received_parser.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_text(const std::string& s) {
  check(s.size() <= 255);
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    check(u >= 0x20 && u != 0x7f);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ipconfirm::responder;
  std::string_view input(reinterpret_cast<const char*>(data), size);

  // The whole input as one field.
  ReceivedHop whole = parse_received(input);
  for (const std::string* s : {&whole.from_helo, &whole.from_name, &whole.by, &whole.with,
                               &whole.id, &whole.for_addr, &whole.date, &whole.tls})
    check_text(*s);
  (void)to_json(whole).dump();  // throws (and so fails) on invalid UTF-8

  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= input.size() && parts.size() < 200; ++i) {
    if (i == input.size() || input[i] == '\0') {
      parts.push_back(input.substr(start, i - start));
      start = i + 1;
    }
  }
  std::vector<ReceivedHop> hops;
  for (std::size_t i = 1; i < parts.size(); ++i) hops.push_back(parse_received(parts[i]));
  auto connecting = ipconfirm::IpAddress::parse(hops.size() % 2 ? "203.0.113.7" : "2001:db8::7");
  PathAnalysis analysis = analyse_path(hops, *connecting, parts.empty() ? "" : parts[0]);
  check(analysis.gateway_ip.has_value());
  check(analysis.internal_hops.size() <= 32);
  check(analysis.behind_nat == analysis.sender_believed_ip.has_value());
  (void)to_json(analysis).dump();
  for (const auto& note : analysis.notes) (void)nlohmann::json(note).dump();
  return 0;
}

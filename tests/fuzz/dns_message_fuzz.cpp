// libFuzzer target for the DNS answer parser and the lookup decision built on it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "responder/dns/dns_message.hpp"

using namespace ipconfirm::responder;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ParsedAnswer answer = parse_dns_answer(data, size);
  if (!answer.ok && !answer.answers.empty()) std::abort();
  for (const auto& record : answer.answers) {
    if (record.name.size() > kMaxNameText) std::abort();
    if (record.text.size() > (record.type == RrType::txt ? size : kMaxNameText)) std::abort();
    if ((record.type == RrType::a || record.type == RrType::aaaa) != record.address.has_value())
      std::abort();
  }
  for (RrType type : {RrType::a, RrType::ptr, RrType::txt, RrType::cname}) {
    const DnsResult result = interpret_answer(answer, "x.test", type);
    if ((result.status == DnsStatus::ok) == result.records.empty()) std::abort();
    (void)cache_ttl(result, answer.negative_ttl, 3600);
  }
  return 0;
}

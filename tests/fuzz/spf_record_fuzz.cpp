// Fuzz target for the SPF record parser, the macro expander and the evaluation on hostile
// records. The input is split at the first newline: the first part is the hostile sender
// local-part and HELO (macro values), the rest the record. The record is parsed, expanded as a
// macro-string and as a domain-spec, and then evaluated against a DNS in which every TXT query
// answers that same record (so include:, redirect= and exp= recurse into it), every A query
// one address and every MX query three hosts: the evaluation must end within the limits, in a
// bounded number of rounds, with every bound of spf_record.hpp kept.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "responder/analysis/spf.hpp"
#include "responder/analysis/spf_record.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// Answers every question at once, from the record under test.
class EchoDns : public DnsSource {
 public:
  explicit EchoDns(std::string record) : record_(std::move(record)) {}
  const DnsResult* find(std::string_view name, RrType type) const override {
    auto [it, fresh] = cache_.try_emplace({dns_key(name), type});
    if (!fresh) return &it->second;
    DnsResult& r = it->second;
    r.status = DnsStatus::ok;
    DnsRecord rec;
    rec.type = type;
    switch (type) {
      case RrType::txt:
        rec.text = record_;
        break;
      case RrType::a:
        rec.address = IpAddress::parse("192.0.2.1");
        break;
      case RrType::aaaa:
        rec.address = IpAddress::parse("2001:db8::1");
        break;
      case RrType::mx:
        for (int i = 0; i < 3; ++i) {
          rec.preference = static_cast<std::uint16_t>(i);
          rec.text = "mx" + std::to_string(i) + "." + std::string(dns_key(name));
          r.records.push_back(rec);
        }
        return &it->second;
      case RrType::ptr:
        rec.text = "host.example.org";
        break;
      default:
        r.status = DnsStatus::nodata;
        return &it->second;
    }
    r.records.push_back(rec);
    return &it->second;
  }

 private:
  std::string record_;
  mutable std::map<std::pair<std::string, RrType>, DnsResult> cache_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const std::size_t nl = all.find('\n');
  const std::string_view who =
      nl == std::string_view::npos ? std::string_view{} : all.substr(0, nl);
  const std::string record(nl == std::string_view::npos ? all : all.substr(nl + 1));

  const SpfParse p = parse_spf_record(record);
  check(p.record.has_value() == p.error.empty());
  if (p.record) {
    check(record.size() <= kMaxSpfRecord);
    check(p.record->mechanisms.size() <= kMaxSpfTerms);
    for (const auto& m : p.record->mechanisms) {
      check(!m.text.empty());
      check(m.cidr4 >= 0 && m.cidr4 <= 32 && m.cidr6 >= 0 && m.cidr6 <= 128);
    }
  }

  SpfMacroContext ctx;
  const std::string local(who);
  ctx.sender = local;
  ctx.local_part = local;
  ctx.sender_domain = "example.org";
  ctx.domain = "example.org";
  ctx.ip = *IpAddress::parse("2001:db8::1");
  ctx.helo = local;
  for (bool explanation : {false, true}) {
    const auto e = expand_macros(record, ctx, explanation);
    check(e.has_value() <= is_valid_macro_string(record, explanation));
    if (e) check(e->size() <= kMaxMacroExpansion);
  }
  const SpfTarget t = expand_domain_spec(record, ctx);
  if (t.status == SpfTarget::Status::ok) check(!t.name.empty() && t.name.size() <= 253);

  SpfInput in;
  in.ip = *IpAddress::parse("192.0.2.1");
  in.mail_from = local + "@example.org";
  in.helo = local;
  const EchoDns dns(record);
  const SpfVerdict v = check_spf(in, SpfIdentity::mail_from, dns);
  check(v.complete);  // every question is answered at once
  check(v.dns_lookups <= 11 && v.void_lookups <= 3);
  check(v.chain.size() <= 12);
  check(v.explanation.size() <= kMaxMacroExpansion);
  (void)to_json(v).dump();
  (void)spf_hints(v);
  return 0;
}

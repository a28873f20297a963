// Fuzz target for the DMARC record parser, the RFC 5322 address-list parser and the DMARC
// evaluation. The input is split at the first newline: the first part is a From: field value,
// the rest a DMARC record. Both are parsed on their own, then DMARC is evaluated with a DNS in
// which every TXT query answers that record and every A query one address: the evaluation must
// finish in one run (every answer is there), with bounded output that serialises as JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "mime/address.hpp"
#include "responder/analysis/dmarc.hpp"
#include "responder/analysis/dmarc_record.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

class EchoDns : public DnsSource {
 public:
  explicit EchoDns(std::string record) : record_(std::move(record)) {}
  const DnsResult* find(std::string_view name, RrType type) const override {
    auto [it, fresh] = cache_.try_emplace({dns_key(name), type});
    if (!fresh) return &it->second;
    DnsResult& r = it->second;
    DnsRecord rec;
    rec.type = type;
    if (type == RrType::txt) {
      rec.text = record_;
    } else {
      rec.address = IpAddress::parse("192.0.2.1");
    }
    r.status = DnsStatus::ok;
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
  const std::string from(nl == std::string_view::npos ? all : all.substr(0, nl));
  const std::string record(nl == std::string_view::npos ? all : all.substr(nl + 1));

  if (const auto r = parse_dmarc_record(record)) {
    check(r->problems.size() <= 20 && r->rua.size() <= 20);
    check(r->psd == 'y' || r->psd == 'n' || r->psd == 'u');
    check(!(r->p && r->p_invalid) && !(r->sp && r->sp_invalid) && !(r->np && r->np_invalid));
  }
  const mime::AddressList list = mime::parse_address_list(from);
  check(list.mailboxes.size() <= mime::kMaxAddresses);
  check(list.well_formed == list.error.empty());

  DmarcInput in;
  in.from_fields = {from};
  in.spf_pass = true;
  in.spf_domain = "bounce.example.org";
  in.dkim = {{true, "example.org"}, {false, "example.net"}};
  const EchoDns dns(record);
  const DmarcVerdict v = check_dmarc(in, dns);
  check(v.complete);
  check(v.walk.size() <= 8);
  check(v.result == DmarcResult::pass || !v.dkim_aligned);
  (void)to_json(v).dump();
  (void)dmarc_hints(v);
  return 0;
}

#include "responder/analysis/auth_verdicts.hpp"

#include "core/ascii.hpp"
#include "responder/analysis/dkim_signature.hpp"

namespace ipconfirm::responder {

std::vector<std::string> from_field_values(std::string_view raw_header) {
  std::vector<std::string> out;
  const RawHeader header = split_raw_header(raw_header);
  for (const RawField& f : header.fields) {
    if (!ascii::iequals(f.name, "from")) continue;
    if (out.size() == kMaxFromFields) break;
    out.emplace_back(f.value);
  }
  return out;
}

DmarcInput dmarc_input(std::vector<std::string> from_fields, const SpfVerdict* spf,
                       const DkimResults* dkim) {
  DmarcInput in;
  in.from_fields = std::move(from_fields);
  if (spf) {
    in.spf_pass = spf->complete && spf->result == SpfResult::pass;
    in.spf_domain = spf->domain;
  }
  if (dkim) {
    for (const auto& s : dkim->signatures) {
      if (!s.checked) continue;
      in.dkim.push_back({s.result == DkimResultCode::pass, s.domain});
    }
  }
  return in;
}

DmarcInput dmarc_prefetch_input(std::vector<std::string> from_fields, std::string spf_domain,
                                const std::vector<std::string>& dkim_domains) {
  DmarcInput in;
  in.from_fields = std::move(from_fields);
  in.spf_pass = !spf_domain.empty();
  in.spf_domain = std::move(spf_domain);
  for (const auto& d : dkim_domains) in.dkim.push_back({true, d});
  return in;
}

}  // namespace ipconfirm::responder

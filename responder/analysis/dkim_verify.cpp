#include "responder/analysis/dkim_verify.hpp"

#include <algorithm>
#include <map>

#include "mime/incoming.hpp"
#include "responder/analysis/dkim_canon.hpp"

namespace ipconfirm::responder {

std::string_view to_string(DkimResultCode code) {
  switch (code) {
    case DkimResultCode::none:
      return "none";
    case DkimResultCode::pass:
      return "pass";
    case DkimResultCode::fail:
      return "fail";
    case DkimResultCode::policy:
      return "policy";
    case DkimResultCode::neutral:
      return "neutral";
    case DkimResultCode::temperror:
      return "temperror";
    case DkimResultCode::permerror:
      return "permerror";
  }
  return "permerror";
}

std::string report_text(std::string_view text, std::size_t max) {
  std::string out = mime::to_valid_utf8(text);
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  mime::cap_utf8(out, max);
  return out;
}

DkimKeyOutcome find_dkim_keys(const DkimSignature& sig, const DnsSource& dns, DnsNeeds& needs) {
  DkimKeyOutcome out;
  out.key_name = sig.selector + "._domainkey." + sig.domain;
  auto permerror = [&](std::string why) {
    out.code = DkimResultCode::permerror;
    out.error = std::move(why);
    return std::move(out);
  };
  auto qname = normalise_query_name(out.key_name);
  if (!qname) return permerror("the key name " + out.key_name.substr(0, 300) + " is not valid");
  const DnsResult* answer = dns.find(*qname, RrType::txt);
  if (!answer) {
    needs.add(*qname, RrType::txt);
    out.pending = true;
    out.code = DkimResultCode::temperror;
    out.error = "key lookup not done yet";
    return out;
  }
  switch (answer->status) {
    case DnsStatus::ok:
      break;
    case DnsStatus::nxdomain:
    case DnsStatus::nodata:
      return permerror("no key published at " + out.key_name + " (" +
                       std::string(to_string(answer->status)) + ")");
    case DnsStatus::temperror:
      out.code = DkimResultCode::temperror;
      out.error = "key lookup for " + out.key_name +
                  " failed: " + (answer->detail.empty() ? "temporary DNS error" : answer->detail);
      return out;
    case DnsStatus::permerror:
      return permerror("key lookup for " + out.key_name +
                       " failed: " + (answer->detail.empty() ? "DNS error" : answer->detail));
  }
  std::string first_error;
  const DkimKeyType want = key_type_of(sig.algorithm);
  const std::string_view want_hash = hash_name(hash_of(sig.algorithm));
  std::size_t tried = 0;
  for (const auto& rec : answer->records) {
    if (rec.type != RrType::txt) continue;
    if (tried++ >= kDkimMaxKeyRecords) break;
    DkimKeyRecord key = parse_dkim_key(rec.text);
    std::string why;
    if (!key.ok) {
      why = key.error;
    } else if (key.revoked) {
      why = "the key at " + out.key_name + " is revoked (empty p=)";
    } else if (key.key_type != want) {
      why = "the key at " + out.key_name + " is k=" + key.key_type_name +
            " but a=" + sig.algorithm_name +
            " needs k=" + (want == DkimKeyType::ed25519 ? "ed25519" : "rsa");
    } else if (!key.hashes.empty() &&
               std::find(key.hashes.begin(), key.hashes.end(), want_hash) == key.hashes.end()) {
      why = "the key record's h= does not allow " + std::string(want_hash);
    } else if (key.strict && !sig.identity.empty() &&
               !identity_within(sig.identity, sig.domain, /*strict=*/true)) {
      why = "the key has t=s but i= is a subdomain of d=";
    } else {
      DkimPublicKey pk = DkimPublicKey::load(key.public_key, key.key_type, why);
      if (pk.ok()) {
        out.keys.push_back(std::move(pk));
        out.records.push_back(std::move(key));
        continue;
      }
    }
    if (first_error.empty()) first_error = why;
  }
  if (out.keys.empty()) {
    if (first_error.empty()) first_error = "no key record at " + out.key_name;
    return permerror(first_error);
  }
  out.code = DkimResultCode::pass;
  return out;
}

std::string signed_header_data(const std::vector<RawField>& fields,
                               const std::vector<std::string>& lower_names,
                               const DkimSignature& sig, std::size_t signature_field) {
  std::string data;
  // For each name, the index below which the next instance is searched (bottom up).
  std::map<std::string_view, std::size_t> next_below;
  for (const auto& name : sig.signed_headers) {
    auto [it, inserted] = next_below.try_emplace(name, fields.size());
    std::size_t i = it->second;
    while (i > 0) {
      --i;
      if (lower_names[i] == name) {
        canonicalize_header(data, fields[i], sig.header_canon);
        break;
      }
    }
    it->second = i;
  }
  const DkimTag* b = sig.tags.find("b");
  const RawField& self = fields.at(signature_field);
  data += canonicalize_signature_field(self, sig.header_canon, b ? b->span_begin : 0,
                                       b ? b->span_end : 0);
  return data;
}

}  // namespace ipconfirm::responder

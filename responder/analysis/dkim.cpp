#include "responder/analysis/dkim.hpp"

#include <algorithm>

#include "core/ascii.hpp"
#include "responder/analysis/dkim_crypto.hpp"

namespace ipconfirm::responder {

struct DkimCheck::State {
  std::string header;  // our copy; every view below points into it
  RawHeader raw;
  std::vector<std::string> lower_names;
  struct Sig {
    std::size_t field = 0;
    DkimSignature sig;
    std::optional<std::size_t> hasher;
  };
  std::vector<Sig> sigs;               // the first max_signatures DKIM-Signature fields, parsed
  std::vector<std::size_t> unchecked;  // fields of the next ones, listed as not checked
  std::size_t total_signatures = 0;
  std::size_t from_fields = 0;
  ArcChain arc;
  DkimBodyHashers hashers;
  DkimOptions options;
};

DkimResultCode DkimResults::overall() const {
  if (signatures.empty()) return DkimResultCode::none;
  for (const auto& s : signatures)
    if (s.result == DkimResultCode::pass) return DkimResultCode::pass;
  return signatures.front().result;
}

DkimCheck::DkimCheck(std::string_view raw_header, const DkimOptions& options)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.options = options;
  s.header.assign(raw_header.substr(0, std::min(raw_header.size(), kDkimMaxHeaderBytes)));
  s.raw = split_raw_header(s.header);
  if (raw_header.size() > kDkimMaxHeaderBytes) s.raw.truncated = true;
  s.lower_names.reserve(s.raw.fields.size());
  for (const auto& f : s.raw.fields) s.lower_names.push_back(ascii::lower(f.name));
  for (std::size_t i = 0; i < s.raw.fields.size(); ++i) {
    if (s.lower_names[i] == "from") ++s.from_fields;
    if (s.lower_names[i] != "dkim-signature") continue;
    ++s.total_signatures;
    if (s.sigs.size() >= options.max_signatures) {
      if (s.unchecked.size() < kDkimMaxListedUnchecked) s.unchecked.push_back(i);
      continue;
    }
    State::Sig sig;
    sig.field = i;
    sig.sig = parse_dkim_signature(s.raw.fields[i].value, DkimSignatureKind::dkim);
    if (sig.sig.ok)
      sig.hasher = s.hashers.add({sig.sig.body_canon, hash_of(sig.sig.algorithm), sig.sig.length});
    s.sigs.push_back(std::move(sig));
  }
  s.arc = read_arc_chain(s.raw.fields, s.lower_names);
  if (s.arc.body_key) s.hashers.add(*s.arc.body_key);
}

DkimCheck::~DkimCheck() = default;
DkimCheck::DkimCheck(DkimCheck&&) noexcept = default;
DkimCheck& DkimCheck::operator=(DkimCheck&&) noexcept = default;

DkimBodyHashers& DkimCheck::body() {
  return state_->hashers;
}

void DkimCheck::end_body() {
  state_->hashers.finish();
}

std::size_t DkimCheck::signature_count() const {
  return state_->total_signatures;
}

bool DkimCheck::has_arc() const {
  return state_->arc.present;
}

namespace {

std::string join(const std::vector<std::string>& names, std::string_view sep) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += sep;
    out += n;
  }
  return out;
}

}  // namespace

DkimResults DkimCheck::verify(const DnsSource& dns, std::int64_t now) const {
  const State& s = *state_;
  DkimResults out;
  out.header_truncated = s.raw.truncated;
  for (const auto& entry : s.sigs) {
    const DkimSignature& sig = entry.sig;
    DkimSignatureResult r;
    r.domain = report_text(sig.domain);
    r.selector = report_text(sig.selector);
    r.identity = report_text(sig.identity);
    r.algorithm = report_text(sig.algorithm_name, 40);
    r.canonicalization =
        std::string(to_string(sig.header_canon)) + "/" + std::string(to_string(sig.body_canon));
    r.signed_headers = sig.signed_headers;
    r.length = sig.length;
    r.timestamp = sig.timestamp;
    r.expiration = sig.expiration;
    if (!sig.body_hash.empty()) r.body_hash_expected = encode_base64(sig.body_hash);
    if (!sig.domain.empty() && !sig.selector.empty())
      r.key_name = report_text(sig.selector + "._domainkey." + sig.domain);
    auto finish = [&](DkimResultCode code, const std::string& error) {
      r.result = code;
      r.error = report_text(error, 1000);
      out.signatures.push_back(std::move(r));
    };

    if (!sig.ok) {
      finish(DkimResultCode::permerror, "the signature is malformed: " + sig.error);
      continue;
    }
    const auto signed_from = static_cast<std::size_t>(
        std::count(sig.signed_headers.begin(), sig.signed_headers.end(), "from"));
    if (signed_from == 0) {
      finish(DkimResultCode::permerror,
             "h= does not include From, which every signature must sign (RFC 6376 §5.4)");
      continue;
    }
    DkimKeyOutcome keys = find_dkim_keys(sig, dns, out.needs);
    if (keys.pending) {
      out.complete = false;
      finish(DkimResultCode::temperror, keys.error);
      continue;
    }
    if (keys.code != DkimResultCode::pass) {
      finish(keys.code, keys.error);
      continue;
    }
    r.key_bits = keys.keys.front().bits();
    r.testing = keys.records.front().testing;

    // The body.
    const DkimBodyHasher* hasher = entry.hasher ? &s.hashers.at(*entry.hasher) : nullptr;
    if (!hasher || !hasher->finished() || hasher->digest().empty()) {
      finish(DkimResultCode::temperror, "the body hash was not computed");
      continue;
    }
    r.body_hash_computed = encode_base64(hasher->digest());
    r.body_length = hasher->canonical_length();
    r.body_hash_ok = hasher->digest() == sig.body_hash;

    // The header signature, with each usable key in turn.
    const std::string data = signed_header_data(s.raw.fields, s.lower_names, sig, entry.field);
    for (std::size_t k = 0; k < keys.keys.size(); ++k) {
      if (keys.keys[k].verify(sig.algorithm, data, sig.signature)) {
        r.header_signature_ok = true;
        r.key_bits = keys.keys[k].bits();
        r.testing = keys.records[k].testing;
        break;
      }
    }

    if (!r.body_hash_ok) {
      finish(DkimResultCode::fail,
             "body hash mismatch: the body was changed after signing (computed " +
                 r.body_hash_computed + ", signature says bh=" + r.body_hash_expected + ")");
      continue;
    }
    if (!r.header_signature_ok) {
      finish(DkimResultCode::fail, "the signature does not verify: a signed header field (" +
                                       join(sig.signed_headers, ":") +
                                       ") was changed after signing, or the key at " + r.key_name +
                                       " is not the one that signed");
      continue;
    }
    if (sig.algorithm == DkimAlgorithm::rsa_sha1) {
      finish(DkimResultCode::policy,
             "signed with rsa-sha1, which must not be accepted (RFC 8301); sign with rsa-sha256");
      continue;
    }
    if (keys.keys.front().type() == DkimKeyType::rsa && r.key_bits < 1024) {
      finish(DkimResultCode::policy, "the RSA key has " + std::to_string(r.key_bits) +
                                         " bits; keys under 1024 bits are not accepted "
                                         "(RFC 8301)");
      continue;
    }
    if (sig.expiration && *sig.expiration + s.options.clock_skew < now) {
      r.expired = true;
      finish(DkimResultCode::policy,
             "the signature expired (x=" + std::to_string(*sig.expiration) + ")");
      continue;
    }
    if (sig.timestamp && *sig.timestamp > now + s.options.clock_skew) {
      finish(DkimResultCode::policy,
             "the signature is dated in the future (t=" + std::to_string(*sig.timestamp) + ")");
      continue;
    }
    if (s.from_fields > signed_from) {
      finish(DkimResultCode::policy,
             "the message has " + std::to_string(s.from_fields) +
                 " From fields but the signature covers " + std::to_string(signed_from) +
                 ": an unsigned From could be the one displayed (RFC 6376 §8.15)");
      continue;
    }
    finish(DkimResultCode::pass, "");
  }
  for (std::size_t field : s.unchecked) {
    DkimSignature sig = parse_dkim_signature(s.raw.fields[field].value, DkimSignatureKind::dkim);
    DkimSignatureResult r;
    r.result = DkimResultCode::policy;
    r.checked = false;
    r.domain = report_text(sig.domain);
    r.selector = report_text(sig.selector);
    r.algorithm = report_text(sig.algorithm_name, 40);
    r.error = "not checked: only the first " + std::to_string(s.options.max_signatures) +
              " signatures are verified";
    out.signatures.push_back(std::move(r));
  }
  out.not_listed = s.total_signatures - s.sigs.size() - s.unchecked.size();
  return out;
}

DnsNeeds DkimCheck::key_needs(const DnsSource& dns) const {
  const State& s = *state_;
  DnsNeeds needs;
  // The signatures verify() looks a key up for: well-formed and signing From.
  for (const auto& entry : s.sigs) {
    const DkimSignature& sig = entry.sig;
    if (sig.ok && std::find(sig.signed_headers.begin(), sig.signed_headers.end(), "from") !=
                      sig.signed_headers.end())
      find_dkim_keys(sig, dns, needs);
  }
  find_arc_keys(s.arc, dns, needs);
  return needs;
}

ArcResult DkimCheck::verify_arc(const DnsSource& dns) const {
  const State& s = *state_;
  return responder::verify_arc(s.arc, s.raw.fields, s.lower_names, s.hashers, dns);
}

DkimCheck check_message(std::string_view message, const DkimOptions& options) {
  std::string normalised;
  bool bare_lf = false;
  for (std::size_t i = 0; i < message.size(); ++i) {
    if (message[i] == '\n' && (i == 0 || message[i - 1] != '\r')) {
      bare_lf = true;
      break;
    }
  }
  if (bare_lf) {
    normalised.reserve(message.size() + message.size() / 32);
    for (std::size_t i = 0; i < message.size(); ++i) {
      if (message[i] == '\n' && (i == 0 || message[i - 1] != '\r')) normalised.push_back('\r');
      normalised.push_back(message[i]);
    }
    message = normalised;
  }
  MessageParts parts = split_message(message);
  DkimCheck check(parts.header, options);
  check.body().feed(parts.body);
  check.end_body();
  return check;
}

nlohmann::ordered_json to_json(const DkimSignatureResult& r) {
  nlohmann::ordered_json j;
  j["result"] = std::string(to_string(r.result));
  j["domain"] = r.domain;
  j["selector"] = r.selector;
  j["algorithm"] = r.algorithm;
  j["key_bits"] = r.key_bits > 0 ? nlohmann::ordered_json(r.key_bits) : nlohmann::ordered_json();
  j["canonicalization"] = r.canonicalization;
  j["signed_headers"] = r.signed_headers;
  j["body_hash_expected"] = r.body_hash_expected;
  j["body_hash_computed"] = r.body_hash_computed;
  j["error"] = r.error;
  j["identity"] = r.identity;
  j["key_name"] = r.key_name;
  j["checked"] = r.checked;
  j["testing"] = r.testing;
  j["length"] = r.length ? nlohmann::ordered_json(*r.length) : nlohmann::ordered_json();
  j["body_length"] = r.body_length;
  j["timestamp"] = r.timestamp ? nlohmann::ordered_json(*r.timestamp) : nlohmann::ordered_json();
  j["expiration"] = r.expiration ? nlohmann::ordered_json(*r.expiration) : nlohmann::ordered_json();
  j["expired"] = r.expired;
  return j;
}

nlohmann::ordered_json to_json(const DkimResults& results) {
  auto list = nlohmann::ordered_json::array();
  for (const auto& r : results.signatures) list.push_back(to_json(r));
  return list;
}

std::vector<Hint> dkim_hints(const DkimResults& results, std::string_view from_domain) {
  std::vector<Hint> hints;
  auto add = [&](std::string code, std::string severity, std::string text) {
    for (const auto& h : hints)
      if (h.code == code && h.text == text) return;
    hints.push_back({std::move(code), std::move(severity), std::move(text)});
  };
  if (results.signatures.empty()) {
    std::string where = from_domain.empty() ? std::string("your domain") : std::string(from_domain);
    add("dkim-none", "warning",
        "The message has no DKIM signature. Sign outgoing mail with DKIM for " + where +
            " (rsa-sha256 with a 2048-bit key, or ed25519-sha256 next to it) and publish the "
            "public key at <selector>._domainkey." +
            (from_domain.empty() ? std::string("<your domain>") : std::string(from_domain)) +
            "; without DKIM, DMARC rests on SPF alone, which breaks when mail is forwarded.");
    return hints;
  }
  const bool any_pass = results.overall() == DkimResultCode::pass;
  for (const auto& r : results.signatures) {
    const std::string who = "The DKIM signature of d=" + r.domain + " (s=" + r.selector + ")";
    switch (r.result) {
      case DkimResultCode::pass:
        break;
      case DkimResultCode::fail:
        if (!r.body_hash_ok) {
          add("dkim-fail", any_pass ? "warning" : "error",
              who +
                  " fails: the body was changed after signing (a footer added by a list or "
                  "a gateway?). Body hash computed: " +
                  r.body_hash_computed + "; in the signature (bh=): " + r.body_hash_expected + "." +
                  (r.header_signature_ok ? " The signed header fields are intact." : ""));
        } else {
          add("dkim-fail", any_pass ? "warning" : "error",
              who +
                  " fails: a signed header field was changed after signing, or the key "
                  "published at " +
                  r.key_name + " is not the one that signed. Signed header fields: " +
                  join(r.signed_headers, ", ") + ".");
        }
        break;
      case DkimResultCode::temperror:
        add("dkim-temperror", "warning",
            who + " could not be checked now: " + r.error +
                ". This is a temporary DNS problem, not a verdict; check that the DNS servers "
                "of " +
                r.domain + " answer.");
        break;
      case DkimResultCode::permerror:
        if (r.error.rfind("no key published at ", 0) == 0) {
          add("dkim-no-key", any_pass ? "warning" : "error",
              who + " names a key that is not in DNS: publish the key at " + r.key_name +
                  " (a TXT record \"v=DKIM1; k=rsa; p=...\").");
        } else {
          add("dkim-permerror", any_pass ? "warning" : "error",
              who + " cannot be verified: " + r.error + ".");
        }
        break;
      case DkimResultCode::policy:
        if (r.algorithm == "rsa-sha1" && r.header_signature_ok) {
          add("dkim-sha1", "error",
              who +
                  " uses rsa-sha1, which receivers must not accept (RFC 8301): sign with "
                  "rsa-sha256.");
        } else if (r.key_bits > 0 && r.key_bits < 1024 && r.algorithm.rfind("rsa", 0) == 0) {
          // reported below as dkim-weak-key
        } else if (r.expired || r.error.find("future") != std::string::npos) {
          add("dkim-expired", any_pass ? "warning" : "error",
              who + " is not accepted: " + r.error +
                  ". Check the signing server's clock and the signature lifetime (x=).");
        } else {
          add("dkim-policy", any_pass ? "info" : "warning",
              who + " is not accepted: " + r.error + ".");
        }
        break;
      case DkimResultCode::none:
      case DkimResultCode::neutral:
        break;
    }
    if (r.key_bits > 0 && r.algorithm.rfind("rsa", 0) == 0 && r.key_bits < 2048) {
      if (r.key_bits < 1024) {
        add("dkim-weak-key", "error",
            "The RSA key at " + r.key_name + " has " + std::to_string(r.key_bits) +
                " bits: receivers ignore keys under 1024 bits (RFC 8301). Publish a 2048-bit key "
                "under a new selector and sign with it.");
      } else {
        add("dkim-weak-key", "info",
            "The RSA key at " + r.key_name + " has " + std::to_string(r.key_bits) +
                " bits: enough today, but 2048 bits is the recommended size; publish a "
                "2048-bit key under a new selector when you next rotate.");
      }
    }
    if (r.length && r.result == DkimResultCode::pass) {
      add("dkim-body-length", "warning",
          who + " covers only the first " + std::to_string(*r.length) + " bytes of the body (l=" +
              std::to_string(*r.length) + "; the body has " + std::to_string(r.body_length) +
              "): anyone can append text and keep the signature valid. Sign without l=.");
    }
    if (r.testing) {
      add("dkim-testing", "info",
          "The key at " + r.key_name +
              " has t=y (testing mode): some receivers treat the signature as if it were "
              "absent. Remove t=y from the key record once DKIM works.");
    }
  }
  return hints;
}

}  // namespace ipconfirm::responder

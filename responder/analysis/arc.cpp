#include "responder/analysis/arc.hpp"

#include "core/ascii.hpp"
#include "responder/analysis/dkim_crypto.hpp"

namespace ipconfirm::responder {

namespace {

enum class ArcKind { results, message, seal };

// The instance of an ARC-Authentication-Results value: it must start with "i=" N ";" (RFC 8617
// §4.1.1), folding white space allowed around each part. Also returns the authserv-id after it.
std::optional<int> aar_instance(std::string_view value, std::string& authserv_id) {
  auto is_ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  std::size_t p = 0;
  auto skip = [&] {
    while (p < value.size() && is_ws(value[p])) ++p;
  };
  skip();
  if (p >= value.size() || value[p] != 'i') return std::nullopt;
  ++p;
  skip();
  if (p >= value.size() || value[p] != '=') return std::nullopt;
  ++p;
  skip();
  std::size_t digits = p;
  int n = 0;
  while (p < value.size() && ascii::is_digit(value[p]) && p - digits < 3) {
    n = n * 10 + (value[p] - '0');
    ++p;
  }
  if (p == digits || (p < value.size() && ascii::is_digit(value[p]))) return std::nullopt;
  skip();
  if (p >= value.size() || value[p] != ';') return std::nullopt;
  ++p;
  skip();
  std::size_t id_begin = p;
  while (p < value.size() && !is_ws(value[p]) && value[p] != ';') ++p;
  authserv_id = std::string(value.substr(id_begin, std::min<std::size_t>(p - id_begin, 255)));
  return n;
}

// The i= of an AMS or AS whose value may be otherwise broken: from the tag-list if it parses.
std::optional<int> tag_instance(const DkimSignature& sig) {
  if (!sig.tags.ok) return std::nullopt;
  const DkimTag* i = sig.tags.find("i");
  if (!i || i->value.empty() || i->value.size() > 2) return std::nullopt;
  int n = 0;
  for (char c : i->value) {
    if (!ascii::is_digit(c)) return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

std::string kind_name(ArcKind kind) {
  switch (kind) {
    case ArcKind::results:
      return "ARC-Authentication-Results";
    case ArcKind::message:
      return "ARC-Message-Signature";
    case ArcKind::seal:
      return "ARC-Seal";
  }
  return "ARC field";
}

}  // namespace

ArcChain read_arc_chain(const std::vector<RawField>& fields,
                        const std::vector<std::string>& lower_names) {
  ArcChain chain;
  struct Found {
    std::optional<std::size_t> field[3];
    DkimSignature message, seal;
    std::string authserv_id;
  };
  std::vector<Found> found(kArcMaxInstances + 1);
  auto broken = [&](std::string why, int instance) {
    chain.structure_error = std::move(why);
    chain.failed_instance = instance;
    chain.sets.clear();
    return std::move(chain);
  };
  std::string first_error;
  int first_error_instance = 0;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const std::string& name = lower_names[i];
    ArcKind kind;
    if (name == "arc-authentication-results") {
      kind = ArcKind::results;
    } else if (name == "arc-message-signature") {
      kind = ArcKind::message;
    } else if (name == "arc-seal") {
      kind = ArcKind::seal;
    } else {
      continue;
    }
    chain.present = true;
    std::optional<int> instance;
    std::string authserv_id;
    DkimSignature sig;
    if (kind == ArcKind::results) {
      instance = aar_instance(fields[i].value, authserv_id);
    } else {
      sig = parse_dkim_signature(fields[i].value, kind == ArcKind::message
                                                      ? DkimSignatureKind::arc_message
                                                      : DkimSignatureKind::arc_seal);
      instance = tag_instance(sig);
    }
    if (!instance || *instance < 1 || *instance > kArcMaxInstances) {
      if (first_error.empty()) {
        first_error = kind_name(kind) + " without a valid instance tag i= (1 to 50)";
        if (!sig.tags.ok && kind != ArcKind::results) first_error += ": " + sig.tags.error;
      }
      continue;
    }
    Found& f = found[static_cast<std::size_t>(*instance)];
    auto slot = static_cast<std::size_t>(kind);
    if (f.field[slot]) {
      if (first_error.empty()) {
        first_error = "two " + kind_name(kind) + " fields with i=" + std::to_string(*instance);
        first_error_instance = *instance;
      }
      continue;
    }
    f.field[slot] = i;
    if (kind == ArcKind::results) f.authserv_id = std::move(authserv_id);
    if (kind == ArcKind::message) f.message = std::move(sig);
    if (kind == ArcKind::seal) f.seal = std::move(sig);
    chain.instances = std::max(chain.instances, *instance);
  }
  if (!chain.present) return chain;
  if (!first_error.empty()) return broken(first_error, first_error_instance);
  for (int k = 1; k <= chain.instances; ++k) {
    Found& f = found[static_cast<std::size_t>(k)];
    for (auto kind : {ArcKind::results, ArcKind::message, ArcKind::seal}) {
      if (!f.field[static_cast<std::size_t>(kind)])
        return broken("ARC set " + std::to_string(k) + " has no " + kind_name(kind), k);
    }
    ArcSet set;
    set.instance = k;
    set.results_field = *f.field[0];
    set.message_field = *f.field[1];
    set.seal_field = *f.field[2];
    set.message = std::move(f.message);
    set.seal = std::move(f.seal);
    set.authserv_id = std::move(f.authserv_id);
    chain.sets.push_back(std::move(set));
  }
  const DkimSignature& newest = chain.sets.back().message;
  if (newest.ok)
    chain.body_key = DkimBodyHashKey{newest.body_canon, hash_of(newest.algorithm), newest.length};
  return chain;
}

namespace {

// Header data an ARC-Seal signs (RFC 8617 §5.1.1): every set up to `upto`, in increasing order,
// each as AAR, AMS, AS, relaxed; the last seal with its b= deleted and no final CRLF.
std::string seal_data(const ArcChain& chain, const std::vector<RawField>& fields,
                      std::size_t upto) {
  std::string data;
  for (std::size_t k = 0; k < upto; ++k) {
    const ArcSet& set = chain.sets[k];
    canonicalize_header(data, fields[set.results_field], DkimCanon::relaxed);
    canonicalize_header(data, fields[set.message_field], DkimCanon::relaxed);
    if (k + 1 < upto) {
      canonicalize_header(data, fields[set.seal_field], DkimCanon::relaxed);
    } else {
      const DkimTag* b = set.seal.tags.find("b");
      data += canonicalize_signature_field(fields[set.seal_field], DkimCanon::relaxed,
                                           b ? b->span_begin : 0, b ? b->span_end : 0);
    }
  }
  return data;
}

// Why a signature of the chain is not acceptable before any crypto (RFC 8301), or "".
std::string weak_algorithm(const DkimSignature& sig) {
  if (sig.algorithm == DkimAlgorithm::rsa_sha1) return "uses rsa-sha1 (not allowed, RFC 8301)";
  return {};
}

bool verify_with_keys(const DkimKeyOutcome& keys, const DkimSignature& sig, std::string_view data,
                      std::string& why) {
  for (const auto& key : keys.keys) {
    if (key.type() == DkimKeyType::rsa && key.bits() < 1024) {
      why = "its RSA key has " + std::to_string(key.bits()) + " bits (under 1024, RFC 8301)";
      continue;
    }
    if (key.verify(sig.algorithm, data, sig.signature)) return true;
    why = "its signature does not verify";
  }
  if (why.empty()) why = "no usable key";
  return false;
}

}  // namespace

ArcKeys find_arc_keys(const ArcChain& chain, const DnsSource& dns, DnsNeeds& needs) {
  ArcKeys keys;
  if (!chain.present || !chain.structure_error.empty() || chain.sets.empty()) return keys;
  keys.seals.resize(chain.sets.size());
  const ArcSet& newest = chain.sets.back();
  if (newest.message.ok && weak_algorithm(newest.message).empty()) {
    keys.message = find_dkim_keys(newest.message, dns, needs);
    keys.pending |= keys.message.pending;
  }
  for (std::size_t k = 0; k < chain.sets.size(); ++k) {
    const DkimSignature& seal = chain.sets[k].seal;
    if (seal.ok && weak_algorithm(seal).empty()) {
      keys.seals[k] = find_dkim_keys(seal, dns, needs);
      keys.pending |= keys.seals[k].pending;
    }
  }
  return keys;
}

ArcResult verify_arc(const ArcChain& chain, const std::vector<RawField>& fields,
                     const std::vector<std::string>& lower_names, const DkimBodyHashers& body,
                     const DnsSource& dns) {
  ArcResult out;
  if (!chain.present) return out;
  out.instances = chain.instances;
  auto fail = [&](std::string why, int instance) {
    out.result = "fail";
    out.reason = report_text(why, 1000);
    out.failed_instance = instance;
    return out;
  };
  if (!chain.structure_error.empty()) return fail(chain.structure_error, chain.failed_instance);

  const int n = static_cast<int>(chain.sets.size());
  for (int k = n; k >= 1; --k) {
    const ArcSet& set = chain.sets[static_cast<std::size_t>(k - 1)];
    ArcSetResult r;
    r.instance = k;
    r.domain = report_text(set.seal.domain);
    r.selector = report_text(set.seal.selector);
    r.authserv_id = report_text(set.authserv_id);
    r.cv = set.seal.chain;
    r.seal = "not checked";
    r.message = "not checked";
    out.sets.push_back(std::move(r));
  }

  // Every key this validation may need, asked at once.
  const ArcSet& newest = chain.sets.back();
  ArcKeys found = find_arc_keys(chain, dns, out.needs);
  const DkimKeyOutcome& ams_keys = found.message;
  const std::vector<DkimKeyOutcome>& seal_keys = found.seals;
  const bool pending = found.pending;

  // Steps that need no key first.
  if (newest.seal.ok && newest.seal.chain == "fail")
    return fail("ARC-Seal " + std::to_string(n) + " reports cv=fail: the chain was already broken",
                n);
  for (int k = n; k >= 1; --k) {
    const DkimSignature& seal = chain.sets[static_cast<std::size_t>(k - 1)].seal;
    if (!seal.ok) return fail("ARC-Seal " + std::to_string(k) + ": " + seal.error, k);
    std::string weak = weak_algorithm(seal);
    if (!weak.empty()) return fail("ARC-Seal " + std::to_string(k) + " " + weak, k);
    const char* want = k == 1 ? "none" : "pass";
    if (seal.chain != want)
      return fail(
          "ARC-Seal " + std::to_string(k) + " has cv=" + seal.chain + ", expected cv=" + want, k);
  }
  if (!newest.message.ok)
    return fail("ARC-Message-Signature " + std::to_string(n) + ": " + newest.message.error, n);
  if (std::string weak = weak_algorithm(newest.message); !weak.empty())
    return fail("ARC-Message-Signature " + std::to_string(n) + " " + weak, n);

  if (pending) {
    out.complete = false;
    out.result = "temperror";
    out.reason = "key lookups not done yet";
    return out;
  }

  // The newest ARC-Message-Signature.
  auto key_problem = [&](const DkimKeyOutcome& keys, std::string what, int k) {
    if (keys.code == DkimResultCode::temperror) {
      out.result = "temperror";
      out.reason = report_text(what + ": " + keys.error, 1000);
      out.failed_instance = k;
      return true;
    }
    if (keys.code != DkimResultCode::pass) {
      fail(what + ": " + keys.error, k);
      return true;
    }
    return false;
  };
  const std::string ams_name = "ARC-Message-Signature " + std::to_string(n);
  if (key_problem(ams_keys, ams_name, n)) return out;
  const DkimBodyHasher* hasher = chain.body_key ? body.find(*chain.body_key) : nullptr;
  if (!hasher || !hasher->finished() || hasher->digest().empty())
    return fail(ams_name + ": the body was not hashed", n);
  if (hasher->digest() != newest.message.body_hash) {
    out.sets.front().message = "fail";
    return fail(ams_name + ": body hash mismatch (computed " + encode_base64(hasher->digest()) +
                    ", bh=" + encode_base64(newest.message.body_hash) + ")",
                n);
  }
  {
    std::string data =
        signed_header_data(fields, lower_names, newest.message, newest.message_field);
    std::string why;
    if (!verify_with_keys(ams_keys, newest.message, data, why)) {
      out.sets.front().message = "fail";
      return fail(ams_name + ": " + why, n);
    }
  }
  out.sets.front().message = "pass";

  // Every seal, newest first.
  for (int k = n; k >= 1; --k) {
    const auto idx = static_cast<std::size_t>(k - 1);
    const std::string name = "ARC-Seal " + std::to_string(k);
    if (key_problem(seal_keys[idx], name, k)) return out;
    std::string data = seal_data(chain, fields, idx + 1);
    std::string why;
    ArcSetResult& r = out.sets[static_cast<std::size_t>(n - k)];
    if (!verify_with_keys(seal_keys[idx], chain.sets[idx].seal, data, why)) {
      r.seal = "fail";
      return fail(name + ": " + why, k);
    }
    r.seal = "pass";
  }
  out.result = "pass";
  return out;
}

nlohmann::ordered_json to_json(const ArcResult& result) {
  nlohmann::ordered_json j;
  j["result"] = result.result;
  j["instances"] = result.instances;
  j["reason"] = result.reason;
  j["failed_instance"] = result.failed_instance;
  auto sets = nlohmann::ordered_json::array();
  for (const auto& s : result.sets) {
    nlohmann::ordered_json e;
    e["instance"] = s.instance;
    e["domain"] = s.domain;
    e["selector"] = s.selector;
    e["authserv_id"] = s.authserv_id;
    e["cv"] = s.cv;
    e["seal"] = s.seal;
    e["message_signature"] = s.message;
    sets.push_back(std::move(e));
  }
  j["sets"] = std::move(sets);
  return j;
}

std::vector<Hint> arc_hints(const ArcResult& result) {
  std::vector<Hint> hints;
  if (result.result == "fail") {
    std::string where;
    for (const auto& s : result.sets) {
      if (s.instance == result.failed_instance && !s.domain.empty()) {
        where = " (set " + std::to_string(s.instance) + ", sealed by " + s.domain +
                (s.authserv_id.empty() ? "" : " for " + s.authserv_id) + ")";
      }
    }
    hints.push_back({"arc-fail", "warning",
                     "The ARC chain on this message does not validate" + where + ": " +
                         result.reason +
                         ". Receivers that use ARC to trust mail forwarded by lists and "
                         "forwarders will ignore it. If you run the forwarder that added it, "
                         "check its ARC signing key and that nothing changes the message after "
                         "sealing."});
  }
  return hints;
}

}  // namespace ipconfirm::responder

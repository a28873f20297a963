// libFuzzer target for the DKIM and ARC signature parsers and the verification around them: the
// input is a tag-list (parsed as a DKIM-Signature, an ARC-Message-Signature and an ARC-Seal), and
// also a whole message (header, body) whose signatures are checked against a key table in which
// every key name answers with the same hostile record. Nothing may crash, loop or grow without
// bound, and every result must serialise as JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "responder/analysis/dkim.hpp"

using namespace ipconfirm::responder;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// Answers every TXT question with the input itself (a hostile key record).
class EchoDns : public DnsSource {
 public:
  explicit EchoDns(std::string_view text) {
    result_.status = DnsStatus::ok;
    DnsRecord rec;
    rec.type = RrType::txt;
    rec.text = std::string(text);
    result_.records.push_back(rec);
  }
  const DnsResult* find(std::string_view, RrType) const override { return &result_; }

 private:
  DnsResult result_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  DkimTagList tags = parse_tag_list(input);
  check(tags.ok || !tags.error.empty());
  check(tags.tags.size() <= kDkimMaxTags);
  for (const auto& t : tags.tags) {
    check(t.span_begin <= t.span_end && t.span_end <= input.size());
    check(t.value.size() <= t.span_end - t.span_begin);
  }
  for (auto kind :
       {DkimSignatureKind::dkim, DkimSignatureKind::arc_message, DkimSignatureKind::arc_seal}) {
    DkimSignature sig = parse_dkim_signature(input, kind);
    check(sig.ok == sig.error.empty());
    check(sig.signature.size() <= kDkimMaxSignatureBytes);
    check(sig.body_hash.size() <= kDkimMaxBodyHashBytes);
    check(sig.signed_headers.size() <= kDkimMaxSignedHeaders);
    if (sig.ok && kind != DkimSignatureKind::dkim) check(sig.instance >= 1 && sig.instance <= 50);
  }

  // The input as a message, and as the value of each signature field on top of a message.
  EchoDns dns(input);
  for (int variant = 0; variant < 4; ++variant) {
    std::string message;
    switch (variant) {
      case 0:
        message = std::string(input);
        break;
      case 1:
        message =
            "DKIM-Signature:" + std::string(input) + "\r\nFrom: a@example.org\r\n\r\nbody\r\n";
        break;
      case 2:
        message = "ARC-Seal:" + std::string(input) +
                  "\r\nARC-Message-Signature:" + std::string(input) +
                  "\r\nARC-Authentication-Results: i=1; x.example; none\r\n\r\nbody\r\n";
        break;
      default:
        message = "From: a@example.org\r\n\r\n" + std::string(input);
        break;
    }
    DkimCheck dkim = check_message(message);
    DkimResults r = dkim.verify(dns, 1'800'000'000);
    check(r.complete);  // every question has an answer here
    check(r.signatures.size() + r.not_listed == dkim.signature_count());
    check(r.signatures.size() <= 10 + kDkimMaxListedUnchecked);
    (void)to_json(r).dump();  // throws (and so fails) on invalid UTF-8
    for (const auto& h : dkim_hints(r, "example.org")) (void)h.text.size();
    ArcResult a = dkim.verify_arc(dns);
    check(a.complete);
    check(a.instances >= 0 && a.instances <= 50);
    (void)to_json(a).dump();  // throws (and so fails) on invalid UTF-8
    (void)arc_hints(a);
  }
  return 0;
}

// Fuzz target for the requirement checks on a hostile header: the RFC 5322 form checks
// (message_format.hpp), the List-Unsubscribe parser (list_unsubscribe.hpp) and the whole
// evaluation with the built-in rule table. The first byte of the input says whether SMTPUTF8
// was used (its low bit) and whether the header was cut before it came (bit 1); the rest is the
// header block. Every promise of the interfaces is
// checked: bounded findings, bounded URIs, printable URIs, a verdict for every provider, JSON
// that serialises.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "responder/analysis/list_unsubscribe.hpp"
#include "responder/analysis/message_format.hpp"
#include "responder/analysis/requirements.hpp"

using namespace ipconfirm::responder;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool smtputf8 = (data[0] & 1) != 0;
  const bool cut = (data[0] & 2) != 0;
  const std::string_view header(reinterpret_cast<const char*>(data + 1), size - 1);

  const MessageFormat format = check_message_format(header, smtputf8, cut);
  require(!cut || format.truncated);
  require(format.findings.size() <= kMaxFormatFindings);
  require(format.error_count() >= format.omitted);
  for (const auto& f : format.findings) {
    require(!f.code.empty() && !f.text.empty());
    for (char c : f.text) require(static_cast<unsigned char>(c) >= 0x20);
  }
  (void)to_json(format).dump();

  for (const auto& field : split_raw_header(header).fields) {
    const UnsubscribeUriList list = parse_list_unsubscribe(field.value);
    require(list.uris.size() <= kMaxUnsubscribeUris);
    require(list.well_formed == list.error.empty());
    for (const auto& uri : list.uris) {
      require(uri.size() <= kMaxUnsubscribeUriBytes);
      for (char c : uri) require(c > 0x20 && c < 0x7f);
    }
    (void)is_one_click_post(field.value);
  }

  const RequirementsTableLoad& table = builtin_requirements_table();
  require(table.table.has_value());
  RequirementsInput in;
  in.raw_header = header;
  in.smtputf8 = smtputf8;
  in.header_cut = cut;
  const RequirementsResult r = evaluate_requirements(*table.table, in);
  require(r.rules.size() == table.table->rules.size());
  (void)to_json(r).dump();
  (void)requirements_hints(r);
  require(requirements_summary(r).size() == kMailboxProviders.size());
  return 0;
}

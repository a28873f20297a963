#include "responder/dns/dns_message.hpp"

#include <algorithm>
#include <array>

namespace ipconfirm::responder {

namespace {

constexpr std::size_t kHeaderSize = 12;
constexpr int kMaxPointerJumps = 64;
constexpr int kMaxCnameLinks = 16;
constexpr std::uint16_t kClassIn = 1;
constexpr std::uint16_t kTypeSoa = 6;

// A bounds-checked reader over one message. Every accessor reports failure instead of reading
// past the end; `pos` only moves on success.
class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::size_t pos() const { return pos_; }
  std::size_t size() const { return size_; }

  bool u8(std::uint8_t& out) {
    if (size_ - pos_ < 1) return false;
    out = data_[pos_++];
    return true;
  }
  bool u16(std::uint16_t& out) {
    if (size_ - pos_ < 2) return false;
    out = static_cast<std::uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t& out) {
    if (size_ - pos_ < 4) return false;
    out = (std::uint32_t{data_[pos_]} << 24) | (std::uint32_t{data_[pos_ + 1]} << 16) |
          (std::uint32_t{data_[pos_ + 2]} << 8) | std::uint32_t{data_[pos_ + 3]};
    pos_ += 4;
    return true;
  }
  bool skip(std::size_t n) {
    if (size_ - pos_ < n) return false;
    pos_ += n;
    return true;
  }
  bool bytes(std::size_t n, std::string& out) {
    if (size_ - pos_ < n) return false;
    out.append(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return true;
  }
  const std::uint8_t* at(std::size_t offset) const { return data_ + offset; }

  // Reads a possibly compressed name starting at the current position into `out` (labels
  // joined with '.', "." for the root) and leaves the position after the name's bytes at this
  // place in the message. Returns an error text, or nullptr on success.
  const char* name(std::string& out) {
    out.clear();
    std::size_t cursor = pos_;
    // Pointers must land strictly before the first label read so far (RFC 1035 §4.1.4 says
    // "prior occurrence"); `limit` shrinks with every jump, so the walk always terminates.
    std::size_t limit = pos_;
    std::size_t end_after = 0;  // where the caller continues: after the first pointer or root
    bool jumped = false;
    int jumps = 0;
    bool cut = false;
    for (;;) {
      if (cursor >= size_) return "name runs past the end";
      const std::uint8_t len = data_[cursor];
      if ((len & 0xC0) == 0xC0) {
        if (size_ - cursor < 2) return "compression pointer runs past the end";
        const std::size_t target = (std::size_t{len & 0x3Fu} << 8) | data_[cursor + 1];
        if (!jumped) end_after = cursor + 2;
        if (target >= limit) return "compression pointer does not point backwards";
        if (++jumps > kMaxPointerJumps) return "too many compression pointers";
        jumped = true;
        limit = target;
        cursor = target;
        continue;
      }
      if ((len & 0xC0) != 0) return "unsupported label type";
      if (len == 0) {
        if (!jumped) end_after = cursor + 1;
        break;
      }
      if (size_ - cursor - 1 < len) return "label runs past the end";
      if (!cut) {
        if (!out.empty()) out += '.';
        out.append(reinterpret_cast<const char*>(data_ + cursor + 1), len);
        if (out.size() > kMaxNameText) {
          out.resize(kMaxNameText);
          cut = true;
        }
      }
      cursor += 1 + std::size_t{len};
    }
    if (out.empty()) out = ".";
    pos_ = end_after;
    return nullptr;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

ParsedAnswer fail(ParsedAnswer& answer, std::string error) {
  answer.ok = false;
  answer.answers.clear();
  answer.omitted.clear();
  answer.negative_ttl.reset();
  answer.error = std::move(error);
  return std::move(answer);
}

bool is_known_type(std::uint16_t type) {
  switch (type) {
    case 1:
    case 2:
    case 5:
    case 12:
    case 15:
    case 16:
    case 28:
      return true;
    default:
      return false;
  }
}

// Parses the RDATA of a known type into `record`. `r` stands at the start of the RDATA, which
// is `rdlength` bytes long; returns an error text or nullptr.
const char* parse_rdata(Reader& r, std::uint16_t rdlength, DnsRecord& record) {
  const std::size_t start = r.pos();
  const std::size_t end = start + rdlength;
  switch (record.type) {
    case RrType::a: {
      if (rdlength != 4) return "A record with a length other than 4";
      const std::uint8_t* p = r.at(start);
      record.address =
          IpAddress::from_v4((std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
                             (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]});
      r.skip(4);
      return nullptr;
    }
    case RrType::aaaa: {
      if (rdlength != 16) return "AAAA record with a length other than 16";
      std::array<std::uint8_t, 16> bytes{};
      std::copy_n(r.at(start), 16, bytes.begin());
      record.address = IpAddress::from_v6(bytes);
      r.skip(16);
      return nullptr;
    }
    case RrType::mx:
      if (!r.u16(record.preference)) return "MX record too short";
      [[fallthrough]];
    case RrType::ptr:
    case RrType::cname:
    case RrType::ns: {
      if (const char* error = r.name(record.text)) return error;
      if (r.pos() != end) return "name does not fill the RDATA";
      return nullptr;
    }
    case RrType::txt: {
      // One or more <length><bytes> strings that exactly fill the RDATA (RFC 1035 §3.3.14).
      while (r.pos() < end) {
        std::uint8_t len = 0;
        r.u8(len);
        if (end - r.pos() < len) return "TXT string runs past the RDATA";
        r.bytes(len, record.text);
      }
      return nullptr;
    }
  }
  return "unknown type";
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

}  // namespace

std::string to_string(RrType type) {
  switch (type) {
    case RrType::a:
      return "A";
    case RrType::ns:
      return "NS";
    case RrType::cname:
      return "CNAME";
    case RrType::ptr:
      return "PTR";
    case RrType::mx:
      return "MX";
    case RrType::txt:
      return "TXT";
    case RrType::aaaa:
      return "AAAA";
  }
  return "TYPE" + std::to_string(static_cast<unsigned>(type));
}

std::string_view to_string(DnsStatus status) {
  switch (status) {
    case DnsStatus::ok:
      return "ok";
    case DnsStatus::nxdomain:
      return "nxdomain";
    case DnsStatus::nodata:
      return "nodata";
    case DnsStatus::temperror:
      return "temperror";
    case DnsStatus::permerror:
      return "permerror";
  }
  return "unknown";
}

ParsedAnswer parse_dns_answer(const std::uint8_t* data, std::size_t size) {
  ParsedAnswer answer;
  if (data == nullptr || size < kHeaderSize) return fail(answer, "shorter than a DNS header");
  Reader r(data, size);
  std::uint16_t id = 0, flags = 0, qdcount = 0, ancount = 0, nscount = 0, arcount = 0;
  r.u16(id);
  r.u16(flags);
  r.u16(qdcount);
  r.u16(ancount);
  r.u16(nscount);
  r.u16(arcount);
  if ((flags & 0x8000) == 0) return fail(answer, "not a response");
  answer.truncated = (flags & 0x0200) != 0;
  answer.rcode = static_cast<DnsRcode>(flags & 0x000F);

  std::string name;
  for (std::uint16_t i = 0; i < qdcount; ++i) {
    if (const char* error = r.name(name)) return fail(answer, std::string("question: ") + error);
    if (!r.skip(4)) return fail(answer, "question: ends early");
  }

  // Answer and authority sections; from the authority section only an SOA is used.
  const std::uint32_t total = std::uint32_t{ancount} + nscount;
  for (std::uint32_t i = 0; i < total; ++i) {
    const bool in_answer = i < ancount;
    const char* section = in_answer ? "answer: " : "authority: ";
    if (const char* error = r.name(name)) return fail(answer, section + std::string(error));
    std::uint16_t type = 0, klass = 0, rdlength = 0;
    std::uint32_t ttl = 0;
    if (!r.u16(type) || !r.u16(klass) || !r.u32(ttl) || !r.u16(rdlength))
      return fail(answer, section + std::string("record header ends early"));
    if (r.size() - r.pos() < rdlength)
      return fail(answer, section + std::string("RDATA runs past the end"));
    if (ttl & 0x80000000u) ttl = 0;
    const std::size_t rdata_end = r.pos() + rdlength;

    if (klass == kClassIn && in_answer && is_known_type(type) &&
        answer.answers.size() >= kMaxAnswerRecords) {
      const auto rr_type = static_cast<RrType>(type);
      auto it = std::find_if(answer.omitted.begin(), answer.omitted.end(),
                             [rr_type](const auto& entry) { return entry.first == rr_type; });
      if (it == answer.omitted.end())
        answer.omitted.emplace_back(rr_type, 1);
      else
        ++it->second;
      r.skip(rdlength);
    } else if (klass == kClassIn && in_answer && is_known_type(type)) {
      DnsRecord record;
      record.type = static_cast<RrType>(type);
      record.ttl = ttl;
      record.name = name;
      if (const char* error = parse_rdata(r, rdlength, record))
        return fail(answer, section + to_string(record.type) + ": " + error);
      answer.answers.push_back(std::move(record));
    } else if (klass == kClassIn && !in_answer && type == kTypeSoa) {
      // MNAME, RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM (RFC 1035 §3.3.13).
      std::string ignored;
      std::uint32_t fields[5] = {};
      if (const char* error = r.name(ignored)) return fail(answer, section + std::string(error));
      if (const char* error = r.name(ignored)) return fail(answer, section + std::string(error));
      for (auto& field : fields)
        if (!r.u32(field)) return fail(answer, "authority: SOA too short");
      if (r.pos() != rdata_end) return fail(answer, "authority: SOA does not fill the RDATA");
      const std::uint32_t minimum = std::min(ttl, (fields[4] & 0x80000000u) ? 0u : fields[4]);
      answer.negative_ttl = answer.negative_ttl ? std::min(*answer.negative_ttl, minimum) : minimum;
    } else {
      r.skip(rdlength);
    }
  }
  (void)id;
  (void)arcount;
  answer.ok = true;
  return answer;
}

DnsResult interpret_answer(const ParsedAnswer& answer, std::string_view qname, RrType type) {
  DnsResult result;
  if (!answer.ok) {
    result.status = DnsStatus::permerror;
    result.detail = "malformed answer: " + answer.error;
    return result;
  }
  if (answer.truncated) {
    result.status = DnsStatus::temperror;
    result.detail = "truncated answer";
    return result;
  }
  switch (answer.rcode) {
    case DnsRcode::noerror:
    case DnsRcode::nxdomain:
      break;
    case DnsRcode::formerr:
      return DnsResult{DnsStatus::permerror, {}, "FORMERR"};
    case DnsRcode::notimp:
      return DnsResult{DnsStatus::permerror, {}, "NOTIMP"};
    case DnsRcode::servfail:
      return DnsResult{DnsStatus::temperror, {}, "SERVFAIL"};
    case DnsRcode::refused:
      return DnsResult{DnsStatus::temperror, {}, "REFUSED"};
    default:
      return DnsResult{
          DnsStatus::temperror, {}, "RCODE " + std::to_string(static_cast<int>(answer.rcode))};
  }

  // Follow the CNAME chain from qname; the chain's TTLs bound the TTL of what it leads to.
  std::string owner(qname);
  std::uint32_t chain_ttl = UINT32_MAX;
  if (type != RrType::cname) {
    for (int link = 0; link < kMaxCnameLinks; ++link) {
      auto it = std::find_if(answer.answers.begin(), answer.answers.end(), [&](const auto& rec) {
        return rec.type == RrType::cname && same_name(rec.name, owner);
      });
      if (it == answer.answers.end()) break;
      chain_ttl = std::min(chain_ttl, it->ttl);
      owner = it->text;
    }
  }
  for (const auto& record : answer.answers) {
    if (record.type != type || !same_name(record.name, owner)) continue;
    result.records.push_back(record);
    result.records.back().ttl = std::min(record.ttl, chain_ttl);
  }
  for (const auto& [omitted_type, count] : answer.omitted)
    if (omitted_type == type) result.omitted += count;
  if (answer.rcode == DnsRcode::nxdomain) {
    result.records.clear();
    result.omitted = 0;
    result.status = DnsStatus::nxdomain;
    result.detail = "NXDOMAIN";
  } else if (result.records.empty()) {
    result.status = DnsStatus::nodata;
    result.detail = "no " + to_string(type) + " records";
  } else {
    result.status = DnsStatus::ok;
  }
  return result;
}

std::uint32_t cache_ttl(const DnsResult& result, std::optional<std::uint32_t> negative_ttl,
                        std::uint32_t max_ttl) {
  std::uint32_t ttl = 0;
  switch (result.status) {
    case DnsStatus::ok:
      if (result.records.empty()) return 0;
      ttl = UINT32_MAX;
      for (const auto& record : result.records) ttl = std::min(ttl, record.ttl);
      break;
    case DnsStatus::nxdomain:
    case DnsStatus::nodata:
      ttl = negative_ttl.value_or(60);
      break;
    case DnsStatus::temperror:
    case DnsStatus::permerror:
      return 0;
  }
  return std::min(ttl, max_ttl);
}

namespace {

// The end of the uncompressed first question's name (the offset after its root label), or 0.
std::size_t question_name_end(std::span<const std::uint8_t> m) {
  std::size_t i = kHeaderSize;
  while (i < m.size()) {
    const std::uint8_t len = m[i];
    if (len == 0) return i + 1;
    if ((len & 0xC0) != 0) return 0;  // a question name is never compressed
    i += 1 + std::size_t{len};
  }
  return 0;
}

bool one_question(std::span<const std::uint8_t> m) {
  return m.size() >= kHeaderSize && m[4] == 0 && m[5] == 1;
}

}  // namespace

std::string mix_case(std::string_view name, std::span<const std::uint8_t> bits) {
  std::string out(name);
  std::size_t bit = 0;
  const std::size_t total = bits.size() * 8;
  for (auto& c : out) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!letter || total == 0) continue;
    const bool upper = (bits[(bit % total) / 8] >> (bit % 8)) & 1;
    ++bit;
    c = upper ? static_cast<char>(c & ~0x20) : static_cast<char>(c | 0x20);
  }
  return out;
}

bool answers_query(std::span<const std::uint8_t> query, std::span<const std::uint8_t> answer) {
  if (!one_question(query) || !one_question(answer)) return false;
  if (query[0] != answer[0] || query[1] != answer[1] || (answer[2] & 0x80) == 0) return false;
  const std::size_t name_end = question_name_end(query);
  if (name_end == 0 || query.size() < name_end + 4 || answer.size() < name_end + 4) return false;
  return std::equal(query.begin() + kHeaderSize, query.begin() + name_end + 4,
                    answer.begin() + kHeaderSize);
}

bool question_is(std::span<const std::uint8_t> answer, std::string_view name, RrType type) {
  if (!one_question(answer)) return false;
  std::size_t i = kHeaderSize;
  std::size_t start = 0;
  while (start < name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    const std::size_t len = dot - start;
    if (i + 1 + len > answer.size() || answer[i] != len) return false;
    if (!std::equal(name.begin() + start, name.begin() + dot, answer.begin() + i + 1,
                    [](char c, std::uint8_t b) { return static_cast<std::uint8_t>(c) == b; }))
      return false;
    i += 1 + len;
    start = dot + 1;
  }
  if (i + 5 > answer.size() || answer[i] != 0) return false;
  const auto t = static_cast<std::uint16_t>(type);
  return answer[i + 1] == (t >> 8) && answer[i + 2] == (t & 0xFF) && answer[i + 3] == 0 &&
         answer[i + 4] == kClassIn;
}

bool lower_question_name(std::span<std::uint8_t> message) {
  if (!one_question(message)) return false;
  const std::size_t end = question_name_end(message);
  if (end == 0) return false;
  for (std::size_t i = kHeaderSize; i + 1 < end; i += 1 + std::size_t{message[i]})
    for (std::size_t j = i + 1; j <= i + message[i]; ++j)
      if (message[j] >= 'A' && message[j] <= 'Z')
        message[j] = static_cast<std::uint8_t>(message[j] | 0x20);
  return true;
}

std::size_t memory_bytes(const DnsResult& result) {
  // A heap block for a string that does not fit the small-string buffer.
  auto heap = [](const std::string& s) {
    return s.capacity() > 15 ? s.capacity() + 1 : std::size_t{0};
  };
  std::size_t bytes =
      sizeof(DnsResult) + heap(result.detail) + result.records.capacity() * sizeof(DnsRecord);
  for (const auto& record : result.records) bytes += heap(record.name) + heap(record.text);
  return bytes;
}

std::optional<std::string> normalise_query_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return std::nullopt;
  std::string out;
  out.reserve(name.size());
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return std::nullopt;
      label = 0;
      out += c;
      continue;
    }
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!allowed || ++label > 63) return std::nullopt;
    out += lower(c);
  }
  if (label == 0) return std::nullopt;
  return out;
}

}  // namespace ipconfirm::responder

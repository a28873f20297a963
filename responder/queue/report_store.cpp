#include "responder/queue/report_store.hpp"

#include <dirent.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <stdexcept>

#include "core/crc32.hpp"
#include "responder/queue/spool_fs.hpp"

namespace ipconfirm::responder {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMagic = "ipconfirm-report 1\n";
// A report's JSON is some kilobytes, every list in it bounded; a file this large is not ours.
constexpr std::size_t kMaxReportFileBytes = 8u << 20;
constexpr std::size_t kDigestLength = 64;
constexpr std::size_t kSecondsLength = 12;
constexpr std::size_t kCreatedLength = kSecondsLength + 1 + 6;  // "SSSSSSSSSSSS.UUUUUU"

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::string new_report_token() {
  unsigned char bytes[kReportTokenBytes];
  if (RAND_bytes(bytes, static_cast<int>(sizeof bytes)) != 1)
    throw std::runtime_error("RAND_bytes failed: no token for the report");
  // EVP_EncodeBlock writes standard base64 with padding and a NUL: 24 characters for 16 bytes.
  unsigned char b64[4 * ((kReportTokenBytes + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(b64, bytes, static_cast<int>(sizeof bytes));
  std::string token(reinterpret_cast<const char*>(b64), static_cast<std::size_t>(n));
  while (!token.empty() && token.back() == '=') token.pop_back();
  for (char& c : token) {  // RFC 4648 §5: the URL- and filename-safe alphabet
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  OPENSSL_cleanse(bytes, sizeof bytes);
  return token;
}

bool is_report_token(std::string_view token) {
  return token.size() == kReportTokenLength && std::all_of(token.begin(), token.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
         });
}

std::string report_token_digest(std::string_view token) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(token.data(), token.size(), md, &length, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0x0F];
  }
  return out;
}

std::string report_file_name(std::int64_t created_us, std::string_view digest) {
  const std::int64_t us = std::clamp<std::int64_t>(created_us, 0, 999999999999999999);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%012lld.%06lld.", static_cast<long long>(us / 1000000),
                static_cast<long long>(us % 1000000));
  return std::string(buf) + std::string(digest);
}

std::optional<ReportFileName> parse_report_file_name(std::string_view name) {
  if (name.size() != kCreatedLength + 1 + kDigestLength || name[kSecondsLength] != '.' ||
      name[kCreatedLength] != '.')
    return std::nullopt;
  const std::string_view seconds = name.substr(0, kSecondsLength);
  const std::string_view micros = name.substr(kSecondsLength + 1, 6);
  const std::string_view digest = name.substr(kCreatedLength + 1);
  auto digits = [](std::string_view d) {
    return std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(seconds) || !digits(micros) || !is_lower_hex(digest)) return std::nullopt;
  ReportFileName out;
  std::from_chars(seconds.data(), seconds.data() + seconds.size(), out.created);
  out.digest = std::string(digest);
  return out;
}

std::string serialize_stored_report(std::string_view json) {
  std::string out;
  out.reserve(json.size() + 64);
  out.append(kMagic);
  out.append("json ").append(std::to_string(json.size())).append("\n");
  out.append(json).append("\n");
  const std::uint32_t crc = crc32_ieee(out);
  out.append("crc32 ").append(crc32_hex(crc)).append("\n");
  return out;
}

std::optional<std::string> parse_stored_report(std::string_view in, std::string& why) {
  if (in.substr(0, kMagic.size()) != kMagic) {
    why = "not a version 1 stored report";
    return std::nullopt;
  }
  std::size_t pos = kMagic.size();
  const std::size_t eol = in.find('\n', pos);
  constexpr std::string_view kField = "json ";
  if (eol == std::string_view::npos || in.substr(pos, kField.size()) != kField ||
      eol - pos > kField.size() + 20) {
    why = "no json field";
    return std::nullopt;
  }
  const std::string_view digits = in.substr(pos + kField.size(), eol - pos - kField.size());
  std::size_t length = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
  if (ec != std::errc{} || end != digits.data() + digits.size() || digits.empty() ||
      (digits.size() > 1 && digits[0] == '0')) {
    why = "bad length";
    return std::nullopt;
  }
  pos = eol + 1;
  if (length > in.size() - pos || in.size() - pos - length < 1 || in[pos + length] != '\n') {
    why = "truncated in the json field";
    return std::nullopt;
  }
  const std::string_view json = in.substr(pos, length);
  pos += length + 1;
  const std::string_view trailer = in.substr(pos);
  if (trailer.size() != 15 || trailer.substr(0, 6) != "crc32 " || trailer.back() != '\n') {
    why = "bad or missing checksum line";
    return std::nullopt;
  }
  if (trailer.substr(6, 8) != crc32_hex(crc32_ieee(in.substr(0, pos)))) {
    why = "checksum mismatch";
    return std::nullopt;
  }
  return std::string(json);
}

std::string write_report_unsynced(const fs::path& spool_dir, const StoredReport& report) {
  if (!parse_report_file_name(report.name)) return "not a report name: " + report.name;
  const std::string bytes = serialize_stored_report(report.json);
  if (bytes.size() > kMaxReportFileBytes) return "report " + report.name + " is too large";
  const fs::path tmp = spool_dir / "tmp" / ("report." + report.name);
  const fs::path final_path = spool_dir / "reports" / report.name;
  int err = 0;
  spool_fs::Result r = spool_fs::write_new_file(tmp, bytes, &err);
  if (err == EEXIST) {  // a leftover of a failed rename
    ::unlink(tmp.c_str());
    r = spool_fs::write_new_file(tmp, bytes, &err);
  }
  if (!r.ok()) return r.detail;
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    std::string detail = spool_fs::failure("rename", tmp, errno).detail;
    ::unlink(tmp.c_str());
    return detail;
  }
  return {};
}

std::optional<std::string> read_stored_report(const fs::path& spool_dir, std::string_view name) {
  if (!parse_report_file_name(name)) return std::nullopt;
  std::string bytes;
  if (!spool_fs::read_file(spool_dir / "reports" / std::string(name), kMaxReportFileBytes, bytes)
           .ok())
    return std::nullopt;
  std::string why;
  return parse_stored_report(bytes, why);
}

std::string unlink_stored_report(const fs::path& spool_dir, std::string_view name) {
  if (!parse_report_file_name(name)) return "not a report name: " + std::string(name);
  const fs::path p = spool_dir / "reports" / std::string(name);
  if (::unlink(p.c_str()) == 0 || errno == ENOENT) return {};
  return spool_fs::failure("unlink", p, errno).detail;
}

std::optional<ReportIndex> ReportIndex::open(const fs::path& spool_dir,
                                             std::vector<std::string>& problems,
                                             std::string& error) {
  const fs::path dir = spool_dir / "reports";
  if (auto r = spool_fs::make_dir(dir); !r.ok()) {
    error = r.detail;
    return std::nullopt;
  }
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    error = spool_fs::failure("opendir", dir, errno).detail;
    return std::nullopt;
  }
  ReportIndex index;
  for (;;) {
    errno = 0;
    const dirent* e = ::readdir(d);
    if (!e) {
      if (errno != 0) {
        error = spool_fs::failure("readdir", dir, errno).detail;
        ::closedir(d);
        return std::nullopt;
      }
      break;
    }
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (!parse_report_file_name(name)) {
      problems.push_back("reports/" + name + ": not a report's name, left alone");
      continue;
    }
    index.add(name);
  }
  ::closedir(d);
  return index;
}

void ReportIndex::add(const std::string& name) {
  auto parsed = parse_report_file_name(name);
  if (!parsed || by_digest_.count(parsed->digest)) return;
  by_age_.insert(name);
  by_digest_.emplace(std::move(parsed->digest), name);
}

std::vector<std::string> ReportIndex::prune(std::int64_t now, std::int64_t lifetime_seconds,
                                            std::size_t max_reports) {
  std::vector<std::string> gone;
  while (!by_age_.empty()) {
    const std::string& oldest = *by_age_.begin();
    const auto parsed = parse_report_file_name(oldest);  // every name here parses
    const bool expired = parsed->created + lifetime_seconds <= now;
    if (!expired && by_age_.size() <= max_reports) break;
    by_digest_.erase(parsed->digest);
    gone.push_back(oldest);
    by_age_.erase(by_age_.begin());
  }
  return gone;
}

std::optional<std::string> ReportIndex::find(std::string_view token) const {
  auto it = by_digest_.find(report_token_digest(token));
  if (it == by_digest_.end()) return std::nullopt;
  return it->second;
}

}  // namespace ipconfirm::responder

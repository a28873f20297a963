#include "responder/report_pages.hpp"

#include <openssl/evp.h>

#include <cctype>

#include "responder/queue/report_store.hpp"

namespace ipconfirm::responder {

namespace {

// Everything is refused but the page's own style elements: no script, no inline style
// attribute, no image, font, media, frame, form target or <base>.
constexpr std::string_view kCspBase =
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void add_common_headers(HttpResponse& r, const std::string& csp) {
  r.headers.emplace_back("Content-Security-Policy", csp);
  r.headers.emplace_back("X-Robots-Tag", "noindex, nofollow");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
}

std::string sha256_base64(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &length, EVP_sha256(), nullptr);
  unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(b64, md, static_cast<int>(length));
  return std::string(reinterpret_cast<const char*>(b64), static_cast<std::size_t>(n));
}

// Position of `needle` in `hay` from `from`, ignoring ASCII case; npos when absent.
std::size_t find_nocase(std::string_view hay, std::string_view needle, std::size_t from) {
  for (std::size_t i = from; i + needle.size() <= hay.size(); ++i) {
    bool match = true;
    for (std::size_t k = 0; k < needle.size() && match; ++k)
      match = std::tolower(static_cast<unsigned char>(hay[i + k])) == needle[k];
    if (match) return i;
  }
  return std::string_view::npos;
}

}  // namespace

std::optional<ReportRequest> parse_report_path(std::string_view path) {
  if (path.substr(0, kReportPathPrefix.size()) != kReportPathPrefix) return std::nullopt;
  std::string_view rest = path.substr(kReportPathPrefix.size());
  ReportRequest out;
  auto ends_with = [&](std::string_view suffix) {
    return rest.size() > suffix.size() && rest.substr(rest.size() - suffix.size()) == suffix;
  };
  if (ends_with(".json")) {
    out.form = ReportForm::json;
    rest.remove_suffix(5);
  } else if (ends_with(".txt")) {
    out.form = ReportForm::text;
    rest.remove_suffix(4);
  }
  if (!is_report_token(rest)) return std::nullopt;
  out.token = std::string(rest);
  return out;
}

HttpResponse report_not_found() {
  HttpResponse r = http_error(404);
  add_common_headers(r, std::string(kCspBase) + "; sandbox");
  return r;
}

HttpResponse report_rate_limited(int retry_after_seconds) {
  HttpResponse r = http_error(429);
  r.headers.emplace_back("Retry-After", std::to_string(retry_after_seconds));
  add_common_headers(r, std::string(kCspBase) + "; sandbox");
  return r;
}

HttpResponse report_found(ReportForm form, std::string body) {
  HttpResponse r;
  r.status = 200;
  switch (form) {
    case ReportForm::page: {
      r.content_type = "text/html; charset=utf-8";
      const std::string hashes = style_hashes(body);
      add_common_headers(r,
                         std::string(kCspBase) + (hashes.empty() ? "" : "; style-src " + hashes));
      break;
    }
    case ReportForm::json:
      r.content_type = "application/json";
      add_common_headers(r, std::string(kCspBase) + "; sandbox");
      break;
    case ReportForm::text:
      r.content_type = "text/plain; charset=utf-8";
      add_common_headers(r, std::string(kCspBase) + "; sandbox");
      break;
  }
  r.body = std::move(body);
  return r;
}

std::string style_hashes(std::string_view html) {
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t open = find_nocase(html, "<style", pos);
    if (open == std::string_view::npos) break;
    const std::size_t after = open + 6;
    pos = after;
    if (after >= html.size()) break;
    const char next = html[after];
    if (next != '>' && next != '/' && !std::isspace(static_cast<unsigned char>(next))) continue;
    const std::size_t start_end = html.find('>', after);
    if (start_end == std::string_view::npos) break;
    const std::size_t close = find_nocase(html, "</style", start_end + 1);
    if (close == std::string_view::npos) break;
    // The browser hashes the element's text after the parser's newline normalisation (CR LF
    // and lone CR become LF).
    std::string text;
    const std::string_view raw = html.substr(start_end + 1, close - start_end - 1);
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\r') {
        text += '\n';
        if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
      } else {
        text += raw[i];
      }
    }
    if (!out.empty()) out += ' ';
    out += "'sha256-" + sha256_base64(text) + "'";
    pos = close + 7;
  }
  return out;
}

}  // namespace ipconfirm::responder

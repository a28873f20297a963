// What GET /r/... answers, without the sockets or the disk: which report and which form a path
// asks for, and the responses with the header fields every report response carries.
//
// Paths: /r/TOKEN (the page, HTML), /r/TOKEN.json (the report's JSON, the document the reply
// mail attaches as ipconfirm.json), /r/TOKEN.txt (the text the reply mail carries). Nothing
// else exists under /r/: no listing, no search, no other suffix.
//
// No such report, for whatever reason (a token never issued, one whose report expired or was
// pushed out by newer ones, a malformed path, a file that fails its checks), gets the one
// response of report_not_found(): the same status, header fields and body, so that the answer
// tells an expired token from an unknown one by nothing. (The lookup itself treats them alike
// too: responder/queue/report_store.hpp.)
//
// Header fields of every report response, found or not (RFC 9110, W3C CSP 3, Fetch):
//   X-Robots-Tag: noindex, nofollow       no search engine lists a page it was given
//   Referrer-Policy: no-referrer           a link followed from the page does not carry its URL
//   Content-Security-Policy                 no script at all; for a page, its <style> elements
//                                           by their SHA-256 and nothing else (no inline style
//                                           attribute, image, font, frame, form or base)
//   X-Frame-Options: DENY                   for browsers without frame-ancestors
//   Cross-Origin-Resource-Policy: same-origin
// and, from the listener (responder/http/http_router.hpp), Cache-Control: no-store and
// X-Content-Type-Options: nosniff.
//
// Pure: no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "responder/http/http_router.hpp"

namespace ipconfirm::responder {

inline constexpr std::string_view kReportPathPrefix = "/r/";

enum class ReportForm { page, json, text };

struct ReportRequest {
  std::string token;  // has a token's form (is_report_token)
  ReportForm form = ReportForm::page;
};

// The report and form `path` asks for; nullopt for anything that is not one of the three
// forms above with a well-formed token.
std::optional<ReportRequest> parse_report_path(std::string_view path);

// 404, for every report that does not exist (see above).
HttpResponse report_not_found();
// 429 with Retry-After, when a client asks for report pages faster than its limit.
HttpResponse report_rate_limited(int retry_after_seconds);
// 200 with `body` in `form` (page: text/html, json: application/json, text: text/plain, all
// UTF-8) and the header fields above; a page's CSP names the hashes of its <style> elements.
HttpResponse report_found(ReportForm form, std::string body);

// "'sha256-BASE64'" for each <style> element of `html` (its text between <style ...> and
// </style>, as the browser hashes it), separated by spaces; "" when there is none.
std::string style_hashes(std::string_view html);

}  // namespace ipconfirm::responder

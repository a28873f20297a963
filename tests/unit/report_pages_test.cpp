// The report pages: which paths exist under /r/, the one 404 for every missing report, the
// header fields, the Content-Security-Policy's style hashes, and the page and mail designs
// (rendered from the golden reports, with hostile values in every place a sender controls).
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "responder/http/http_router.hpp"
#include "responder/reply/render.hpp"
#include "responder/report_pages.hpp"

using namespace ipconfirm::responder;
using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

const std::string kToken = "AbCdEfGhIjKlMnOpQrSt-_";

std::string header(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

std::string sha256_b64(const std::string& text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(text.data(), text.size(), md, &n, EVP_sha256(), nullptr);
  unsigned char out[64];
  const int k = EVP_EncodeBlock(out, md, static_cast<int>(n));
  return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(k));
}

json golden(const std::string& stem) {
  std::ifstream in(fs::path(IPCONFIRM_TEST_DATA) / "report" / (stem + ".json"));
  std::stringstream s;
  s << in.rdbuf();
  return json::parse(s.str());
}

Templates builtin() {
  std::string error;
  auto t = load_templates("", error);
  REQUIRE_MESSAGE(t, error);
  return *t;
}

std::string style_of(const std::string& html) {
  const auto open = html.find("<style>");
  const auto close = html.find("</style>");
  REQUIRE(open != std::string::npos);
  REQUIRE(close != std::string::npos);
  return html.substr(open + 7, close - open - 7);
}

// A report whose every sender-controlled value is markup.
json hostile() {
  json r = golden("05-hostile-values");
  r["helo"]["name"] = "<script>alert('helo')</script>";
  r["rdns"]["ptr"] = json::array({"\"><img src=x onerror=alert(1)>.evil.test"});
  r["envelope"]["mail_from"] = "<b>eve</b>@evil.test";
  r["message"]["message_id"] = "<x@y><script>alert(2)</script>";
  r["received"][0]["from_helo"] = "</li><script>alert(3)</script>";
  r["path"]["notes"] = json::array({"<style>body{display:none}</style>"});
  r["hints"][0]["text"] = "<a href=\"javascript:alert(4)\">click</a> & more";
  r["report_url"] = "https://ipconfirm.example.org/r/" + kToken;
  r["report_expires"] = "Mon, 30 Nov 2026 09:20:00 +0000";
  return r;
}

}  // namespace

TEST_CASE("report pages: the three forms of a token, and nothing else") {
  auto page = parse_report_path("/r/" + kToken);
  REQUIRE(page);
  CHECK(page->token == kToken);
  CHECK(page->form == ReportForm::page);
  auto j = parse_report_path("/r/" + kToken + ".json");
  REQUIRE(j);
  CHECK(j->form == ReportForm::json);
  CHECK(j->token == kToken);
  auto t = parse_report_path("/r/" + kToken + ".txt");
  REQUIRE(t);
  CHECK(t->form == ReportForm::text);
  for (const std::string& bad : std::vector<std::string>{
           "/r/", "/r/.json", "/r/" + kToken + "/", "/r/" + kToken + ".html",
           "/r/" + kToken + ".json.json", "/r/" + kToken.substr(1), "/r/" + kToken + "x",
           "/x/" + kToken, "/r/" + kToken + "%2Ejson", "/r//" + kToken, "/r/../r/" + kToken, "/r/*",
           "/r/?list", "/R/" + kToken})
    CHECK_MESSAGE(!parse_report_path(bad), bad);
}

TEST_CASE("report pages: every missing report gets the same 404, with the privacy headers") {
  const HttpResponse a = report_not_found();
  const HttpResponse b = report_not_found();
  CHECK(a.status == 404);
  const std::string date = "Mon, 30 Nov 2026 09:20:00 GMT";
  CHECK(format_http_response(a, false, true, date) == format_http_response(b, false, true, date));
  CHECK(header(a, "X-Robots-Tag") == "noindex, nofollow");
  CHECK(header(a, "Referrer-Policy") == "no-referrer");
  CHECK(header(a, "Content-Security-Policy").find("default-src 'none'") != std::string::npos);
  const std::string bytes = format_http_response(a, false, true, date);
  CHECK(bytes.find("\r\nX-Content-Type-Options: nosniff\r\n") != std::string::npos);
  CHECK(bytes.find("\r\nCache-Control: no-store\r\n") != std::string::npos);

  const HttpResponse limited = report_rate_limited(12);
  CHECK(limited.status == 429);
  CHECK(header(limited, "Retry-After") == "12");
  CHECK(header(limited, "Referrer-Policy") == "no-referrer");
}

TEST_CASE("report pages: found, in each form, with its content type and CSP") {
  const HttpResponse j = report_found(ReportForm::json, "{}\n");
  CHECK(j.status == 200);
  CHECK(j.content_type == "application/json");
  CHECK(j.body == "{}\n");
  CHECK(header(j, "Content-Security-Policy").find("sandbox") != std::string::npos);
  const HttpResponse t = report_found(ReportForm::text, "text\n");
  CHECK(t.content_type == "text/plain; charset=utf-8");
  const std::string html = "<html><head><style>a{}</style></head><body>x</body></html>";
  const HttpResponse p = report_found(ReportForm::page, html);
  CHECK(p.content_type == "text/html; charset=utf-8");
  const std::string csp = header(p, "Content-Security-Policy");
  CHECK(csp.find("default-src 'none'") != std::string::npos);
  CHECK(csp.find("style-src 'sha256-" + sha256_b64("a{}") + "'") != std::string::npos);
  CHECK(csp.find("unsafe") == std::string::npos);
  CHECK(csp.find("script-src") == std::string::npos);  // default-src 'none' covers scripts
  CHECK(header(p, "X-Robots-Tag") == "noindex, nofollow");
  CHECK(header(p, "Referrer-Policy") == "no-referrer");
  CHECK(header(p, "X-Frame-Options") == "DENY");
}

TEST_CASE("report pages: style hashes as the browser computes them") {
  CHECK(style_hashes("<p>no style</p>") == "");
  CHECK(style_hashes("<style></style>") == "'sha256-" + sha256_b64("") + "'");
  // SHA-256 of the empty string, in base64 (a well-known value).
  CHECK(sha256_b64("") == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  CHECK(style_hashes("<STYLE media=\"all\">b{}</Style>") == "'sha256-" + sha256_b64("b{}") + "'");
  CHECK(style_hashes("<style>\r\na{}\rb{}</style>") == "'sha256-" + sha256_b64("\na{}\nb{}") + "'");
  CHECK(style_hashes("<styles>x</styles>") == "");
  CHECK(style_hashes("<style>a{}</style><style>b{}</style>") ==
        "'sha256-" + sha256_b64("a{}") + "' 'sha256-" + sha256_b64("b{}") + "'");
}

TEST_CASE("report page: hostile values are text, never markup, and the CSP holds") {
  const Templates t = builtin();
  const std::string page = render_page(t, hostile());
  // The one style element is ours; no script element, no style attribute, no event handler.
  CHECK(page.find("<script") == std::string::npos);
  CHECK(page.find("<img") == std::string::npos);
  CHECK(page.find(" style=") == std::string::npos);
  CHECK(page.find("href=\"javascript") == std::string::npos);
  std::size_t styles = 0;
  for (auto p = page.find("<style"); p != std::string::npos; p = page.find("<style", p + 1))
    ++styles;
  CHECK(styles == 1);
  // The values are there, escaped.
  CHECK(page.find("&lt;script&gt;alert(&apos;helo&apos;)&lt;/script&gt;") != std::string::npos);
  CHECK(page.find("&lt;b&gt;eve&lt;/b&gt;@evil.test") != std::string::npos);
  CHECK(page.find("&lt;style&gt;body{display:none}&lt;/style&gt;") != std::string::npos);
  // The CSP of the response names exactly that style element.
  const HttpResponse r = report_found(ReportForm::page, page);
  CHECK(header(r, "Content-Security-Policy").find("'sha256-" + sha256_b64(style_of(page)) + "'") !=
        std::string::npos);
  // The JSON below, folded, escaped too; the links to the other forms are relative.
  CHECK(page.find("<details>") != std::string::npos);
  CHECK(page.find("&quot;report_url&quot;") != std::string::npos);
  CHECK(page.find("href=\"" + kToken + ".json\"") != std::string::npos);
  CHECK(page.find("href=\"" + kToken + ".txt\"") != std::string::npos);

  const Rendered mail = render_report(t, hostile());
  CHECK(mail.html.find("<script") == std::string::npos);
  CHECK(mail.html.find("<img") == std::string::npos);
  CHECK(mail.html.find("&lt;script&gt;alert(&apos;helo&apos;)&lt;/script&gt;") !=
        std::string::npos);
}

TEST_CASE("report page: the verdict comes first, then one card per finding") {
  const Templates t = builtin();
  for (const char* stem : {"01-all-good", "02-no-ptr", "03-dynamic-listed", "04-ipv6-temperror"}) {
    CAPTURE(stem);
    const json r = golden(stem);
    const std::string page = render_page(t, r);
    const auto verdict = page.find("<section class=\"verdict tone-");
    REQUIRE(verdict != std::string::npos);
    const auto body = page.find("<body>");
    CHECK(page.find("<section", body) == verdict);  // the first section of the page
    std::size_t cards = 0;
    for (auto p = page.find("<article class=\"card"); p != std::string::npos;
         p = page.find("<article class=\"card", p + 1)) {
      CHECK(p > verdict);
      ++cards;
    }
    CHECK(cards == std::max<std::size_t>(1, r["hints"].size()));
    // Without a stored report (no report_url) there are no links to other forms.
    CHECK(page.find(".json\"") == std::string::npos);
  }
  // The box takes the worst finding's tone.
  CHECK(render_page(t, golden("01-all-good")).find("verdict tone-ok") != std::string::npos);
  CHECK(render_page(t, golden("02-no-ptr")).find("verdict tone-error") != std::string::npos);
  CHECK(render_page(t, golden("04-ipv6-temperror")).find("verdict tone-warning") !=
        std::string::npos);
  json info = golden("02-no-ptr");
  info["hints"] = json::array({info["hints"][2]});  // no-tls alone
  CHECK(render_page(t, info).find("verdict tone-info") != std::string::npos);
}

TEST_CASE("report page and mail: one design, the same colours") {
  // Every colour the mail's inline styles use (from the view's tones) is in the page's style
  // sheet, over reports that reach each tone.
  const Templates t = builtin();
  std::set<std::string> mail_colours;
  json info = golden("02-no-ptr");
  info["hints"] = json::array({info["hints"][2]});
  std::vector<json> reports = {golden("01-all-good"), golden("02-no-ptr"),
                               golden("03-dynamic-listed"), golden("04-ipv6-temperror"), info};
  std::string css;
  for (const auto& r : reports) {
    const std::string html = render_report(t, r).html;
    // Every "#rrggbb" (six lower-case hex digits).
    for (std::size_t at = html.find('#'); at != std::string::npos; at = html.find('#', at + 1)) {
      const std::string c = html.substr(at, 7);
      if (c.size() == 7 && c.find_first_not_of("0123456789abcdef", 1) == std::string::npos)
        mail_colours.insert(c);
    }
    css = style_of(render_page(t, r));
  }
  CHECK(mail_colours.size() >= 20);
  for (const auto& c : mail_colours) CHECK_MESSAGE(css.find(c) != std::string::npos, c);
}

TEST_CASE("report mail: the text and the HTML link to the page when there is one") {
  const Templates t = builtin();
  json r = golden("02-no-ptr");
  const Rendered without = render_report(t, r);
  CHECK(without.text.find("on the web") == std::string::npos);
  CHECK(without.html.find("Open this report") == std::string::npos);
  r["report_url"] = "https://ipconfirm.example.org/r/" + kToken;
  r["report_expires"] = "Mon, 30 Nov 2026 09:20:00 +0000";
  const Rendered with = render_report(t, r);
  CHECK(with.text.find("This report on the web, until Mon, 30 Nov 2026 09:20:00 +0000:\n  "
                       "https://ipconfirm.example.org/r/" +
                       kToken + "\n") != std::string::npos);
  CHECK(with.html.find("<a href=\"https://ipconfirm.example.org/r/" + kToken + "\"") !=
        std::string::npos);
  CHECK(render_text(t, r) == with.text);
  // The text stays within 76 columns.
  std::istringstream lines(with.text);
  for (std::string line; std::getline(lines, line);) CHECK_MESSAGE(line.size() <= 76, line);
}

TEST_CASE("report page: a template folder without a page template gets the built-in one") {
  const fs::path dir =
      fs::temp_directory_path() / ("ipconfirm-page-tpl-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const char* name : {"subject.mustache", "report.txt.mustache", "report.html.mustache"})
    std::ofstream(dir / name) << "{{connection.ip}}\n";
  std::string error;
  auto t = load_templates(dir.string(), error);
  REQUIRE_MESSAGE(t, error);
  CHECK(render_page(*t, golden("02-no-ptr")).find("<section class=\"verdict") != std::string::npos);
  std::ofstream(dir / "report.page.html.mustache") << "<p>{{connection.ip}}</p>\n";
  t = load_templates(dir.string(), error);
  REQUIRE_MESSAGE(t, error);
  CHECK(render_page(*t, golden("02-no-ptr")) == "<p>198.51.100.7</p>\n");
  std::ofstream(dir / "report.page.html.mustache") << "{{#open}}\n";
  CHECK_FALSE(load_templates(dir.string(), error));
  CHECK(error.find("report.page.html.mustache") != std::string::npos);
  fs::remove_all(dir);
}

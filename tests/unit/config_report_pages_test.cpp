// [http] keys of the report pages: public_url, report_days, max_reports and the request limit.
#include <doctest/doctest.h>

#include "config/config.hpp"

using namespace ipconfirm::config;

namespace {
LoadResult parse(const std::string& text) {
  return parse_config(text, "t.toml");
}
const std::string kBase =
    "hostname = \"mx.example.test\"\ndomains = [\"example.test\"]\n"
    "[smtp]\nlisten = [\"127.0.0.1:2525\"]\n[http]\nlisten = [\"127.0.0.1:8025\"]\n";
}  // namespace

TEST_CASE("config: report pages are off by default") {
  LoadResult r = parse(kBase);
  REQUIRE_MESSAGE(r.config, r.error);
  CHECK(r.config->http.public_url.empty());
  CHECK(r.config->http.report_days == 7);
  CHECK(r.config->http.max_reports == 10000);
  CHECK(r.config->http.max_report_requests_per_ip_per_minute == 60);
}

TEST_CASE("config: report page keys load; a trailing slash is dropped; days may be fractions") {
  LoadResult r = parse(kBase +
                       "public_url = \"https://ipconfirm.example.org/\"\nreport_days = 0.5\n"
                       "max_reports = 3\nmax_report_requests_per_ip_per_minute = 0\n");
  REQUIRE_MESSAGE(r.config, r.error);
  CHECK(r.config->http.public_url == "https://ipconfirm.example.org");
  CHECK(r.config->http.report_days == 0.5);
  CHECK(r.config->http.max_reports == 3);
  CHECK(r.config->http.max_report_requests_per_ip_per_minute == 0);
  r = parse(kBase + "public_url = \"http://[2001:db8::1]:8025/ipconfirm\"\nreport_days = 30\n");
  REQUIRE_MESSAGE(r.config, r.error);
  CHECK(r.config->http.public_url == "http://[2001:db8::1]:8025/ipconfirm");
  CHECK(r.config->http.report_days == 30);
}

TEST_CASE("config: report page mistakes name the key and line") {
  auto error_of = [](const std::string& text) {
    LoadResult r = parse(text);
    CHECK_FALSE(r.config);
    return r.error;
  };
  for (const char* bad :
       {"ftp://x.example", "ipconfirm.example.org", "https://", "https:///path",
        "https://x.example/r?x=1", "https://x.example/#top", "https://x.example/a b",
        "https://x.example/\\\"><script>", "https://x.example/\\u000d\\u000aX: y"}) {
    CAPTURE(bad);
    CHECK(error_of(kBase + "public_url = \"" + bad + "\"\n")
              .find("t.toml:7: key 'http.public_url'") != std::string::npos);
  }
  CHECK(error_of(kBase + "public_url = \"https://" + std::string(200, 'x') + "\"\n")
            .find("at most 200") != std::string::npos);
  // Links to pages nobody serves: refused.
  CHECK(error_of(
            "hostname = \"mx.example.test\"\ndomains = [\"example.test\"]\n"
            "[smtp]\nlisten = [\"127.0.0.1:2525\"]\n[http]\npublic_url = \"https://x.example\"\n")
            .find("needs http.listen") != std::string::npos);
  CHECK(error_of(kBase + "report_days = 0\n").find("t.toml:7: key 'http.report_days'") !=
        std::string::npos);
  CHECK(error_of(kBase + "report_days = -1\n").find("http.report_days") != std::string::npos);
  CHECK(error_of(kBase + "report_days = 4000\n").find("http.report_days") != std::string::npos);
  CHECK(error_of(kBase + "report_days = \"7\"\n").find("must be a number") != std::string::npos);
  CHECK(error_of(kBase + "report_days = nan\n").find("http.report_days") != std::string::npos);
  CHECK(error_of(kBase + "max_reports = 0\n").find("http.max_reports") != std::string::npos);
  CHECK(error_of(kBase + "public_urls = \"https://x.example\"\n")
            .find("key 'http.public_urls': unknown key") != std::string::npos);
}

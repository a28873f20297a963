// report_json_text: the same bytes as nlohmann's dump(2, ' ', false, replace), for the golden
// reports and for every kind of value and string a report can hold (control characters,
// quotes, UTF-8, invalid UTF-8, numbers of each kind, empty and nested containers).
#include "responder/analysis/report_json.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

using namespace ipconfirm::responder;
using json = nlohmann::ordered_json;

namespace {

std::string library_dump(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

std::string crlf_of(const std::string& lf) {
  std::string out;
  for (char c : lf) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

}  // namespace

TEST_CASE("report_json_text writes what the library's dump writes") {
  json j = json::object();
  j["empty_object"] = json::object();
  j["empty_array"] = json::array();
  j["null"] = nullptr;
  j["yes"] = true;
  j["no"] = false;
  j["int"] = -42;
  j["min"] = std::numeric_limits<std::int64_t>::min();
  j["max_unsigned"] = std::numeric_limits<std::uint64_t>::max();
  j["zero"] = 0;
  j["float"] = 0.1;
  j["float_whole"] = 3.0;
  j["nan"] = std::numeric_limits<double>::quiet_NaN();
  j["plain"] = "hello world";
  j["quotes"] = "say \"hi\" \\ back/slash";
  j["controls"] = std::string("a\b\t\n\f\r\x01\x1f\x7f z", 11);
  j["nul"] = std::string("a\0b", 3);
  j["utf8"] = "caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x93\xa7";
  j["invalid_lead"] = "bad \xff byte";
  j["truncated"] = "cut \xe2\x80";
  j["overlong"] = "\xc0\xaf and \xe0\x80\xaf";
  j["surrogate"] = "\xed\xa0\x80";
  j["too_high"] = "\xf4\x90\x80\x80";
  j["lone_continuation"] = "\x80x";
  j["ke\"y\n\xff"] = "key escaped too";
  j["nested"] =
      json{{"list", json::array({1, "two", json::array(), json::object(),
                                 json{{"deep", json::array({json::array({nullptr})})}}})}};
  j["array_of_strings"] = json::array({"a", "b\"", "\xc3\xa9"});
  CHECK(report_json_text(j) == library_dump(j));
  CHECK(report_json_text(j, "\r\n") == crlf_of(library_dump(j)));

  for (const json& scalar :
       {json("x"), json(1), json(nullptr), json::array(), json::object(), json(2.5), json("\xff")})
    CHECK(report_json_text(scalar) == library_dump(scalar));
}

TEST_CASE("report_json_text writes the golden reports as the library does") {
  const std::filesystem::path dir = std::filesystem::path(IPCONFIRM_TEST_DATA) / "report";
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    const json j = json::parse(s.str());
    CAPTURE(entry.path().string());
    CHECK(report_json_text(j) == library_dump(j));
    ++n;
  }
  CHECK(n > 0);
}

TEST_CASE("with_crlf makes every LF a CRLF and ends in one") {
  CHECK(with_crlf("") == "\r\n");
  CHECK(with_crlf("a") == "a\r\n");
  CHECK(with_crlf("{\n  \"a\": 1\n}") == "{\r\n  \"a\": 1\r\n}\r\n");
  CHECK(with_crlf("\n\n") == "\r\n\r\n\r\n");
  const json j = {{"x", {1, 2}}, {"y", "z"}};
  CHECK(with_crlf(report_json_text(j)) == report_json_text(j, "\r\n") + "\r\n");
}

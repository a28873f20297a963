// List-Unsubscribe (RFC 2369) and one-click (RFC 8058): the URI list with comments and
// folding, its errors and bounds, the Post value, URI kinds, bulk-looking mail, DKIM coverage.
#include "responder/analysis/list_unsubscribe.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace ipconfirm::responder;

TEST_CASE("List-Unsubscribe: URIs in angle brackets, comments and folding") {
  UnsubscribeUriList l = parse_list_unsubscribe(" <https://example.org/u/1>");
  CHECK(l.well_formed);
  REQUIRE(l.uris.size() == 1);
  CHECK(l.uris[0] == "https://example.org/u/1");

  l = parse_list_unsubscribe(
      " (Use this one) <mailto:list-request@example.org?subject=unsubscribe>,\r\n"
      "\t<https://example.org/unsub/\r\n opaque123> (or this)");
  CHECK(l.well_formed);
  REQUIRE(l.uris.size() == 2);
  CHECK(l.uris[0] == "mailto:list-request@example.org?subject=unsubscribe");
  CHECK(l.uris[1] == "https://example.org/unsub/opaque123");  // white space inside dropped
  CHECK(l.error.empty());

  // Nested comments and empty list elements are read.
  l = parse_list_unsubscribe("(a (nested) comment) <mailto:a@example.org>, , <https://x.example/>");
  CHECK(l.well_formed);
  CHECK(l.uris.size() == 2);
}

TEST_CASE("List-Unsubscribe: what does not parse") {
  UnsubscribeUriList l = parse_list_unsubscribe("https://example.org/u");
  CHECK_FALSE(l.well_formed);
  CHECK(l.uris.empty());
  CHECK(l.error.find("angle brackets") != std::string::npos);

  l = parse_list_unsubscribe("<https://example.org/u");
  CHECK_FALSE(l.well_formed);
  CHECK(l.error.find("not closed") != std::string::npos);

  l = parse_list_unsubscribe("<mailto:a@example.org> please click");
  CHECK_FALSE(l.well_formed);
  CHECK(l.uris.size() == 1);  // kept
  CHECK(l.error.find("separated by commas") != std::string::npos);

  l = parse_list_unsubscribe("(unclosed <https://example.org/u>");
  CHECK_FALSE(l.well_formed);
  CHECK(l.error.find("comment") != std::string::npos);

  l = parse_list_unsubscribe("   ");
  CHECK_FALSE(l.well_formed);
  l = parse_list_unsubscribe("<>");
  CHECK(l.uris.size() == 1);
  CHECK(uri_kind(l.uris[0]).empty());
}

TEST_CASE("List-Unsubscribe: hostile values are bounded") {
  std::string many;
  for (int i = 0; i < 100; ++i) many += "<mailto:u" + std::to_string(i) + "@example.org>,";
  UnsubscribeUriList l = parse_list_unsubscribe(many);
  CHECK(l.uris.size() == kMaxUnsubscribeUris);
  CHECK(l.truncated);

  l = parse_list_unsubscribe("<https://example.org/" + std::string(100000, 'a') + ">");
  REQUIRE(l.uris.size() == 1);
  CHECK(l.uris[0].size() == kMaxUnsubscribeUriBytes);
  CHECK(l.truncated);

  l = parse_list_unsubscribe(std::string(100000, '(') + "<https://example.org/>");
  CHECK_FALSE(l.well_formed);

  // Bytes outside printable ASCII never reach the report as they are.
  l = parse_list_unsubscribe("<https://example.org/\x01\xff>");
  REQUIRE(l.uris.size() == 1);
  CHECK(l.uris[0] == "https://example.org/??");
}

TEST_CASE("List-Unsubscribe-Post and URI kinds") {
  CHECK(is_one_click_post("List-Unsubscribe=One-Click"));
  CHECK(is_one_click_post(" list-unsubscribe=one-click\r\n "));
  CHECK_FALSE(is_one_click_post("List-Unsubscribe=One-Click; x=y"));
  CHECK_FALSE(is_one_click_post("One-Click"));
  CHECK_FALSE(is_one_click_post(""));

  CHECK(uri_kind("https://example.org/u") == "https");
  CHECK(uri_kind("HTTPS://example.org") == "https");
  CHECK(uri_kind("http://example.org/u") == "http");
  CHECK(uri_kind("mailto:u@example.org") == "mailto");
  CHECK(uri_kind("https:///path").empty());
  CHECK(uri_kind("https:example.org").empty());
  CHECK(uri_kind("mailto:").empty());
  CHECK(uri_kind("ftp://example.org").empty());
  CHECK(uri_kind("no scheme").empty());
}

TEST_CASE("unsubscribe fields: bulk-looking mail") {
  auto read = [](const std::string& header) {
    return read_unsubscribe_fields(split_raw_header(header));
  };
  UnsubscribeFields u = read("From: a@example.org\r\nSubject: hi\r\n\r\n");
  CHECK_FALSE(u.bulk_looking);
  CHECK(u.bulk_reason.empty());

  u = read(
      "List-Unsubscribe: <mailto:u@example.org>, <https://example.org/u>\r\n"
      "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n");
  CHECK(u.bulk_looking);
  CHECK(u.bulk_reason == "List-Unsubscribe");
  CHECK(u.list_unsubscribe_fields == 1);
  CHECK(u.post_fields == 1);
  CHECK(u.one_click_post);
  CHECK(u.https_uri == "https://example.org/u");
  CHECK(u.mailto_uri == "mailto:u@example.org");

  u = read("Precedence: bulk\r\n\r\n");
  CHECK(u.bulk_looking);
  CHECK(u.bulk_reason == "Precedence: bulk");
  u = read("Precedence:  LIST (a mailing list)\r\n\r\n");
  CHECK(u.bulk_looking);
  CHECK(u.bulk_reason == "Precedence: list");
  u = read("Precedence: junk\r\n\r\n");
  CHECK_FALSE(u.bulk_looking);
  CHECK(u.precedence == "junk");

  u = read("List-Unsubscribe: <http://example.org/u>\r\nList-Unsubscribe: <x>\r\n\r\n");
  CHECK(u.list_unsubscribe_fields == 2);
  CHECK(u.has_http_uri);
  CHECK(u.https_uri.empty());
}

TEST_CASE("DKIM coverage of the unsubscribe fields") {
  DkimSignatureResult s;
  s.result = DkimResultCode::pass;
  s.signed_headers = {"from", "list-unsubscribe", "list-unsubscribe-post"};
  CHECK(dkim_signature_covers(s, {"List-Unsubscribe", "List-Unsubscribe-Post"}));
  s.signed_headers = {"from", "list-unsubscribe"};
  CHECK_FALSE(dkim_signature_covers(s, {"list-unsubscribe", "list-unsubscribe-post"}));
  s.signed_headers = {"from", "list-unsubscribe", "list-unsubscribe-post"};
  s.result = DkimResultCode::fail;
  CHECK_FALSE(dkim_signature_covers(s, {"list-unsubscribe", "list-unsubscribe-post"}));
  s.result = DkimResultCode::pass;
  s.checked = false;
  CHECK_FALSE(dkim_signature_covers(s, {"list-unsubscribe"}));
}

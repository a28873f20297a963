// DKIM: tag lists, signatures and key records (hostile input included), canonicalization, the
// streaming body hash (every split of a body gives the hash of the whole), RFC 8463's signed
// example, and verification with its results and hints for every case of RFC 6376 / RFC 8301.
#include "responder/analysis/dkim.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <regex>

#include "responder/analysis/dkim_crypto.hpp"
#include "tests/unit/dkim_test_support.hpp"

using namespace ipconfirm::responder;
using namespace dkim_test;

namespace {

const std::string kMessage =
    "From: Alice <alice@example.org>\r\n"
    "To: bob@example.net\r\n"
    "Subject: Hello\r\n"
    "Date: Thu, 14 Jan 2026 15:00:01 -0800\r\n"
    "Message-ID: <1@example.org>\r\n"
    "\r\n"
    "Hi Bob,\r\n"
    ".a line that starts with a dot\r\n"
    "  spaced \t out  \r\n"
    "\r\n"
    "\r\n";

constexpr std::int64_t kNow = 1'800'000'000;

std::string read_data(const std::string& name) {
  std::ifstream in(std::string(IPCONFIRM_TEST_DATA) + "/dkim/" + name, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

DkimResults verify_message(const std::string& message, const DnsAnswers& dns,
                           std::int64_t now = kNow) {
  DkimCheck check = check_message(message);
  return check.verify(dns, now);
}

bool has_hint(const std::vector<Hint>& hints, std::string_view code) {
  for (const auto& h : hints)
    if (h.code == code) return true;
  return false;
}

// A copy: the hints are usually a temporary.
std::optional<Hint> find_hint(const std::vector<Hint>& hints, std::string_view code) {
  for (const auto& h : hints)
    if (h.code == code) return h;
  return std::nullopt;
}

// The canonical body computed the obvious way, on the whole body, as dkimpy does it.
std::string reference_body(std::string body, DkimCanon canon) {
  if (canon == DkimCanon::relaxed) {
    body = std::regex_replace(body, std::regex("[\t ]+\r\n"), "\r\n");
    body = std::regex_replace(body, std::regex("[\t ]+"), " ");
  }
  while (body.size() >= 2 && body.compare(body.size() - 2, 2, "\r\n") == 0)
    body.resize(body.size() - 2);
  if (canon == DkimCanon::simple || !body.empty()) body += "\r\n";
  return body;
}

}  // namespace

TEST_CASE("tag lists: syntax, spans, and what makes them invalid") {
  auto t = parse_tag_list(" a = 1 ; b=two words;\r\n c=x;");
  REQUIRE(t.ok);
  REQUIRE(t.tags.size() == 3);
  CHECK(t.find("a")->value == "1");
  CHECK(t.find("b")->value == "two words");
  CHECK(t.find("c")->value == "x");
  std::string_view text = "v=1; b= abc \r\n def ;x=y";
  auto s = parse_tag_list(text);
  REQUIRE(s.ok);
  CHECK(text.substr(s.find("b")->span_begin, s.find("b")->span_end - s.find("b")->span_begin) ==
        " abc \r\n def ");

  CHECK_FALSE(parse_tag_list("a=1;;b=2").ok);
  CHECK_FALSE(parse_tag_list("a=1;;").ok);
  CHECK_FALSE(parse_tag_list(";a=1").ok);
  CHECK_FALSE(parse_tag_list("a=1; b").ok);
  CHECK_FALSE(parse_tag_list("a=1; a=2").ok);
  CHECK_FALSE(parse_tag_list("1a=1").ok);
  CHECK_FALSE(parse_tag_list("a b=1").ok);
  CHECK_FALSE(parse_tag_list(std::string("a=1\0", 4)).ok);
  CHECK(parse_tag_list("A=1; a=2").ok);  // names are case-sensitive
  std::string many;
  for (int i = 0; i < 70; ++i) many += "t" + std::to_string(i) + "=1;";
  auto m = parse_tag_list(many);
  CHECK_FALSE(m.ok);
  CHECK(m.error.find("more than") != std::string::npos);
}

TEST_CASE("base64: strict, white space anywhere, bounded") {
  CHECK(decode_base64("aGVsbG8=", 100) == "hello");
  CHECK(decode_base64("aGVs\r\n bG8", 100) == "hello");  // padding may be omitted
  CHECK(decode_base64("", 100) == "");
  CHECK_FALSE(decode_base64("aGVsbG8=x", 100));
  CHECK_FALSE(decode_base64("aGVsbG8===", 100));
  CHECK_FALSE(decode_base64("aGV$bG8=", 100));
  CHECK_FALSE(decode_base64("a", 100));
  CHECK_FALSE(decode_base64("aGVsbG9=", 100));  // non-zero unused bits
  CHECK_FALSE(decode_base64("aGVsbG8=", 4));    // over the bound
  CHECK(encode_base64("hello") == "aGVsbG8=");
  CHECK(encode_base64("") == "");
  CHECK(encode_base64("ab") == "YWI=");
}

TEST_CASE("DKIM-Signature values: required tags, defaults, and errors") {
  auto sig = parse_dkim_signature(
      " v=1; a=rsa-sha256; d=Example.org; s=s1;\r\n\th=From : To:subject; bh=YWI=; b=YWI=");
  REQUIRE(sig.ok);
  CHECK(sig.algorithm == DkimAlgorithm::rsa_sha256);
  CHECK(sig.header_canon == DkimCanon::simple);
  CHECK(sig.body_canon == DkimCanon::simple);
  CHECK(sig.identity == "@Example.org");
  CHECK(sig.signed_headers == std::vector<std::string>{"from", "to", "subject"});
  CHECK(sig.body_hash == "ab");

  auto base = [](std::string extra) {
    return "v=1; a=rsa-sha256; d=example.org; s=s1; h=from; bh=YWI=; b=YWI=; " + extra;
  };
  CHECK(parse_dkim_signature(base("c=relaxed")).body_canon == DkimCanon::simple);
  CHECK(parse_dkim_signature(base("c=relaxed")).header_canon == DkimCanon::relaxed);
  CHECK(parse_dkim_signature(base("c=simple/relaxed")).body_canon == DkimCanon::relaxed);
  CHECK_FALSE(parse_dkim_signature(base("c=fancy")).ok);
  CHECK(parse_dkim_signature(base("i=user@mail.example.org")).ok);
  CHECK_FALSE(parse_dkim_signature(base("i=user@example.com")).ok);
  CHECK_FALSE(parse_dkim_signature(base("i=user@badexample.org")).ok);
  CHECK(parse_dkim_signature(base("l=120")).length == 120u);
  CHECK_FALSE(parse_dkim_signature(base("l=-1")).ok);
  CHECK_FALSE(parse_dkim_signature(base("l=99999999999999999999999")).ok);
  CHECK_FALSE(parse_dkim_signature(base("t=200; x=100")).ok);
  CHECK_FALSE(parse_dkim_signature(base("q=http")).ok);
  CHECK(parse_dkim_signature(base("q=dns/txt")).ok);
  CHECK(parse_dkim_signature(base("unknown=whatever")).ok);

  auto missing = parse_dkim_signature("v=1; a=rsa-sha256; d=example.org; s=s1; h=from; b=YWI=");
  CHECK_FALSE(missing.ok);
  CHECK(missing.error == "missing bh= tag");
  CHECK(missing.domain == "example.org");  // still known for the report
  CHECK(parse_dkim_signature("v=2; a=rsa-sha256; d=e.org; s=s; h=from; bh=YWI=; b=YWI=").error ==
        "v= is not 1");
  CHECK(parse_dkim_signature("v=1; a=dsa-sha256; d=e.org; s=s; h=from; bh=YWI=; b=YWI=")
            .error.find("unknown algorithm") == 0);
  CHECK_FALSE(parse_dkim_signature("v=1; a=rsa-sha256; d=e(.org; s=s; h=from; bh=YWI=; b=YWI=").ok);
  CHECK_FALSE(parse_dkim_signature("v=1; a=rsa-sha256; d=e.org; s=s; h=from; bh=Y!I=; b=YWI=").ok);
  CHECK(parse_dkim_signature("v=1; a=rsa-sha256; d=e.org; s=s; h=from::to; bh=YWI=; b=YWI=")
            .signed_headers == std::vector<std::string>{"from", "to"});
  CHECK_FALSE(parse_dkim_signature("v=1; a=rsa-sha256; d=e.org; s=s; h=fr om; bh=YWI=; b=YWI=").ok);
}

TEST_CASE("ARC signature values: instance, cv=, no h= in a seal") {
  auto ams = parse_dkim_signature(
      "i=2; a=rsa-sha256; d=example.org; s=s1; h=from:arc-authentication-results; bh=YWI=; "
      "b=YWI=",
      DkimSignatureKind::arc_message);
  REQUIRE(ams.ok);
  CHECK(ams.instance == 2);
  CHECK(ams.header_canon == DkimCanon::relaxed);  // ARC's default c=
  CHECK_FALSE(parse_dkim_signature("i=1; a=rsa-sha256; d=e.org; s=s; h=from:arc-seal; bh=YWI=; "
                                   "b=YWI=",
                                   DkimSignatureKind::arc_message)
                  .ok);
  CHECK_FALSE(parse_dkim_signature("i=51; a=rsa-sha256; d=e.org; s=s; h=from; bh=YWI=; b=YWI=",
                                   DkimSignatureKind::arc_message)
                  .ok);
  auto seal = parse_dkim_signature("i=1; a=rsa-sha256; cv=none; d=e.org; s=s; b=YWI=",
                                   DkimSignatureKind::arc_seal);
  REQUIRE(seal.ok);
  CHECK(seal.chain == "none");
  CHECK_FALSE(parse_dkim_signature("i=1; a=rsa-sha256; cv=maybe; d=e.org; s=s; b=YWI=",
                                   DkimSignatureKind::arc_seal)
                  .ok);
  CHECK_FALSE(parse_dkim_signature("i=1; a=rsa-sha256; cv=none; d=e.org; s=s; h=from; b=YWI=",
                                   DkimSignatureKind::arc_seal)
                  .ok);
}

TEST_CASE("key records: tags v k h s t p") {
  auto k = parse_dkim_key("v=DKIM1; k=rsa; h=sha1:sha256; t=y:s; p=YWI=");
  REQUIRE(k.ok);
  CHECK(k.key_type == DkimKeyType::rsa);
  CHECK(k.testing);
  CHECK(k.strict);
  CHECK(k.hashes == std::vector<std::string>{"sha1", "sha256"});
  CHECK(k.public_key == "ab");
  CHECK(parse_dkim_key("p=YWI=").ok);  // v= and k= are optional
  CHECK(parse_dkim_key("k=ed25519; p=YWI=").key_type == DkimKeyType::ed25519);
  auto revoked = parse_dkim_key("v=DKIM1; p=");
  CHECK(revoked.ok);
  CHECK(revoked.revoked);
  CHECK(parse_dkim_key("k=rsa; p=YWI=; v=DKIM1").error == "key record: v= is not the first tag");
  CHECK(parse_dkim_key("v=DKIM2; p=YWI=").error == "key record: v= is not DKIM1");
  CHECK(parse_dkim_key("k=dsa; p=YWI=").error == "key record: unknown key type k=dsa");
  CHECK(parse_dkim_key("k=ed25519-sha256; p=YWI=").error.find("unknown key type") !=
        std::string::npos);
  CHECK(parse_dkim_key("s=tlsrpt; p=YWI=").error == "key record: s= does not allow email");
  CHECK(parse_dkim_key("s=email:tlsrpt; p=YWI=").ok);
  CHECK(parse_dkim_key("v=DKIM1; k=rsa").error == "key record: no p= tag");
  CHECK_FALSE(parse_dkim_key("v=DKIM1: k=rsa; p=YWI=").ok);
  CHECK_FALSE(parse_dkim_key("p=YW I=$").ok);
  CHECK_FALSE(parse_dkim_key("p=" + std::string(8000, 'A')).ok);  // over kDkimMaxKeyBytes
}

TEST_CASE("the raw header: fields with folding, in order, bounded") {
  std::string header =
      "From: a@example.org\r\n"
      "Subject: one\r\n two\r\n"
      "X-Empty:\r\n"
      "no colon here\r\n"
      "To : b@example.org\r\n"
      "\r\n"
      "Body: not a field\r\n";
  RawHeader h = split_raw_header(header);
  REQUIRE(h.fields.size() == 4);
  CHECK(h.fields[1].name == "Subject");
  CHECK(h.fields[1].value == " one\r\n two");
  CHECK(h.fields[1].raw == "Subject: one\r\n two\r\n");
  CHECK(h.fields[2].value.empty());
  CHECK(h.fields[3].name == "To");
  CHECK(h.skipped_lines == 1);
  CHECK_FALSE(h.truncated);

  RawHeader lf = split_raw_header("A: 1\nB: 2\n folded\n\nbody");
  REQUIRE(lf.fields.size() == 2);
  CHECK(lf.fields[1].value == " 2\n folded");

  RawHeader bounded = split_raw_header(header, 1000, 2);
  CHECK(bounded.fields.size() == 2);
  CHECK(bounded.truncated);
  CHECK(split_raw_header(header, 10).truncated);

  MessageParts parts = split_message("A: 1\r\nB: 2\r\n\r\nbody\r\n");
  CHECK(parts.header == "A: 1\r\nB: 2\r\n");
  CHECK(parts.body == "body\r\n");
  CHECK(parts.has_body);
  CHECK_FALSE(split_message("A: 1\r\n").has_body);
}

TEST_CASE("header canonicalization, and b= deleted from the signature's own field") {
  RawHeader h = split_raw_header("SubJect : Hello \t  World \r\n  again  \r\n");
  std::string relaxed, simple;
  canonicalize_header(relaxed, h.fields[0], DkimCanon::relaxed);
  canonicalize_header(simple, h.fields[0], DkimCanon::simple);
  CHECK(relaxed == "subject:Hello World again\r\n");
  CHECK(simple == "SubJect : Hello \t  World \r\n  again  \r\n");

  RawHeader s = split_raw_header("DKIM-Signature: a=1; b=abc\r\n def; bh=xyz\r\n");
  auto tags = parse_tag_list(s.fields[0].value);
  const DkimTag* b = tags.find("b");
  CHECK(canonicalize_signature_field(s.fields[0], DkimCanon::simple, b->span_begin, b->span_end) ==
        "DKIM-Signature: a=1; b=; bh=xyz");
  CHECK(canonicalize_signature_field(s.fields[0], DkimCanon::relaxed, b->span_begin, b->span_end) ==
        "dkim-signature:a=1; b=; bh=xyz");
}

TEST_CASE("body hash: every split of the body gives the hash of the whole") {
  const std::vector<std::string> bodies = {
      "Hi \t there  \r\n\r\n  \r\nline\r\n\t \r\n\r\n\r\n",  // WSP runs, trailing blank lines
      "a\r\rb \r c\r\n \r\n",                                // bare CRs next to CRLFs
      "no final line end  ",
      "\r\n\r\n",
      "",
  };
  for (const auto& body : bodies) {
    for (auto canon : {DkimCanon::simple, DkimCanon::relaxed}) {
      for (auto hash : {DkimHash::sha256, DkimHash::sha1}) {
        for (std::optional<std::uint64_t> limit :
             {std::optional<std::uint64_t>{}, std::optional<std::uint64_t>{7}}) {
          CAPTURE(body);
          CAPTURE(to_string(canon));
          std::string canonical = reference_body(body, canon);
          std::string expected =
              dkim_digest(hash, limit ? std::string_view(canonical).substr(0, *limit) : canonical);
          DkimBodyHashKey key{canon, hash, limit};
          DkimBodyHasher whole(key);
          whole.feed(body);
          whole.finish();
          REQUIRE(whole.digest() == expected);
          CHECK(whole.canonical_length() == canonical.size());
          // Two chunks at every boundary, three chunks at every pair of boundaries.
          for (std::size_t i = 0; i <= body.size(); ++i) {
            for (std::size_t j = i; j <= body.size(); ++j) {
              DkimBodyHasher h(key);
              h.feed(std::string_view(body).substr(0, i));
              h.feed(std::string_view(body).substr(i, j - i));
              h.feed(std::string_view(body).substr(j));
              h.finish();
              REQUIRE(h.digest() == expected);
            }
          }
          DkimBodyHasher bytes(key);
          for (char c : body) bytes.feed(std::string_view(&c, 1));
          bytes.finish();
          CHECK(bytes.digest() == expected);
        }
      }
    }
  }
}

TEST_CASE("body hash: a long body in uneven chunks, and empty bodies per RFC 6376") {
  std::string body;
  for (int i = 0; i < 5000; ++i)
    body += "line " + std::to_string(i) + (i % 7 ? " \t \r\n" : "\r\n\r\n");
  for (auto canon : {DkimCanon::simple, DkimCanon::relaxed}) {
    DkimBodyHasher whole({canon, DkimHash::sha256, {}});
    whole.feed(body);
    whole.finish();
    CHECK(whole.digest() == dkim_digest(DkimHash::sha256, reference_body(body, canon)));
    DkimBodyHasher chunks({canon, DkimHash::sha256, {}});
    for (std::size_t pos = 0, n = 1; pos < body.size(); pos += n, n = n * 3 % 4093 + 1)
      chunks.feed(std::string_view(body).substr(pos, n));
    chunks.finish();
    CHECK(chunks.digest() == whole.digest());
  }
  // RFC 6376 §3.4.3/3.4.4 (with erratum 1384): the empty body is CRLF (simple) or "" (relaxed).
  CHECK(body_hash("", DkimCanon::simple, DkimHash::sha256) ==
        "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
  CHECK(body_hash("", DkimCanon::relaxed, DkimHash::sha256) ==
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  CHECK(body_hash("", DkimCanon::simple, DkimHash::sha1) == "uoq1oCgLlTqpdDX/iUbLy7J1Wic=");
}

TEST_CASE("body hashers are shared by signatures with the same c=, a= and l=") {
  DkimBodyHashers set;
  auto a = set.add({DkimCanon::relaxed, DkimHash::sha256, {}});
  auto b = set.add({DkimCanon::relaxed, DkimHash::sha256, {}});
  auto c = set.add({DkimCanon::relaxed, DkimHash::sha256, 10});
  auto d = set.add({DkimCanon::simple, DkimHash::sha256, {}});
  CHECK(a == b);
  CHECK(a != c);
  CHECK(c != d);
  CHECK(set.size() == 3);
  set.feed("hello \r\n");
  set.finish();
  CHECK(set.at(*a).finished());

  // Three signatures with the same parameters: one hasher in the check.
  auto key = make_rsa_key(1024);
  std::string m = sign(kMessage, key, {});
  m = sign(m, key, {.s = "s2"});
  m = sign(m, key, {.s = "s3"});
  DkimCheck check(split_message(m).header);
  CHECK(check.signature_count() == 3);
  CHECK(check.body().size() == 1);
}

TEST_CASE("RFC 8463's signed example verifies (ed25519-sha256 and rsa-sha256)") {
  std::string message = read_data("rfc8463-signed.eml");
  REQUIRE_FALSE(message.empty());
  DnsAnswers dns;
  put_txt(dns, "brisbane._domainkey.football.example.com",
          {"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="});
  put_txt(
      dns, "test._domainkey.football.example.com",
      {"v=DKIM1; k=rsa; "
       "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQ"
       "iY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9Pzox"
       "ZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"});
  DkimResults r = verify_message(message, dns, 1527915362);
  REQUIRE(r.complete);
  REQUIRE(r.signatures.size() == 2);
  CHECK(r.signatures[0].algorithm == "ed25519-sha256");
  CHECK(r.signatures[0].result == DkimResultCode::pass);
  CHECK(r.signatures[0].key_bits == 256);
  CHECK(r.signatures[1].algorithm == "rsa-sha256");
  CHECK(r.signatures[1].result == DkimResultCode::pass);
  CHECK(r.signatures[1].key_bits == 1024);
  CHECK(r.signatures[0].body_hash_computed == "4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=");
  CHECK(r.overall() == DkimResultCode::pass);
  auto json = to_json(r);
  CHECK(json[0]["result"] == "pass");
  CHECK(json[0]["signed_headers"].size() == 8);

  // The same bytes fed the way the server will: the header first, then the body in small pieces.
  MessageParts parts = split_message(message);
  std::string crlf_header = std::regex_replace(std::string(parts.header), std::regex("\n"), "\r\n");
  std::string crlf_body = std::regex_replace(std::string(parts.body), std::regex("\n"), "\r\n");
  DkimCheck streamed(crlf_header);
  for (std::size_t i = 0; i < crlf_body.size(); i += 3)
    streamed.body().feed(std::string_view(crlf_body).substr(i, 3));
  streamed.end_body();
  DkimResults s = streamed.verify(dns, 1527915362);
  CHECK(s.signatures[0].result == DkimResultCode::pass);
  CHECK(s.signatures[1].result == DkimResultCode::pass);
}

TEST_CASE("signed messages verify: rsa and ed25519, every canonicalization, over-signing") {
  auto rsa = make_rsa_key(1024);
  auto ed = make_ed25519_key();
  DnsAnswers dns;
  put_txt(dns, "rsa._domainkey.example.org", {key_record(rsa)});
  put_txt(dns, "ed._domainkey.example.org", {key_record(ed)});
  for (std::string c : {"simple/simple", "simple/relaxed", "relaxed/simple", "relaxed/relaxed"}) {
    CAPTURE(c);
    std::string m = sign(kMessage, rsa, {.c = c, .s = "rsa"});
    m = sign(m, ed,
             {.algorithm = "ed25519-sha256",
              .c = c,
              .s = "ed",
              .h = "from:from:to:subject:subject:reply-to:date:message-id"});
    DkimResults r = verify_message(m, dns);
    REQUIRE(r.signatures.size() == 2);
    CHECK(r.signatures[0].result == DkimResultCode::pass);
    CHECK(r.signatures[0].error == "");
    CHECK(r.signatures[1].result == DkimResultCode::pass);
    CHECK(r.signatures[0].canonicalization == c);
    CHECK(dkim_hints(r, "example.org").size() == 1);  // only the 1024-bit key note
    CHECK(find_hint(dkim_hints(r), "dkim-weak-key")->severity == "info");
  }
}

TEST_CASE("changed messages fail, and the hint says what changed") {
  auto rsa = make_rsa_key(1024);
  DnsAnswers dns;
  put_txt(dns, "s1._domainkey.example.org", {key_record(rsa)});
  std::string signed_message = sign(kMessage, rsa, {.h = "from:to:subject:date:reply-to"});

  SUBCASE("a body line changed") {
    std::string m = std::regex_replace(signed_message, std::regex("Hi Bob"), "Hi Rob");
    DkimResults r = verify_message(m, dns);
    CHECK(r.signatures[0].result == DkimResultCode::fail);
    CHECK_FALSE(r.signatures[0].body_hash_ok);
    CHECK(r.signatures[0].header_signature_ok);
    CHECK(r.signatures[0].body_hash_computed != r.signatures[0].body_hash_expected);
    std::optional<Hint> h = find_hint(dkim_hints(r), "dkim-fail");
    REQUIRE(h.has_value());
    CHECK(h->severity == "error");
    CHECK(h->text.find("a footer added by a list or a gateway?") != std::string::npos);
    CHECK(h->text.find(r.signatures[0].body_hash_computed) != std::string::npos);
    CHECK(h->text.find(r.signatures[0].body_hash_expected) != std::string::npos);
  }
  SUBCASE("a footer appended") {
    DkimResults r = verify_message(signed_message + "-- \r\nlist footer\r\n", dns);
    CHECK(r.signatures[0].result == DkimResultCode::fail);
  }
  SUBCASE("trailing empty lines and white space changes survive relaxed") {
    DkimResults r = verify_message(
        std::regex_replace(signed_message, std::regex("spaced \t out"), "spaced   out") +
            "\r\n\r\n",
        dns);
    CHECK(r.signatures[0].result == DkimResultCode::pass);
  }
  SUBCASE("a signed header changed") {
    std::string m =
        std::regex_replace(signed_message, std::regex("Subject: Hello"), "Subject: Hello!");
    DkimResults r = verify_message(m, dns);
    CHECK(r.signatures[0].result == DkimResultCode::fail);
    CHECK(r.signatures[0].body_hash_ok);
    std::optional<Hint> h = find_hint(dkim_hints(r), "dkim-fail");
    REQUIRE(h.has_value());
    CHECK(h->text.find("from, to, subject, date, reply-to") != std::string::npos);
  }
  SUBCASE("a signed header added where none was (over-signing Reply-To)") {
    std::string m = std::regex_replace(signed_message, std::regex("To: bob"),
                                       "Reply-To: evil@example.com\r\nTo: bob");
    CHECK(verify_message(m, dns).signatures[0].result == DkimResultCode::fail);
  }
  SUBCASE("a second Subject added below the signed one") {
    std::string m =
        std::regex_replace(signed_message, std::regex("Date:"), "Subject: another\r\nDate:");
    CHECK(verify_message(m, dns).signatures[0].result == DkimResultCode::fail);
  }
  SUBCASE("an unsigned header added still passes") {
    std::string m =
        std::regex_replace(signed_message, std::regex("Date:"), "X-Scanned: yes\r\nDate:");
    CHECK(verify_message(m, dns).signatures[0].result == DkimResultCode::pass);
  }
  SUBCASE("a second From on top: the signature is not accepted") {
    DkimResults r = verify_message("From: evil@example.com\r\n" + signed_message, dns);
    CHECK(r.signatures[0].result == DkimResultCode::policy);
    CHECK(r.signatures[0].error.find("2 From fields") != std::string::npos);
  }
}

TEST_CASE("RFC 8301: rsa-sha1 and RSA keys under 1024 bits never pass; large keys refused") {
  auto small = make_rsa_key(512);
  auto rsa = make_rsa_key(1024);
  DnsAnswers dns;
  put_txt(dns, "small._domainkey.example.org", {key_record(small)});
  put_txt(dns, "s1._domainkey.example.org", {key_record(rsa)});
  put_txt(dns, "huge._domainkey.example.org", {"k=rsa; p=" + fake_rsa_public_key_base64(9000)});

  DkimResults weak = verify_message(sign(kMessage, small, {.s = "small"}), dns);
  CHECK(weak.signatures[0].result == DkimResultCode::policy);
  CHECK(weak.signatures[0].key_bits == 512);
  CHECK(weak.signatures[0].header_signature_ok);
  std::optional<Hint> h = find_hint(dkim_hints(weak), "dkim-weak-key");
  REQUIRE(h.has_value());
  CHECK(h->severity == "error");
  CHECK(h->text.find("512 bits") != std::string::npos);

  DkimResults sha1 = verify_message(sign(kMessage, rsa, {.algorithm = "rsa-sha1"}), dns);
  CHECK(sha1.signatures[0].result == DkimResultCode::policy);
  CHECK(sha1.signatures[0].header_signature_ok);
  CHECK(has_hint(dkim_hints(sha1), "dkim-sha1"));

  // The signature is irrelevant: the key is refused before any verification.
  DkimResults huge = verify_message(sign(kMessage, rsa, {.s = "huge"}), dns);
  CHECK(huge.signatures[0].result == DkimResultCode::permerror);
  CHECK(huge.signatures[0].error.find("larger than 8192") != std::string::npos);
}

TEST_CASE("parsed keys are cached: the same result again, a refusal with its reason, bounded") {
  auto rsa = make_rsa_key(2048);
  auto ed = make_ed25519_key();
  const std::string rsa_der = *decode_base64(rsa.p, 4096);
  const std::string ed_der = *decode_base64(ed.p, 4096);
  const std::string data = "from:a@example.org\r\n";
  for (int round = 0; round < 3; ++round) {
    INFO("round " << round);
    std::string error;
    DkimPublicKey k = DkimPublicKey::load(rsa_der, DkimKeyType::rsa, error);
    REQUIRE(k.ok());
    CHECK(error.empty());
    CHECK(k.bits() == 2048);
    CHECK(k.type() == DkimKeyType::rsa);
    CHECK(
        k.verify(DkimAlgorithm::rsa_sha256, data, raw_sign(rsa, DkimAlgorithm::rsa_sha256, data)));
    CHECK_FALSE(k.verify(DkimAlgorithm::rsa_sha256, data + "x",
                         raw_sign(rsa, DkimAlgorithm::rsa_sha256, data)));
    DkimPublicKey e = DkimPublicKey::load(ed_der, DkimKeyType::ed25519, error);
    REQUIRE(e.ok());
    CHECK(e.verify(DkimAlgorithm::ed25519_sha256, data,
                   raw_sign(ed, DkimAlgorithm::ed25519_sha256, data)));
    // The same bytes as the other type: a different entry, refused with the same reason.
    DkimPublicKey wrong = DkimPublicKey::load(ed_der, DkimKeyType::rsa, error);
    CHECK_FALSE(wrong.ok());
    CHECK(error == "p= is not a valid RSA public key");
    error.clear();
    DkimPublicKey short_ed = DkimPublicKey::load(rsa_der, DkimKeyType::ed25519, error);
    CHECK_FALSE(short_ed.ok());
    CHECK(error.find("not 32") != std::string::npos);
  }
  // Keys outlive the cache's entries: a key still verifies after hundreds of others pushed it
  // out, and the cache stays at its bound.
  std::string error;
  DkimPublicKey held = DkimPublicKey::load(rsa_der, DkimKeyType::rsa, error);
  for (int i = 0; i < 300; ++i) {
    std::string junk = "junk key " + std::to_string(i);
    CHECK_FALSE(DkimPublicKey::load(junk, DkimKeyType::rsa, error).ok());
  }
  CHECK(DkimPublicKey::cached_keys() <= 256);
  CHECK(
      held.verify(DkimAlgorithm::rsa_sha256, data, raw_sign(rsa, DkimAlgorithm::rsa_sha256, data)));
  CHECK(DkimPublicKey::load(rsa_der, DkimKeyType::rsa, error).ok());
}

TEST_CASE("time: x= expired and t= in the future, with the clock skew") {
  auto rsa = make_rsa_key(1024);
  DnsAnswers dns;
  put_txt(dns, "s1._domainkey.example.org", {key_record(rsa)});
  std::string expired = sign(kMessage, rsa, {.extra = "t=1700000000; x=1700003600; "});
  DkimResults r = verify_message(expired, dns);
  CHECK(r.signatures[0].result == DkimResultCode::policy);
  CHECK(r.signatures[0].expired);
  CHECK(has_hint(dkim_hints(r), "dkim-expired"));
  CHECK(verify_message(expired, dns, 1700003600 + 599).signatures[0].result ==
        DkimResultCode::pass);
  std::string future = sign(kMessage, rsa, {.extra = "t=" + std::to_string(kNow + 3600) + "; "});
  CHECK(verify_message(future, dns).signatures[0].result == DkimResultCode::policy);
  CHECK(verify_message(future, dns, kNow + 3600 - 500).signatures[0].result ==
        DkimResultCode::pass);
}

TEST_CASE("l= passes and is reported as a risk; t=y is reported") {
  auto rsa = make_rsa_key(1024);
  DnsAnswers dns;
  put_txt(dns, "s1._domainkey.example.org", {key_record(rsa, "t=y; ")});
  std::string m = sign(kMessage, rsa, {.extra = "l=20; "}) + "appended by someone\r\n";
  DkimResults r = verify_message(m, dns);
  CHECK(r.signatures[0].result == DkimResultCode::pass);
  CHECK(r.signatures[0].length == 20u);
  CHECK(r.signatures[0].testing);
  auto hints = dkim_hints(r);
  CHECK(has_hint(hints, "dkim-body-length"));
  CHECK(has_hint(hints, "dkim-testing"));
  auto j = to_json(r.signatures[0]);
  CHECK(j["length"] == 20);
  CHECK(j["testing"] == true);
}

TEST_CASE("key records: missing, revoked, wrong type, wrong hash, strict, several records") {
  auto rsa = make_rsa_key(1024);
  auto ed = make_ed25519_key();
  std::string m = sign(kMessage, rsa, {.extra = "i=alice@mail.example.org; "});
  auto result_with = [&](std::vector<std::string> records) {
    DnsAnswers dns;
    put_txt(dns, "s1._domainkey.example.org", std::move(records));
    return verify_message(m, dns).signatures.at(0);
  };
  CHECK(result_with({key_record(rsa)}).result == DkimResultCode::pass);
  auto revoked = result_with({"v=DKIM1; p="});
  CHECK(revoked.result == DkimResultCode::permerror);
  CHECK(revoked.error.find("revoked") != std::string::npos);
  CHECK(result_with({key_record(ed)}).error.find("is k=ed25519 but a=rsa-sha256") !=
        std::string::npos);
  CHECK(result_with({key_record(rsa, "h=sha1; ")}).error ==
        "the key record's h= does not allow sha256");
  CHECK(result_with({key_record(rsa, "h=sha1:sha256; ")}).result == DkimResultCode::pass);
  CHECK(result_with({key_record(rsa, "t=s; ")}).error ==
        "the key has t=s but i= is a subdomain of d=");
  CHECK(result_with({"v=DKIM1; k=rsa; p=YWJj"}).error == "p= is not a valid RSA public key");
  CHECK(result_with({"garbage", key_record(rsa)}).result == DkimResultCode::pass);
  CHECK(result_with({"v=spf1 -all"}).result == DkimResultCode::permerror);
  CHECK(result_with({key_record(rsa, "s=tlsrpt; ")}).result == DkimResultCode::permerror);

  DnsAnswers none;
  put_status(none, "s1._domainkey.example.org", DnsStatus::nxdomain, "NXDOMAIN");
  DkimResults r = verify_message(m, none);
  CHECK(r.signatures[0].result == DkimResultCode::permerror);
  std::optional<Hint> h = find_hint(dkim_hints(r), "dkim-no-key");
  REQUIRE(h.has_value());
  CHECK(h->text.find("publish the key at s1._domainkey.example.org") != std::string::npos);

  DnsAnswers timeout;
  put_status(timeout, "s1._domainkey.example.org", DnsStatus::temperror, "timeout");
  DkimResults t = verify_message(m, timeout);
  CHECK(t.complete);
  CHECK(t.signatures[0].result == DkimResultCode::temperror);
  CHECK(has_hint(dkim_hints(t), "dkim-temperror"));
}

TEST_CASE("DNS: every key is asked at once, then the check completes") {
  auto rsa = make_rsa_key(1024);
  auto ed = make_ed25519_key();
  std::string m = sign(kMessage, rsa, {.d = "example.org", .s = "a"});
  m = sign(m, ed, {.algorithm = "ed25519-sha256", .d = "example.net", .s = "b"});
  m = sign(m, rsa, {.d = "example.org", .s = "a"});  // the same key twice: asked once
  DkimCheck check = check_message(m);
  DnsAnswers dns;
  DkimResults first = check.verify(dns, kNow);
  CHECK_FALSE(first.complete);
  REQUIRE(first.needs.questions().size() == 2);
  CHECK(first.needs.questions()[0].name == "a._domainkey.example.org");
  CHECK(first.needs.questions()[1].name == "b._domainkey.example.net");
  put_txt(dns, "a._domainkey.example.org", {key_record(rsa)});
  put_txt(dns, "b._domainkey.example.net", {key_record(ed)});
  DkimResults second = check.verify(dns, kNow);
  CHECK(second.complete);
  CHECK(second.needs.empty());
  for (const auto& s : second.signatures) CHECK(s.result == DkimResultCode::pass);
}

TEST_CASE("key_needs asks what verify asks, without verifying, and is empty once answered") {
  auto rsa = make_rsa_key(1024);
  auto ed = make_ed25519_key();
  std::string m = sign(kMessage, rsa, {.d = "example.org", .s = "a"});
  m = sign(m, ed, {.algorithm = "ed25519-sha256", .d = "example.net", .s = "b"});
  m = sign(m, rsa, {.d = "example.org", .s = "a", .h = "to:subject"});  // no From: no key asked
  m = "DKIM-Signature: v=1; a=rsa-sha256; d=bad.example\r\n" + m;       // malformed: none
  // The body has not ended: key_needs() does not need it (the driver asks before the dot).
  DkimCheck check(m.substr(0, m.find("\r\n\r\n") + 4));
  DnsAnswers dns;
  const DnsNeeds needs = check.key_needs(dns);
  REQUIRE(needs.questions().size() == 2);  // header order: the newest signature first
  CHECK(needs.questions()[0].name == "b._domainkey.example.net");
  CHECK(needs.questions()[1].name == "a._domainkey.example.org");
  put_txt(dns, "a._domainkey.example.org", {key_record(rsa)});
  CHECK(check.key_needs(dns).questions().size() == 1);
  put_txt(dns, "b._domainkey.example.net", {key_record(ed)});
  CHECK(check.key_needs(dns).empty());
  // The same answers complete verify() on the whole message.
  DkimCheck whole = check_message(m);
  CHECK(whole.verify(dns, kNow).complete);
}

TEST_CASE("malformed signatures, no From in h=, and the signature count bound") {
  auto rsa = make_rsa_key(1024);
  DnsAnswers dns;
  put_txt(dns, "s1._domainkey.example.org", {key_record(rsa)});
  DkimResults no_from = verify_message(sign(kMessage, rsa, {.h = "to:subject"}), dns);
  CHECK(no_from.signatures[0].result == DkimResultCode::permerror);
  CHECK(no_from.signatures[0].error.find("does not include From") != std::string::npos);

  DkimResults broken = verify_message(
      "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1; h=from; b=YWI=\r\n" + kMessage, dns);
  CHECK(broken.signatures[0].result == DkimResultCode::permerror);
  CHECK(broken.signatures[0].domain == "example.org");
  CHECK(has_hint(dkim_hints(broken), "dkim-permerror"));

  // Hostile bytes in the values end up in the report as valid UTF-8 without control characters.
  DkimResults hostile = verify_message(
      "DKIM-Signature: v=1; a=rsa-\xff\xfe; d=ex\xc3(am\r\n ple.org; s=s1; h=from; bh=YWI=; "
      "b=YWI=\r\n" +
          kMessage,
      dns);
  REQUIRE(hostile.signatures.size() == 1);
  CHECK(hostile.signatures[0].result == DkimResultCode::permerror);
  CHECK_NOTHROW((void)to_json(hostile).dump());
  CHECK(hostile.signatures[0].domain.find('\r') == std::string::npos);
  CHECK(hostile.signatures[0].error.find("unknown algorithm") != std::string::npos);
  for (const auto& h : dkim_hints(hostile)) CHECK(h.text.find('\n') == std::string::npos);

  std::string many = kMessage;
  for (int i = 0; i < 12; ++i) many = sign(many, rsa, {});
  DkimCheck check = check_message(many);
  DkimResults r = check.verify(dns, kNow);
  REQUIRE(r.signatures.size() == 12);
  CHECK(r.signatures[9].result == DkimResultCode::pass);
  CHECK(r.signatures[10].result == DkimResultCode::policy);
  CHECK_FALSE(r.signatures[10].checked);
  CHECK(r.overall() == DkimResultCode::pass);
  CHECK(r.not_listed == 0);

  // A flood of signatures: 10 verified, 10 listed as not checked, the rest counted.
  std::string flood =
      "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1; h=from; bh=YWI=; "
      "b=YWI=\r\n";
  std::string header;
  for (int i = 0; i < 1000; ++i) header += flood;
  DkimCheck big(header + kMessage.substr(0, kMessage.find("\r\n\r\n") + 2));
  big.end_body();
  DkimResults f = big.verify(dns, kNow);
  CHECK(big.signature_count() == 1000);
  CHECK(f.signatures.size() == 20);
  CHECK(f.not_listed == 980);
  CHECK(f.signatures[19].domain == "example.org");
  CHECK_FALSE(f.signatures[19].checked);
}

TEST_CASE("unsigned messages: none, and the hint names where to publish a key") {
  DkimResults r = verify_message(kMessage, DnsAnswers{});
  CHECK(r.complete);
  CHECK(r.signatures.empty());
  CHECK(r.overall() == DkimResultCode::none);
  CHECK(to_json(r).is_array());
  CHECK(to_json(r).empty());
  std::optional<Hint> h = find_hint(dkim_hints(r, "example.org"), "dkim-none");
  REQUIRE(h.has_value());
  CHECK(h->text.find("<selector>._domainkey.example.org") != std::string::npos);
}

TEST_CASE("the JSON entry has the contract's fields first") {
  auto rsa = make_rsa_key(1024);
  DnsAnswers dns;
  put_txt(dns, "s1._domainkey.example.org", {key_record(rsa)});
  auto j = to_json(verify_message(sign(kMessage, rsa, {}), dns));
  REQUIRE(j.size() == 1);
  std::vector<std::string> keys;
  for (auto it = j[0].begin(); it != j[0].end(); ++it) keys.push_back(it.key());
  std::vector<std::string> contract = {
      "result",           "domain",         "selector",           "algorithm",          "key_bits",
      "canonicalization", "signed_headers", "body_hash_expected", "body_hash_computed", "error"};
  CHECK(std::vector<std::string>(keys.begin(), keys.begin() + 10) == contract);
  CHECK(j[0]["key_bits"] == 1024);
  CHECK(j[0]["body_hash_expected"] == j[0]["body_hash_computed"]);
}

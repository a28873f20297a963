// ARC (RFC 8617) chain validation: none, a chain of two sets that passes, and every way the
// structure, the seals or the newest message signature can break it. The sets are sealed here
// with test keys; the ValiMail suite (tests/conformance/test_arc_suite.py) checks the same code
// against sets sealed by others.
#include "responder/analysis/arc.hpp"

#include <doctest/doctest.h>

#include <regex>

#include "tests/unit/dkim_test_support.hpp"

using namespace ipconfirm::responder;
using namespace dkim_test;

namespace {

const std::string kMessage =
    "From: Alice <alice@example.org>\r\n"
    "To: list@lists.example.net\r\n"
    "Subject: Hello\r\n"
    "Date: Thu, 14 Jan 2026 15:00:01 -0800\r\n"
    "\r\n"
    "Hi list,\r\n"
    "\r\n";

struct Sealer {
  const TestKey& key;
  std::string d = "lists.example.net";
  std::string s = "arc";
};

// Adds ARC set `i` (AAR, AMS, AS) on top of `message`.
std::string seal(const std::string& message, const Sealer& sealer, int i, std::string cv) {
  const std::string n = std::to_string(i);
  std::string with_aar = "ARC-Authentication-Results: i=" + n + "; " + sealer.d +
                         "; dkim=pass header.d=example.org\r\n" + message;
  std::string with_ams = sign(with_aar, sealer.key,
                              {.d = sealer.d,
                               .s = sealer.s,
                               .h = "from:to:subject:date",
                               .extra = "i=" + n + "; ",
                               .field_name = "ARC-Message-Signature"});
  std::string value = " i=" + n + "; a=rsa-sha256; cv=" + cv + "; d=" + sealer.d +
                      "; s=" + sealer.s + ";\r\n t=12345; b=";
  std::string unsigned_header =
      "ARC-Seal:" + value + "AAAA\r\n" + std::string(split_message(with_ams).header);
  RawHeader raw = split_raw_header(unsigned_header);
  std::vector<std::string> lower;
  for (const auto& f : raw.fields) lower.push_back(ipconfirm::ascii::lower(f.name));
  ArcChain chain = read_arc_chain(raw.fields, lower);
  REQUIRE(chain.structure_error.empty());
  std::string data;
  for (const auto& set : chain.sets) {
    canonicalize_header(data, raw.fields[set.results_field], DkimCanon::relaxed);
    canonicalize_header(data, raw.fields[set.message_field], DkimCanon::relaxed);
    if (set.instance < i) {
      canonicalize_header(data, raw.fields[set.seal_field], DkimCanon::relaxed);
    } else {
      const DkimTag* b = set.seal.tags.find("b");
      data += canonicalize_signature_field(raw.fields[set.seal_field], DkimCanon::relaxed,
                                           b->span_begin, b->span_end);
    }
  }
  return "ARC-Seal:" + value +
         encode_base64(raw_sign(sealer.key, DkimAlgorithm::rsa_sha256, data)) + "\r\n" + with_ams;
}

ArcResult arc_of(const std::string& message, const DnsAnswers& dns) {
  DkimCheck check = check_message(message);
  return check.verify_arc(dns);
}

}  // namespace

TEST_CASE("ARC: no ARC fields is none") {
  ArcResult r = arc_of(kMessage, DnsAnswers{});
  CHECK(r.complete);
  CHECK(r.result == "none");
  CHECK(r.instances == 0);
  CHECK(arc_hints(r).empty());
  CHECK(to_json(r)["result"] == "none");
}

TEST_CASE("ARC: a chain of two sets passes, and breaks where it should") {
  auto list_key = make_rsa_key(1024);
  auto fwd_key = make_rsa_key(1024);
  DnsAnswers dns;
  put_txt(dns, "arc._domainkey.lists.example.net", {key_record(list_key)});
  put_txt(dns, "fwd._domainkey.forwarder.example", {key_record(fwd_key)});
  std::string one = seal(kMessage, {list_key}, 1, "none");
  std::string two = seal(one, {fwd_key, "forwarder.example", "fwd"}, 2, "pass");

  SUBCASE("one set") {
    ArcResult r = arc_of(one, dns);
    CHECK(r.result == "pass");
    CHECK(r.instances == 1);
    CHECK(r.reason.empty());
  }
  SUBCASE("two sets, keys asked at once") {
    DkimCheck check = check_message(two);
    ArcResult first = check.verify_arc(DnsAnswers{});
    CHECK_FALSE(first.complete);
    CHECK(first.needs.questions().size() == 2);
    CHECK(check.key_needs(DnsAnswers{}).questions().size() == 2);  // the same, without verifying
    CHECK(check.key_needs(dns).empty());
    ArcResult r = check.verify_arc(dns);
    CHECK(r.complete);
    CHECK(r.result == "pass");
    CHECK(r.instances == 2);
    REQUIRE(r.sets.size() == 2);
    CHECK(r.sets[0].instance == 2);
    CHECK(r.sets[0].domain == "forwarder.example");
    CHECK(r.sets[0].message == "pass");
    CHECK(r.sets[1].authserv_id == "lists.example.net");
    CHECK(r.sets[1].seal == "pass");
    CHECK(r.sets[1].message == "not checked");
  }
  SUBCASE("the body changed after the last seal") {
    ArcResult r = arc_of(two + "footer\r\n", dns);
    CHECK(r.result == "fail");
    CHECK(r.failed_instance == 2);
    CHECK(r.reason.find("body hash mismatch") != std::string::npos);
    REQUIRE(arc_hints(r).size() == 1);
    CHECK(arc_hints(r)[0].code == "arc-fail");
  }
  SUBCASE("the body changed between the seals: only the newest AMS counts") {
    std::string changed = std::regex_replace(one, std::regex("Hi list"), "Hi all");
    CHECK(arc_of(seal(changed, {fwd_key, "forwarder.example", "fwd"}, 2, "pass"), dns).result ==
          "pass");
  }
  SUBCASE("an older set's AAR changed: its seal and the newer one fail") {
    std::string m = std::regex_replace(two, std::regex("i=1; lists.example.net; dkim=pass"),
                                       "i=1; lists.example.net; dkim=fail");
    ArcResult r = arc_of(m, dns);
    CHECK(r.result == "fail");
    CHECK(r.failed_instance == 2);  // the newest seal covers set 1 too
  }
  SUBCASE("cv= values") {
    CHECK(arc_of(seal(kMessage, {list_key}, 1, "pass"), dns).reason ==
          "ARC-Seal 1 has cv=pass, expected cv=none");
    CHECK(arc_of(seal(one, {fwd_key, "forwarder.example", "fwd"}, 2, "none"), dns).result ==
          "fail");
    ArcResult failed = arc_of(seal(one, {fwd_key, "forwarder.example", "fwd"}, 2, "fail"), dns);
    CHECK(failed.result == "fail");
    CHECK(failed.reason.find("reports cv=fail") != std::string::npos);
  }
  SUBCASE("structure: a missing field, a duplicate, a gap") {
    std::string no_aar =
        std::regex_replace(two, std::regex("ARC-Authentication-Results: i=1;"), "X-Old-AAR: i=1;");
    ArcResult r = arc_of(no_aar, dns);
    CHECK(r.result == "fail");
    CHECK(r.reason == "ARC set 1 has no ARC-Authentication-Results");
    std::string dup = "ARC-Authentication-Results: i=2; x.example; none\r\n" + two;
    CHECK(arc_of(dup, dns).reason == "two ARC-Authentication-Results fields with i=2");
    std::string gap = std::regex_replace(two, std::regex("i=2"), "i=3");
    CHECK(arc_of(gap, dns).reason.find("ARC set 2 has no") == 0);
    std::string bad_i = "ARC-Authentication-Results: i=x; x.example; none\r\n" + two;
    CHECK(arc_of(bad_i, dns).result == "fail");
  }
  SUBCASE("a key that is missing or times out") {
    DnsAnswers partial;
    put_txt(partial, "arc._domainkey.lists.example.net", {key_record(list_key)});
    put_status(partial, "fwd._domainkey.forwarder.example", DnsStatus::temperror, "timeout");
    ArcResult r = arc_of(two, partial);
    CHECK(r.complete);
    CHECK(r.result == "temperror");
    put_status(partial, "fwd._domainkey.forwarder.example", DnsStatus::nxdomain, "NXDOMAIN");
    CHECK(arc_of(two, partial).result == "fail");
  }
  SUBCASE("a seal under a key under 1024 bits fails") {
    auto small = make_rsa_key(512);
    DnsAnswers d2;
    put_txt(d2, "arc._domainkey.lists.example.net", {key_record(small)});
    ArcResult r = arc_of(seal(kMessage, {small}, 1, "none"), d2);
    CHECK(r.result == "fail");
    CHECK(r.reason.find("under 1024") != std::string::npos);
  }
  SUBCASE("JSON") {
    auto j = to_json(arc_of(two, dns));
    CHECK(j["result"] == "pass");
    CHECK(j["instances"] == 2);
    CHECK(j["sets"].size() == 2);
  }
}

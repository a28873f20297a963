// The SPF record parser and the macro language (RFC 7208 §4.5-§7).
#include "responder/analysis/spf_record.hpp"

#include <doctest/doctest.h>

using namespace ipconfirm;
using namespace ipconfirm::responder;

namespace {

SpfMacroContext rfc_example_context(const char* ip) {
  // RFC 7208 §7.4: sender strong-bad@email.example.com, <domain> email.example.com.
  SpfMacroContext c;
  c.sender = "strong-bad@email.example.com";
  c.local_part = "strong-bad";
  c.sender_domain = "email.example.com";
  c.domain = "email.example.com";
  c.ip = *IpAddress::parse(ip);
  c.helo = "mx.example.org";
  c.receiver = "mx.example.test";
  c.now = 1700000000;
  return c;
}

std::string expand(const char* s, const char* ip = "192.0.2.3", bool explanation = false) {
  auto r = expand_macros(s, rfc_example_context(ip), explanation);
  REQUIRE_MESSAGE(r, "expansion failed: " << s);
  return *r;
}

}  // namespace

TEST_CASE("spf record: version selection is exact and case-insensitive") {
  CHECK(is_spf1_record("v=spf1"));
  CHECK(is_spf1_record("v=spf1 -all"));
  CHECK(is_spf1_record("V=SpF1 ~all"));
  CHECK_FALSE(is_spf1_record("v=spf10"));
  CHECK_FALSE(is_spf1_record("v=spf1mx"));
  CHECK_FALSE(is_spf1_record(" v=spf1 -all"));
  CHECK_FALSE(is_spf1_record("spf2.0/pra -all"));
}

TEST_CASE("spf record: every mechanism, qualifier and CIDR form parses") {
  const auto p = parse_spf_record(
      "v=spf1 +all -include:_spf.example.net ~a ?a:mail.example.org/24 a//64 a/24//64 mx "
      "mx:example.org/28 ptr ptr:example.org ip4:192.0.2.0/24 ip6:2001:db8::/32 "
      "exists:%{i}.bl.example.net redirect=_spf.example.org exp=explain.%{d} foo=bar  ");
  REQUIRE(p.record);
  const auto& m = p.record->mechanisms;
  REQUIRE(m.size() == 13);
  CHECK(m[0].kind == SpfMechanismKind::all);
  CHECK(m[0].qualifier == SpfQualifier::pass);
  CHECK(m[1].kind == SpfMechanismKind::include);
  CHECK(m[1].qualifier == SpfQualifier::fail);
  CHECK(m[1].domain_spec == "_spf.example.net");
  CHECK(m[2].kind == SpfMechanismKind::a);
  CHECK(m[2].qualifier == SpfQualifier::softfail);
  CHECK(m[2].domain_spec.empty());
  CHECK(m[3].qualifier == SpfQualifier::neutral);
  CHECK(m[3].domain_spec == "mail.example.org");
  CHECK(m[3].cidr4 == 24);
  CHECK(m[3].cidr6 == 128);
  CHECK(m[4].cidr4 == 32);
  CHECK(m[4].cidr6 == 64);
  CHECK(m[5].cidr4 == 24);
  CHECK(m[5].cidr6 == 64);
  CHECK(m[6].kind == SpfMechanismKind::mx);
  CHECK(m[7].domain_spec == "example.org");
  CHECK(m[7].cidr4 == 28);
  CHECK(m[8].kind == SpfMechanismKind::ptr);
  CHECK(m[9].domain_spec == "example.org");
  CHECK(m[10].kind == SpfMechanismKind::ip4);
  CHECK(m[10].cidr4 == 24);
  CHECK(m[10].network[0] == 192);
  CHECK(m[11].kind == SpfMechanismKind::ip6);
  CHECK(m[11].cidr6 == 32);
  CHECK(m[11].network[0] == 0x20);
  CHECK(m[12].kind == SpfMechanismKind::exists);
  CHECK(m[12].text == "exists:%{i}.bl.example.net");
  CHECK(p.record->redirect == "_spf.example.org");
  CHECK(p.record->exp == "explain.%{d}");
  CHECK(p.record->unknown_modifiers == std::vector<std::string>{"foo=bar"});
  CHECK(queries_dns(SpfMechanismKind::include));
  CHECK_FALSE(queries_dns(SpfMechanismKind::ip4));
}

TEST_CASE("spf record: syntax errors anywhere are refused, with the term named") {
  const char* bad[] = {
      "v=spf1 ip4:1.2.3.4 -all moo",                   // unknown mechanism after a match
      "v=spf1 -all.",                                  // all takes nothing
      "v=spf1 -all:foo",                               //
      "v=spf1 -all/8",                                 //
      "v=spf1 include",                                // include needs a domain
      "v=spf1 include:",                               //
      "v=spf1 include:example.com/24",                 // no CIDR on include
      "v=spf1 exists",                                 //
      "v=spf1 ptr/0",                                  // no CIDR on ptr
      "v=spf1 ptr:",                                   //
      "v=spf1 a:",                                     //
      "v=spf1 a/33",                                   // IPv4 CIDR over 32
      "v=spf1 a//129",                                 // IPv6 CIDR over 128
      "v=spf1 a/24/64",                                // dual CIDR needs "//"
      "v=spf1 ip4:1.2.3.4/032",                        // leading zero
      "v=spf1 ip4:1.2.3",                              // short address
      "v=spf1 ip4:1.2.3.4//32",                        // no dual CIDR on ip4
      "v=spf1 ip4:1.2.3.4:8080",                       //
      "v=spf1 ip4",                                    //
      "v=spf1 ip4:2001:db8::1",                        // IPv6 in ip4
      "v=spf1 ip6:1.2.3.4",                            // IPv4 in ip6
      "v=spf1 ip6::CAFE::BABE",                        //
      "v=spf1 ip6:::1//33",                            //
      "v=spf1 a:foo-bar",                              // no top label
      "v=spf1 a:museum.",                              //
      "v=spf1 a:abc.123",                              // numeric top label
      "v=spf1 a:example.-com",                         // top label starts with a dash
      "v=spf1 a:example.com:8080",                     // ':' in the top label
      "v=spf1 redirect:example.com",                   // redirect is a modifier
      "v=spf1 redirect=",                              // empty domain
      "v=spf1 exp=",                                   //
      "v=spf1 exp=-all",                               // not a domain-spec
      "v=spf1 redirect=a.example redirect=b.example",  // twice
      "v=spf1 exp=a.example exp=b.example",            //
      "v=spf1 1up=foo",                                // modifier name must start with a letter
      "v=spf1 =all",                                   //
      "v=spf1 foo=%abc",                               // bad macro in an unknown modifier
      "v=spf1 moo.cow/far_out=man:dog/cat",            // '/' before '=': a mechanism, unknown
      "v=spf1 exists:%(ir).example.com",               // '%' must be followed by { % _ -
      "v=spf1 exists:foo%.example.com",                //
      "v=spf1 a:%{x}.example.com",                     // no such macro letter
      "v=spf1 a:%{d0}.example.com",                    // a DIGIT transformer is non-zero
      "v=spf1 exp=%{r}.example.com",                   // r c t only in explanation text
      "v=spf1 a:ctrl.example.com\rptr",                // control character
      "v=spf1 a:\xef\xbb\xbfgarbage.example.net",      // non-ASCII
      "v=spf1 ip4:192.0.2.5\n include:x.example.com",
  };
  for (const char* r : bad) {
    const auto p = parse_spf_record(r);
    CHECK_MESSAGE(!p.record, r);
    CHECK_MESSAGE(!p.error.empty(), r);
  }
  CHECK(parse_spf_record("v=spf1 moo").error == "unknown mechanism 'moo'");
}

TEST_CASE("spf record: what the grammar allows") {
  const char* good[] = {
      "v=spf1",
      "v=spf1 ",
      "v=spf1 a  -all",
      "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all",  // unknown modifier, ignored
      "v=spf1 default=pass",
      "v=spf1 default=",
      "v=spf1 a:foo:bar/baz.example.com",  // any visible character before the top label
      "v=spf1 a:foo.example.xn--zckzah",   // top label with dashes
      "v=spf1 a:%{H} -all",                // ends in a macro
      "v=spf1 a:macro%%percent%_%_space%-url-space.example.com",
      "v=spf1 include:o.spf.example.com.",  // trailing dot
      "v=spf1 exists:%{l2r+-}.user.%{d2}",
      "v=spf1 ip6:::1.1.1.1/0",
      "v=spf1 ip6:Cafe:Babe:8000::/33",
      "V=SPF1 A MX -ALL",
  };
  for (const char* r : good) CHECK_MESSAGE(parse_spf_record(r).record, r);
  CHECK_FALSE(parse_spf_record("v=spf1 a:123-456").record);
  CHECK(parse_spf_record("v=spf1 a:x.123-456").record);  // a top label may be digits and '-'
}

TEST_CASE("spf record: bounds on size and terms") {
  std::string big = "v=spf1";
  while (big.size() <= kMaxSpfRecord) big += " ip4:192.0.2.1";
  CHECK_FALSE(parse_spf_record(big).record);
  std::string many = "v=spf1";
  for (std::size_t i = 0; i <= kMaxSpfTerms; ++i) many += " a";
  REQUIRE(many.size() <= kMaxSpfRecord);
  CHECK_FALSE(parse_spf_record(many).record);
  CHECK(parse_spf_record(many).error.find("terms") != std::string::npos);
}

TEST_CASE("spf macros: the examples of RFC 7208 §7.4") {
  CHECK(expand("%{s}") == "strong-bad@email.example.com");
  CHECK(expand("%{o}") == "email.example.com");
  CHECK(expand("%{d}") == "email.example.com");
  CHECK(expand("%{d4}") == "email.example.com");
  CHECK(expand("%{d3}") == "email.example.com");
  CHECK(expand("%{d2}") == "example.com");
  CHECK(expand("%{d1}") == "com");
  CHECK(expand("%{dr}") == "com.example.email");
  CHECK(expand("%{d2r}") == "example.email");
  CHECK(expand("%{l}") == "strong-bad");
  CHECK(expand("%{l-}") == "strong.bad");
  CHECK(expand("%{lr}") == "strong-bad");
  CHECK(expand("%{lr-}") == "bad.strong");
  CHECK(expand("%{l1r-}") == "strong");
  CHECK(expand("%{ir}.%{v}._spf.%{d2}") == "3.2.0.192.in-addr._spf.example.com");
  CHECK(expand("%{lr-}.lp._spf.%{d2}") == "bad.strong.lp._spf.example.com");
  CHECK(expand("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}") ==
        "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
  CHECK(expand("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}") ==
        "3.2.0.192.in-addr.strong.lp._spf.example.com");
  CHECK(expand("%{d2}.trusted-domains.example.net") == "example.com.trusted-domains.example.net");
  CHECK(expand("%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01") ==
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

TEST_CASE("spf macros: escapes, URL encoding, explanation-only letters, delimiters") {
  CHECK(expand("a%%b%_c%-d") == "a%b c%20d");
  CHECK(expand("%{L}") == "strong-bad");
  auto ctx = rfc_example_context("192.0.2.3");
  ctx.local_part = "~jack&jill=up-a_b3.c";
  CHECK(expand_macros("%{L}", ctx) == "~jack%26jill%3Dup-a_b3.c");
  CHECK(expand_macros("%{l}", ctx) == "~jack&jill=up-a_b3.c");
  CHECK(expand("%{h}") == "mx.example.org");
  CHECK(expand("%{v}", "2001:db8::1") == "ip6");
  CHECK(expand("%{i}", "2001:db8::1") ==
        "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1");
  CHECK(expand("%{p}") == "unknown");
  ctx.validated_ptr = "mail.example.com";
  CHECK(expand_macros("%{p1}", ctx) == "com");
  // c, r, t: explanation text only.
  CHECK_FALSE(expand_macros("%{c}", rfc_example_context("192.0.2.3")));
  CHECK(expand("%{c} %{r} %{t}", "192.0.2.3", true) == "192.0.2.3 mx.example.test 1700000000");
  CHECK(expand("%{c}", "2001:db8::cb01", true) == "2001:db8::cb01");
  CHECK(is_valid_macro_string("Connections from %{c} not authorized.", true));
  CHECK_FALSE(is_valid_macro_string("Connections from %{c}", false));
  CHECK_FALSE(is_valid_macro_string("The %{x}-files.", true));
  CHECK_FALSE(is_valid_macro_string("tab\there", true));
  // Several delimiters at once; a big digit keeps everything.
  ctx.local_part = "foo-bar+zip+quux";
  CHECK(expand_macros("%{l2r+-}", ctx) == "bar.foo");
  CHECK(expand_macros("%{l99999999999999999999}", ctx) == "foo-bar+zip+quux");
  CHECK(uses_p_macro("%{p}.x.example"));
  CHECK(uses_p_macro("%{P2}"));
  CHECK_FALSE(uses_p_macro("%{d}.x.example"));
}

TEST_CASE("spf macros: domain-spec expansion truncates to 253 bytes and refuses empty labels") {
  auto ctx = rfc_example_context("192.0.2.3");
  const std::string label(60, 'x');
  std::string domain = label;
  for (int i = 0; i < 5; ++i) domain += "." + label;  // 365 bytes
  ctx.domain = domain;
  const SpfTarget t = expand_domain_spec("%{d}.example.com.", ctx);
  CHECK(t.status == SpfTarget::Status::ok);
  CHECK(t.name.size() <= 253);
  CHECK(t.name.ends_with(".example.com"));
  CHECK(t.name.starts_with("xxx"));

  CHECK(expand_domain_spec("mail.example...com", ctx).status == SpfTarget::Status::invalid_name);
  const std::string percents(22, '%');  // %{H} escapes each to "%25": a 66-byte label
  ctx.helo = percents;
  CHECK(expand_domain_spec("%{H}.bar", ctx).status == SpfTarget::Status::invalid_name);
  CHECK(expand_domain_spec("museum", ctx).status == SpfTarget::Status::syntax_error);
  CHECK(expand_domain_spec("example.org.", ctx).name == "example.org");
}

TEST_CASE("spf record: networks match by family and prefix") {
  const auto p = parse_spf_record("v=spf1 ip4:192.0.2.0/24 ip6:::ffff:192.0.2.0/120 ip4:0.0.0.0/0");
  REQUIRE(p.record);
  const auto& m = p.record->mechanisms;
  const auto v4 = *IpAddress::parse("192.0.2.77");
  const auto other = *IpAddress::parse("198.51.100.1");
  const auto mapped = *IpAddress::parse("::ffff:192.0.2.77");  // folded to IPv4
  CHECK(spf_network_contains(m[0].network, false, m[0].cidr4, v4));
  CHECK_FALSE(spf_network_contains(m[0].network, false, m[0].cidr4, other));
  CHECK(spf_network_contains(m[0].network, false, m[0].cidr4, mapped));
  // An IPv4-mapped ip6 network never matches an IPv4 connection (§5).
  CHECK_FALSE(spf_network_contains(m[1].network, true, m[1].cidr6, v4));
  CHECK(spf_network_contains(m[2].network, false, m[2].cidr4, other));
  CHECK_FALSE(
      spf_network_contains(m[2].network, false, m[2].cidr4, *IpAddress::parse("2001:db8::1")));
}

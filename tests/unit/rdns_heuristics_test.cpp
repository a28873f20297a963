// PTR name validity and the generic-name heuristic, walked over tests/data/rdns/*.txt.
#include "responder/analysis/rdns_heuristics.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

using ipconfirm::IpAddress;
using namespace ipconfirm::responder;

namespace {

IpAddress ip(const char* text) {
  auto parsed = IpAddress::parse(text);
  REQUIRE(parsed);
  return *parsed;
}

struct Sample {
  int line = 0;
  std::string ip;
  std::string name;
};

std::vector<Sample> read_samples(const std::string& file) {
  std::ifstream in(std::string(IPCONFIRM_TEST_DATA) + "/rdns/" + file);
  REQUIRE(in.good());
  std::vector<Sample> out;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.find(' ');
    REQUIRE(space != std::string::npos);
    out.push_back(Sample{number, line.substr(0, space), line.substr(space + 1)});
  }
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST_CASE("normalise_ptr_name: valid names are lower-cased without the root dot") {
  struct Case {
    std::string raw;
    std::string want;
  };
  const std::string l63(63, 'a');
  const std::string n253 = l63 + "." + l63 + "." + l63 + "." + std::string(61, 'b');
  const std::vector<Case> cases{
      {"mail.example.com", "mail.example.com"},
      {"Mail.Example.COM.", "mail.example.com"},
      {"localhost", "localhost"},
      {"a", "a"},
      {"123.example", "123.example"},
      {"1-2.example.net", "1-2.example.net"},
      {"xn--bcher-kva.example", "xn--bcher-kva.example"},
      {"a-b.c-d.example2", "a-b.c-d.example2"},
      {"x.1a", "x.1a"},
      {l63 + ".example", l63 + ".example"},
      {n253, n253},
      {n253 + ".", n253},
  };
  for (const auto& c : cases) {
    CAPTURE(c.raw);
    const auto got = normalise_ptr_name(c.raw);
    REQUIRE(got);
    CHECK(*got == c.want);
  }
}

TEST_CASE("normalise_ptr_name: invalid names are refused") {
  const std::string l64(64, 'a');
  const std::string n254 = std::string(63, 'a') + "." + std::string(63, 'a') + "." +
                           std::string(63, 'a') + "." + std::string(62, 'b');
  const std::vector<std::string> cases{
      "",
      ".",
      "..",
      "example.com..",
      ".example.com",
      "a..b",
      "-a.example",
      "a-.example",
      "a.-b.example",
      "a.b-",
      "a_b.example",
      "a b.example",
      " mail.example.com",
      "mail.example.com ",
      "mail.example.com\r\n",
      std::string("mail\0.example", 13),
      "mail\x01.example",
      "m\x7f.example",
      "caf\xc3\xa9.example",
      "mail\\032.example",
      "*.example",
      "192.0.2.1",
      "example.123",
      "1",
      "mail.example.com:25",
      "[192.0.2.1]",
      l64 + ".example",
      n254,
      n254 + ".",
  };
  for (const auto& c : cases) {
    CAPTURE(c);
    CHECK_FALSE(normalise_ptr_name(c));
  }
}

TEST_CASE("judge_generic_ptr: every provider-style name in generic.txt is generic") {
  const auto samples = read_samples("generic.txt");
  CHECK(samples.size() >= 40);
  for (const auto& s : samples) {
    CAPTURE(s.line);
    CAPTURE(s.name);
    const auto v = judge_generic_ptr(s.name, ip(s.ip.c_str()));
    CAPTURE(v.score);
    CHECK(v.generic);
    CHECK(v.score >= kGenericThreshold);
    CHECK_FALSE(v.signals.empty());
  }
}

TEST_CASE("judge_generic_ptr: no name in not_generic.txt is generic") {
  const auto samples = read_samples("not_generic.txt");
  CHECK(samples.size() >= 30);
  for (const auto& s : samples) {
    CAPTURE(s.line);
    CAPTURE(s.name);
    const auto v = judge_generic_ptr(s.name, ip(s.ip.c_str()));
    CAPTURE(v.score);
    CHECK_FALSE(v.generic);
    CHECK(v.score < kGenericThreshold);
  }
}

TEST_CASE("judge_generic_ptr: scores of the documented decisions") {
  struct Case {
    const char* ip;
    const char* name;
    int score;
  };
  const std::vector<Case> cases{
      {"192.0.2.10", "mail-192-0-2-10.example.net", 1},
      {"192.0.2.10", "192-0-2-10.static.isp.example", 3},
      {"192.0.2.10", "static-ip-192-0-2-10.isp.example", 4},
      {"192.0.2.10", "mx1.example.com", -3},
      {"192.0.2.10", "mail.example.com", -3},
      {"192.0.2.10", "example.com", 0},
      {"192.0.2.10", "192-0-2-10.isp.example", 4},
      {"192.0.2.10", "dyn-192-0-2-10.pool.isp.example", 8},
      {"192.0.2.10", "192-0-2.isp.example", 2},
      {"192.0.2.10", "smtp-out.example.net", -6},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const auto v = judge_generic_ptr(c.name, ip(c.ip));
    CHECK(v.score == c.score);
    CHECK(v.generic == (c.score >= kGenericThreshold));
  }
}

TEST_CASE("judge_generic_ptr: the address is found in any order, separator and padding") {
  const auto addr = ip("192.0.2.10");
  for (const char* name :
       {"h-192-0-2-10.isp.example", "h-10.2.0.192.isp.example", "h192x0x2x10.isp.example",
        "h-192-000-002-010.isp.example", "h-010-002-000-192.isp.example",
        "h-2-192-10-0.isp.example", "h192000002010.isp.example", "h010002000192.isp.example",
        "pc000020a.isp.example", "p0a0200c0.isp.example", "PC000020A.isp.example"}) {
    CAPTURE(name);
    const auto v = judge_generic_ptr(name, addr);
    CHECK(v.score >= 4);
    CHECK(v.generic);
  }
  // Other addresses' octets, or only two of ours, are not the address.
  for (const char* name :
       {"h-192-0-2-11.isp.example", "h-0-2.isp.example", "h-192-0-20-1.isp.example",
        "pc000020b.isp.example", "h192000002011.isp.example", "h-1920-2-10.isp.example"}) {
    CAPTURE(name);
    const auto v = judge_generic_ptr(name, addr);
    CHECK_FALSE(v.generic);
    CHECK_FALSE(has(v.signals, "contains the IP address octets"));
  }
}

TEST_CASE("judge_generic_ptr: signals and counter-signals are listed") {
  const auto v = judge_generic_ptr("mail-192-0-2-10.example.net", ip("192.0.2.10"));
  CHECK(has(v.signals, "contains the IP address octets"));
  CHECK(has(v.counter_signals, "word 'mail'"));
  CHECK_FALSE(v.generic);

  const auto d = judge_generic_ptr("dyn-192-0-2-10.pool.isp.example", ip("192.0.2.10"));
  CHECK(has(d.signals, "word 'dyn'"));
  CHECK(has(d.signals, "word 'pool'"));
  CHECK(d.counter_signals.empty());
  CHECK_FALSE(d.cloud);

  const auto h = judge_generic_ptr("pc000020a.dip0.t-ipconnect.de", ip("192.0.2.10"));
  CHECK(has(h.signals, "contains the IP address in hex"));
  CHECK(has(h.signals, "word 'dip'"));
  CHECK_FALSE(has(h.signals, "word 'ip'"));  // "t-ipconnect" is not the word "ip"
}

TEST_CASE("judge_generic_ptr: mail words in the registered domain do not count") {
  // "mailgun.net" names the provider, not the host.
  auto v = judge_generic_ptr("dyn-192-0-2-10.mailbox.example", ip("192.0.2.10"));
  CHECK(v.counter_signals.empty());
  CHECK(v.generic);
  // Hetzner's "your-server.de" does not count as the word "server".
  v = judge_generic_ptr("static.10.2.0.192.clients.your-server.de", ip("192.0.2.10"));
  CHECK(v.counter_signals == std::vector<std::string>{"word 'static'"});
  CHECK(v.score == 4);
  // With a two-letter TLD under a known second level, three labels are the registered domain.
  v = judge_generic_ptr("192-0-2-10.smtp.co.uk", ip("192.0.2.10"));
  CHECK(v.counter_signals.empty());
  v = judge_generic_ptr("smtp.192-0-2-10.isp.co.uk", ip("192.0.2.10"));
  CHECK(has(v.counter_signals, "word 'smtp'"));
}

TEST_CASE("judge_generic_ptr: cloud default names are flagged as a hint") {
  for (const char* name :
       {"ec2-192-0-2-10.compute-1.amazonaws.com", "10.2.0.192.bc.googleusercontent.com",
        "192-0-2-10.ip.linodeusercontent.com", "ubuntu-s-1vcpu-1gb-fra1-01"}) {
    CAPTURE(name);
    const auto v = judge_generic_ptr(name, ip("192.0.2.10"));
    CHECK(v.generic);
    CHECK(v.cloud);
    CHECK(has(v.signals, "cloud provider's default name (a hint, not a verdict)"));
  }
  const auto v = judge_generic_ptr("c-192-0-2-10.hsd1.ma.comcast.net", ip("192.0.2.10"));
  CHECK_FALSE(v.cloud);
}

TEST_CASE("judge_generic_ptr: IPv6 forms") {
  const auto a = ip("2001:db8:abcd:12::a1b2:c3d4");
  CHECK(judge_generic_ptr("2001-db8-abcd-12-0-0-a1b2-c3d4.isp.example", a).score == 4);
  CHECK(judge_generic_ptr("2001-0db8-abcd-0012-0000-0000-a1b2-c3d4.isp.example", a).score == 4);
  CHECK(judge_generic_ptr("20010db8abcd001200000000a1b2c3d4.isp.example", a).score == 4);
  CHECK(judge_generic_ptr("2001-db8-abcd-12--a1b2-c3d4.isp.example", a).score == 4);
  CHECK(judge_generic_ptr("h-0-0-a1b2-c3d4.isp.example", a).score == 2);
  CHECK(judge_generic_ptr("net-2001-db8-abcd-12.isp.example", a).score == 2);
  CHECK(judge_generic_ptr("mail.example.com", a).score == -3);
  // Another address in the same /64 is not this address.
  CHECK(judge_generic_ptr("2001-db8-abcd-12-0-0-a1b2-c3d5.isp.example", a).score < 4);
}

TEST_CASE("judge_generic_ptr: an invalid name gives an empty verdict") {
  for (const char* name :
       {"", "dyn-192-0-2-10.pool..isp", "dyn_192_0_2_10.pool.isp", "192.0.2.10"}) {
    CAPTURE(name);
    const auto v = judge_generic_ptr(name, ip("192.0.2.10"));
    CHECK(v.score == 0);
    CHECK_FALSE(v.generic);
    CHECK(v.signals.empty());
    CHECK(v.counter_signals.empty());
  }
}

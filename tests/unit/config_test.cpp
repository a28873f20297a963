// The config loader: the example file loads; mistakes name the key and line.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "config/config.hpp"
#include "core/embedded_files.hpp"

using namespace ipconfirm::config;

namespace {
LoadResult parse(const std::string& text) {
  return parse_config(text, "t.toml");
}
const char* kMinimal =
    "hostname = \"mx.example.test\"\ndomains = [\"example.test\"]\n"
    "[smtp]\nlisten = [\"127.0.0.1:2525\"]\n";
}  // namespace

TEST_CASE("config: the commented example is the built-in default and loads") {
  std::ifstream in(std::string(IPCONFIRM_TEST_DATA) + "/../../config/ipconfirm.toml");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str() == ipconfirm::embedded_files().at("ipconfirm.toml"));
  LoadResult r = parse(text.str());
  REQUIRE_MESSAGE(r.config, r.error);
  CHECK(r.config->hostname == "mx.example.test");
  CHECK(r.config->domains == std::vector<std::string>{"example.test"});
  REQUIRE(r.config->smtp.listen.size() == 2);
  CHECK(r.config->smtp.listen[0].to_string() == "127.0.0.1:2525");
  CHECK(r.config->smtp.listen[1].to_string() == "[::1]:2525");
  CHECK(r.config->delivery.mode == DeliveryMode::maildir);
  CHECK(r.config->queue.dir == "./spool");
}

TEST_CASE("config: the issue's example keys load") {
  LoadResult r = parse(R"(
hostname = "mx.example.test"
domains  = ["example.test"]
[smtp]
listen = ["127.0.0.1:2525", "[::1]:2525"]
[dns]
servers = ["127.0.0.1:5353"]
dnsbl   = ["zen.spamhaus.org"]
[delivery]
mode      = "smarthost"
smarthost = "127.0.0.1:2526"
maildir   = "./outbox"
[queue]
dir = "./spool"
)");
  REQUIRE_MESSAGE(r.config, r.error);
  CHECK(r.config->delivery.mode == DeliveryMode::smarthost);
  CHECK(r.config->delivery.smarthost->to_string() == "127.0.0.1:2526");
  CHECK(r.config->dns.servers == std::vector<std::string>{"127.0.0.1:5353"});
  CHECK(r.config->dns.dnsbl == std::vector<std::string>{"zen.spamhaus.org"});
}

TEST_CASE("config: errors name the key and the line") {
  struct {
    std::string text;
    std::string expect;
  } cases[] = {
      {std::string(kMinimal) + "bogus = 1\n", "t.toml:5: key 'smtp.bogus': unknown key"},
      {std::string(kMinimal) + "max_recipients = \"ten\"\n",
       "t.toml:5: key 'smtp.max_recipients': must be an integer"},
      {"hostname = \"mx.example.test\"\ndomains = [\"example.test\"]\n[smtp]\nlisten = "
       "[\"127.0.0.1\"]\n",
       "t.toml:4: key 'smtp.listen': '127.0.0.1' is not an address:port"},
      {"hostname = \"mx.example.test\"\ndomains = [\"example.test\"]\n[smtp]\nlisten = "
       "[\"::1:25\"]\n",
       "key 'smtp.listen'"},
      {"domains = [\"example.test\"]\n", "key 'hostname': is required"},
      {"hostname = \"bad host\"\ndomains = [\"example.test\"]\n", "key 'hostname'"},
      {std::string(kMinimal) + "[delivery]\nmode = \"pigeon\"\n", "t.toml:6: key 'delivery.mode'"},
      {std::string(kMinimal) + "[delivery]\nmode = \"smarthost\"\n",
       "key 'delivery.smarthost': is required"},
      {std::string(kMinimal) + "[dns]\nservers = [\"dns.example:53\"]\n",
       "t.toml:6: key 'dns.servers'"},
      {std::string(kMinimal) + "[queue]\ndir = 5\n", "t.toml:6: key 'queue.dir': must be a string"},
      {"hostname = \"mx.example.test\"\n[[oops\n", "t.toml:2:"},
      {"hostname = \"mx.example.test\"\ndomains = [\"example.test\"]\nsurprise = true\n",
       "t.toml:3: key 'surprise': unknown key"},
  };
  for (const auto& c : cases) {
    LoadResult r = parse(c.text);
    CAPTURE(c.text);
    CHECK_FALSE(r.config);
    CHECK_MESSAGE(r.error.find(c.expect) != std::string::npos, r.error);
  }
}

TEST_CASE("config: endpoints") {
  CHECK(parse_endpoint("192.0.2.1:25")->to_string() == "192.0.2.1:25");
  CHECK(parse_endpoint("[2001:db8::1]:587")->to_string() == "[2001:db8::1]:587");
  CHECK(parse_endpoint("[::ffff:192.0.2.1]:25")->to_string() == "192.0.2.1:25");
  for (const char* bad :
       {"", "192.0.2.1", "192.0.2.1:0", "192.0.2.1:65536", "host:25", "2001:db8::1:25",
        "[2001:db8::1]", "[2001:db8::1]25", "192.0.2.1:+25", " 192.0.2.1:25"})
    CHECK_FALSE(parse_endpoint(bad));
}

TEST_CASE("config: TLS, implicit TLS, PROXY protocol and postmaster keys") {
  LoadResult r = parse(std::string(kMinimal) +
                       "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n"
                       "implicit_tls_listen = [\"127.0.0.1:4650\"]\n"
                       "proxy_protocol_listen = [\"[::1]:2526\"]\n"
                       "proxy_protocol_tls_listen = [\"127.0.0.1:4651\"]\n"
                       "trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"2001:db8::/32\"]\n"
                       "[postmaster]\nforward = \"hostmaster@example.org\"\n");
  REQUIRE_MESSAGE(r.config, r.error);
  const auto& s = r.config->smtp;
  CHECK(s.tls_cert == "c.pem");
  CHECK(s.implicit_tls_listen.at(0).to_string() == "127.0.0.1:4650");
  CHECK(s.proxy_protocol_listen.at(0).to_string() == "[::1]:2526");
  CHECK(s.proxy_protocol_tls_listen.at(0).to_string() == "127.0.0.1:4651");
  REQUIRE(s.trusted_proxies.size() == 3);
  CHECK(s.trusted_proxies[0].prefix == 32);
  CHECK(s.trusted_proxies[1].prefix == 8);
  CHECK(s.trusted_proxies[2].address.to_string() == "2001:db8::");
  CHECK(r.config->postmaster.forward == "hostmaster@example.org");

  for (const char* bad :
       {"tls_cert = \"c.pem\"\n", "implicit_tls_listen = [\"127.0.0.1:465\"]\n",
        "proxy_protocol_listen = [\"127.0.0.1:26\"]\n", "trusted_proxies = [\"10.0.0.0/33\"]\n",
        "trusted_proxies = [\"proxy.example\"]\n",
        // PROXY and TLS together need both the certificate and the trusted proxies.
        "trusted_proxies = [\"127.0.0.1\"]\nproxy_protocol_tls_listen = [\"127.0.0.1:465\"]\n",
        "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n"
        "proxy_protocol_tls_listen = [\"127.0.0.1:465\"]\n"}) {
    CAPTURE(bad);
    LoadResult b = parse(std::string(kMinimal) + bad);
    CHECK(!b.config);
    CHECK(b.error.find("t.toml:") == 0);
  }
  CHECK(!parse(std::string(kMinimal) + "[postmaster]\nforward = \"nobody\"\n").config);
  CHECK(!parse_network("10.0.0.1/"));
  CHECK(parse_network("::1")->prefix == 128);
}

TEST_CASE("config: [http] is off by default and takes its keys") {
  LoadResult off = parse(kMinimal);
  REQUIRE(off.config);
  CHECK(off.config->http.listen.empty());
  CHECK(off.config->http.max_connections == 64);
  CHECK(off.config->http.request_timeout == std::chrono::seconds(10));
  LoadResult r = parse(std::string(kMinimal) +
                       "[http]\nlisten = [\"127.0.0.1:8025\", \"[::1]:8025\"]\n"
                       "max_connections = 5\nrequest_timeout = 3\nmax_request_size = 4096\n"
                       "max_header_fields = 20\n");
  REQUIRE_MESSAGE(r.config, r.error);
  REQUIRE(r.config->http.listen.size() == 2);
  CHECK(r.config->http.listen[1].to_string() == "[::1]:8025");
  CHECK(r.config->http.max_connections == 5);
  CHECK(r.config->http.request_timeout == std::chrono::seconds(3));
  CHECK(r.config->http.max_request_size == 4096);
  CHECK(r.config->http.max_header_fields == 20);
}

TEST_CASE("config: [http] mistakes name the key and line") {
  LoadResult r = parse(std::string(kMinimal) + "[http]\nlisten = [\"localhost:8025\"]\n");
  CHECK(!r.config);
  CHECK(r.error.find("t.toml:6: key 'http.listen'") != std::string::npos);
  r = parse(std::string(kMinimal) + "[http]\nport = 8025\n");
  CHECK(r.error.find("t.toml:6: key 'http.port': unknown key") != std::string::npos);
  r = parse(std::string(kMinimal) + "[http]\nmax_request_size = 10\n");
  CHECK(r.error.find("key 'http.max_request_size': must be between") != std::string::npos);
}

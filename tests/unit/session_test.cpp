// The SMTP session state machine, command by command, without sockets.
#include <doctest/doctest.h>

#include "smtp/session.hpp"

using namespace ipconfirm;
using namespace ipconfirm::smtp;

namespace {

SessionConfig test_config() {
  SessionConfig c;
  c.hostname = "mx.example.test";
  c.domains = {"example.test", "example.net"};
  c.max_message_size = 1000;
  c.max_recipients = 3;
  c.max_errors = 5;
  c.max_commands = 50;
  return c;
}

Session make(SessionConfig c = test_config()) {
  return Session(std::move(c), *IpAddress::parse("192.0.2.10"), 40000);
}

std::string first_line(const Step& s) {
  return s.reply.format().substr(0, s.reply.format().find("\r\n"));
}

void ready(Session& s) {
  REQUIRE(s.on_line("EHLO client.example.org").reply.code == 250);
}
void with_rcpt(Session& s) {
  ready(s);
  REQUIRE(s.on_line("MAIL FROM:<a@example.org>").reply.code == 250);
  REQUIRE(s.on_line("RCPT TO:<ipconfirm@example.test>").reply.code == 250);
}

}  // namespace

TEST_CASE("session: greeting and EHLO name the connecting IP") {
  Session s = make();
  CHECK(s.greeting().format() == "220 mx.example.test ESMTP ipconfirm: your IP is 192.0.2.10\r\n");
  Step st = s.on_line("EHLO client.example.org");
  CHECK(st.action == Action::none);
  std::string text = st.reply.format();
  CHECK(text.rfind("250-mx.example.test Hello client.example.org [192.0.2.10]\r\n", 0) == 0);
  for (const char* ext : {"PIPELINING", "SIZE 1000", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"})
    CHECK(text.find(std::string("250-") + ext + "\r\n") != std::string::npos);
  CHECK(text.find("STARTTLS") == std::string::npos);  // not configured
  CHECK(s.on_line("HELO other.example.org").reply.format() ==
        "250 mx.example.test Hello other.example.org [192.0.2.10]\r\n");
}

TEST_CASE("session: a full transaction asks to queue, and the 250 tells the IP") {
  Session s = make();
  with_rcpt(s);
  Step d = s.on_line("DATA");
  CHECK(d.reply.code == 354);
  CHECK(d.action == Action::start_data);
  CHECK(s.in_data());
  Step end = s.on_data_end(DataFault::none);
  CHECK(end.action == Action::queue);
  CHECK(end.reply.empty());
  Step q = s.on_queued(std::string("Q1"), "PTR mail.example.org, forward-confirmed", "");
  CHECK(first_line(q) ==
        "250 2.0.0 Ok: queued as Q1; your IP is 192.0.2.10 (PTR mail.example.org, "
        "forward-confirmed)");
  CHECK(s.envelope().rcpt_to.empty());                              // transaction reset
  CHECK(s.on_line("MAIL FROM:<b@example.org>").reply.code == 250);  // ready for the next one
}

TEST_CASE("session: a message answered with no reply mail is accepted, not queued") {
  Session s = make();
  with_rcpt(s);
  s.on_line("DATA");
  s.on_data_end(DataFault::none);
  Step q =
      s.on_queued(std::string("S1.1"),
                  "PTR mail.example.org, forward-confirmed; no reply mail: null-sender", "", false);
  CHECK(first_line(q) ==
        "250 2.0.0 Ok: accepted as S1.1; your IP is 192.0.2.10 (PTR mail.example.org, "
        "forward-confirmed; no reply mail: null-sender)");
  CHECK(s.envelope().rcpt_to.empty());
}

TEST_CASE("session: the 250 ends with the report's link; the line stays within 512 bytes") {
  Session s = make();
  with_rcpt(s);
  s.on_line("DATA");
  s.on_data_end(DataFault::none);
  const std::string link = "report https://ipconfirm.example.org/r/AAAAAAAAAAAAAAAAAAAAAA";
  Step q =
      s.on_queued(std::string("Q1"), "PTR mail.example.org, forward-confirmed", "", true, link);
  // Everything before the link as it always was.
  CHECK(first_line(q) ==
        "250 2.0.0 Ok: queued as Q1; your IP is 192.0.2.10 (PTR mail.example.org, "
        "forward-confirmed); " +
            link);

  // A 253-byte PTR name, a long reason and a 200-byte URL: the summary gives way, the queue
  // id, the IP and the whole link stay.
  with_rcpt(s);
  s.on_line("DATA");
  s.on_data_end(DataFault::none);
  const std::string ptr = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                          std::string(63, 'c') + "." + std::string(61, 'd');
  const std::string long_link =
      "report https://" + std::string(177, 'x') + ".test/r/AAAAAAAAAAAAAAAAAAAAAA";
  Step q2 = s.on_queued(std::string("001795442103.122703.21799"),
                        "PTR " + ptr + ", forward-confirmed; no reply mail: rate-limit-recipient",
                        "", false, long_link);
  const std::string line = q2.reply.format();
  CHECK(line.size() <= 512);
  CHECK(line.find("\r\n") == line.size() - 2);
  CHECK(line.rfind(
            "250 2.0.0 Ok: accepted as 001795442103.122703.21799; your IP is 192.0.2.10 (PTR " +
                std::string(63, 'a'),
            0) == 0);
  CHECK(line.find("...); " + long_link + "\r\n") != std::string::npos);
}

TEST_CASE("session: a queue failure is a 451 4.3.0, never a 250") {
  Session s = make();
  with_rcpt(s);
  s.on_line("DATA");
  s.on_data_end(DataFault::none);
  Step q = s.on_queued(std::nullopt, "", "queue full");
  CHECK(first_line(q) == "451 4.3.0 temporary failure, try again later: queue full");
}

TEST_CASE("session: sequence errors have 503 5.5.1") {
  SessionConfig c = test_config();
  c.max_errors = 100;
  Session s = make(c);
  CHECK(first_line(s.on_line("MAIL FROM:<a@example.org>")) == "503 5.5.1 send EHLO or HELO first");
  ready(s);
  CHECK(first_line(s.on_line("RCPT TO:<ipconfirm@example.test>")) ==
        "503 5.5.1 need MAIL before RCPT");
  CHECK(first_line(s.on_line("DATA")) == "503 5.5.1 need MAIL before DATA");
  s.on_line("MAIL FROM:<a@example.org>");
  CHECK(first_line(s.on_line("MAIL FROM:<a@example.org>")) == "503 5.5.1 nested MAIL command");
  CHECK(first_line(s.on_line("DATA")) == "554 5.5.1 no valid recipients");
}

TEST_CASE("session: only ipconfirm@ our domains is accepted; never a relay") {
  Session s = make();
  ready(s);
  s.on_line("MAIL FROM:<a@example.org>");
  CHECK(s.on_line("RCPT TO:<IPCONFIRM@Example.TEST>").reply.code == 250);
  CHECK(s.on_line("RCPT TO:<ipconfirm@example.net>").reply.code == 250);
  struct {
    const char* rcpt;
    const char* reply;
  } cases[] = {
      {"RCPT TO:<victim@elsewhere.example>", "550 5.7.1"},
      {"RCPT TO:<ipconfirm@elsewhere.example>", "550 5.7.1"},
      {"RCPT TO:<victim%elsewhere.example@example.test>", "550 5.1.1"},
      {"RCPT TO:<elsewhere.example!victim@example.test>", "550 5.1.1"},
      {"RCPT TO:<\"victim@elsewhere.example\"@example.test>", "550 5.1.1"},
      {"RCPT TO:<@example.test:victim@elsewhere.example>", "550 5.7.1"},
      {"RCPT TO:<victim@[192.0.2.1]>", "501 5.1.3"},
      {"RCPT TO:<ipconfirm@example.test@elsewhere.example>", "501 5.1.3"},
      {"RCPT TO:victim@elsewhere.example", "501 5.1.3"},
  };
  for (const auto& c : cases) {
    Session t = make();
    ready(t);
    t.on_line("MAIL FROM:<a@example.org>");
    CAPTURE(c.rcpt);
    CHECK(first_line(t.on_line(c.rcpt)).rfind(c.reply, 0) == 0);
    CHECK(t.envelope().rcpt_to.empty());
  }
}

TEST_CASE("session: duplicate recipients count once; too many get 452") {
  Session s = make();
  with_rcpt(s);
  CHECK(s.on_line("RCPT TO:<ipconfirm@example.test>").reply.code == 250);
  CHECK(s.envelope().rcpt_to.size() == 1);
  SessionConfig c = test_config();
  c.max_recipients = 1;
  Session t = make(c);
  with_rcpt(t);
  CHECK(first_line(t.on_line("RCPT TO:<ipconfirm@example.net>")) ==
        "452 4.5.3 too many recipients");
}

TEST_CASE("session: SIZE is checked at MAIL, oversize data is refused after the dot") {
  Session s = make();
  ready(s);
  CHECK(first_line(s.on_line("MAIL FROM:<a@example.org> SIZE=1001")).rfind("552 5.3.4", 0) == 0);
  CHECK(s.on_line("MAIL FROM:<a@example.org> SIZE=1000").reply.code == 250);
  CHECK(s.on_line("RCPT TO:<ipconfirm@example.test>").reply.code == 250);
  s.on_line("DATA");
  CHECK(first_line(s.on_data_end(DataFault::too_big)).rfind("552 5.3.4", 0) == 0);
  // In step: the next transaction works.
  CHECK(s.on_line("MAIL FROM:<a@example.org>").reply.code == 250);
  CHECK(first_line(s.on_line("MAIL FROM:<a@example.org> SIZE=99999999999999999999999"))
            .rfind("5", 0) == 0);
}

TEST_CASE("session: smuggling, NUL and non-SMTP clients are refused and closed") {
  for (auto f : {LineFault::bare_lf, LineFault::bare_cr, LineFault::nul}) {
    Session s = make();
    Step st = s.on_line_fault(f);
    CHECK(st.reply.code == 521);
    CHECK(st.reply.enhanced == "5.5.2");
    CHECK(st.action == Action::close);
  }
  Session s = make();
  with_rcpt(s);
  s.on_line("DATA");
  Step st = s.on_data_end(DataFault::bad_line_ending);
  CHECK(st.reply.code == 521);
  CHECK(st.action == Action::close);
  Session web = make();
  Step g = web.on_line("GET / HTTP/1.1");
  CHECK(g.reply.code == 521);
  CHECK(g.action == Action::close);
  Session bin = make();
  CHECK(bin.on_line("EHLO \x01x").action == Action::close);
  Session eight = make();
  Step e = eight.on_line("EHLO caf\xc3\xa9.example");
  CHECK(e.reply.code == 500);
  CHECK(e.reply.enhanced == "5.5.2");
  CHECK(e.action == Action::close);
}

TEST_CASE("session: too many errors end with 421 and close") {
  Session s = make();
  Step st;
  for (int i = 0; i < 5; ++i) st = s.on_line("BOGUS");
  CHECK(st.reply.code == 421);
  CHECK(st.action == Action::close);
}

TEST_CASE("session: too many commands end with 421") {
  SessionConfig c = test_config();
  c.max_commands = 10;
  Session s = make(c);
  Step st;
  for (int i = 0; i < 11; ++i) st = s.on_line("NOOP");
  CHECK(st.reply.code == 421);
  CHECK(st.action == Action::close);
}

TEST_CASE("session: VRFY, HELP, RSET, NOOP, QUIT, unknown") {
  Session s = make();
  CHECK(s.on_line("VRFY root").reply.code == 252);
  CHECK(s.on_line("HELP").reply.code == 214);
  CHECK(first_line(s.on_line("NOOP")) == "250 2.0.0 Ok");
  CHECK(first_line(s.on_line("RSET")) == "250 2.0.0 Ok");
  CHECK(first_line(s.on_line("XYZZY")) == "500 5.5.2 command not recognized");
  CHECK(s.on_line("AUTH PLAIN x").reply.code == 502);
  Step q = s.on_line("QUIT");
  CHECK(q.reply.code == 221);
  CHECK(q.action == Action::close);
}

TEST_CASE("session: STARTTLS when offered, and the state resets after the handshake") {
  SessionConfig c = test_config();
  c.starttls_available = true;
  Session s = make(c);
  CHECK(s.on_line("EHLO a.example").reply.format().find("250-STARTTLS") != std::string::npos);
  s.on_line("MAIL FROM:<a@example.org>");
  Step st = s.on_line("STARTTLS");
  CHECK(st.reply.code == 220);
  CHECK(st.action == Action::start_tls);
  s.on_tls_started(TlsInfo{"TLSv1.3", "TLS_AES_256_GCM_SHA384"});
  CHECK(s.envelope().mail_from.empty());
  CHECK(s.on_line("MAIL FROM:<a@example.org>").reply.code == 503);  // EHLO again first
  CHECK(s.on_line("EHLO a.example").reply.format().find("STARTTLS") == std::string::npos);
  CHECK(s.on_line("STARTTLS").reply.code == 502);
  REQUIRE(s.tls());
  CHECK(s.tls()->version == "TLSv1.3");
}

TEST_CASE("session: SMTPUTF8 addresses need the parameter") {
  Session s = make();
  ready(s);
  CHECK(first_line(s.on_line("MAIL FROM:<j\xc3\xb6rg@example.org>")).rfind("553 5.6.7", 0) == 0);
  CHECK(first_line(s.on_line("MAIL FROM:<a@example.org> SIZE=123456789012345678901"))
            .rfind("501 5.5.4 bad MAIL parameter: SIZE needs a number", 0) == 0);
  CHECK(s.on_line("MAIL FROM:<j\xc3\xb6rg@example.org> SMTPUTF8").reply.code == 250);
  CHECK(s.envelope().smtputf8);
}

TEST_CASE("session: postmaster@ our domains and bare <postmaster> are accepted") {
  Session s = make();
  ready(s);
  s.on_line("MAIL FROM:<a@example.org>");
  CHECK(s.on_line("RCPT TO:<Postmaster@example.NET>").reply.code == 250);
  CHECK(s.on_line("RCPT TO:<postmaster>").reply.code == 250);
  CHECK(s.envelope().rcpt_to ==
        std::vector<std::string>{"postmaster@example.net", "postmaster@example.test"});
  CHECK(first_line(s.on_line("RCPT TO:<postmaster@elsewhere.example>")).rfind("550 5.7.1", 0) == 0);
  CHECK(first_line(s.on_line("RCPT TO:<postmaster%elsewhere.example@example.test>"))
            .rfind("550 5.1.1", 0) == 0);
}

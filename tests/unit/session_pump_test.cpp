// SessionPump's message data: what it hands to the sink, what it keeps, what it counts against
// the budget and when it gives it back. A whole conversation is fed as the server would.
#include "smtp/session_pump.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using namespace ipconfirm;
using namespace ipconfirm::smtp;

namespace {

struct Recorder : MessageSink {
  bool keep_whole = false;
  std::optional<Reply> refuse;
  int starts = 0;
  std::vector<std::string> events;  // "start", "header:<text>", "body:<piece>"
  DataStart on_data_start(const Session&) override {
    ++starts;
    events.push_back("start");
    return {keep_whole, refuse};
  }
  void on_header(std::string_view h, bool cut) override {
    events.push_back("header" + std::string(cut ? "(cut)" : "") + ":" + std::string(h));
  }
  void on_body(std::string_view piece) override { events.push_back("body:" + std::string(piece)); }
  std::string body() const {
    std::string b;
    for (const auto& e : events)
      if (e.rfind("body:", 0) == 0) b += e.substr(5);
    return b;
  }
};

SessionConfig config() {
  SessionConfig c;
  c.hostname = "mx.example.test";
  c.domains = {"example.test"};
  c.max_message_size = 4096;
  return c;
}

// One session, its pump, and the replies so far.
struct Conversation {
  explicit Conversation(MessageMemory* memory = nullptr, std::size_t max_header = 256)
      : session(config(), *IpAddress::parse("192.0.2.10"), 40000),
        pump(std::make_unique<SessionPump>(session, SessionPump::Limits{512, 1000, max_header},
                                           &sink, memory)) {}

  // Feeds `bytes` (in reads of `read` bytes) and returns the replies' first lines; a queued
  // message is taken into `message` and answered 250.
  std::vector<std::string> feed(std::string_view bytes, std::size_t read = 1 << 20) {
    std::vector<std::string> replies;
    while (!bytes.empty()) {
      const std::size_t n = std::min(read, bytes.size());
      in.append(bytes.substr(0, n));
      bytes.remove_prefix(n);
      for (;;) {
        Step step = pump->next(in);
        if (pump->need_more()) break;
        if (step.action == Action::queue) {
          message = pump->take_message();
          step = session.on_queued(std::string("Q1"), "", "");
        }
        if (!step.reply.empty()) replies.push_back(first_line(step.reply));
      }
    }
    return replies;
  }

  static std::string first_line(const Reply& r) {
    const std::string f = r.format();
    return f.substr(0, f.find("\r\n"));
  }

  Recorder sink;
  Session session;
  std::unique_ptr<SessionPump> pump;
  std::string in;
  ReceivedMessage message;
};

const char* kEnvelope =
    "EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<ipconfirm@example.test>\r\n";

}  // namespace

TEST_CASE("session pump: the header once, then the body in pieces; only the header is kept") {
  for (std::size_t read : {1u, 3u, 7u, 64u, 100000u}) {
    INFO("reads of ", read);
    Conversation c;
    c.feed(kEnvelope);
    CHECK(c.feed("DATA\r\n").back().rfind("354", 0) == 0);
    const auto replies = c.feed("Subject: hi\r\n\r\nline one\r\n..dotted\r\n.\r\nNOOP\r\n", read);
    REQUIRE(replies.size() == 2);
    CHECK(replies[0].rfind("250 2.0.0 Ok: queued as Q1", 0) == 0);
    CHECK(replies[1] == "250 2.0.0 Ok");
    REQUIRE(c.sink.events.size() >= 3);
    CHECK(c.sink.events[0] == "start");
    CHECK(c.sink.events[1] == "header:Subject: hi\r\n\r\n");
    CHECK(c.sink.body() == "line one\r\n.dotted\r\n");
    CHECK(c.message.header == "Subject: hi\r\n\r\n");
    CHECK_FALSE(c.message.header_cut);
    CHECK(c.message.whole.empty());
    CHECK(c.message.size == 15 + 19);
  }
}

TEST_CASE("session pump: a message without an empty line is all header, told at the end") {
  Conversation c;
  c.feed(kEnvelope);
  c.feed("DATA\r\n");
  c.feed("Subject: no body\r\n");
  CHECK(c.sink.events == std::vector<std::string>{"start"});
  c.feed(".\r\n");
  CHECK(c.sink.events == std::vector<std::string>{"start", "header:Subject: no body\r\n"});
  CHECK(c.message.header == "Subject: no body\r\n");
}

TEST_CASE("session pump: a long header is cut at max_header; the body still flows") {
  Conversation c(nullptr, 32);
  c.feed(kEnvelope);
  c.feed("DATA\r\n");
  const std::string header = "X-Long: " + std::string(100, 'x') + "\r\n\r\n";
  c.feed(header + "body\r\n.\r\n");
  CHECK(c.message.header == header.substr(0, 32));
  CHECK(c.message.header_cut);
  CHECK(c.sink.events[1] == "header(cut):" + header.substr(0, 32));
  CHECK(c.sink.body() == "body\r\n");
}

TEST_CASE("session pump: a message kept whole, as the sink asked") {
  Conversation c;
  c.sink.keep_whole = true;
  c.feed(kEnvelope);
  c.feed("DATA\r\n");
  c.feed("Subject: pm\r\n\r\nfor the postmaster\r\n.\r\n", 5);
  CHECK(c.message.whole == "Subject: pm\r\n\r\nfor the postmaster\r\n");
  CHECK(c.message.header == "Subject: pm\r\n\r\n");
  CHECK(c.sink.body() == "for the postmaster\r\n");
}

TEST_CASE("session pump: the sink may refuse DATA; the transaction is reset") {
  Conversation c;
  c.sink.refuse = reply(451, "4.7.1", "too much mail for the postmaster");
  c.feed(kEnvelope);
  CHECK(c.feed("DATA\r\n") ==
        std::vector<std::string>{"451 4.7.1 too much mail for the postmaster"});
  CHECK_FALSE(c.session.in_data());
  // What would have been the message is read as commands again.
  CHECK(c.feed("NOOP\r\n") == std::vector<std::string>{"250 2.0.0 Ok"});
  CHECK(c.feed("DATA\r\n").back().rfind("503", 0) == 0);  // MAIL first
}

TEST_CASE("session pump: what a message holds is counted, and given back after its 250") {
  MessageMemory memory(1 << 20);
  Conversation c(&memory);
  c.sink.keep_whole = true;
  c.feed(kEnvelope);
  c.feed("DATA\r\n");
  c.feed("Subject: x\r\n\r\nbody\r\n");
  CHECK(memory.used() == 14 + 20);  // the header, and the whole message so far
  c.feed(".\r\n");
  CHECK(c.message.hold.bytes() == 14 + 20);
  CHECK(memory.used() == 14 + 20);  // the message is still with its handler
  c.message = ReceivedMessage{};
  CHECK(memory.used() == 0);
}

TEST_CASE("session pump: over the budget the message is read to its end and refused with 451") {
  MessageMemory memory(100);
  Conversation c(&memory);
  c.sink.keep_whole = true;
  c.feed(kEnvelope);
  c.feed("DATA\r\n");
  c.feed("Subject: big\r\n\r\n");
  c.feed(std::string(80, 'b') + "\r\n");
  CHECK(memory.used() == 0);  // past the limit, everything held was given back at once
  const auto replies = c.feed(std::string(80, 'c') + "\r\n.\r\nNOOP\r\n");
  REQUIRE(replies.size() == 2);
  CHECK(replies[0] == "451 4.3.2 too much mail in progress, try again later");
  CHECK(replies[1] == "250 2.0.0 Ok");  // in step
  CHECK(c.message.size == 0);           // nothing was queued
}

TEST_CASE("session pump: DATA while the budget is spent is refused at once") {
  MessageMemory memory(64);
  CHECK(memory.take(64));  // another session holds all of it
  Conversation c(&memory);
  c.feed(kEnvelope);
  CHECK(c.feed("DATA\r\n") ==
        std::vector<std::string>{"451 4.3.2 too much mail in progress, try again later"});
  CHECK(c.sink.starts == 0);
  memory.give_back(64);
  c.feed("MAIL FROM:<a@example.org>\r\nRCPT TO:<ipconfirm@example.test>\r\n");
  CHECK(c.feed("DATA\r\n").back().rfind("354", 0) == 0);
}

TEST_CASE("session pump: a 552 and a closed connection give back what they held") {
  MessageMemory memory(1 << 20);
  {
    Conversation c(&memory);
    c.sink.keep_whole = true;
    c.feed(kEnvelope);
    c.feed("DATA\r\n");
    std::string big = "Subject: big\r\n\r\n";
    while (big.size() < 5000) big += std::string(98, 'x') + "\r\n";
    CHECK(c.feed(big + ".\r\n").back().rfind("552 5.3.4", 0) == 0);
    CHECK(memory.used() == 0);
    c.feed(kEnvelope + std::string("DATA\r\n"));
    c.feed("Subject: cut off\r\n\r\nhalf a mes");
    CHECK(memory.used() > 0);
  }  // the connection is gone in the middle of the message
  CHECK(memory.used() == 0);
}

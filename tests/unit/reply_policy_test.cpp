// RFC 3834 reply policy, rule by rule: each case changes one thing in a message that would
// otherwise get a reply.
#include <doctest/doctest.h>

#include "responder/reply/reply_policy.hpp"

using namespace ipconfirm::responder;

namespace {

ReplyPolicy policy() {
  ReplyPolicy p;
  p.domains = {"example.test", "example.net"};
  p.hostname = "mx.example.test";
  p.max_received = 30;
  return p;
}

Observation good() {
  Observation o;
  o.mail_from = "alice@sender.test";
  o.rcpt_to = {"ipconfirm@example.test"};
  o.message.received_count = 2;
  return o;
}

std::string reason_for_sender(const std::string& sender) {
  Observation o = good();
  o.mail_from = sender;
  ReplyDecision d = decide_reply(o, policy());
  CHECK_FALSE(d.send);
  return d.reason;
}

}  // namespace

TEST_CASE("reply policy: an ordinary message gets a reply") {
  ReplyDecision d = decide_reply(good(), policy());
  CHECK(d.send);
  CHECK(d.reason.empty());
  // Postmasters of other domains test their servers as postmaster@ or root@.
  Observation o = good();
  for (const char* s : {"postmaster@sender.test", "root@sender.test", "requester@x.test",
                        "no-reply-owner@x.test", "alice@mx.example.test.sender.test"}) {
    o.mail_from = s;
    CHECK_MESSAGE(decide_reply(o, policy()).send, s);
  }
}

TEST_CASE("reply policy: the null sender and senders without a usable domain") {
  CHECK(reason_for_sender("") == "null-sender");
  CHECK(reason_for_sender("alice") == "sender-without-domain");
  CHECK(reason_for_sender("alice@") == "sender-without-domain");
  CHECK(reason_for_sender("alice@[192.0.2.1]") == "sender-address-literal");
  CHECK(reason_for_sender("alice@[IPv6:2001:db8::1]") == "sender-address-literal");
}

TEST_CASE("reply policy: daemons") {
  CHECK(reason_for_sender("MAILER-DAEMON@sender.test") == "daemon-sender");
  CHECK(reason_for_sender("mailer-daemon@sender.test") == "daemon-sender");
  CHECK(reason_for_sender("\"MAILER-DAEMON\"@sender.test") == "daemon-sender");
  CHECK(reason_for_sender("listserv@lists.test") == "daemon-sender");
  CHECK(reason_for_sender("majordomo@lists.test") == "daemon-sender");
  CHECK(reason_for_sender("nobody@sender.test") == "daemon-sender");
}

TEST_CASE("reply policy: list addresses") {
  CHECK(reason_for_sender("users-request@lists.test") == "list-sender");
  CHECK(reason_for_sender("USERS-REQUEST@lists.test") == "list-sender");
  CHECK(reason_for_sender("owner-users@lists.test") == "list-sender");
  CHECK(reason_for_sender("\"owner-users\"@lists.test") == "list-sender");
  CHECK(reason_for_sender("bounces+123@lists.test") == "list-sender");
  CHECK(reason_for_sender("users-bounces@lists.test") == "list-sender");
}

TEST_CASE("reply policy: our own addresses") {
  CHECK(reason_for_sender("ipconfirm@example.test") == "own-address");
  CHECK(reason_for_sender("ipconfirm-response@example.net") == "own-address");
  CHECK(reason_for_sender("postmaster@example.test") == "own-address");
  CHECK(reason_for_sender("IPCONFIRM@EXAMPLE.TEST") == "own-address");
  CHECK(reason_for_sender("ipconfirm@example.test.") == "own-address");
  CHECK(reason_for_sender("postmaster@mx.example.test") == "own-address");
  CHECK(reason_for_sender("postmaster@MX.Example.Test") == "own-address");
}

TEST_CASE("reply policy: Auto-Submitted") {
  Observation o = good();
  for (const char* v : {"no", "No", "no (sent by a person)", "no; comment=x", " no"}) {
    o.message.auto_submitted = v;
    CHECK_MESSAGE(decide_reply(o, policy()).send, v);
  }
  for (const char* v : {"auto-replied", "auto-generated", "auto-notified", "yes", "nope",
                        "auto-replied (vacation)"}) {
    o.message.auto_submitted = v;
    ReplyDecision d = decide_reply(o, policy());
    CHECK_FALSE_MESSAGE(d.send, v);
    CHECK(d.reason == "auto-submitted");
  }
}

TEST_CASE("reply policy: Precedence") {
  Observation o = good();
  for (const char* v : {"bulk", "list", "junk", "BULK", " list (x)"}) {
    o.message.precedence = v;
    ReplyDecision d = decide_reply(o, policy());
    CHECK_FALSE_MESSAGE(d.send, v);
    CHECK(d.reason.rfind("precedence-", 0) == 0);
  }
  o.message.precedence = "bulk";
  CHECK(decide_reply(o, policy()).reason == "precedence-bulk");
  o.message.precedence = "junk";
  CHECK(decide_reply(o, policy()).reason == "precedence-junk");
  for (const char* v : {"first-class", "normal", "bulky"}) {
    o.message.precedence = v;
    CHECK_MESSAGE(decide_reply(o, policy()).send, v);
  }
}

TEST_CASE("reply policy: List-* headers") {
  Observation o = good();
  o.message.has_list_headers = true;
  ReplyDecision d = decide_reply(o, policy());
  CHECK_FALSE(d.send);
  CHECK(d.reason == "list-headers");
}

TEST_CASE("reply policy: delivery status notifications") {
  Observation o = good();
  o.message.is_delivery_report = true;
  ReplyDecision d = decide_reply(o, policy());
  CHECK_FALSE(d.send);
  CHECK(d.reason == "delivery-report");
}

TEST_CASE("reply policy: the Received loop limit") {
  Observation o = good();
  o.message.received_count = 30;
  CHECK(decide_reply(o, policy()).send);
  o.message.received_count = 31;
  ReplyDecision d = decide_reply(o, policy());
  CHECK_FALSE(d.send);
  CHECK(d.reason == "too-many-received");
  ReplyPolicy strict = policy();
  strict.max_received = 3;
  o.message.received_count = 4;
  CHECK(decide_reply(o, strict).reason == "too-many-received");
}

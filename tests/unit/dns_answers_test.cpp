// DnsAnswers and DnsNeeds: the answer table the pure DNS-driven checks (SPF, DMARC, DKIM keys)
// read, keyed case-insensitively without a trailing dot.
#include "responder/dns/dns_answers.hpp"

#include <doctest/doctest.h>

using namespace ipconfirm::responder;

TEST_CASE("DnsAnswers finds names case-insensitively and without the trailing dot") {
  DnsAnswers answers;
  DnsResult r;
  r.status = DnsStatus::ok;
  DnsRecord txt;
  txt.type = RrType::txt;
  txt.text = "v=spf1 -all";
  r.records.push_back(txt);
  answers.put("Example.ORG.", RrType::txt, r);
  REQUIRE(answers.find("example.org", RrType::txt) != nullptr);
  CHECK(answers.find("EXAMPLE.org.", RrType::txt)->records.at(0).text == "v=spf1 -all");
  CHECK(answers.find("example.org", RrType::a) == nullptr);
  CHECK(answers.find("www.example.org", RrType::txt) == nullptr);
  CHECK(answers.size() == 1);

  DnsResult timeout;
  timeout.status = DnsStatus::temperror;
  timeout.detail = "timeout";
  answers.put("example.org", RrType::txt, timeout);
  CHECK(answers.size() == 1);
  CHECK(answers.find("example.org", RrType::txt)->status == DnsStatus::temperror);
}

TEST_CASE("DnsNeeds keeps the first-asked order and drops repeats") {
  DnsNeeds needs;
  CHECK(needs.empty());
  needs.add("b.example.", RrType::a);
  needs.add("A.example", RrType::txt);
  needs.add("B.example", RrType::a);
  needs.add("b.example", RrType::aaaa);
  REQUIRE(needs.questions().size() == 3);
  CHECK(needs.questions()[0] == DnsQuestion{"b.example", RrType::a});
  CHECK(needs.questions()[1] == DnsQuestion{"a.example", RrType::txt});
  CHECK(needs.questions()[2] == DnsQuestion{"b.example", RrType::aaaa});
}

// Every sentence of the report that states a fact about the path, checked against the hops it
// was built from: the path notes (responder/analysis/path_analysis.cpp), the behind-nat hint
// and the path lines of the rendered text. A checker reads each sentence back, finds the fact
// it states, and looks it up in the parsed hops; a sentence it does not know is an error too,
// so a new sentence cannot slip in unchecked.
//
// Inputs: every golden Received header (tests/data/received/) alone, after a companion line
// and in pairs, and every message of the Received corpus (tests/data/corpus/), each seen from
// several connecting addresses: a public one, the top hop's own address, its "by" address,
// loopback and a private one.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "mime/incoming.hpp"
#include "responder/analysis/path_analysis.hpp"
#include "responder/analysis/received_parser.hpp"
#include "responder/analysis/report.hpp"
#include "responder/reply/render.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool names_a_hop(const ReceivedHop& h) {
  return h.parsed && (!h.by.empty() || !h.from_helo.empty() || h.from_ip.has_value());
}

bool internal(const IpAddress& a) {
  return a.is_non_public() && !a.is_loopback() && !a.is_unspecified();
}

std::optional<IpAddress> addr(const std::string& s) {
  return IpAddress::parse(s);
}

struct Checker {
  const std::vector<ReceivedHop>& hops;
  const IpAddress& gateway;
  std::string helo;
  std::vector<std::string> problems;

  void fail(const std::string& what, const std::string& note) {
    problems.push_back(what + ": \"" + note + "\"");
  }

  // The top hop as the notes must mean it: the first hop, passing over readable lines that
  // name nothing; nullopt when a hop that is not readable comes first.
  std::optional<std::size_t> top() const {
    for (std::size_t i = 0; i < hops.size() && i < 100; ++i) {
      if (!hops[i].parsed) return std::nullopt;
      if (names_a_hop(hops[i])) return i;
    }
    return std::nullopt;
  }

  void check_note(const std::string& note) {
    const std::string g = gateway.to_string();
    const auto t = top();
    const ReceivedHop* th = t ? &hops[*t] : nullptr;
    std::smatch m;
    static const std::regex kUnreadableTop(
        "^The topmost Received header could not be read, so "
        "the path before (\\S+) is unknown\\.$");
    static const std::regex kUnreadableLater(
        "^Received header (\\d+) from the top could not be read, and the ones above it name no "
        "server, so the path before (\\S+) is unknown\\.$");
    static const std::regex kNoHeader(
        "^The message carries no Received header from your side: "
        "the host at (\\S+) wrote and sent it directly");
    static const std::regex kNoAddress(
        "^(?:Your mail server|Your mail server (.+)) recorded no address for where it received "
        "this message from, and passed it to us from (\\S+)\\.$");
    static const std::regex kInternal(
        "^Your internal server .*?\\[([0-9a-fA-F:.]+)\\].* hands "
        "mail to .*, your gateway, which connected to us from "
        "(\\S+)\\.$");
    static const std::regex kSameHost(
        "received this message from a program on the same host "
        "\\(([0-9a-fA-F:.]+)\\) and passed it to us from (\\S+)\\.$");
    static const std::regex kAlready(
        "^The topmost Received header already records (\\S+), the "
        "address that connected to us");
    static const std::regex kReceivedFrom(
        "received this message from .*?\\[([0-9a-fA-F:.]+)\\].* "
        "and passed it to us from (\\S+)\\.$");
    static const std::regex kFurther(
        "^The Received headers also name internal addresses further "
        "back in the path: (.+)\\.$");
    static const std::regex kHeloNat(
        "^Your server introduced itself as (.+) but connected to us "
        "from (\\S+): ");
    static const std::regex kByNat(
        "^The Received header written by .* says it runs at (\\S+), "
        "but it connected to us from (\\S+): ");
    static const std::regex kUnparsed("^(\\d+) Received headers? (?:was|were) not understood");
    static const std::regex kLoopback(
        "^The connecting address (\\S+) is this machine's own "
        "\\(loopback\\)");
    static const std::regex kNonPublic("^The connecting address (\\S+) is not a public address");

    // A cheap look for the sentence's words first: std::regex is slow in unoptimised builds.
    auto match = [&](const char* words, const std::regex& re) {
      return note.find(words) != std::string::npos && std::regex_search(note, m, re);
    };
    auto gateway_is = [&](const std::string& s) {
      if (s != g) fail("names " + s + " as the connecting address, not " + g, note);
    };
    if (match("topmost Received header could not", kUnreadableTop)) {
      gateway_is(m[1]);
      if (hops.empty() || hops[0].parsed) fail("the top header was read", note);
    } else if (match("from the top could not be read", kUnreadableLater)) {
      gateway_is(m[2]);
      std::size_t n = std::stoul(m[1]);
      if (n < 2 || n > hops.size() || hops[n - 1].parsed) {
        fail("that header was read", note);
      } else {
        for (std::size_t i = 0; i + 1 < n; ++i)
          if (!hops[i].parsed || names_a_hop(hops[i])) fail("a header above it names a hop", note);
      }
    } else if (match("carries no Received header", kNoHeader)) {
      gateway_is(m[1]);
      for (const auto& h : hops)
        if (!h.parsed || names_a_hop(h)) fail("there is a Received header", note);
    } else if (match("recorded no address", kNoAddress)) {
      gateway_is(m[2]);
      if (!th)
        fail("no top hop was read", note);
      else if (th->from_ip)
        fail("the top hop records " + th->from_ip->to_string(), note);
    } else if (match("Your internal server", kInternal)) {
      gateway_is(m[2]);
      auto a = addr(m[1]);
      if (!th || !th->from_ip || !a || !(*th->from_ip == *a))
        fail("not the top hop's address", note);
      if (a && !internal(*a)) fail("not an internal address", note);
      if (a && *a == gateway) fail("the internal server is the gateway", note);
    } else if (match("a program on the same host", kSameHost)) {
      gateway_is(m[2]);
      auto a = addr(m[1]);
      if (!th || !th->from_ip || !a || !(*th->from_ip == *a))
        fail("not the top hop's address", note);
      if (a && !a->is_loopback() && !a->is_unspecified()) fail("not a same-host address", note);
    } else if (match("already records", kAlready)) {
      gateway_is(m[1]);
      if (!th || !th->from_ip || !(*th->from_ip == gateway)) fail("the top hop does not", note);
    } else if (match("received this message from", kReceivedFrom)) {
      gateway_is(m[2]);
      auto a = addr(m[1]);
      if (!th || !th->from_ip || !a || !(*th->from_ip == *a))
        fail("not the top hop's address", note);
      if (a && *a == gateway) fail("the sender is the gateway", note);
    } else if (match("also name internal addresses", kFurther)) {
      std::stringstream list(m[1]);
      for (std::string item; std::getline(list, item, ',');) {
        item.erase(0, item.find_first_not_of(' '));
        auto a = addr(item);
        bool found = a && std::any_of(hops.begin(), hops.end(), [&](const ReceivedHop& h) {
                       return h.parsed && h.from_ip && *h.from_ip == *a;
                     });
        if (!found || !internal(*a)) fail(item + " is no internal address of a hop", note);
        if (a && th && th->from_ip && *th->from_ip == *a) fail(item + " is the top's", note);
      }
    } else if (match("introduced itself as", kHeloNat)) {
      gateway_is(m[2]);
      if (m[1] != helo) fail("not the HELO", note);
    } else if (match("says it runs at", kByNat)) {
      gateway_is(m[2]);
      auto a = addr(m[1]);
      if (!th || !th->by_ip || !a || !(*th->by_ip == *a))
        fail("not the top hop's by address", note);
      if (a && *a == gateway) fail("the believed address is the connecting one", note);
      if (th && th->from_ip && *th->from_ip == gateway)
        fail("the top header is a relay's (it records the connecting address)", note);
    } else if (match("not understood", kUnparsed)) {
      std::size_t n = static_cast<std::size_t>(std::count_if(
          hops.begin(),
          hops.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(hops.size(), 100)),
          [](const ReceivedHop& h) { return !h.parsed; }));
      if (std::to_string(n) != m[1].str()) fail(std::to_string(n) + " were not understood", note);
    } else if (match("this machine's own", kLoopback)) {
      gateway_is(m[1]);
      if (!gateway.is_loopback()) fail("not loopback", note);
    } else if (match("is not a public address", kNonPublic)) {
      gateway_is(m[1]);
      if (!gateway.is_non_public()) fail("it is public", note);
    } else {
      fail("a sentence the checker does not know", note);
    }
  }

  void check(const PathAnalysis& a) {
    for (const auto& note : a.notes) check_note(note);
    std::size_t unparsed = static_cast<std::size_t>(
        std::count_if(hops.begin(), hops.end(), [](const ReceivedHop& h) { return !h.parsed; }));
    bool said = std::any_of(a.notes.begin(), a.notes.end(), [](const std::string& n) {
      return n.find("not understood") != std::string::npos;
    });
    if (unparsed > 0 && !said) problems.push_back("unread headers and no note says so");
    if (a.sender_believed_ip && *a.sender_believed_ip == gateway)
      problems.push_back("the believed address is the connecting one");
    if (a.behind_nat != a.sender_believed_ip.has_value())
      problems.push_back("behind_nat without a believed address, or the reverse");
    for (const auto& ip : a.internal_hops)
      if (!internal(ip)) problems.push_back(ip.to_string() + " listed as internal");
  }
};

// Checks one set of hops from the connecting addresses that matter for them.
std::size_t check_all_views(const std::vector<ReceivedHop>& hops, const std::string& label) {
  std::vector<IpAddress> gateways = {*addr("198.51.100.25"), *addr("127.0.0.1"), *addr("10.0.0.5"),
                                     *addr("2001:db8::25")};
  // The top hops' own addresses: the connecting address equal to the top's client or to its
  // "by" is where the sentences change.
  for (std::size_t i = 0; i < hops.size() && i < 3; ++i) {
    if (hops[i].from_ip) gateways.push_back(*hops[i].from_ip);
    if (hops[i].by_ip) gateways.push_back(*hops[i].by_ip);
  }
  std::size_t n = 0;
  for (const auto& gw : gateways) {
    for (std::string helo : {std::string("mail.example.org"), std::string("[192.168.1.10]"),
                             "[" + gw.to_string() + "]"}) {
      PathAnalysis a = analyse_path(hops, gw, helo);
      Checker c{hops, gw, helo, {}};
      c.check(a);
      INFO(label, " from ", gw.to_string(), " HELO ", helo);
      if (!c.problems.empty()) FAIL_CHECK(c.problems.front());
      ++n;
    }
  }
  return n;
}

std::vector<std::string> golden_received() {
  std::vector<std::string> out;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(IPCONFIRM_TEST_DATA) / "received"))
    if (e.path().extension() == ".txt") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::string text = read_file(f);
    if (!text.empty() && text.back() == '\n') text.pop_back();
    out.push_back(text);
  }
  return out;
}

}  // namespace

TEST_CASE("path sentences: every note about the golden Received headers is true") {
  auto texts = golden_received();
  REQUIRE(texts.size() >= 60);
  std::vector<ReceivedHop> parsed;
  for (const auto& t : texts) parsed.push_back(parse_received(t));
  const ReceivedHop companion = parse_received("(qmail 1 invoked from network); date");
  std::size_t views = check_all_views({}, "no header");
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    views += check_all_views({parsed[i]}, texts[i]);
    views += check_all_views({companion, parsed[i]}, "companion + " + texts[i]);
    for (std::size_t j = 0; j < parsed.size(); j += 7)
      views += check_all_views({parsed[i], parsed[j]}, texts[i] + " / " + texts[j]);
  }
  CHECK(views > 3000);
}

TEST_CASE("path sentences: every note about the corpus's Received chains is true") {
  const fs::path dir = fs::path(IPCONFIRM_TEST_DATA) / "corpus" / "messages";
  std::size_t messages = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    mime::IncomingMessage m = mime::read_incoming(read_file(e.path()));
    std::vector<ReceivedHop> hops;
    for (const auto& v : m.received) hops.push_back(parse_received(v));
    check_all_views(hops, e.path().filename().string());
    ++messages;
  }
  CHECK(messages >= 500);
}

TEST_CASE("path sentences: the rendered path lines say what was parsed") {
  std::string error;
  auto templates = load_templates("", error);
  REQUIRE_MESSAGE(templates, error);
  const fs::path dir = fs::path(IPCONFIRM_TEST_DATA) / "corpus" / "messages";
  std::size_t checked = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    Observation o;
    o.ip = *addr("198.51.100.25");
    o.arrival = 1700000000;
    o.helo = "mail.example.org";
    o.rcpt_to = {"ipconfirm@example.test"};
    o.message = mime::read_incoming(read_file(e.path()));
    Report report = build_report(o, ReportOptions{"mx.example.test"});
    Rendered r = render_report(*templates, report.json);
    const auto& received = report.json["received"];
    // The path lines, each with its wrapped continuation lines joined back.
    std::vector<std::string> lines;
    {
      std::istringstream text(r.text);
      for (std::string line; std::getline(text, line);) {
        if (line.rfind("     ", 0) == 0 && !lines.empty())
          lines.back() += " " + line.substr(line.find_first_not_of(' '));
        else
          lines.push_back(line);
      }
    }
    std::size_t n = 0;
    for (const std::string& line : lines) {
      static const std::regex kLine("^  (\\d+)\\. (.*)$");
      std::smatch m;
      if (!std::regex_match(line, m, kLine)) continue;
      std::size_t i = std::stoul(m[1]) - 1;
      if (i >= received.size()) continue;
      const auto& hop = received[i];
      const std::string rest = m[2];
      INFO(e.path().filename().string(), " line ", line);
      CHECK((rest == "(a Received header we could not read)") == !hop["parsed"].get<bool>());
      bool names_nothing = hop["parsed"].get<bool>() && hop["from_ip"].is_null() &&
                           hop["from_helo"] == "" && hop["from_name"] == "" && hop["by"] == "";
      CHECK((rest == "(a line that names no server)") == names_nothing);
      if (hop["from_ip"].is_string())
        CHECK(rest.find("[" + hop["from_ip"].get<std::string>() + "]") != std::string::npos);
      ++n;
    }
    CHECK(n == std::min<std::size_t>(received.size(), 100));
    // The behind-nat hint names the address the path analysis believes, never the gateway.
    for (const auto& h : report.hints)
      if (h.code == "behind-nat")
        CHECK(h.text.find("believes it is " +
                          report.json["path"]["sender_believed_ip"].get<std::string>()) !=
              std::string::npos);
    ++checked;
  }
  CHECK(checked >= 500);
}

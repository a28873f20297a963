// Test-only driver for the conformance tests (tests/conformance/): verifies the DKIM signatures
// and the ARC chain of one stored message against key records from a JSON file, the way the
// server will (header first, then the body in chunks, then rounds of DNS questions), and prints
// {"dkim": [...], "arc": {...}, "hints": [...], "rounds": N} as JSON.
//
//   dkim_verify_tool [--now SECONDS] [--chunk BYTES] [--repeat N] DNS.json MESSAGE
//
// --repeat N runs the whole check (header, body, every signature and the ARC chain, with the
// answers already in the table) N more times and prints the mean time per message to stderr: a
// bench-style figure, never an assertion.
// DNS.json maps a name to a list of TXT strings, or to "NXDOMAIN", "NODATA" or "SERVFAIL".
// A name that is asked but not in the file answers NXDOMAIN.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "responder/analysis/dkim.hpp"

using namespace ipconfirm::responder;

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path);
    std::exit(2);
  }
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

DnsResult answer_for(const nlohmann::json* entry) {
  DnsResult r;
  if (!entry || (entry->is_string() && *entry == "NXDOMAIN")) {
    r.status = DnsStatus::nxdomain;
    r.detail = "NXDOMAIN";
  } else if (entry->is_string() && *entry == "NODATA") {
    r.status = DnsStatus::nodata;
    r.detail = "NODATA";
  } else if (entry->is_string()) {
    r.status = DnsStatus::temperror;
    r.detail = entry->get<std::string>();
  } else {
    r.status = DnsStatus::ok;
    for (const auto& text : *entry) {
      DnsRecord rec;
      rec.type = RrType::txt;
      rec.text = text.get<std::string>();
      r.records.push_back(std::move(rec));
    }
    if (r.records.empty()) r.status = DnsStatus::nodata;
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  std::size_t chunk = 4096;
  long repeat = 0;
  int i = 1;
  for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
    std::string opt = argv[i];
    if (opt == "--now") {
      now = std::stoll(argv[i + 1]);
    } else if (opt == "--chunk") {
      chunk = std::stoul(argv[i + 1]);
      if (chunk == 0) chunk = 1;
    } else if (opt == "--repeat") {
      repeat = std::stol(argv[i + 1]);
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (argc - i != 2) {
    std::fprintf(stderr,
                 "usage: %s [--now SECONDS] [--chunk BYTES] [--repeat N] DNS.json MESSAGE\n",
                 argv[0]);
    return 2;
  }
  nlohmann::json table = nlohmann::json::parse(read_file(argv[i]));
  std::string message = read_file(argv[i + 1]);

  // The server's path: CRLF, header whole, body in chunks.
  std::string crlf;
  for (std::size_t k = 0; k < message.size(); ++k) {
    if (message[k] == '\n' && (k == 0 || message[k - 1] != '\r')) crlf.push_back('\r');
    crlf.push_back(message[k]);
  }
  MessageParts parts = split_message(crlf);
  DkimCheck check(parts.header);
  for (std::size_t pos = 0; pos < parts.body.size(); pos += chunk)
    check.body().feed(parts.body.substr(pos, chunk));
  check.end_body();

  DnsAnswers answers;
  DkimResults dkim;
  ArcResult arc;
  int rounds = 0;
  for (;;) {
    ++rounds;
    dkim = check.verify(answers, now);
    arc = check.verify_arc(answers);
    if (dkim.complete && arc.complete) break;
    if (rounds > 3) {
      std::fprintf(stderr, "the check did not complete after 3 rounds of answers\n");
      return 1;
    }
    for (const auto* needs : {&dkim.needs, &arc.needs}) {
      for (const auto& q : needs->questions()) {
        auto it = table.find(q.name);
        answers.put(q.name, q.type, answer_for(it == table.end() ? nullptr : &*it));
      }
    }
  }

  if (repeat > 0) {
    const auto start = std::chrono::steady_clock::now();
    const std::clock_t cpu_start = std::clock();
    std::size_t passes = 0;
    for (long n = 0; n < repeat; ++n) {
      DkimCheck again(parts.header);
      for (std::size_t pos = 0; pos < parts.body.size(); pos += chunk)
        again.body().feed(parts.body.substr(pos, chunk));
      again.end_body();
      DkimResults d = again.verify(answers, now);
      ArcResult a = again.verify_arc(answers);
      passes += d.signatures.size() + static_cast<std::size_t>(a.instances);
    }
    const std::chrono::duration<double, std::micro> spent =
        std::chrono::steady_clock::now() - start;
    const double cpu_us = 1e6 * static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    std::fprintf(stderr,
                 "%ld checks of %zu signatures and %d ARC sets, %zu body bytes: %.1f us of CPU "
                 "(%.1f us of wall time) per message\n",
                 repeat, dkim.signatures.size(), arc.instances, parts.body.size(),
                 cpu_us / static_cast<double>(repeat), spent.count() / static_cast<double>(repeat));
    (void)passes;
  }

  nlohmann::ordered_json out;
  out["dkim"] = to_json(dkim);
  out["arc"] = to_json(arc);
  auto hints = nlohmann::ordered_json::array();
  auto add_hints = [&](const std::vector<Hint>& list) {
    for (const auto& h : list)
      hints.push_back({{"code", h.code}, {"severity", h.severity}, {"text", h.text}});
  };
  add_hints(dkim_hints(dkim));
  add_hints(arc_hints(arc));
  out["hints"] = std::move(hints);
  out["rounds"] = rounds;
  std::cout << out.dump(2) << "\n";
  return 0;
}

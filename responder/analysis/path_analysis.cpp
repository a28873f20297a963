#include "responder/analysis/path_analysis.hpp"

#include <algorithm>
#include <cstddef>

namespace ipconfirm::responder {

namespace {

constexpr std::size_t kMaxHopsExamined = 100;
constexpr std::size_t kMaxInternalHops = 32;
constexpr std::size_t kMaxNameInNote = 100;

bool names_a_hop(const ReceivedHop& hop) {
  return hop.parsed && (!hop.by.empty() || !hop.from_helo.empty() || hop.from_ip.has_value());
}

bool is_internal(const IpAddress& ip) {
  return ip.is_non_public() && !ip.is_loopback() && !ip.is_unspecified();
}

// A claimed name, made safe and short for a sentence.
std::string claimed(std::string_view text) {
  return sanitise_header_text(text, kMaxNameInNote);
}

std::string server_name(const ReceivedHop& hop) {
  return hop.by.empty() ? std::string("your mail server") : "your mail server " + claimed(hop.by);
}

std::string capitalised(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

// "mail.example.com [192.0.2.1]", "[192.0.2.1] (HELO x)", ...
std::string describe_sender(const ReceivedHop& hop) {
  std::string out;
  if (!hop.from_name.empty()) out = claimed(hop.from_name) + " ";
  out += "[" + hop.from_ip->to_string() + "]";
  if (!hop.from_helo.empty() && hop.from_helo != hop.from_name)
    out += " (HELO " + claimed(hop.from_helo) + ")";
  return out;
}

// An address-literal HELO ("[192.0.2.1]", "[IPv6:2001:db8::1]"), or nullopt.
std::optional<IpAddress> helo_literal(std::string_view helo) {
  if (helo.size() < 3 || helo.front() != '[' || helo.back() != ']') return std::nullopt;
  helo = helo.substr(1, helo.size() - 2);
  if (helo.size() > 5 && (helo.substr(0, 5) == "IPv6:" || helo.substr(0, 5) == "ipv6:"))
    helo.remove_prefix(5);
  return IpAddress::parse(helo);
}

std::string nat_consequence(const IpAddress& believed) {
  if (believed.is_non_public())
    return "it sits behind NAT (" + believed.to_string() + " is a " +
           std::string(believed.scope()) + " address)";
  return "its mail leaves through another address (a proxy, NAT or an outbound relay)";
}

}  // namespace

PathAnalysis analyse_path(const std::vector<ReceivedHop>& hops, const IpAddress& connecting_ip,
                          std::string_view helo) {
  PathAnalysis out;
  out.gateway_ip = connecting_ip;
  const std::string gateway = connecting_ip.to_string();
  const std::size_t examined = std::min(hops.size(), kMaxHopsExamined);

  if (connecting_ip.is_loopback()) {
    out.notes.push_back("The connecting address " + gateway +
                        " is this machine's own (loopback): this was a local test, so the path "
                        "below is seen from here, not from the internet.");
  } else if (connecting_ip.is_non_public()) {
    out.notes.push_back("The connecting address " + gateway +
                        " is not a public address: the message reached us over a private "
                        "network or through a proxy, so the path below is seen from there.");
  }

  // The top hop, written by the sender's last MTA (rule 2).
  const ReceivedHop* top = nullptr;
  std::optional<std::size_t> unreadable_at;  // the first hop that could have been the top
  std::size_t unparsed = 0;
  for (std::size_t i = 0; i < examined; ++i) {
    const ReceivedHop& hop = hops[i];
    if (!hop.parsed) ++unparsed;
    if (top || unreadable_at) continue;
    if (!hop.parsed)
      unreadable_at = i;
    else if (names_a_hop(hop))
      top = &hop;
  }

  // Internal hops (rule 3).
  for (std::size_t i = 0; i < examined && out.internal_hops.size() < kMaxInternalHops; ++i) {
    const ReceivedHop& hop = hops[i];
    if (!hop.parsed || !hop.from_ip || !is_internal(*hop.from_ip)) continue;
    if (std::find(out.internal_hops.begin(), out.internal_hops.end(), *hop.from_ip) ==
        out.internal_hops.end())
      out.internal_hops.push_back(*hop.from_ip);
  }

  if (unreadable_at == 0) {
    out.notes.push_back("The topmost Received header could not be read, so the path before " +
                        gateway + " is unknown.");
  } else if (unreadable_at) {
    out.notes.push_back("Received header " + std::to_string(*unreadable_at + 1) +
                        " from the top could not be read, and the ones above it name no "
                        "server, so the path before " +
                        gateway + " is unknown.");
  } else if (!top) {
    out.notes.push_back("The message carries no Received header from your side: the host at " +
                        gateway + " wrote and sent it directly" +
                        (connecting_ip.is_non_public()
                             ? std::string(".")
                             : ", and that is the address your mail leaves from."));
  } else if (!top->from_ip) {
    out.notes.push_back(capitalised(server_name(*top)) +
                        " recorded no address for where it received this message from, and "
                        "passed it to us from " +
                        gateway + ".");
  } else if (*top->from_ip == connecting_ip) {
    // Checked first: the host that connected to us cannot also be an internal server behind
    // itself, and the header's writer received the message from that host.
    out.notes.push_back("The topmost Received header already records " + gateway +
                        ", the address that connected to us: it was probably written by a relay "
                        "between your server and us.");
  } else if (is_internal(*top->from_ip)) {
    out.notes.push_back("Your internal server " + describe_sender(*top) + " hands mail to " +
                        server_name(*top) + ", your gateway, which connected to us from " +
                        gateway + ".");
  } else if (top->from_ip->is_loopback() || top->from_ip->is_unspecified()) {
    out.notes.push_back(capitalised(server_name(*top)) +
                        " received this message from a program on the same host (" +
                        top->from_ip->to_string() + ") and passed it to us from " + gateway + ".");
  } else {
    out.notes.push_back(capitalised(server_name(*top)) + " received this message from " +
                        describe_sender(*top) + " and passed it to us from " + gateway + ".");
  }

  // Internal addresses beyond the one the top note already names.
  std::string further;
  for (const IpAddress& ip : out.internal_hops) {
    if (top && top->from_ip && *top->from_ip == ip) continue;
    further += (further.empty() ? "" : ", ") + ip.to_string();
  }
  if (!further.empty())
    out.notes.push_back(
        "The Received headers also name internal addresses further back in the "
        "path: " +
        further + ".");

  // NAT / proxy evidence (rule 4).
  auto differs = [&](const IpAddress& ip) {
    return ip.is_v4() == connecting_ip.is_v4() && !(ip == connecting_ip);
  };
  if (auto literal = helo_literal(helo); literal && differs(*literal)) {
    out.sender_believed_ip = literal;
    out.notes.push_back("Your server introduced itself as " + claimed(helo) +
                        " but connected to us from " + gateway + ": " + nat_consequence(*literal) +
                        "; its HELO should name its public host name instead.");
  } else if (top && top->by_ip && differs(*top->by_ip) &&
             !(top->from_ip && *top->from_ip == connecting_ip)) {
    // A top header that records the connecting address as its client was written after that
    // host, by a relay: its own address says nothing about the sender's.
    out.sender_believed_ip = top->by_ip;
    out.notes.push_back("The Received header written by " + server_name(*top) +
                        " says it runs at " + top->by_ip->to_string() +
                        ", but it connected to us from " + gateway + ": " +
                        nat_consequence(*top->by_ip) + ".");
  }
  out.behind_nat = out.sender_believed_ip.has_value();

  if (unparsed > 0) {
    out.notes.push_back(std::to_string(unparsed) + " Received header" +
                        (unparsed == 1 ? " was" : "s were") +
                        " not understood and left out of this analysis.");
  }
  return out;
}

nlohmann::json to_json(const PathAnalysis& analysis) {
  auto ip_or_null = [](const std::optional<IpAddress>& ip) {
    return ip ? nlohmann::json(ip->to_string()) : nlohmann::json(nullptr);
  };
  nlohmann::json internal = nlohmann::json::array();
  for (const IpAddress& ip : analysis.internal_hops) internal.push_back(ip.to_string());
  return {{"gateway_ip", ip_or_null(analysis.gateway_ip)},
          {"internal_hops", internal},
          {"sender_believed_ip", ip_or_null(analysis.sender_believed_ip)},
          {"behind_nat", analysis.behind_nat}};
}

}  // namespace ipconfirm::responder

// Reverse-DNS judgements. See rdns_heuristics.hpp for what the scores mean.
//
// How the score is built, and why:
// - An address written into its own PTR name is the strongest sign of a name generated for a
//   whole range; it is matched numerically so that "192-0-2-10", "10.2.0.192", "192x0x2x10",
//   "10.red-192-0-2" (any order) and "192-000-002-010" are all found, and also as hex
//   ("pc000020a") and as one zero-padded 12-digit run ("kd192000002010").
// - Words are read from tokens: the parts of each label between hyphens ("ec2", "mx1") and the
//   letter runs inside them ("mx", "hsd", "dip"). Each table word counts once.
// - Words that suggest a mail server only count left of the registered domain: "mailgun.net"
//   or "your-server.de" say who the provider is, not what the host does. Access-network words
//   count anywhere, since providers put them in their domains ("shawcable.net").
#include "responder/analysis/rdns_heuristics.hpp"
#include "core/ascii.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>

namespace ipconfirm::responder {
namespace {

using ascii::is_alpha;
using ascii::is_digit;
using ascii::to_lower;

bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f');
}
enum class Match { exact, prefix, substring };

struct Word {
  std::string_view word;
  Match match;
  int weight;
  bool cloud = false;
};

// Words seen in access and hosting providers' generated names. Strong ones (+2) name the
// access technology or an address pool; weak ones (+1) are common in generated names but also
// in hand-made ones.
constexpr std::array kGenericWords{
    Word{"dyn", Match::prefix, 2},  // dyn, dynamic, dynip, dynamicip
    Word{"dhcp", Match::substring, 2}, Word{"pool", Match::prefix, 2},  // pool, pools
    Word{"dsl", Match::substring, 2},    // dsl, adsl, xdsl, vdsl, dslb
    Word{"ppp", Match::substring, 2},    // ppp, pppoe
    Word{"dial", Match::prefix, 2},      // dial, dialup, dialin
    Word{"cable", Match::substring, 2},  // cable, shawcable
    Word{"broadband", Match::substring, 2}, Word{"broad", Match::exact, 2},
    Word{"res", Match::exact, 2}, Word{"residential", Match::substring, 2},
    Word{"cpe", Match::prefix, 2},     // customer premises equipment, also "cpe0011..." MACs
    Word{"dip", Match::exact, 2},      // Deutsche Telekom dial-in pool ("dip0")
    Word{"abo", Match::exact, 2},      // Orange "abonné"
    Word{"hsd", Match::exact, 2},      // Comcast high-speed data
    Word{"cpc", Match::exact, 2},      // Virgin Media customer premises
    Word{"members", Match::exact, 2},  // Linode "li123-45.members.linode.com"
    Word{"ipngn", Match::exact, 2},    // NTT OCN
    Word{"client", Match::prefix, 1}, Word{"customer", Match::prefix, 1},
    Word{"cust", Match::exact, 1}, Word{"user", Match::prefix, 1}, Word{"subs", Match::exact, 1},
    Word{"subscriber", Match::prefix, 1}, Word{"host", Match::exact, 1},
    Word{"ip", Match::exact, 1}, Word{"fiber", Match::prefix, 1}, Word{"fibre", Match::prefix, 1},
    Word{"ftth", Match::exact, 1}, Word{"fttx", Match::exact, 1}, Word{"fttb", Match::exact, 1},
    Word{"fttc", Match::exact, 1}, Word{"fttp", Match::exact, 1}, Word{"fios", Match::exact, 1},
    Word{"fbx", Match::exact, 1},  // Free's Freebox
    Word{"range", Match::exact, 1}, Word{"mobile", Match::exact, 1},
    // Cloud providers' default names: generic, but a hint of "not customised", not of
    // "dynamic".
    Word{"ec2", Match::exact, 1, true}, Word{"compute", Match::prefix, 1, true},
    Word{"googleusercontent", Match::exact, 1, true},
    Word{"linodeusercontent", Match::exact, 1, true},
    Word{"vultrusercontent", Match::exact, 1, true},
    Word{"vcpu", Match::exact, 3, true},  // a droplet or VM left with its default name
};

// Words of a name chosen for a mail server. Counted left of the registered domain only.
constexpr std::array kCounterWords{
    Word{"mail", Match::prefix, -3},  // mail, mailer, mailout, mailhost
    Word{"email", Match::exact, -3},     Word{"mx", Match::prefix, -3},  // mx, mx1, mxout
    Word{"smtp", Match::prefix, -3},                                     // smtp, smtpout
    Word{"relay", Match::prefix, -3},    Word{"out", Match::exact, -3},
    Word{"outbound", Match::prefix, -3}, Word{"outgoing", Match::exact, -3},
    Word{"mta", Match::prefix, -3},      Word{"bounce", Match::prefix, -3},
    Word{"static", Match::prefix, -1},  // weak: providers use it for generated names too
    Word{"business", Match::prefix, -1}, Word{"biz", Match::exact, -1},
    Word{"srv", Match::exact, -1},       Word{"server", Match::prefix, -1},
};

// Second-level labels under which registrations happen in many country TLDs ("co.uk",
// "ne.jp", "com.au"). Without a public-suffix list this is an approximation, which is all the
// counter-word rule needs.
constexpr std::array<std::string_view, 14> kSecondLevels{
    "co", "com", "net", "org", "ne", "or", "ac", "ad", "go", "gov", "edu", "ltd", "plc", "gr"};

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      if (i > start) out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

// Tokens of some labels: hyphen-separated parts and the letter runs inside them.
std::vector<std::string_view> tokens_of(const std::vector<std::string_view>& labels) {
  std::vector<std::string_view> out;
  for (auto label : labels) {
    for (auto part : split(label, '-')) {
      out.push_back(part);
      std::size_t i = 0;
      while (i < part.size()) {
        if (!is_alpha(part[i])) {
          ++i;
          continue;
        }
        std::size_t j = i;
        while (j < part.size() && is_alpha(part[j])) ++j;
        if (j - i != part.size()) out.push_back(part.substr(i, j - i));
        i = j;
      }
    }
  }
  return out;
}

bool matches(const Word& w, std::string_view token) {
  switch (w.match) {
    case Match::exact:
      return token == w.word;
    case Match::prefix:
      return token.substr(0, w.word.size()) == w.word;
    case Match::substring:
      return token.find(w.word) != std::string_view::npos;
  }
  return false;
}

// Number of trailing labels that make up the registered domain.
std::size_t registered_label_count(const std::vector<std::string_view>& labels) {
  if (labels.size() < 2) return 0;
  std::size_t count = 2;
  if (labels.size() >= 3 && labels.back().size() == 2 &&
      std::find(kSecondLevels.begin(), kSecondLevels.end(), labels[labels.size() - 2]) !=
          kSecondLevels.end())
    count = 3;
  return count;
}

struct Run {
  std::string_view text;
  int value;  // -1 when longer than an octet or group may be
};

// Maximal runs of characters satisfying `pred`, with their numeric value in `base` when at
// most `max_len` characters long.
template <typename Pred>
std::vector<Run> runs_of(std::string_view s, Pred pred, int base, std::size_t max_len) {
  std::vector<Run> out;
  std::size_t i = 0;
  while (i < s.size()) {
    if (!pred(s[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < s.size() && pred(s[j])) ++j;
    int value = -1;
    if (j - i <= max_len) {
      value = 0;
      for (std::size_t k = i; k < j; ++k)
        value = value * base + (is_digit(s[k]) ? s[k] - '0' : s[k] - 'a' + 10);
    }
    out.push_back(Run{s.substr(i, j - i), value});
    i = j;
  }
  return out;
}

std::string hex_bytes(const std::uint8_t* b, std::size_t n, bool reversed) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t k = 0; k < n; ++k) {
    std::uint8_t v = b[reversed ? n - 1 - k : k];
    out += kHex[v >> 4];
    out += kHex[v & 0xf];
  }
  return out;
}

std::string reversed_nibbles(std::string_view s) {
  return std::string(s.rbegin(), s.rend());
}

enum class IpMatch { none, partial, full };

struct IpFinding {
  IpMatch match = IpMatch::none;
  std::string signal;
};

IpFinding find_v4(std::string_view name, const IpAddress& ip) {
  const auto& b = ip.bytes();
  const std::array<int, 4> octets{b[0], b[1], b[2], b[3]};
  auto digit_runs = runs_of(name, is_digit, 10, 3);

  std::array<int, 4> sorted_octets = octets;
  std::sort(sorted_octets.begin(), sorted_octets.end());
  for (std::size_t i = 0; i + 4 <= digit_runs.size(); ++i) {
    std::array<int, 4> window{};
    bool ok = true;
    for (std::size_t k = 0; k < 4; ++k) {
      window[k] = digit_runs[i + k].value;
      if (window[k] < 0) ok = false;
    }
    if (!ok) continue;
    std::sort(window.begin(), window.end());
    if (window == sorted_octets) return {IpMatch::full, "contains the IP address octets"};
  }

  char fwd[16];
  char rev[16];
  std::snprintf(fwd, sizeof fwd, "%03d%03d%03d%03d", octets[0], octets[1], octets[2], octets[3]);
  std::snprintf(rev, sizeof rev, "%03d%03d%03d%03d", octets[3], octets[2], octets[1], octets[0]);
  for (const auto& run : digit_runs)
    if (run.text == fwd || run.text == rev)
      return {IpMatch::full, "contains the IP address zero-padded"};

  const std::string hex_fwd = hex_bytes(b.data(), 4, false);
  const std::string hex_rev = hex_bytes(b.data(), 4, true);
  for (const auto& run : runs_of(name, is_hex, 16, 0))
    if (run.text.find(hex_fwd) != std::string_view::npos ||
        run.text.find(hex_rev) != std::string_view::npos)
      return {IpMatch::full, "contains the IP address in hex"};

  // Three consecutive octets, either the network end or the host end, in either direction.
  const std::array<std::array<int, 3>, 4> triples{{{octets[0], octets[1], octets[2]},
                                                   {octets[2], octets[1], octets[0]},
                                                   {octets[1], octets[2], octets[3]},
                                                   {octets[3], octets[2], octets[1]}}};
  for (std::size_t i = 0; i + 3 <= digit_runs.size(); ++i) {
    const std::array<int, 3> window{digit_runs[i].value, digit_runs[i + 1].value,
                                    digit_runs[i + 2].value};
    for (const auto& t : triples)
      if (window == t) return {IpMatch::partial, "contains three octets of the IP address"};
  }
  return {};
}

int nonzero_nibbles(std::string_view hex) {
  return static_cast<int>(std::count_if(hex.begin(), hex.end(), [](char c) { return c != '0'; }));
}

IpFinding find_v6(std::string_view name, const IpAddress& ip) {
  const auto& b = ip.bytes();
  std::array<int, 8> groups{};
  for (std::size_t k = 0; k < 8; ++k) groups[k] = b[2 * k] << 8 | b[2 * k + 1];
  auto hex_runs = runs_of(name, is_hex, 16, 4);

  auto groups_at = [&](std::size_t first_group, std::size_t count) {
    for (std::size_t i = 0; i + count <= hex_runs.size(); ++i) {
      bool ok = true;
      for (std::size_t k = 0; k < count && ok; ++k)
        ok = hex_runs[i + k].value == groups[first_group + k];
      if (ok) return true;
    }
    return false;
  };

  std::string stream;
  for (char c : name)
    if (c != '.' && c != '-') stream += c;
  auto in_stream = [&](const std::string& nibbles) {
    return stream.find(nibbles) != std::string::npos ||
           stream.find(reversed_nibbles(nibbles)) != std::string::npos;
  };

  const std::string all = hex_bytes(b.data(), 16, false);
  std::string dashed = ip.to_string();
  std::replace(dashed.begin(), dashed.end(), ':', '-');
  if (groups_at(0, 8) || in_stream(all) ||
      (dashed.size() >= 6 && name.find(dashed) != std::string_view::npos))
    return {IpMatch::full, "contains the IP address"};

  const std::string prefix = hex_bytes(b.data(), 8, false);
  const std::string iid = hex_bytes(b.data() + 8, 8, false);
  const int iid_groups_set = static_cast<int>(
      std::count_if(groups.begin() + 4, groups.end(), [](int g) { return g != 0; }));
  if ((iid_groups_set >= 2 && groups_at(4, 4)) || (nonzero_nibbles(iid) >= 4 && in_stream(iid)))
    return {IpMatch::partial, "contains the interface identifier of the IP address"};
  if (groups_at(0, 4) || (nonzero_nibbles(prefix) >= 4 && in_stream(prefix)))
    return {IpMatch::partial, "contains the /64 prefix of the IP address"};
  return {};
}

bool has_long_run(std::string_view name) {
  for (const auto& run : runs_of(name, is_digit, 10, 0))
    if (run.text.size() >= 4) return true;
  for (const auto& run : runs_of(name, is_hex, 16, 0)) {
    const bool has_letter =
        std::any_of(run.text.begin(), run.text.end(), [](char c) { return !is_digit(c); });
    const bool has_number = std::any_of(run.text.begin(), run.text.end(), is_digit);
    if (run.text.size() >= 8 && has_letter && has_number) return true;
  }
  return false;
}

}  // namespace

std::optional<std::string> normalise_ptr_name(std::string_view raw) {
  if (!raw.empty() && raw.back() == '.') raw.remove_suffix(1);
  if (raw.empty() || raw.size() > 253) return std::nullopt;
  std::string out;
  out.reserve(raw.size());
  std::size_t label_start = 0;
  bool label_all_digits = true;
  for (std::size_t i = 0; i <= raw.size(); ++i) {
    if (i == raw.size() || raw[i] == '.') {
      const std::size_t len = i - label_start;
      if (len == 0 || len > 63 || raw[i - 1] == '-') return std::nullopt;
      if (i == raw.size() && label_all_digits) return std::nullopt;  // numeric TLD
      if (i < raw.size()) out += '.';
      label_start = i + 1;
      label_all_digits = true;
      continue;
    }
    const char c = raw[i];
    if (is_alpha(c) || is_digit(c)) {
      if (!is_digit(c)) label_all_digits = false;
      out += to_lower(c);
    } else if (c == '-' && i != label_start) {
      label_all_digits = false;
      out += c;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

GenericVerdict judge_generic_ptr(std::string_view ptr_name, const IpAddress& ip) {
  GenericVerdict v;
  const auto normalised = normalise_ptr_name(ptr_name);
  if (!normalised) return v;
  const std::string_view name = *normalised;

  const IpFinding found = ip.is_v4() ? find_v4(name, ip) : find_v6(name, ip);
  if (found.match == IpMatch::full) {
    v.score += 4;
    v.signals.push_back(found.signal);
  } else if (found.match == IpMatch::partial) {
    v.score += 2;
    v.signals.push_back(found.signal);
  }
  if (found.match == IpMatch::none && has_long_run(name)) {
    v.score += 1;
    v.signals.emplace_back("long number or hex run");
  }

  const auto labels = split(name, '.');
  const auto all_tokens = tokens_of(labels);
  for (const auto& w : kGenericWords) {
    if (std::none_of(all_tokens.begin(), all_tokens.end(),
                     [&](std::string_view t) { return matches(w, t); }))
      continue;
    v.score += w.weight;
    v.signals.push_back("word '" + std::string(w.word) + "'");
    v.cloud = v.cloud || w.cloud;
  }

  const std::vector<std::string_view> host_labels(
      labels.begin(), labels.end() - static_cast<std::ptrdiff_t>(registered_label_count(labels)));
  const auto host_tokens = tokens_of(host_labels);
  for (const auto& w : kCounterWords) {
    if (std::none_of(host_tokens.begin(), host_tokens.end(),
                     [&](std::string_view t) { return matches(w, t); }))
      continue;
    v.score += w.weight;
    v.counter_signals.push_back("word '" + std::string(w.word) + "'");
  }

  if (v.cloud) v.signals.emplace_back("cloud provider's default name (a hint, not a verdict)");
  v.generic = v.score >= kGenericThreshold;
  return v;
}

}  // namespace ipconfirm::responder

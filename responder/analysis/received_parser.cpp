#include "responder/analysis/received_parser.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace ipconfirm::responder {

namespace {

// Bounds that no real Received field comes near; beyond them the field is hostile or broken and
// reported as unparsed instead of being worked on.
constexpr std::size_t kMaxFieldBytes = 16 * 1024;
constexpr std::size_t kMaxTokens = 512;
constexpr int kMaxCommentDepth = 32;

bool is_space(char c) {
  return c == ' ';
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    std::size_t start = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

enum class Keyword { none, from, by, via, with, id, for_, tls };

Keyword keyword_of(std::string_view w) {
  if (iequals(w, "from")) return Keyword::from;
  if (iequals(w, "by")) return Keyword::by;
  if (iequals(w, "via")) return Keyword::via;
  if (iequals(w, "with")) return Keyword::with;
  if (iequals(w, "id")) return Keyword::id;
  if (iequals(w, "for")) return Keyword::for_;
  if (iequals(w, "tls")) return Keyword::tls;
  return Keyword::none;
}

struct Token {
  bool comment = false;
  std::string_view text;  // a word, or a comment's content without its outer parentheses
};

// One clause: the keyword, its words and the comments that follow it.
struct Clause {
  Keyword keyword = Keyword::none;
  std::vector<std::string_view> words;
  std::vector<std::string_view> comments;
};

// Splits `s` (control characters already turned into spaces) into words and top-level comments.
// Returns false on unbalanced parentheses or quotes, too deep nesting or too many tokens.
bool tokenize(std::string_view s, std::vector<Token>& out) {
  std::size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (is_space(c)) {
      ++i;
      continue;
    }
    if (out.size() >= kMaxTokens) return false;
    if (c == ')') return false;
    if (c == '(') {
      int depth = 1;
      std::size_t start = ++i;
      while (i < s.size() && depth > 0) {
        if (s[i] == '\\') {
          i += 2;
          continue;
        }
        if (s[i] == '(' && ++depth > kMaxCommentDepth) return false;
        if (s[i] == ')') --depth;
        ++i;
      }
      if (depth != 0 || i > s.size()) return false;
      out.push_back({true, s.substr(start, i - 1 - start)});
      continue;
    }
    std::size_t start = i;
    bool in_quote = false;
    while (i < s.size()) {
      char d = s[i];
      if (d == '\\' && in_quote) {
        i += 2;
        continue;
      }
      if (d == '"') in_quote = !in_quote;
      if (!in_quote && (is_space(d) || d == '(' || d == ')')) break;
      ++i;
    }
    if (in_quote || i > s.size()) return false;
    out.push_back({false, s.substr(start, i - start)});
  }
  return true;
}

// A comment's text with every nested comment replaced by a space; iterative and linear.
std::string flatten_comment(std::string_view c) {
  std::string out;
  out.reserve(c.size());
  int depth = 0;
  for (char ch : c) {
    if (ch == '(') {
      if (depth++ == 0) out += ' ';
    } else if (ch == ')') {
      if (depth > 0) --depth;
    } else if (depth == 0) {
      out += ch;
    }
  }
  return out;
}

// Reads an address as MTAs write it: "192.0.2.1", "[192.0.2.1]", "[IPv6:2001:db8::1]",
// "[192.0.2.1]:25123", "user@192.0.2.1", "fe80::1%eth0" (the zone is dropped).
std::optional<IpAddress> parse_address_word(std::string_view w) {
  if (auto at = w.rfind('@'); at != std::string_view::npos) w.remove_prefix(at + 1);
  if (!w.empty() && w.front() == '[') {
    auto close = w.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view rest = w.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':' || rest.size() < 2 || rest.size() > 6) return std::nullopt;
      for (char ch : rest.substr(1))
        if (ch < '0' || ch > '9') return std::nullopt;
    }
    w = w.substr(1, close - 1);
    if (istarts_with(w, "IPv6:")) w.remove_prefix(5);
    // Ecelerity writes the port inside the brackets: "[192.0.2.1:50387]" (IPv4 only; in an
    // IPv6 address a colon is no port).
    if (auto colon = w.find(':'); colon != std::string_view::npos &&
                                  w.find(':', colon + 1) == std::string_view::npos &&
                                  w.find('.') < colon)
      w = w.substr(0, colon);
  }
  if (auto pct = w.find('%'); pct != std::string_view::npos) w = w.substr(0, pct);
  return IpAddress::parse(trim(w));
}

std::string_view strip_trailing_dot(std::string_view s) {
  if (s.size() > 1 && s.back() == '.') s.remove_suffix(1);
  return s;
}

// A host name as MTAs write it (letters, digits, '-', '_', '.'), not an address. Bytes of UTF-8
// count as letters: an MTA may write an internationalised name as it found it (RFC 6531).
bool is_host_name(std::string_view s) {
  s = strip_trailing_dot(s);
  if (s.empty() || s.size() > 253) return false;
  bool letter = false;
  for (char ch : s) {
    bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 static_cast<unsigned char>(ch) >= 0x80;
    bool ok = alpha || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
    if (!ok) return false;
    letter = letter || alpha;
  }
  return letter;
}

// The placeholders MTAs write where a reverse-DNS name would go when there was none: "unknown"
// (Postfix, qmail, IronPort) and Courier's DNS errors ("softdnserr", "dnserr").
bool is_rdns_placeholder(std::string_view s) {
  return iequals(s, "unknown") || iequals(s, "softdnserr") || iequals(s, "dnserr") ||
         iequals(s, "localhost.localdomain.unknown");
}

// The reverse-DNS name as written, or "" for the placeholders MTAs use when there was none.
std::string_view rdns_name(std::string_view s) {
  if (auto at = s.rfind('@'); at != std::string_view::npos) s.remove_prefix(at + 1);
  if (!is_host_name(s) || is_rdns_placeholder(s)) return {};
  return strip_trailing_dot(s);
}

std::string_view strip_quotes(std::string_view s) {
  while (!s.empty() && s.front() == '"') s.remove_prefix(1);
  while (!s.empty() && s.back() == '"') s.remove_suffix(1);
  return s;
}

std::string_view strip_angle(std::string_view s) {
  if (s.size() >= 2 && s.front() == '<' && s.back() == '>') return s.substr(1, s.size() - 2);
  return s;
}

// What the comments after "from X" say about the connection.
struct FromInfo {
  bool helo_stated = false;  // "helo=", "HELO x" or "EHLO x" seen, even with an empty value
  bool courier = false;      // Courier's "(AUTH: ...)" comment
  std::string explicit_helo;
  std::string name;  // the word written before the address (Postfix, Sendmail, Gmail)
  std::optional<IpAddress> ip;
  bool ip_bare = false;  // written without brackets (qmail, Exchange)
  bool name_seen = false;
  std::string lone_name;  // a comment that is one host name and nothing else: "(helo.example)"
};

void read_from_comment(std::string_view flat, FromInfo& info) {
  auto words = split_words(flat);
  if (!words.empty() && iequals(words.front(), "AUTH:")) {
    info.courier = true;  // Courier: "(AUTH: LOGIN user, TLS: ...)" names no host
    return;
  }
  if (words.size() == 1 && info.lone_name.empty() && is_host_name(words.front()))
    info.lone_name = words.front();
  std::size_t helo_value_at = words.size();  // index of a word consumed as a HELO value
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::string_view w = strip_quotes(words[i]);
    if (istarts_with(w, "helo=")) {
      if (!info.helo_stated) info.explicit_helo = strip_quotes(w.substr(5));
      info.helo_stated = true;
      continue;
    }
    if (iequals(w, "HELO") || iequals(w, "EHLO")) {
      // qmail writes "(HELO )" for an empty HELO: the word is there, its value is not.
      bool has_value = i + 1 < words.size();
      if (!info.helo_stated && has_value) info.explicit_helo = strip_quotes(words[i + 1]);
      info.helo_stated = true;
      if (has_value) helo_value_at = ++i;
      continue;
    }
    if (info.ip) continue;
    // Some MTAs glue the name to the address: "(localhost[127.0.0.1])".
    std::string_view glued_name;
    if (auto open = w.find('['); open != std::string_view::npos && open > 0 && w.back() == ']') {
      glued_name = w.substr(0, open);
      w.remove_prefix(open);
    }
    auto ip = parse_address_word(w);
    if (!ip) continue;
    if (!glued_name.empty() && is_host_name(glued_name)) {
      info.ip = ip;
      info.name_seen = true;
      info.name = rdns_name(glued_name);
      continue;
    }
    info.ip = ip;
    info.ip_bare = w.find('[') == std::string_view::npos;
    if (i > 0 && i - 1 != helo_value_at) {
      std::string_view prev = words[i - 1];
      if (auto at = prev.rfind('@'); at != std::string_view::npos) prev.remove_prefix(at + 1);
      if (is_host_name(prev)) {
        info.name_seen = true;
        info.name = rdns_name(prev);
      }
    }
  }
}

// The word after `key` in `text` (up to white space or a comma), or "".
std::string_view value_after(std::string_view text, std::string_view key) {
  std::size_t pos = 0;
  while (true) {
    auto found = text.substr(pos).find(key);
    if (found == std::string_view::npos) return {};
    found += pos;
    if (found == 0 || text[found - 1] == ' ' || text[found - 1] == ',') {
      std::string_view rest = text.substr(found + key.size());
      std::size_t end = 0;
      while (end < rest.size() && rest[end] != ' ' && rest[end] != ',') ++end;
      return rest.substr(0, end);
    }
    pos = found + 1;
  }
}

bool looks_like_tls_version(std::string_view w) {
  if (!(istarts_with(w, "TLS") || istarts_with(w, "SSL")) || w.size() < 4) return false;
  char c = w[3];
  return c == 'v' || c == 'V' || (c >= '0' && c <= '9');
}

std::string join(std::string_view a, std::string_view b) {
  std::string out(a);
  if (!a.empty() && !b.empty()) out += ' ';
  out += b;
  return out;
}

// TLS as stated in one (flattened) comment, or "".
//   Sendmail, Gmail, Exchange: "version=TLSv1.3 cipher=C bits=..." / "version=TLS1_2, cipher=C"
//   Postfix, Postini: "using TLSv1.3 with cipher C (256/256 bits) ..." / "using TLSv1"
//   Exim: "TLS1.3" (the cipher follows in a "tls" clause) or "TLSv1.2:C:256"
std::string tls_from_comment(std::string_view flat) {
  flat = trim(flat);
  if (std::string_view cipher = value_after(flat, "cipher="); !cipher.empty())
    return join(value_after(flat, "version="), cipher);
  auto words = split_words(flat);
  if (words.size() >= 2 && iequals(words[0], "using") && looks_like_tls_version(words[1])) {
    std::string_view cipher;
    if (words.size() >= 5 && iequals(words[2], "with") && iequals(words[3], "cipher"))
      cipher = words[4];
    return join(words[1], cipher);
  }
  if (words.size() == 1 && looks_like_tls_version(words[0])) {
    std::string_view w = words[0];
    auto colon = w.find(':');
    if (colon == std::string_view::npos) return std::string(w);
    std::string_view cipher = w.substr(colon + 1);
    cipher = cipher.substr(0, cipher.find(':'));
    return join(w.substr(0, colon), cipher);
  }
  return {};
}

bool is_lower_protocol(std::string_view w) {
  // Exim writes its protocol names in lower case ("esmtps", "esmtpsa", "smtp", "local").
  if (w.empty()) return false;
  for (char ch : w)
    if (!(ch >= 'a' && ch <= 'z')) return false;
  return w.find("smtp") != std::string_view::npos;
}

std::string joined_words(const std::vector<std::string_view>& words) {
  std::string out;
  for (auto w : words) {
    if (!out.empty()) out += ' ';
    out += w;
    if (out.size() > 1024) break;
  }
  return out;
}

bool parse_into(std::string_view body, ReceivedHop& hop) {
  // Turn every control character (folding CR LF, TAB, NUL, ...) into a space first: the grammar
  // only cares about white space, and nothing unsafe can then reach an output field.
  std::string text(body);
  for (char& ch : text) {
    auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u == 0x7f) ch = ' ';
  }

  // The date follows the last ';' outside comments and quotes.
  std::size_t semicolon = std::string::npos;
  {
    int depth = 0;
    bool in_quote = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
      char ch = text[i];
      if (ch == '\\') {
        ++i;
      } else if (in_quote) {
        if (ch == '"') in_quote = false;
      } else if (ch == '(') {
        if (++depth > kMaxCommentDepth) return false;
      } else if (ch == ')') {
        if (--depth < 0) return false;
      } else if (depth == 0 && ch == '"') {
        in_quote = true;
      } else if (depth == 0 && ch == ';') {
        semicolon = i;
      }
    }
    if (depth != 0) return false;
  }
  std::string_view all(text);
  std::string_view trace = semicolon == std::string::npos ? all : all.substr(0, semicolon);
  std::string_view date =
      semicolon == std::string::npos ? std::string_view{} : all.substr(semicolon + 1);
  // Courier writes its queue id after the date: "; Fri, 10 Oct 2008 12:00:00 -0700 id 0012AB".
  std::string_view id_after_date;
  if (auto at = date.rfind(" id "); at != std::string_view::npos) {
    id_after_date = trim(date.substr(at + 4));
    if (id_after_date.find(' ') == std::string_view::npos && !id_after_date.empty())
      date = date.substr(0, at);
    else
      id_after_date = {};
  }

  std::vector<Token> tokens;
  if (!tokenize(trace, tokens) || tokens.empty()) return false;

  // Group the tokens into clauses; comments before the first keyword form a clause of their own.
  std::vector<Clause> clauses;
  clauses.push_back({});
  for (const Token& t : tokens) {
    if (t.comment) {
      clauses.back().comments.push_back(t.text);
      continue;
    }
    // A ';' before the last one is punctuation, not part of a name ("by mx.example.com; (5.65)").
    std::string_view word = t.text;
    while (!word.empty() && word.back() == ';') word.remove_suffix(1);
    if (word.empty()) continue;
    Keyword k = keyword_of(word);
    if (k != Keyword::none) {
      clauses.push_back({k, {}, {}});
      continue;
    }
    if (clauses.back().keyword == Keyword::none) return false;  // a stray word up front
    clauses.back().words.push_back(word);
  }

  // "(qmail 1234 invoked by uid 0)", "(qmail invoked by alias)", "(nullmailer pid 477 invoked
  // by uid 1000)", "(wp-smtpd 16293 invoked by uid 100)": a program's note that it was run, a
  // valid line that names no hop.
  if (clauses.size() == 1) {
    for (auto c : clauses.front().comments) {
      std::string flat = flatten_comment(c);
      auto words = split_words(flat);
      bool invoked = words.size() >= 3 &&
                     std::any_of(words.begin() + 1, words.end(),
                                 [](std::string_view w) { return iequals(w, "invoked"); });
      if (invoked) {
        hop.date = sanitise_header_text(date);
        return true;
      }
    }
    return false;
  }

  const Clause* from = nullptr;
  const Clause* by = nullptr;
  std::string tls_version_only;  // Exim's "(TLS1.3)" waiting for its "tls CIPHER" clause
  bool exim = false;
  bool qmail = false;
  bool companion = false;  // a second "from" or "by" clause (see the end of this function)
  for (const Clause& c : clauses) {
    if (c.keyword == Keyword::from || c.keyword == Keyword::by) {
      const Clause*& slot = c.keyword == Keyword::from ? from : by;
      if (slot) {
        companion = true;
      } else {
        // "from (127.0.0.1) by", "by (Postfix) with esmtpa": the name may be missing, not both
        // the name and the comment.
        if (c.words.empty() && c.comments.empty()) return false;
        slot = &c;
      }
    } else if (c.keyword == Keyword::with && hop.with.empty()) {
      hop.with = joined_words(c.words);
      auto slash = hop.with.find("/TLS/");  // IronPort: "ESMTP/TLS/ECDHE-RSA-AES256-GCM-SHA384"
      if (slash != std::string::npos && hop.tls.empty())
        hop.tls = trim(std::string_view(hop.with).substr(slash + 5));
      if (!c.words.empty() && is_lower_protocol(c.words.front())) exim = true;
    } else if (c.keyword == Keyword::id && hop.id.empty() && !c.words.empty()) {
      hop.id = c.words.front();
    } else if (c.keyword == Keyword::for_ && hop.for_addr.empty() && !c.words.empty()) {
      hop.for_addr = strip_angle(c.words.front());
    } else if (c.keyword == Keyword::tls && !c.words.empty() && hop.tls.empty()) {
      hop.tls = join(tls_version_only, c.words.front());
    }
    for (auto comment : c.comments) {
      std::string flat = flatten_comment(comment);
      if (istarts_with(trim(flat), "Exim ")) exim = true;
      if (istarts_with(trim(flat), "qmail")) qmail = true;  // "(qmail-ldap-1.03)"
      if (!hop.tls.empty() || c.keyword == Keyword::from) continue;
      std::string tls = tls_from_comment(flat);
      if (tls.empty()) continue;
      if (tls.find(' ') == std::string::npos && c.keyword == Keyword::with)
        tls_version_only = tls;  // Exim may name the cipher next
      else
        hop.tls = tls;
    }
  }
  if (hop.tls.empty()) hop.tls = tls_version_only;
  if (!from && !by) return false;

  if (by) {
    std::string_view name = by->words.empty() ? std::string_view{} : by->words.front();
    if (auto ip = parse_address_word(name)) {
      hop.by_ip = ip;
    }
    hop.by = strip_trailing_dot(name);
    for (auto comment : by->comments) {
      if (hop.by_ip) break;
      std::string flat = flatten_comment(comment);
      auto words = split_words(flat);
      if (words.size() == 1) hop.by_ip = parse_address_word(words.front());
    }
  }

  if (from) {
    // X, the word after "from", may be missing: "from (127.0.0.1) by", "from ([192.0.2.4])".
    std::string_view x = from->words.empty() ? std::string_view{} : from->words.front();
    FromInfo info;
    for (auto comment : from->comments) {
      std::string flat = flatten_comment(comment);
      read_from_comment(flat, info);
      if (hop.tls.empty()) hop.tls = tls_from_comment(flat);  // Postfix "(using TLSv1.3 ...)"
    }
    // An address outside the parentheses: Exim 3's "from NAME [IP]", GMX's
    // "from NAME (EHLO x) [IP]".
    bool ip_outside = false;
    for (std::size_t i = 1; i < from->words.size() && !info.ip; ++i)
      ip_outside = (info.ip = parse_address_word(from->words[i])).has_value();
    const std::optional<IpAddress> x_address =
        x.find('@') == std::string_view::npos ? parse_address_word(x) : std::nullopt;
    bool exchange = hop.with.find("Microsoft") != std::string::npos || iequals(hop.with, "mapi");
    hop.from_ip = info.ip;
    if (info.helo_stated) {
      // Exim, qmail, IronPort, ZMailer, GMX: X is the reverse-DNS name, the HELO is in the
      // comment (and may be empty: qmail's "(HELO )").
      hop.from_helo = info.explicit_helo;
      hop.from_name = rdns_name(x);
      if (!hop.from_ip) hop.from_ip = x_address;
    } else if (exim && ip_outside && !info.lone_name.empty()) {
      // Exim 2 and 3: "from RDNS (HELO) [IP]", the HELO in parentheses when it differs.
      hop.from_helo = info.lone_name;
      hop.from_name = rdns_name(x);
    } else if (info.name_seen) {
      // RFC 5321, Postfix, Sendmail, Gmail, Courier: "from HELO (RDNS [IP])".
      hop.from_helo = x;
      hop.from_name = info.name;
    } else if (!hop.from_ip && x_address) {
      // "from [203.0.113.9] by" (Yahoo, MessageLabs, old Sendmail), webmail's "from 192.0.2.7
      // by ... with HTTP": no HELO was written, and the address is the client's.
      hop.from_ip = x_address;
    } else {
      hop.from_helo = x;
      // Exim leaves helo= out when it equals the verified name, qmail (and qmail-ldap, which
      // brackets the address) its "(HELO x)"; Exchange, Sendmail and Courier write the HELO
      // name only.
      if ((exim && !info.courier) || ((info.ip_bare || qmail) && !exchange))
        hop.from_name = rdns_name(x);
    }
  }

  if (hop.id.empty()) hop.id = id_after_date;
  if (companion && !hop.from_ip) {
    // A second "from" or "by" and no address: qmail-scanner's "from user by host by uid 0 with
    // qmail-scanner-1.25" and gateways' notes. Like qmail's "(qmail N invoked ...)", a valid
    // line that names no hop. With an address, the second clause is an annotation of the first
    // (Exim's "from C=..,CN=.. (verified)" client certificate, "by authid <user>", "from
    // <envelope sender>") and the first ones count.
    hop = ReceivedHop{};
  }
  hop.date = date;
  return true;
}

bool is_cont(unsigned char c) {
  return (c & 0xc0) == 0x80;
}

}  // namespace

std::string sanitise_header_text(std::string_view text, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  bool pending_space = false;
  std::size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t len = 0;
    bool space = false;
    if (c < 0x80) {
      len = 1;
      space = c < 0x21 || c == 0x7f;
    } else {
      std::size_t need = (c & 0xe0) == 0xc0   ? 2
                         : (c & 0xf0) == 0xe0 ? 3
                         : (c & 0xf8) == 0xf0 ? 4
                                              : 0;
      bool ok = need != 0 && i + need <= text.size();
      for (std::size_t k = 1; ok && k < need; ++k)
        ok = is_cont(static_cast<unsigned char>(text[i + k]));
      if (ok) {
        // Refuse overlong forms, surrogates and code points above U+10FFFF.
        auto c1 = static_cast<unsigned char>(text[i + 1]);
        if (need == 2) ok = c >= 0xc2;
        if (need == 3) ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
        if (need == 4) ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90) && c <= 0xf4;
        if (need == 2 && c == 0xc2 && c1 < 0xa0) space = true;  // C1 controls U+0080..U+009F
      }
      len = ok ? need : 1;
      if (!ok) {
        // One replacement per invalid byte.
        if (pending_space && !out.empty()) {
          if (out.size() + 2 > max_bytes) break;
          out += ' ';
        }
        pending_space = false;
        if (out.size() + 1 > max_bytes) break;
        out += '?';
        i += 1;
        continue;
      }
    }
    if (space) {
      pending_space = true;
      i += len;
      continue;
    }
    std::size_t extra = (pending_space && !out.empty()) ? 1 : 0;
    if (out.size() + extra + len > max_bytes) break;
    if (extra) out += ' ';
    pending_space = false;
    out.append(text.data() + i, len);
    i += len;
  }
  return out;
}

ReceivedHop parse_received(std::string_view value) {
  if (value.size() > kMaxFieldBytes) return {};
  ReceivedHop hop;
  if (!parse_into(value, hop)) return {};
  hop.parsed = true;
  for (std::string* s : {&hop.from_helo, &hop.from_name, &hop.by, &hop.with, &hop.id, &hop.for_addr,
                         &hop.date, &hop.tls})
    *s = sanitise_header_text(*s);
  return hop;
}

nlohmann::json to_json(const ReceivedHop& hop) {
  auto ip_or_null = [](const std::optional<IpAddress>& ip) {
    return ip ? nlohmann::json(ip->to_string()) : nlohmann::json(nullptr);
  };
  nlohmann::json j;
  j["from_name"] = hop.from_name;
  j["from_helo"] = hop.from_helo;
  j["from_ip"] = ip_or_null(hop.from_ip);
  j["from_ip_scope"] =
      hop.from_ip ? nlohmann::json(std::string(hop.from_ip->scope())) : nlohmann::json(nullptr);
  j["by"] = hop.by;
  j["by_ip"] = ip_or_null(hop.by_ip);
  j["with"] = hop.with;
  j["id"] = hop.id;
  j["for"] = hop.for_addr;
  j["tls"] = hop.tls.empty() ? nlohmann::json(nullptr) : nlohmann::json(hop.tls);
  j["date"] = hop.date;
  j["parsed"] = hop.parsed;
  return j;
}

}  // namespace ipconfirm::responder

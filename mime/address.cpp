// RFC 5322 address lists. See address.hpp.
#include "mime/address.hpp"

#include <algorithm>

#include "core/ascii.hpp"

namespace ipconfirm::mime {

namespace {

enum class Tok { atom, quoted, literal, dot, at, lt, gt, comma, colon, semicolon, other };

struct Token {
  Tok kind = Tok::other;
  std::size_t offset = 0;
  std::string text;  // atom: itself; quoted: the content, quoted-pairs undone; literal: "[..]"
  std::string raw;   // quoted: as written, quotes included
};

bool is_atext(char c) {
  return ascii::is_atext(c) || static_cast<unsigned char>(c) >= 0x80;  // RFC 6532
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string at_offset(std::string what, std::size_t offset) {
  return what + " at offset " + std::to_string(offset);
}

// Cuts the value into tokens, skipping white space and comments. Sets `error` on the first
// unterminated quoted string, comment or literal, or a byte that has no place in the grammar
// (the token list then ends there).
std::vector<Token> tokenize(std::string_view s, std::string& error) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (is_space(c)) {
      ++i;
      continue;
    }
    if (c == '(') {  // comment, nested; quoted-pairs inside
      const std::size_t start = i;
      std::size_t depth = 0;
      for (; i < s.size(); ++i) {
        if (s[i] == '\\') {
          ++i;
          continue;
        }
        if (s[i] == '(') ++depth;
        if (s[i] == ')' && --depth == 0) break;
      }
      if (i >= s.size()) {
        error = at_offset("unterminated comment", start);
        return out;
      }
      ++i;
      continue;
    }
    Token t;
    t.offset = i;
    if (is_atext(c)) {
      t.kind = Tok::atom;
      while (i < s.size() && is_atext(s[i])) t.text += s[i++];
      out.push_back(std::move(t));
      continue;
    }
    if (c == '"') {
      t.kind = Tok::quoted;
      std::size_t j = i + 1;
      bool closed = false;
      for (; j < s.size(); ++j) {
        if (s[j] == '\\' && j + 1 < s.size()) {
          t.text += s[++j];
          continue;
        }
        if (s[j] == '"') {
          closed = true;
          break;
        }
        if (s[j] == '\r' || s[j] == '\n') continue;  // folding inside the quotes
        t.text += s[j];
      }
      if (!closed) {
        error = at_offset("unterminated quoted string", i);
        return out;
      }
      t.raw = std::string(s.substr(i, j + 1 - i));
      i = j + 1;
      out.push_back(std::move(t));
      continue;
    }
    if (c == '[') {
      t.kind = Tok::literal;
      const std::size_t close = s.find(']', i);
      if (close == std::string_view::npos) {
        error = at_offset("unterminated domain literal", i);
        return out;
      }
      for (std::size_t j = i + 1; j < close; ++j) {
        if (s[j] == '[' || s[j] == '\\') {
          error = at_offset("invalid character in domain literal", j);
          return out;
        }
        if (!is_space(s[j])) t.text += s[j];
      }
      t.text = "[" + t.text + "]";
      i = close + 1;
      out.push_back(std::move(t));
      continue;
    }
    switch (c) {
      case '.':
        t.kind = Tok::dot;
        break;
      case '@':
        t.kind = Tok::at;
        break;
      case '<':
        t.kind = Tok::lt;
        break;
      case '>':
        t.kind = Tok::gt;
        break;
      case ',':
        t.kind = Tok::comma;
        break;
      case ':':
        t.kind = Tok::colon;
        break;
      case ';':
        t.kind = Tok::semicolon;
        break;
      default:
        error = at_offset("unexpected character", i);
        return out;
    }
    t.text = std::string(1, c);
    out.push_back(std::move(t));
    ++i;
  }
  return out;
}

bool is_word(Tok k) {
  return k == Tok::atom || k == Tok::quoted;
}

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, std::size_t end_offset, AddressList& out)
      : t_(tokens), end_(end_offset), out_(out) {}

  void parse_list() {
    while (i_ < t_.size() && !out_.truncated) {
      if (at(Tok::comma)) {  // an empty element (obs-addr-list)
        ++i_;
        continue;
      }
      if (!parse_address()) {
        skip_to({Tok::comma});
      } else if (i_ < t_.size() && !at(Tok::comma)) {
        fail("expected ',' between addresses", offset());
        skip_to({Tok::comma});
      }
    }
    if (out_.mailboxes.empty() && out_.groups == 0) fail("no address", end_);
  }

 private:
  bool at(Tok k) const { return i_ < t_.size() && t_[i_].kind == k; }
  std::size_t offset() const { return i_ < t_.size() ? t_[i_].offset : end_; }

  bool fail(const std::string& what, std::size_t offset) {
    if (out_.error.empty()) out_.error = at_offset(what, offset);
    return false;
  }

  void skip_to(std::initializer_list<Tok> stops) {
    while (i_ < t_.size() && std::find(stops.begin(), stops.end(), t_[i_].kind) == stops.end())
      ++i_;
  }

  // The end of a run of phrase tokens (words and dots) starting at i_.
  std::size_t phrase_end() const {
    std::size_t j = i_;
    while (j < t_.size() && (is_word(t_[j].kind) || t_[j].kind == Tok::dot)) ++j;
    return j;
  }

  // display-name = phrase (obs-phrase: a word, then words and dots).
  std::string phrase(std::size_t from, std::size_t to) {
    std::string name;
    for (std::size_t k = from; k < to; ++k) {
      if (!name.empty() && t_[k].kind != Tok::dot) name += ' ';
      name += t_[k].text;
    }
    if (from < to && t_[from].kind == Tok::dot)
      fail("display name starts with '.'", t_[from].offset);
    return name;
  }

  // local-part = word *("." word), from the tokens [from, to).
  bool local_part(std::size_t from, std::size_t to, std::string& out) {
    bool want_word = true;
    for (std::size_t k = from; k < to; ++k) {
      const bool word = is_word(t_[k].kind);
      if (word != want_word) return fail("malformed local part", t_[k].offset);
      out += t_[k].kind == Tok::quoted ? t_[k].raw : t_[k].text;
      want_word = !want_word;
    }
    if (want_word) return fail("malformed local part", to < t_.size() ? t_[to].offset : end_);
    return true;
  }

  // domain = dot-atom / domain-literal (obs-domain: CFWS around the dots is already gone).
  bool domain(std::string& out) {
    if (at(Tok::literal)) {
      out = t_[i_++].text;
      return true;
    }
    if (!at(Tok::atom)) return fail("expected a domain", offset());
    out = t_[i_++].text;
    while (at(Tok::dot)) {
      ++i_;
      if (!at(Tok::atom)) return fail("malformed domain", offset());
      out += "." + t_[i_++].text;
    }
    return true;
  }

  bool addr_spec(std::size_t words_end, Mailbox& m) {
    if (!local_part(i_, words_end, m.local_part)) return false;
    i_ = words_end;
    if (!at(Tok::at)) return fail("expected '@'", offset());
    ++i_;
    return domain(m.domain);
  }

  bool parse_mailbox(const std::string& group) {
    Mailbox m;
    m.group = group;
    const std::size_t j = phrase_end();
    if (j < t_.size() && t_[j].kind == Tok::lt) {
      m.display_name = phrase(i_, j);
      i_ = j + 1;
      if (at(Tok::at)) {  // obs-route: "@a.example,@b.example:" before the addr-spec
        while (at(Tok::at) || at(Tok::comma)) {
          if (at(Tok::comma)) {
            ++i_;
            continue;
          }
          ++i_;
          std::string ignored;
          if (!domain(ignored)) return false;
        }
        if (!at(Tok::colon)) return fail("malformed source route", offset());
        ++i_;
      }
      if (!addr_spec(phrase_end(), m)) return false;
      if (!at(Tok::gt)) return fail("expected '>'", offset());
      ++i_;
    } else if (j < t_.size() && t_[j].kind == Tok::at && j > i_) {
      if (!addr_spec(j, m)) return false;
    } else {
      return fail("expected an address", j < t_.size() ? t_[j].offset : end_);
    }
    if (out_.mailboxes.size() == kMaxAddresses) {
      out_.truncated = true;
      return fail("more than " + std::to_string(kMaxAddresses) + " addresses", offset());
    }
    out_.mailboxes.push_back(std::move(m));
    return true;
  }

  bool parse_address() {
    const std::size_t j = phrase_end();
    if (!(j < t_.size() && t_[j].kind == Tok::colon)) return parse_mailbox("");
    // group = display-name ":" [group-list] ";"
    const std::string name = phrase(i_, j);
    if (j == i_) return fail("group without a name", t_[j].offset);
    i_ = j + 1;
    ++out_.groups;
    while (i_ < t_.size() && !at(Tok::semicolon) && !out_.truncated) {
      if (at(Tok::comma)) {
        ++i_;
        continue;
      }
      if (!parse_mailbox(name)) {
        skip_to({Tok::comma, Tok::semicolon});
      } else if (i_ < t_.size() && !at(Tok::comma) && !at(Tok::semicolon)) {
        fail("expected ',' or ';'", offset());
        skip_to({Tok::comma, Tok::semicolon});
      }
    }
    if (!at(Tok::semicolon)) return fail("group without ';'", offset());
    ++i_;
    return true;
  }

  const std::vector<Token>& t_;
  std::size_t end_;
  AddressList& out_;
  std::size_t i_ = 0;
};

}  // namespace

AddressList parse_address_list(std::string_view value) {
  AddressList out;
  std::string token_error;
  const std::vector<Token> tokens = tokenize(value, token_error);
  Parser(tokens, value.size(), out).parse_list();
  if (!token_error.empty()) out.error = token_error;  // the first problem in the text
  out.well_formed = out.error.empty();
  return out;
}

std::vector<std::string> distinct_domains(const AddressList& list) {
  std::vector<std::string> out;
  for (const auto& m : list.mailboxes) {
    std::string d = ascii::lower(m.domain);
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(std::move(d));
  }
  return out;
}

}  // namespace ipconfirm::mime

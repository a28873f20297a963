#include "responder/analysis/list_unsubscribe.hpp"

#include <algorithm>

#include "core/ascii.hpp"

namespace ipconfirm::responder {

namespace {

constexpr int kMaxCommentDepth = 20;

bool is_fws(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// Skips folding white space and comments from `i`. Returns false on a comment that does not
// close (or nests too deep); `i` is then at the end.
bool skip_cfws(std::string_view s, std::size_t& i) {
  while (i < s.size()) {
    if (is_fws(s[i])) {
      ++i;
      continue;
    }
    if (s[i] != '(') return true;
    int depth = 0;
    for (; i < s.size(); ++i) {
      if (s[i] == '\\') {
        ++i;  // quoted-pair
      } else if (s[i] == '(') {
        if (++depth > kMaxCommentDepth) {
          i = s.size();
          return false;
        }
      } else if (s[i] == ')') {
        if (--depth == 0) {
          ++i;
          break;
        }
      }
    }
    if (depth != 0) {
      i = s.size();
      return false;
    }
  }
  return true;
}

std::string printable_ascii(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out += u > 0x20 && u < 0x7f ? c : '?';
  }
  return out;
}

}  // namespace

UnsubscribeUriList parse_list_unsubscribe(std::string_view value) {
  UnsubscribeUriList out;
  std::size_t i = 0;
  auto fail = [&](std::string why) {
    if (out.error.empty()) out.error = std::move(why);
    out.well_formed = false;
    return out;
  };
  if (!skip_cfws(value, i)) return fail("a comment does not close");
  if (i == value.size()) return fail("the field is empty");
  while (i < value.size()) {
    if (value[i] != '<')
      return fail("expected '<' at offset " + std::to_string(i) +
                  ": RFC 2369 puts each URI in angle brackets");
    const std::size_t close = value.find('>', i + 1);
    if (close == std::string_view::npos)
      return fail("the '<' at offset " + std::to_string(i) + " is not closed");
    std::string uri;
    for (std::size_t k = i + 1; k < close; ++k) {
      if (is_fws(value[k])) continue;  // RFC 2369 §2: white space inside is ignored
      if (uri.size() == kMaxUnsubscribeUriBytes) {
        out.truncated = true;
        break;
      }
      uri += value[k];
    }
    if (out.uris.size() < kMaxUnsubscribeUris)
      out.uris.push_back(printable_ascii(uri));
    else
      out.truncated = true;
    i = close + 1;
    if (!skip_cfws(value, i)) return fail("a comment does not close");
    if (i == value.size()) break;
    if (value[i] != ',')
      return fail("text after the URI at offset " + std::to_string(i) +
                  ": URIs are separated by commas");
    ++i;
    // Empty list elements (", ,") are tolerated, like RFC 5322's obsolete lists.
    while (true) {
      if (!skip_cfws(value, i)) return fail("a comment does not close");
      if (i < value.size() && value[i] == ',') {
        ++i;
        continue;
      }
      break;
    }
  }
  out.well_formed = !out.uris.empty();
  if (out.uris.empty()) return fail("no URI in angle brackets");
  return out;
}

bool is_one_click_post(std::string_view value) {
  while (!value.empty() && is_fws(value.front())) value.remove_prefix(1);
  while (!value.empty() && is_fws(value.back())) value.remove_suffix(1);
  return ascii::iequals(value, "List-Unsubscribe=One-Click");
}

std::string uri_kind(std::string_view uri) {
  const std::size_t colon = uri.find(':');
  if (colon == std::string_view::npos) return "";
  const std::string scheme = ascii::lower(uri.substr(0, colon));
  const std::string_view rest = uri.substr(colon + 1);
  if (scheme == "mailto") return rest.empty() ? "" : "mailto";
  if (scheme != "https" && scheme != "http") return "";
  if (rest.size() < 3 || rest.substr(0, 2) != "//") return "";
  const std::string_view host = rest.substr(2, rest.find_first_of("/?#", 2) - 2);
  return host.empty() ? "" : scheme;
}

UnsubscribeFields read_unsubscribe_fields(const RawHeader& header) {
  UnsubscribeFields out;
  for (const auto& f : header.fields) {
    if (ascii::iequals(f.name, "List-Unsubscribe")) {
      if (out.list_unsubscribe_fields++ == 0) out.list = parse_list_unsubscribe(f.value);
    } else if (ascii::iequals(f.name, "List-Unsubscribe-Post")) {
      if (out.post_fields++ == 0) {
        std::string_view v = f.value;
        while (!v.empty() && is_fws(v.front())) v.remove_prefix(1);
        while (!v.empty() && is_fws(v.back())) v.remove_suffix(1);
        out.post_value = printable_ascii(v.substr(0, 200));
        out.one_click_post = is_one_click_post(f.value);
      }
    } else if (ascii::iequals(f.name, "Precedence") && out.precedence.empty()) {
      std::size_t i = 0;
      while (i < f.value.size() && is_fws(f.value[i])) ++i;
      std::size_t j = i;
      while (j < f.value.size() && !is_fws(f.value[j]) && f.value[j] != ';' && f.value[j] != '(')
        ++j;
      out.precedence =
          printable_ascii(ascii::lower(f.value.substr(i, std::min<std::size_t>(j - i, 40))));
    }
  }
  for (const auto& uri : out.list.uris) {
    const std::string kind = uri_kind(uri);
    if (kind == "https" && out.https_uri.empty()) out.https_uri = uri;
    if (kind == "mailto" && out.mailto_uri.empty()) out.mailto_uri = uri;
    if (kind == "http") out.has_http_uri = true;
  }
  if (out.list_unsubscribe_fields > 0) {
    out.bulk_looking = true;
    out.bulk_reason = "List-Unsubscribe";
  } else if (out.precedence == "bulk" || out.precedence == "list") {
    out.bulk_looking = true;
    out.bulk_reason = "Precedence: " + out.precedence;
  }
  return out;
}

bool dkim_signature_covers(const DkimSignatureResult& signature,
                           const std::vector<std::string_view>& fields) {
  if (signature.result != DkimResultCode::pass || !signature.checked) return false;
  return std::all_of(fields.begin(), fields.end(), [&](std::string_view name) {
    return std::any_of(signature.signed_headers.begin(), signature.signed_headers.end(),
                       [&](const std::string& h) { return ascii::iequals(h, name); });
  });
}

}  // namespace ipconfirm::responder

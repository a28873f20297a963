#include "responder/analysis/auth_report.hpp"

#include <algorithm>
#include <iterator>

namespace ipconfirm::responder {

namespace {

using json = nlohmann::ordered_json;

// RFC 2045 tspecials: a value holding one of them, white space, a control or a non-ASCII byte
// is not a token.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
    if (std::string_view("()<>@,;:\\\"/[]?=").find(c) != std::string_view::npos) return false;
  }
  return true;
}

// A property value (RFC 8601 §2.2 pvalue): the token as it is, anything else quoted, with bytes
// outside printable ASCII as '?'.
std::string pvalue(std::string_view s) {
  if (is_token(s)) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      out += '?';
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

void add_property(std::string& out, std::string_view name, std::string_view value) {
  if (value.empty()) return;
  out += " ";
  out += name;
  out += "=";
  out += pvalue(value);
}

}  // namespace

std::string authentication_results(const AuthVerdicts& v, const AuthResultsContext& c) {
  std::string out = pvalue(c.authserv_id.empty() ? std::string("unknown") : c.authserv_id);
  std::size_t methods = 0;
  auto resinfo = [&](std::string_view method, std::string_view result) {
    out += "; ";
    out += method;
    out += "=";
    out += result;
    ++methods;
  };

  if (v.spf && v.spf->complete) {
    resinfo("spf", to_string(v.spf->result));
    // A null MAIL FROM is checked as postmaster@<HELO> (RFC 7208 §2.4): say which name.
    if (c.mail_from.empty())
      add_property(out, "smtp.helo", v.spf->domain);
    else
      add_property(out, "smtp.mailfrom", v.spf->domain);
  }
  if (v.dkim) {
    bool any = false;
    for (const auto& s : v.dkim->signatures) {
      if (!s.checked) continue;
      any = true;
      resinfo("dkim", to_string(s.result));
      if (s.result == DkimResultCode::fail)
        add_property(out, "reason",
                     s.body_hash_ok ? "signature did not verify" : "body hash did not verify");
      add_property(out, "header.d", s.domain);
      add_property(out, "header.s", s.selector);
    }
    if (!any) resinfo("dkim", "none");
  }
  if (v.dmarc && v.dmarc->complete) {
    resinfo("dmarc", to_string(v.dmarc->result));
    add_property(out, "header.from", v.dmarc->from_domain);
  }
  if (v.arc && (v.arc->result == "none" || v.arc->result == "pass" || v.arc->result == "fail"))
    resinfo("arc", v.arc->result);
  if (!c.iprev.empty()) {
    resinfo("iprev", c.iprev == "none" ? "fail" : c.iprev);
    add_property(out, "policy.iprev", c.ip);
  }
  if (methods == 0) out += "; none";  // RFC 8601 §2.2: no result
  return out;
}

json auth_to_json(const AuthVerdicts& v, const std::string& authentication_results) {
  json j;
  j["spf"] = v.spf ? to_json(*v.spf) : json(nullptr);
  j["spf_helo"] = v.spf_helo ? to_json(*v.spf_helo) : json(nullptr);
  j["dkim"] = v.dkim ? to_json(*v.dkim) : json::array();
  j["dmarc"] = v.dmarc ? to_json(*v.dmarc) : json(nullptr);
  j["arc"] = v.arc ? to_json(*v.arc) : json(nullptr);
  j["authentication_results"] = authentication_results;
  return j;
}

std::vector<Hint> auth_hints(const AuthVerdicts& v, bool local_test, const std::string& ip) {
  std::vector<Hint> hints;
  auto append = [&](std::vector<Hint> more) {
    hints.insert(hints.end(), std::make_move_iterator(more.begin()),
                 std::make_move_iterator(more.end()));
  };
  if (v.spf) append(spf_hints(*v.spf));
  if (v.spf_helo) append(spf_hints(*v.spf_helo));
  if (local_test && v.spf && v.spf->complete) {
    // These tell what to add to a record for the test's address, which is never the one the
    // sender's servers send from.
    static constexpr std::string_view kAboutThisAddress[] = {"spf-none",      "spf-fail",
                                                             "spf-softfail",  "spf-neutral",
                                                             "spf-helo-fail", "spf-helo-softfail"};
    std::erase_if(hints, [](const Hint& h) {
      return std::find(std::begin(kAboutThisAddress), std::end(kAboutThisAddress), h.code) !=
             std::end(kAboutThisAddress);
    });
    const SpfVerdict& s = *v.spf;
    const std::string result(to_string(s.result));
    std::string text = "SPF was checked for the address of this local test, " + ip +
                       ", which no receiver on the internet ever sees, so its result here "
                       "(" +
                       result + " for " + s.domain + ") says nothing about your real mail. ";
    std::string severity = "info";
    if (s.result == SpfResult::none && !s.domain_invalid) {
      severity = "warning";
      text += s.domain + " publishes no SPF record at all: publish a TXT record at " + s.domain +
              " that lists the public addresses of the servers that send your mail (`v=spf1 "
              "ip4:<address> ~all`, or `include:` your mail provider's record).";
    } else if (s.result == SpfResult::pass) {
      text += "The record of " + s.domain + " lets " + ip +
              " send, which no receiver on the internet will see; check that it also lists "
              "the public addresses of the servers that send your mail.";
    } else {
      text +=
          "Send the test from the server that sends your mail out to see whether the "
          "record of " +
          s.domain + " lists its public address.";
    }
    hints.push_back(Hint{"spf-local-test", severity, std::move(text)});
  }
  std::string from_domain = v.dmarc ? v.dmarc->from_domain : std::string();
  if (v.dkim) append(dkim_hints(*v.dkim, from_domain));
  if (v.dmarc) append(dmarc_hints(*v.dmarc));
  if (v.arc) append(arc_hints(*v.arc));
  return hints;
}

std::string auth_summary(const AuthVerdicts& v) {
  std::string out;
  auto add = [&](std::string_view method, std::string_view result) {
    if (!out.empty()) out += ' ';
    out += method;
    out += '=';
    out += result;
  };
  if (v.spf && v.spf->complete) add("spf", to_string(v.spf->result));
  if (v.dkim) add("dkim", to_string(v.dkim->overall()));
  if (v.dmarc && v.dmarc->complete) add("dmarc", to_string(v.dmarc->result));
  return out;
}

}  // namespace ipconfirm::responder

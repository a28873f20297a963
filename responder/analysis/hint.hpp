// A hint: one finding of the report with what to do about it. Every check of the analysis
// (rDNS, HELO, DNSBL, path, and the authentication checks) gives its findings in this form; the
// report collects them, and its JSON lists them as `hints` ({code, severity, text}).
//
// Hint codes are a contract with users' scripts: they are only ever added, never renamed.
#pragma once

#include <string>

namespace ipconfirm::responder {

struct Hint {
  std::string code;      // e.g. "no-ptr"
  std::string severity;  // "error" (mail will be refused somewhere), "warning", "info"
  std::string text;      // plain English: what it means and what to do
};

}  // namespace ipconfirm::responder

// An SMTP reply: a three-digit code, an RFC 3463 enhanced status code and one or more lines of
// text, formatted per RFC 5321 §4.2 (continuation lines "250-", last line "250 ").
//
// Pure. Text given here must already be safe (no CR, LF or NUL); format() does not sanitise.
#pragma once

#include <string>
#include <vector>

namespace ipconfirm::smtp {

struct Reply {
  int code = 0;          // 0 means "no reply to send"
  std::string enhanced;  // "2.0.0"; empty for the greeting and replies that carry none
  std::vector<std::string> lines;

  bool empty() const { return code == 0; }
  bool positive() const { return code >= 200 && code < 400; }

  // The wire form, CRLF terminated. Every line gets the enhanced code when there is one.
  std::string format() const;
};

inline Reply reply(int code, std::string enhanced, std::string text) {
  return Reply{code, std::move(enhanced), {std::move(text)}};
}

}  // namespace ipconfirm::smtp

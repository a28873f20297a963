#include "smtp/session.hpp"

#include <algorithm>
#include <cctype>

#include "core/ascii.hpp"
#include "smtp/command_parser.hpp"

namespace ipconfirm::smtp {

namespace {

using ascii::iequals;
using ascii::lower;

// Only printable ASCII of a client's words goes back into a reply.
std::string printable(std::string_view s, std::size_t max = 100) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) break;
    auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  return out;
}

bool is_http_verb(std::string_view verb) {
  for (std::string_view v : {"GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS", "DELETE"})
    if (iequals(verb, v)) return true;
  return false;
}

}  // namespace

Reply no_memory_reply() {
  return reply(451, "4.3.2", "too much mail in progress, try again later");
}

Session::Session(SessionConfig config, IpAddress peer_ip, std::uint16_t peer_port)
    : config_(std::move(config)), peer_ip_(peer_ip), peer_port_(peer_port) {}

std::string Session::peer_text() const {
  return "[" + peer_ip_.to_string() + "]";
}

Reply Session::greeting() const {
  return Reply{
      220, "", {config_.hostname + " ESMTP ipconfirm: your IP is " + peer_ip_.to_string()}};
}

Reply Session::busy() const {
  return reply(421, "4.7.0", config_.hostname + " too many connections, try again later");
}

Reply Session::on_timeout() const {
  return reply(421, "4.4.2", config_.hostname + " timeout exceeded, closing connection");
}

void Session::reset_transaction() {
  envelope_.mail_from.clear();
  envelope_.rcpt_to.clear();
  envelope_.rcpt_domains.clear();
  envelope_.smtputf8 = false;
  envelope_.eightbit = false;
  if (state_ != State::fresh) state_ = State::ready;
}

Step Session::error(Reply r) {
  ++errors_;
  if (errors_ >= config_.max_errors) {
    state_ = State::closed;
    return {reply(421, "4.7.0", config_.hostname + " too many errors, closing connection"),
            Action::close};
  }
  return {std::move(r), Action::none};
}

Step Session::on_line_fault(LineFault fault) {
  switch (fault) {
    case LineFault::too_long:
      return error(reply(500, "5.5.2", "line too long (the limit is 512 bytes, RFC 5321)"));
    case LineFault::unterminated:
      // The 500 for this line is already out; a client that sends kilobytes more without a
      // line end is not speaking SMTP. RFC 5321 §3.8: we close only after a 421.
      state_ = State::closed;
      return {reply(421, "4.7.0", config_.hostname + " no line end in sight, closing connection"),
              Action::close};
    case LineFault::bare_lf:
      state_ = State::closed;
      return {reply(521, "5.5.2", config_.hostname + " bare <LF> received; lines end in <CR><LF>"),
              Action::close};
    case LineFault::bare_cr:
      state_ = State::closed;
      return {reply(521, "5.5.2", config_.hostname + " bare <CR> received; lines end in <CR><LF>"),
              Action::close};
    case LineFault::nul:
      state_ = State::closed;
      return {reply(521, "5.5.2", config_.hostname + " NUL byte received"), Action::close};
  }
  return {};
}

Step Session::on_line(std::string_view line) {
  if (state_ == State::closed) return {{}, Action::close};
  if (++commands_ > config_.max_commands) {
    state_ = State::closed;
    return {reply(421, "4.7.0", config_.hostname + " too many commands, closing connection"),
            Action::close};
  }
  for (char c : line) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\t') {
      state_ = State::closed;
      return {reply(521, "5.5.2", config_.hostname + " control character in command"),
              Action::close};
    }
  }
  Command cmd = parse_command(line);
  if (cmd.verb == Verb::unknown && is_http_verb(cmd.verb_text)) {
    state_ = State::closed;
    return {reply(521, "5.5.1", config_.hostname + " this is an SMTP server, not a web server"),
            Action::close};
  }
  // 8-bit bytes are allowed only inside MAIL/RCPT arguments (SMTPUTF8); the parser checks them.
  // Anywhere else they mean a client that does not speak SMTP (or a binary probe): close.
  if (cmd.verb != Verb::mail && cmd.verb != Verb::rcpt) {
    for (char c : line)
      if (static_cast<unsigned char>(c) >= 0x80) {
        state_ = State::closed;
        return {
            reply(500, "5.5.2", config_.hostname + " 8-bit bytes are not allowed in this command"),
            Action::close};
      }
  }
  switch (cmd.verb) {
    case Verb::ehlo:
      return do_helo(cmd.arg, true);
    case Verb::helo:
      return do_helo(cmd.arg, false);
    case Verb::mail:
      return do_mail(cmd.arg);
    case Verb::rcpt:
      return do_rcpt(cmd.arg);
    case Verb::data:
      return do_data(cmd.arg);
    case Verb::rset:
      if (!cmd.arg.empty()) return error(reply(501, "5.5.4", "RSET takes no argument"));
      reset_transaction();
      return {reply(250, "2.0.0", "Ok"), Action::none};
    case Verb::noop:
      return {reply(250, "2.0.0", "Ok"), Action::none};
    case Verb::quit:
      state_ = State::closed;
      return {reply(221, "2.0.0", config_.hostname + " closing connection"), Action::close};
    case Verb::vrfy:
      return {reply(252, "2.5.2",
                    "cannot VRFY a user, but send mail to ipconfirm@" + config_.domains.front() +
                        " and see"),
              Action::none};
    case Verb::expn:
      return error(reply(502, "5.5.1", "EXPN is not supported"));
    case Verb::help:
      return {Reply{214,
                    "2.0.0",
                    {"ipconfirm tells you how your mail server looks to the internet.",
                     "Send any message to ipconfirm@" + config_.domains.front() +
                         " and read the reply.",
                     "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP"}},
              Action::none};
    case Verb::starttls:
      if (!config_.starttls_available || tls_)
        return error(reply(502, "5.5.1", "STARTTLS is not available"));
      if (!cmd.arg.empty()) return error(reply(501, "5.5.4", "STARTTLS takes no argument"));
      return {reply(220, "2.0.0", "Ready to start TLS"), Action::start_tls};
    case Verb::auth:
      return error(reply(502, "5.5.1", "AUTH is not supported: this server relays nothing"));
    case Verb::bdat:
      return error(reply(502, "5.5.1", "BDAT is not supported"));
    case Verb::unknown:
      break;
  }
  return error(reply(500, "5.5.2", "command not recognized"));
}

Step Session::do_helo(std::string_view arg, bool extended) {
  if (arg.empty())
    return error(
        reply(501, "5.5.4", extended ? "EHLO needs a host name" : "HELO needs a host name"));
  if (arg.find(' ') != std::string_view::npos)
    return error(reply(501, "5.5.4", "HELO/EHLO takes one argument, a host name"));
  reset_transaction();
  state_ = State::ready;
  envelope_.helo = std::string(arg);
  envelope_.esmtp = extended;
  std::string hello = config_.hostname + " Hello " + printable(arg) + " " + peer_text();
  if (!extended) return {Reply{250, "", {hello}}, Action::none};
  Reply r{250, "", {hello}};
  r.lines.push_back("PIPELINING");
  r.lines.push_back("SIZE " + std::to_string(config_.max_message_size));
  r.lines.push_back("8BITMIME");
  r.lines.push_back("ENHANCEDSTATUSCODES");
  r.lines.push_back("SMTPUTF8");
  if (config_.starttls_available && !tls_) r.lines.push_back("STARTTLS");
  r.lines.push_back("HELP");
  return {std::move(r), Action::none};
}

Step Session::do_mail(std::string_view arg) {
  if (state_ == State::fresh) return error(reply(503, "5.5.1", "send EHLO or HELO first"));
  if (state_ != State::ready) return error(reply(503, "5.5.1", "nested MAIL command"));
  PathResult p = parse_mail_from(arg, true);
  if (p.error == PathError::utf8_not_allowed)  // RFC 6531 §3.7.4.1
    return error(reply(553, "5.6.7", printable(p.detail)));
  if (p.error == PathError::bad_parameter)
    return error(reply(501, "5.5.4", "bad MAIL parameter: " + printable(p.detail)));
  if (p.error != PathError::none)
    return error(reply(501, "5.1.7", "bad sender address syntax: " + printable(p.detail)));
  bool smtputf8 = false, eightbit = false;
  for (const auto& param : p.params) {
    if (param.keyword == "SIZE") {
      std::size_t size = 0;
      bool ok = !param.value.empty() && param.value.size() <= 20;
      for (char c : param.value) ok = ok && std::isdigit(static_cast<unsigned char>(c));
      if (!ok) return error(reply(501, "5.5.4", "bad SIZE parameter"));
      for (char c : param.value) {
        if (size > (SIZE_MAX - 9) / 10) {
          size = SIZE_MAX;
          break;
        }
        size = size * 10 + static_cast<std::size_t>(c - '0');
      }
      if (size > config_.max_message_size)
        return {reply(552, "5.3.4",
                      "message size exceeds the limit of " +
                          std::to_string(config_.max_message_size) + " bytes"),
                Action::none};
    } else if (param.keyword == "BODY") {
      std::string v = lower(param.value);
      if (v == "8bitmime")
        eightbit = true;
      else if (v != "7bit")
        return error(reply(501, "5.5.4", "BODY must be 7BIT or 8BITMIME"));
    } else if (param.keyword == "SMTPUTF8") {
      if (!param.value.empty()) return error(reply(501, "5.5.4", "SMTPUTF8 takes no value"));
      smtputf8 = true;
    } else {
      return error(reply(555, "5.5.4", "unsupported MAIL parameter " + printable(param.keyword)));
    }
  }
  if (p.mailbox) {
    for (char c : p.mailbox->to_string())
      if (static_cast<unsigned char>(c) >= 0x80 && !smtputf8)
        return error(reply(553, "5.6.7", "non-ASCII address needs the SMTPUTF8 parameter"));
  }
  envelope_.mail_from = p.mailbox ? p.mailbox->to_string() : std::string();
  envelope_.smtputf8 = smtputf8;
  envelope_.eightbit = eightbit;
  state_ = State::mail;
  ++transactions_;
  return {reply(250, "2.1.0", "Ok"), Action::none};
}

Step Session::do_rcpt(std::string_view arg) {
  if (state_ == State::fresh) return error(reply(503, "5.5.1", "send EHLO or HELO first"));
  if (state_ != State::mail && state_ != State::rcpt)
    return error(reply(503, "5.5.1", "need MAIL before RCPT"));
  PathResult p = parse_rcpt_to(arg, envelope_.smtputf8);
  if (p.error != PathError::none || !p.mailbox) {
    if (p.error == PathError::utf8_not_allowed)
      return error(reply(553, "5.6.7", printable(p.detail)));
    if (p.error == PathError::source_route)
      return error(
          reply(550, "5.7.1", "source routes are not accepted: this server is not a relay"));
    return error(reply(501, "5.1.3", "bad recipient address syntax: " + printable(p.detail)));
  }
  if (!p.params.empty())
    return error(
        reply(555, "5.5.4", "unsupported RCPT parameter " + printable(p.params[0].keyword)));
  std::string domain = lower(p.mailbox->domain);
  // RFC 5321 §4.5.1: "postmaster" without a domain must be accepted too.
  const bool postmaster = iequals(p.mailbox->local, "postmaster");
  if (postmaster && domain.empty()) domain = config_.domains.front();
  auto it = std::find(config_.domains.begin(), config_.domains.end(), domain);
  if (it == config_.domains.end())
    return error(
        reply(550, "5.7.1", "<" + printable(p.mailbox->to_string()) + ">: relay access denied"));
  if (!postmaster && !iequals(p.mailbox->local, "ipconfirm"))
    return error(reply(550, "5.1.1",
                       "<" + printable(p.mailbox->to_string()) +
                           ">: no such user here; write to ipconfirm@" + domain));
  std::string address = (postmaster ? "postmaster@" : "ipconfirm@") + domain;
  if (std::find(envelope_.rcpt_to.begin(), envelope_.rcpt_to.end(), address) ==
      envelope_.rcpt_to.end()) {
    if (envelope_.rcpt_to.size() >= config_.max_recipients)
      return {reply(452, "4.5.3", "too many recipients"), Action::none};
    envelope_.rcpt_to.push_back(address);
    envelope_.rcpt_domains.push_back(domain);
  }
  state_ = State::rcpt;
  return {reply(250, "2.1.5", "Ok"), Action::none};
}

Step Session::do_data(std::string_view arg) {
  if (state_ == State::fresh) return error(reply(503, "5.5.1", "send EHLO or HELO first"));
  if (!arg.empty()) return error(reply(501, "5.5.4", "DATA takes no argument"));
  if (state_ == State::ready) return error(reply(503, "5.5.1", "need MAIL before DATA"));
  if (state_ == State::mail) return error(reply(554, "5.5.1", "no valid recipients"));
  state_ = State::data;
  return {reply(354, "", "End data with <CR><LF>.<CR><LF>"), Action::start_data};
}

Step Session::on_data_end(DataFault fault) {
  switch (fault) {
    case DataFault::none:
      state_ = State::queueing;
      return {{}, Action::queue};
    case DataFault::too_big:
      reset_transaction();
      return {reply(552, "5.3.4",
                    "message size exceeds the limit of " +
                        std::to_string(config_.max_message_size) + " bytes"),
              Action::none};
    case DataFault::line_too_long:
      reset_transaction();
      return {reply(500, "5.5.2", "a line of the message is longer than 1000 bytes (RFC 5321)"),
              Action::none};
    case DataFault::bad_line_ending:
      state_ = State::closed;
      return {reply(521, "5.5.2", config_.hostname + " bare <CR> or <LF> in message data"),
              Action::close};
    case DataFault::no_memory:
      reset_transaction();
      return {no_memory_reply(), Action::none};
  }
  return {};
}

Step Session::refuse(Reply r) {
  reset_transaction();
  return {std::move(r), Action::none};
}

Step Session::on_queued(std::optional<std::string> queue_id, std::string_view summary,
                        std::string_view failure, bool queued, std::string_view link) {
  reset_transaction();
  if (!queue_id)
    return {reply(451, "4.3.0", "temporary failure, try again later: " + std::string(failure)),
            Action::none};
  std::string text = (queued ? "Ok: queued as " : "Ok: accepted as ") + *queue_id +
                     "; your IP is " + peer_ip_.to_string();
  const std::string tail = link.empty() ? "" : "; " + std::string(link);
  // RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with its CRLF; "250 2.0.0 " and
  // the CRLF take 12. Only the summary (a PTR name can be 253 octets) gives way.
  constexpr std::size_t kMaxText = 512 - 12;
  if (!summary.empty()) {
    const std::size_t fixed = text.size() + 3 + tail.size();  // " (" and ")"
    std::string s(summary);
    if (fixed + s.size() > kMaxText) {
      const std::size_t room = kMaxText > fixed + 3 ? kMaxText - fixed - 3 : 0;
      s = s.substr(0, room) + "...";
    }
    text += " (" + s + ")";
  }
  text += tail;
  return {reply(250, "2.0.0", std::move(text)), Action::none};
}

void Session::on_tls_started(TlsInfo info) {
  tls_ = std::move(info);
  envelope_ = Envelope{};
  state_ = State::fresh;
}

}  // namespace ipconfirm::smtp

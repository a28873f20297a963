// The SMTP server session as a pure state machine (RFC 5321 §4.1, §4.3.2).
//
// The Asio connection (smtp/server.cpp) reads bytes, cuts them into command lines with
// LineReader and message data with DataDecoder, and hands each event to Session, which returns
// the reply to send and what the connection must do next. Session never touches a socket, a
// clock or the disk: it is tested line by line without any I/O (tests/unit/session_test.cpp).
//
// What it accepts: RCPT only for ipconfirm@ and postmaster@ at the configured domains, and bare
// <postmaster> (RFC 5321 §4.5.1), never a relay; MAIL
// FROM:<> is accepted (bounces must be, RFC 5321 §4.5.5) but nothing is replied to it. Every
// reply carries an RFC 3463 enhanced status code except the greeting and EHLO/HELO, as RFC 2034
// asks. The connecting IP is in the EHLO/HELO reply and in the 250 after DATA.
//
// What it does not do: TLS, PROXY protocol, time limits and connection counting belong to the
// connection; deciding whether a reply mail is sent belongs to the responder's policy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip_address.hpp"
#include "smtp/reply.hpp"

namespace ipconfirm::smtp {

struct SessionConfig {
  std::string hostname;
  std::vector<std::string> domains;  // lower case
  std::size_t max_message_size = 10 * 1024 * 1024;
  std::size_t max_recipients = 10;
  std::size_t max_errors = 10;
  std::size_t max_commands = 200;
  bool starttls_available = false;
};

struct TlsInfo {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_256_GCM_SHA384"
};

// What the session learnt about one message; handed to the responder at the final dot.
struct Envelope {
  std::string helo;
  bool esmtp = false;
  std::string mail_from;                  // "" for the null path <>
  std::vector<std::string> rcpt_to;       // as accepted, lower-cased domain, no duplicates
  std::vector<std::string> rcpt_domains;  // the configured domain of each rcpt_to
  bool smtputf8 = false;
  bool eightbit = false;
};

enum class Action {
  none,        // send the reply (if any) and read the next command
  close,       // send the reply and close the connection
  start_data,  // send the 354 and read message data
  start_tls,   // send the 220 and start the TLS handshake; then call on_tls_started
  queue,       // the message is complete: analyse and queue, then call on_queued
};

struct Step {
  Reply reply;
  Action action = Action::none;
};

// Why the byte stream could not be cut into a command line.
enum class LineFault { too_long, unterminated, bare_lf, bare_cr, nul };
// How a message's data ended. no_memory: the server's budget for message data ran out while
// it was read (smtp/message_memory.hpp).
enum class DataFault { none, too_big, line_too_long, bad_line_ending, no_memory };

// 451 4.3.2: the server holds too much message data just now (a message refused for it, or a
// DATA while the budget is spent).
Reply no_memory_reply();

class Session {
 public:
  Session(SessionConfig config, IpAddress peer_ip, std::uint16_t peer_port);

  // The 220 greeting.
  Reply greeting() const;
  // The 421 for a client over a connection limit, greeted and turned away.
  Reply busy() const;

  // One command line, without its CRLF.
  Step on_line(std::string_view line);
  // A command line that could not be read (LineReader's verdict).
  Step on_line_fault(LineFault fault);
  // The end of a message's data: `message` is the unstuffed message.
  Step on_data_end(DataFault fault);
  // The responder's answer to Action::queue: queue_id on success, or a temporary failure
  // (disk full, queue full) with its reason. `summary` is a short text for the 250 line
  // (e.g. "PTR mail.example.net, confirmed"); it must be safe (no CR/LF). `queued` false: the
  // message was accepted but nothing went into the queue (no reply mail), so the 250 says
  // "accepted as <id>" instead of "queued as <id>". `link`, when given, ends the 250 line after
  // "; " (e.g. "report https://ipconfirm.example.org/r/TOKEN"): the reply line stays within
  // RFC 5321's 512 bytes by shortening the summary ("...") if it must, never the queue id, the
  // IP or the link.
  Step on_queued(std::optional<std::string> queue_id, std::string_view summary,
                 std::string_view failure, bool queued = true, std::string_view link = {});
  // The responder refused the DATA (instead of the 354) or the message (instead of its 250)
  // with its own reply, e.g. a rate limit or a full mailbox: answer `r`; the transaction is
  // reset.
  Step refuse(Reply r);
  // The TLS handshake finished: the state resets to "no EHLO yet" (RFC 3207 §4.2).
  void on_tls_started(TlsInfo info);
  // The command or data timer fired.
  Reply on_timeout() const;

  const Envelope& envelope() const { return envelope_; }
  const std::optional<TlsInfo>& tls() const { return tls_; }
  const IpAddress& peer_ip() const { return peer_ip_; }
  std::uint16_t peer_port() const { return peer_port_; }
  bool in_data() const { return state_ == State::data; }
  // Transactions begun so far: one more each time a MAIL is accepted.
  std::uint64_t transactions() const { return transactions_; }
  // Between an accepted MAIL and the end of its transaction (a reply to the message, RSET,
  // EHLO, a refused DATA).
  bool in_transaction() const {
    return state_ == State::mail || state_ == State::rcpt || state_ == State::data ||
           state_ == State::queueing;
  }
  std::size_t message_limit() const { return config_.max_message_size; }

 private:
  enum class State { fresh, ready, mail, rcpt, data, queueing, closed };

  Step do_helo(std::string_view arg, bool extended);
  Step do_mail(std::string_view arg);
  Step do_rcpt(std::string_view arg);
  Step do_data(std::string_view arg);
  Step error(Reply r);
  void reset_transaction();
  std::string peer_text() const;

  SessionConfig config_;
  IpAddress peer_ip_;
  std::uint16_t peer_port_;
  State state_ = State::fresh;
  Envelope envelope_;
  std::optional<TlsInfo> tls_;
  std::size_t errors_ = 0;
  std::size_t commands_ = 0;
  std::uint64_t transactions_ = 0;
};

}  // namespace ipconfirm::smtp

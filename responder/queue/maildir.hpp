// Delivery of one message into a Maildir (https://cr.yp.to/proto/maildir.html), for keeping a
// copy of replies or for local delivery without an outbound relay.
//
// The message goes to dir/tmp/<unique>, is fsynced, renamed to dir/new/<unique>, and dir/new/
// is fsynced: a reader never sees a partial file, and the message survives a crash once the
// call returns none. <unique> is "<secs>.M<usecs>P<pid>Q<counter>.<host>" as qmail writes it,
// with '/' in the host name written as "\057" and ':' as "\072" (as the Maildir page says);
// other bytes outside printable ASCII become "\ooo" too, so the name stays one path component.
//
// Line endings: the message is written byte for byte as given, which in ipconfirm means CRLF
// (the reply is composed in wire form). The Unix Maildir convention is LF, and qmail-local
// converts; but Dovecot, Courier, mutt and most readers accept CRLF files, and writing the exact
// bytes keeps the copy identical to what was (or would be) sent over SMTP. A caller that wants
// LF converts before calling.
//
// What this file does not do: no locking (Maildir needs none), no quota, no cur/ flags, no
// ",S=<size>" name suffix. Thread-safe: the delivery counter is atomic.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "responder/queue/spool.hpp"  // SpoolError

namespace ipconfirm::responder {

// Creates dir (with its parents) and dir/{tmp,new,cur} (mode 0700) if needed and delivers `message`
// into new/. Returns none once the file and its directory entry are on stable storage, no_space on
// ENOSPC or EDQUOT, io on any other failure (nothing is left in tmp/ then). `hostname` empty means
// "localhost". On success `*final_path` (when given) is the path of the file in new/.
SpoolError deliver_to_maildir(const std::filesystem::path& dir, std::string_view message,
                              std::string_view hostname, std::string* final_path = nullptr);

// The host part of a unique name: '/' -> "\057", ':' -> "\072", and any byte that is not
// printable ASCII (or is a backslash) -> "\ooo" octal; cut to 160 bytes.
std::string maildir_safe_host(std::string_view hostname);

}  // namespace ipconfirm::responder

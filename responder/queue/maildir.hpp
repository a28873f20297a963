// Delivery of one message into a Maildir (https://cr.yp.to/proto/maildir.html), for keeping a
// copy of replies, for local delivery without an outbound relay, and for postmaster mail.
//
// The message goes to dir/tmp/<unique>, is fsynced, renamed to dir/new/<unique>, and dir/new/
// is fsynced: a reader never sees a partial file, and the message survives a crash once the
// call returns none. <unique> is "<secs>.M<usecs>P<pid>Q<counter>.<host>" as qmail writes it,
// with '/' in the host name written as "\057" and ':' as "\072" (as the Maildir page says);
// other bytes outside printable ASCII become "\ooo" too, so the name stays one path component.
//
// Links: the Maildir folder and its tmp/, new/ and cur/ are opened with O_NOFOLLOW and
// O_DIRECTORY, and the file is created (O_EXCL|O_NOFOLLOW) and renamed relative to those
// descriptors (openat, renameat): a symbolic link planted as the Maildir or one of its folders
// makes the delivery fail instead of writing where the link points. Folders above the Maildir
// are followed as configured.
//
// Line endings: the message is given in wire form (CRLF, as composed or received) and written
// with LF line ends, the Maildir convention (as qmail-local and Postfix's virtual do); only CR LF
// pairs change, any other CR stays.
//
// What this file does not do: no locking (Maildir needs none), no cur/ flags, no ",S=<size>"
// name suffix. Limits (MaildirLimits) are checked by counting new/ and cur/ before each
// delivery, so they hold against this writer, not against another one writing at the same
// moment. Thread-safe: the delivery counter is atomic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "responder/queue/spool.hpp"  // SpoolError

namespace ipconfirm::responder {

// How much a Maildir may hold, counting the regular files in new/ and cur/ (0: no limit).
struct MaildirLimits {
  std::size_t max_messages = 0;
  std::uint64_t max_bytes = 0;  // the message being delivered included
};

// Creates dir (with its parents) and dir/{tmp,new,cur} (mode 0700) if needed and delivers `message`
// into new/. Returns none once the file and its directory entry are on stable storage, no_space on
// ENOSPC or EDQUOT, full when `limits` would be exceeded (nothing is written then), io on any
// other failure, a symbolic link in the way included (nothing is left in tmp/ then). `hostname`
// empty means "localhost". On success `*final_path` (when given) is the path of the file in new/.
SpoolError deliver_to_maildir(const std::filesystem::path& dir, std::string_view message,
                              std::string_view hostname, std::string* final_path = nullptr,
                              const MaildirLimits& limits = {});

// The host part of a unique name: '/' -> "\057", ':' -> "\072", and any byte that is not
// printable ASCII (or is a backslash) -> "\ooo" octal; cut to 160 bytes.
std::string maildir_safe_host(std::string_view hostname);

}  // namespace ipconfirm::responder

// Who `ipconfirm serve` runs as: the [service] user and group of the config.
//
// Started as root with a user set, the server binds its listeners and reads its TLS key as
// root, then drops to that user for good, before it opens the spool or writes any file:
//   1. setgroups() to the user's groups (getgrouplist(3): so a key readable by a group such as
//      ssl-cert stays readable at reload), setresgid() to the group, setresuid() to the user,
//      each one checked;
//   2. of root's capabilities it keeps only CAP_NET_BIND_SERVICE (permitted and effective, not
//      inheritable), so that a reload can still bind a port below 1024, as a systemd unit with
//      AmbientCapabilities=CAP_NET_BIND_SERVICE allows;
//   3. sets no_new_privs (prctl(2)): nothing it could ever run gains privileges;
//   4. verifies: every real, effective and saved id is the target's, and setuid(0) and
//      setgid(0) fail. Any failure is fatal (the caller exits).
// What stays reachable after the drop is the user's business: the spool and Maildir folders
// must belong to it (or their parent be writable by it, to create them), and the TLS files,
// templates and config must be readable by it for a reload to pick them up.
//
// Started as any other user (systemd's User=), nothing changes: the configured user must be
// the one we run as. Started as root without a user, serve refuses to start: a mail service
// that parses hostile input as root is a mistake nobody should make by leaving a key out.
//
// plan_privileges() is the decision (pure); lookup_account() asks NSS; drop_privileges() does
// the system calls.
#pragma once

#include <sys/types.h>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace ipconfirm::responder {

struct Account {
  std::string user, group;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, gid among them
};

// Looks up [service] user (and group, or the user's primary group) and the user's groups.
// nullopt with `error` set when the user or group does not exist.
std::optional<Account> lookup_account(const config::Service& service, std::string& error);

enum class PrivilegeAction {
  keep,    // run as we are
  drop,    // root: become the account after binding
  refuse,  // do not serve; `reason` says why
};

struct PrivilegePlan {
  PrivilegeAction action = PrivilegeAction::refuse;
  std::string reason;
};

// The decision, from our effective ids, the config and the looked-up account (nullptr when
// the config names no user or the lookup failed, then `lookup_error` says why).
PrivilegePlan plan_privileges(uid_t euid, gid_t egid, const config::Service& service,
                              const Account* account, const std::string& lookup_error);

// Steps 1-4 above. False with `error` naming the failing step; the process must then exit.
bool drop_privileges(const Account& account, std::string& error);

}  // namespace ipconfirm::responder

#include "responder/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ipconfirm::responder {

namespace {

std::string sys_error(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

}  // namespace

std::optional<Account> lookup_account(const config::Service& service, std::string& error) {
  Account a;
  a.user = service.user;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* pw_found = nullptr;
  int r = getpwnam_r(service.user.c_str(), &pw, buf.data(), buf.size(), &pw_found);
  if (r != 0 || !pw_found) {
    error = "[service] user '" + service.user +
            "': " + (r != 0 ? std::string(std::strerror(r)) : "no such user");
    return std::nullopt;
  }
  a.uid = pw.pw_uid;
  a.gid = pw.pw_gid;
  if (!service.group.empty()) {
    std::vector<char> gbuf(16384);
    group gr{};
    group* gr_found = nullptr;
    r = getgrnam_r(service.group.c_str(), &gr, gbuf.data(), gbuf.size(), &gr_found);
    if (r != 0 || !gr_found) {
      error = "[service] group '" + service.group +
              "': " + (r != 0 ? std::string(std::strerror(r)) : "no such group");
      return std::nullopt;
    }
    a.gid = gr.gr_gid;
    a.group = service.group;
  } else {
    std::vector<char> gbuf(16384);
    group gr{};
    group* gr_found = nullptr;
    if (getgrgid_r(a.gid, &gr, gbuf.data(), gbuf.size(), &gr_found) == 0 && gr_found)
      a.group = gr.gr_name;
    else
      a.group = std::to_string(a.gid);
  }
  // The user's supplementary groups, with the chosen group among them.
  int n = 32;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  while (getgrouplist(pw.pw_name, a.gid, groups.data(), &n) < 0) {
    if (n > 65536) {
      error = "[service] user '" + service.user + "': too many groups";
      return std::nullopt;
    }
    groups.resize(static_cast<std::size_t>(n));
  }
  groups.resize(static_cast<std::size_t>(n));
  // With an explicit group, the user's primary group is not kept unless the user is listed in
  // it: the group the config names replaces it.
  if (!service.group.empty() && pw.pw_gid != a.gid) {
    bool member = false;
    std::vector<char> gbuf(16384);
    group gr{};
    group* gr_found = nullptr;
    if (getgrgid_r(pw.pw_gid, &gr, gbuf.data(), gbuf.size(), &gr_found) == 0 && gr_found)
      for (char** m = gr.gr_mem; m && *m; ++m) member = member || service.user == *m;
    if (!member) groups.erase(std::remove(groups.begin(), groups.end(), pw.pw_gid), groups.end());
  }
  if (std::find(groups.begin(), groups.end(), a.gid) == groups.end()) groups.push_back(a.gid);
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  a.groups = std::move(groups);
  return a;
}

PrivilegePlan plan_privileges(uid_t euid, gid_t egid, const config::Service& service,
                              const Account* account, const std::string& lookup_error) {
  if (service.user.empty()) {
    if (euid == 0)
      return {PrivilegeAction::refuse,
              "started as root, but [service] user is not set: set it to the account to run as "
              "(e.g. user = \"_ipconfirm\"), which must own the spool, or to \"root\" to stay "
              "root (not recommended)"};
    return {PrivilegeAction::keep, ""};
  }
  if (!account) return {PrivilegeAction::refuse, lookup_error};
  if (euid == 0) {
    if (account->uid == 0) return {PrivilegeAction::keep, "stays root, as [service] user says"};
    return {PrivilegeAction::drop, ""};
  }
  if (account->uid == euid && account->gid == egid) return {PrivilegeAction::keep, ""};
  return {PrivilegeAction::refuse, "[service] user is '" + account->user + "' (uid " +
                                       std::to_string(account->uid) + ", gid " +
                                       std::to_string(account->gid) + "), but we run as uid " +
                                       std::to_string(euid) + ", gid " + std::to_string(egid) +
                                       ": start ipconfirm as root or as that user and group"};
}

bool drop_privileges(const Account& a, std::string& error) {
  // While still root: take every capability but CAP_NET_BIND_SERVICE out of the bounding set
  // and the ambient set, and keep the permitted set across the change of uid.
  for (cap_value_t c = 0; cap_valid(c); ++c) {
    if (c == CAP_NET_BIND_SERVICE) continue;
    if (cap_drop_bound(c) != 0 && errno != EINVAL) {
      error = sys_error("dropping the capability bounding set");
      return false;
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    error = sys_error("clearing the ambient capabilities");
    return false;
  }
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
    error = sys_error("prctl(PR_SET_KEEPCAPS)");
    return false;
  }
  if (setgroups(a.groups.size(), a.groups.data()) != 0) {
    error = sys_error("setgroups");
    return false;
  }
  if (setresgid(a.gid, a.gid, a.gid) != 0) {
    error = sys_error("setresgid");
    return false;
  }
  if (setresuid(a.uid, a.uid, a.uid) != 0) {
    error = sys_error("setresuid");
    return false;
  }
  prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  cap_t caps = cap_init();
  const cap_value_t keep[] = {CAP_NET_BIND_SERVICE};
  bool ok = caps && cap_set_flag(caps, CAP_PERMITTED, 1, keep, CAP_SET) == 0 &&
            cap_set_flag(caps, CAP_EFFECTIVE, 1, keep, CAP_SET) == 0 && cap_set_proc(caps) == 0;
  if (!ok) error = sys_error("setting the capabilities to CAP_NET_BIND_SERVICE");
  if (caps) cap_free(caps);
  if (!ok) return false;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    error = sys_error("prctl(PR_SET_NO_NEW_PRIVS)");
    return false;
  }

  // Verify, rather than trust, that the change took and cannot be undone.
  uid_t ru = 0, eu = 0, su = 0;
  gid_t rg = 0, eg = 0, sg = 0;
  if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != a.uid ||
      eu != a.uid || su != a.uid || rg != a.gid || eg != a.gid || sg != a.gid) {
    error = "the user and group ids did not change as asked";
    return false;
  }
  std::vector<gid_t> now(static_cast<std::size_t>(std::max(getgroups(0, nullptr), 0)));
  if (getgroups(static_cast<int>(now.size()), now.data()) < 0) {
    error = sys_error("getgroups");
    return false;
  }
  std::sort(now.begin(), now.end());
  if (now != a.groups) {
    error = "the supplementary groups did not change as asked";
    return false;
  }
  if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 || setegid(0) == 0) {
    error = "root could be regained after dropping privileges";
    return false;
  }
  return true;
}

}  // namespace ipconfirm::responder

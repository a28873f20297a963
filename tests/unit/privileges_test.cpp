// Who `serve` runs as: the decision (the system calls are tested in tests/io/privileges_test).
#include <doctest/doctest.h>

#include "responder/privileges.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;

namespace {
config::Service service(std::string user, std::string group = "") {
  return config::Service{std::move(user), std::move(group)};
}
Account account(std::string user, uid_t uid, gid_t gid) {
  Account a;
  a.user = std::move(user);
  a.group = a.user;
  a.uid = uid;
  a.gid = gid;
  a.groups = {gid};
  return a;
}
}  // namespace

TEST_CASE("privileges: root without [service] user refuses, and says what to set") {
  PrivilegePlan p = plan_privileges(0, 0, service(""), nullptr, "");
  CHECK(p.action == PrivilegeAction::refuse);
  CHECK(p.reason.find("started as root") != std::string::npos);
  CHECK(p.reason.find("[service] user") != std::string::npos);
}

TEST_CASE("privileges: root with a user drops; with user root keeps root") {
  Account a = account("_ipconfirm", 101, 102);
  CHECK(plan_privileges(0, 0, service("_ipconfirm"), &a, "").action == PrivilegeAction::drop);
  Account root = account("root", 0, 0);
  CHECK(plan_privileges(0, 0, service("root"), &root, "").action == PrivilegeAction::keep);
}

TEST_CASE("privileges: a user that does not exist refuses with the lookup's error") {
  PrivilegePlan p =
      plan_privileges(0, 0, service("ghost"), nullptr, "[service] user 'ghost': no such user");
  CHECK(p.action == PrivilegeAction::refuse);
  CHECK(p.reason == "[service] user 'ghost': no such user");
}

TEST_CASE("privileges: not root, the configured user must be the one we run as") {
  Account a = account("_ipconfirm", 101, 102);
  // systemd's User=/Group= started us as that user already.
  CHECK(plan_privileges(101, 102, service("_ipconfirm"), &a, "").action == PrivilegeAction::keep);
  // Another user cannot switch: refuse rather than run with the wrong identity.
  PrivilegePlan other = plan_privileges(1000, 1000, service("_ipconfirm"), &a, "");
  CHECK(other.action == PrivilegeAction::refuse);
  CHECK(other.reason.find("uid 1000") != std::string::npos);
  CHECK(plan_privileges(101, 5, service("_ipconfirm"), &a, "").action == PrivilegeAction::refuse);
  // No user configured: run as we are.
  CHECK(plan_privileges(1000, 1000, service(""), nullptr, "").action == PrivilegeAction::keep);
}

#include "responder/reload.hpp"

namespace ipconfirm::responder {

ReloadPlan plan_reload(const config::Config& running, config::Config& loaded) {
  ReloadPlan plan;
  if (loaded.queue.dir != running.queue.dir) {
    plan.kept.push_back({"queue.dir", running.queue.dir, loaded.queue.dir});
    loaded.queue.dir = running.queue.dir;
  }
  if (loaded.queue.max_entries != running.queue.max_entries) {
    plan.kept.push_back({"queue.max_entries", std::to_string(running.queue.max_entries),
                         std::to_string(loaded.queue.max_entries)});
    loaded.queue.max_entries = running.queue.max_entries;
  }
  // Who the process runs as was settled at start, before the privilege drop.
  if (loaded.service.user != running.service.user) {
    plan.kept.push_back({"service.user", running.service.user, loaded.service.user});
    loaded.service.user = running.service.user;
  }
  if (loaded.service.group != running.service.group) {
    plan.kept.push_back({"service.group", running.service.group, loaded.service.group});
    loaded.service.group = running.service.group;
  }
  plan.new_resolver = !(loaded.dns == running.dns);
  plan.new_deliverer = plan.new_resolver || !(loaded.delivery == running.delivery) ||
                       !(loaded.queue == running.queue) || loaded.hostname != running.hostname;
  const auto& a = running.reply;
  const auto& b = loaded.reply;
  plan.new_limiter = a.max_per_recipient_per_hour != b.max_per_recipient_per_hour ||
                     a.max_per_domain_per_hour != b.max_per_domain_per_hour ||
                     a.max_per_ip_per_hour != b.max_per_ip_per_hour ||
                     a.max_per_network_per_hour != b.max_per_network_per_hour ||
                     a.max_per_site_per_hour != b.max_per_site_per_hour ||
                     a.max_total_per_minute != b.max_total_per_minute ||
                     a.rate_limit_entries != b.rate_limit_entries;
  const auto& p = running.postmaster;
  const auto& q = loaded.postmaster;
  plan.new_postmaster_limiter = p.max_per_ip_per_hour != q.max_per_ip_per_hour ||
                                p.max_per_network_per_hour != q.max_per_network_per_hour ||
                                p.max_total_per_minute != q.max_total_per_minute ||
                                a.rate_limit_entries != b.rate_limit_entries;
  return plan;
}

}  // namespace ipconfirm::responder

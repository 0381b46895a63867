#pragma once
// The rates each client is held to (docs/hardening.md, "Rates per client"): its listener's
// ([limits], changed by [listener.rate_limits]), changed by the `rate_limits` of its roles in the
// topics file (docs/topics.md, "Rates of a role"; config::with_overrides says how several roles
// combine). Clients of one listener with the same roles share one rate_limits, so a connection
// holds only a pointer.
//
// Threads: none; one shard's. The entries of one topics file are kept until a client with rights
// from a newer one asks (a reload), then dropped.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "security/rate_limit.hpp"
#include "security/topic_policy.hpp"

namespace firehook::broker {

class client_rates {
public:
  explicit client_rates(const std::vector<config::listener_settings>& listeners);

  // The rates of a client of `listener` with `access` (null: no topics file, the listener's);
  // null when nothing is limited.
  std::shared_ptr<const security::rate_limits> of(std::string_view listener, const security::topic_access* access);

private:
  using shared = std::shared_ptr<const security::rate_limits>;
  static shared share(const config::rate_settings& r);

  std::map<std::string, config::rate_settings, std::less<>> listeners_;
  std::map<std::string, shared, std::less<>> by_listener_; // null: nothing limited
  // By listener and roles with rates ("devices\0gateway\0"), for the topics file policy_.
  std::map<std::string, shared, std::less<>> by_roles_;
  std::shared_ptr<const security::topic_policy> policy_;
  bool policy_has_rates_ = false; // a role of policy_ has rate_limits
};

} // namespace firehook::broker

#include "broker/client_rates.hpp"

#include <algorithm>

namespace firehook::broker {

client_rates::client_rates(const std::vector<config::listener_settings>& listeners) {
  for (const auto& l : listeners) {
    listeners_.emplace(l.name, l.rates);
    by_listener_.emplace(l.name, share(l.rates));
  }
}

client_rates::shared client_rates::share(const config::rate_settings& r) {
  return r.limits_anything() ? std::make_shared<const security::rate_limits>(r) : nullptr;
}

client_rates::shared client_rates::of(std::string_view listener, const security::topic_access* access) {
  const auto base = by_listener_.find(listener);
  if (base == by_listener_.end()) {
    return nullptr; // not a configured listener (tests); nothing to hold it to
  }
  if (access == nullptr || access->policy() == nullptr) {
    return base->second;
  }
  if (access->policy() != policy_.get()) {
    policy_ = access->shared_policy();
    by_roles_.clear();
    const auto& roles = policy_->file().roles;
    policy_has_rates_ = std::any_of(roles.begin(), roles.end(), [](const auto& r) { return !r.rates.empty(); });
  }
  if (!policy_has_rates_) {
    return base->second;
  }
  std::vector<const config::rate_overrides*> overrides;
  std::string key(listener);
  key += '\0';
  for (const auto& name : access->roles()) {
    const config::role_definition* role = policy_->file().find_role(name);
    if (role != nullptr && !role->rates.empty()) {
      overrides.push_back(&role->rates);
      key += name;
      key += '\0';
    }
  }
  if (overrides.empty()) {
    return base->second;
  }
  auto [entry, added] = by_roles_.try_emplace(std::move(key));
  if (added) {
    entry->second = share(config::with_overrides(listeners_.find(listener)->second, overrides));
  }
  return entry->second;
}

} // namespace firehook::broker

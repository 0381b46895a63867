#include "broker/fan_out.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace firehook::broker {

void fan_out(router::match_result& match, const mqtt::message_ptr& m, subscriber_id publisher,
             const std::function<bool(subscriber_id)>& online,
             const std::function<void(subscriber_id, session::delivery&&)>& deliver) {
  auto& subs = match.subscriptions;
  std::sort(subs.begin(), subs.end(), [](const auto& a, const auto& b) { return a.subscriber < b.subscriber; });
  for (std::size_t i = 0; i < subs.size();) {
    const subscriber_id to = subs[i].subscriber;
    bool any = false;
    bool retain_as_published = false;
    mqtt::qos granted = mqtt::qos::at_most_once;
    std::vector<std::uint32_t> ids;
    for (; i < subs.size() && subs[i].subscriber == to; ++i) {
      const auto& e = subs[i];
      if (e.options.no_local && to == publisher) {
        continue; // [MQTT-3.8.3-3]
      }
      any = true;
      granted = std::max(granted, e.options.max_qos);
      retain_as_published = retain_as_published || e.options.retain_as_published;
      if (e.subscription_identifier) {
        ids.push_back(*e.subscription_identifier);
      }
    }
    if (any) {
      deliver(to, session::delivery{m, std::min(m->qos, granted), retain_as_published && m->retain, std::move(ids)});
    }
  }
  // No Local is not allowed on shared subscriptions [MQTT-3.8.3-4], so it is not looked at here.
  for (const router::shared_group* g : match.shared_groups) {
    const auto& e = g->pick([&online](const router::subscription_entry& x) { return online(x.subscriber); });
    std::vector<std::uint32_t> ids;
    if (e.subscription_identifier) {
      ids.push_back(*e.subscription_identifier);
    }
    deliver(e.subscriber, session::delivery{m, std::min(m->qos, e.options.max_qos),
                                            e.options.retain_as_published && m->retain, std::move(ids)});
  }
}

} // namespace firehook::broker

#pragma once
// Who gets a published message, and how: the deliveries a match in the subscription index makes.
// A pure function of the match, the message and the publisher, so the spec's rules of overlapping
// and shared subscriptions are tested here without shards or sockets; the shard then sends each
// delivery where its subscriber lives (shard_route.cpp).
//
//  - One delivery per subscriber, however many of its subscriptions match [MQTT-3.3.4-2]: the
//    highest granted QoS, capped by the message's QoS [MQTT-3.8.4-8]; every matching subscription
//    identifier [MQTT-3.3.4-4], [MQTT-3.3.4-5]; RETAIN as published if any matching subscription
//    asks for it, 0 otherwise [MQTT-3.3.1-12], [MQTT-3.3.1-13].
//  - No Local: a subscription with it does not match its own publisher's messages [MQTT-3.8.3-3].
//  - A shared group delivers to one member, an online one when there is one [MQTT-4.8.2-3].

#include <algorithm>
#include <utility>
#include <vector>

#include "mqtt/message.hpp"
#include "router/subscription_index.hpp"
#include "session/state.hpp"

namespace firehook::broker {

using router::subscriber_id;

// Calls `deliver(subscriber_id, session::delivery&&)` once per delivery. `match` is sorted in place
// (by subscriber). `online(subscriber_id)` tells whether a shared group's member is connected.
// A template, not std::function: it runs for every PUBLISH, and both callables inline.
template <typename Online, typename Deliver>
void fan_out(router::match_result& match, const mqtt::message_ptr& m, subscriber_id publisher, Online&& online,
             Deliver&& deliver) {
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

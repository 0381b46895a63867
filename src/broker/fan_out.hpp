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

#include <functional>

#include "mqtt/message.hpp"
#include "router/subscription_index.hpp"
#include "session/state.hpp"

namespace firehook::broker {

using router::subscriber_id;

// Calls `deliver` once per delivery. `match` is sorted in place (by subscriber). `online` tells
// whether a shared group's member is connected.
void fan_out(router::match_result& match, const mqtt::message_ptr& m, subscriber_id publisher,
             const std::function<bool(subscriber_id)>& online,
             const std::function<void(subscriber_id, session::delivery&&)>& deliver);

} // namespace firehook::broker

#pragma once
// What a session asks its owner (the broker shard) to do. A session never does I/O: each of its
// handlers appends actions, and the shard carries them out in order once the handler returns.

#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <variant>
#include <vector>

#include "base/clock.hpp"
#include "mqtt/message.hpp"
#include "mqtt/packet.hpp"

namespace firehook::session {

// Send a control packet (anything but an outgoing PUBLISH) on the session's connection.
struct send_packet {
  mqtt::packet packet;
};

// Send a PUBLISH: `header` carries everything but the payload (its `payload` is empty), which is
// sent from `message` without a copy (mqtt::encode_publish_header + transport::send_payload).
struct send_publish {
  mqtt::publish header;
  mqtt::message_ptr message;
};

// Close the connection, after the queued bytes when `flush`. The session is already offline
// when this action is read; `reason` is for logs.
struct close_connection {
  std::error_code reason;
  bool flush = true;
};

// Publish an application message (a client's PUBLISH or a will) to every matching subscription,
// and to the retained store when message->retain.
struct route_message {
  mqtt::message_ptr message;
};

// One subscription added or replaced by SUBSCRIBE.
struct subscription_change {
  std::string filter;              // as subscribed, with any "$share/group/" prefix
  mqtt::subscribe_options options; // max_qos is the granted QoS
  std::optional<std::uint32_t> identifier;
  bool existed = false; // it replaced a subscription with the same filter (Retain Handling 1)
};

// Apply `changes` to the subscription index (every replica), then send `ack` and the retained
// messages the changes ask for (session::deliver_retained). The session has already recorded
// the subscriptions in its state. `changes` may be empty (every filter refused).
struct apply_subscriptions {
  std::vector<subscription_change> changes;
  mqtt::suback ack;
};

// Remove `filters` (subscriptions that existed) from the index, then send `ack` (unless
// `acknowledge` is false: subscriptions revoked by the broker, not asked for by the client).
struct apply_unsubscriptions {
  std::vector<std::string> filters;
  mqtt::unsuback ack;
  bool acknowledge = true;
};

// The will was due but the client's rights no longer allow it (a topics reload took them away
// after CONNECT): it is not published. For the log.
struct will_refused {
  std::string topic;
};

// Call session::on_timer() at `at` or soon after. Calling it early is harmless.
struct arm_timer {
  base::time_point at;
};

// The session is over (clean disconnect with expiry 0, expiry passed, discarded by a clean
// start): remove its subscriptions everywhere and forget it. No action follows.
struct session_ended {};

using action = std::variant<send_packet, send_publish, close_connection, route_message, will_refused,
                            apply_subscriptions, apply_unsubscriptions, arm_timer, session_ended>;

} // namespace firehook::session

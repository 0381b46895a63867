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
#include "session/authorizer.hpp"
#include "session/state.hpp"

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
// when this action is read. `reason` (and the packet that caused it, when one did) is for the
// client_disconnected event: normal_disconnection means the client sent DISCONNECT.
struct close_connection {
  std::error_code reason;
  bool flush = true;
  std::optional<mqtt::packet_type> packet;
};

// Publish an application message (a client's PUBLISH or a will) to every matching subscription,
// and to the retained store when message->retain.
struct route_message {
  mqtt::message_ptr message;
  bool will = false;
};

// A PUBLISH the client's rights refused, or its will (`will`: due, but the rights no longer allow
// it, a topics reload having taken them away after CONNECT), for the event that records it.
struct publish_refused {
  std::string topic;
  mqtt::qos qos = mqtt::qos::at_most_once;
  bool retain = false;
  bool will = false;
  authorizer::explanation why;
};

// Deliveries were dropped (session.hpp, queue and drop policy). Sent once until the owner takes
// the counts (session::take_dropped), so a flood of drops costs one action per report.
struct messages_dropped {};

// Backpressure (session.hpp): live QoS 1/2 deliveries took the connected session past its bounds
// (`congested`), or it is back under half of them, or offline (not congested). While congested,
// the owner slows the publishers whose messages reach it.
struct congestion_changed {
  bool congested = false;
};

// What a persistent session keeps across a restart changed (connected, subscriptions, QoS 2
// packet ids awaiting PUBREL, will, expiry): the owner writes its record again. Only sessions
// with a Session Expiry Interval send it.
struct persist_session {};

// The session let go of a delivery that has a durable record (delivery::stored): completed,
// expired, dropped, or no longer permitted.
struct stored_released {
  std::uint64_t seq = 0;
};

// A QoS 2 delivery that has a durable record went in flight under `packet_id`, or (`released`)
// its PUBREC came back and PUBREL was sent, so its message is no longer needed. The owner rewrites
// the record, so that after a restart the broker resends the same PUBLISH (DUP) or the PUBREL
// under the same packet identifier, which the receiver recognises [MQTT-4.3.3-10]: no duplicate.
// It comes before the PUBLISH or PUBREL it is about, which the owner sends only once the record
// is on disk.
struct stored_in_flight {
  std::uint64_t seq = 0;
  std::uint16_t packet_id = 0;
  bool released = false;
  delivery what; // its message is null when released
};

// One subscription added or replaced by SUBSCRIBE.
struct subscription_change {
  std::string filter;              // as subscribed, with any "$share/group/" prefix
  mqtt::subscribe_options options; // max_qos is the granted QoS
  std::optional<std::uint32_t> identifier;
  bool existed = false; // it replaced a subscription with the same filter (Retain Handling 1)
};

// How one SUBSCRIBE filter was decided, for the event that records it: `code` is the granted QoS
// or the refusal's reason code (as 5.0 says it).
struct subscribe_decision {
  std::string filter;
  mqtt::reason_code code = mqtt::reason_code::success;
  authorizer::explanation why;
};

// Apply `changes` to the subscription index (every replica), then send `ack` and the retained
// messages the changes ask for (session::deliver_retained). The session has already recorded
// the subscriptions in its state. `changes` may be empty (every filter refused).
struct apply_subscriptions {
  std::vector<subscription_change> changes;
  mqtt::suback ack;
  std::vector<subscribe_decision> decisions; // one per filter of the SUBSCRIBE, in its order
};

// Remove `filters` (subscriptions that existed) from the index, then send `ack` (unless
// `acknowledge` is false: subscriptions revoked by the broker, not asked for by the client).
struct apply_unsubscriptions {
  std::vector<std::string> filters;
  mqtt::unsuback ack;
  bool acknowledge = true;
};

// Call session::on_timer() at `at` or soon after. Calling it early is harmless.
struct arm_timer {
  base::time_point at;
};

// The session is over (clean disconnect with expiry 0, expiry passed, discarded by a clean
// start): remove its subscriptions everywhere and forget it. No action follows.
struct session_ended {};

using action = std::variant<send_packet, send_publish, close_connection, route_message, publish_refused,
                            messages_dropped, congestion_changed, persist_session, stored_released,
                            stored_in_flight, apply_subscriptions, apply_unsubscriptions, arm_timer, session_ended>;

} // namespace firehook::session

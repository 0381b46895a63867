#pragma once
// An application message as the broker routes it: what a PUBLISH (or a will) carried, after topic
// alias resolution. Shared, immutable, between every session it is delivered to, so the topic and
// payload are stored once however many subscribers receive them.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "mqtt/packet.hpp"

namespace firehook::mqtt {

struct message {
  std::string topic;
  std::string payload;
  mqtt::qos qos = qos::at_most_once;
  bool retain = false;
  // The 5.0 properties that travel with the message: payload format, content type, response
  // topic, correlation data, user properties. Topic alias, subscription identifiers and
  // message expiry are per delivery and are not kept here.
  properties props;
  // When the message expires (from Message Expiry Interval); nullopt: never.
  std::optional<std::chrono::steady_clock::time_point> expires_at;
  // Client id of the publisher ("" for the broker's own messages), for No Local.
  std::string origin_client_id;
};

using message_ptr = std::shared_ptr<const message>;

// The memory a message holds, in bytes: the object itself (about 0.8 KB, most of it the property
// slots) and every string it owns. What the broker's byte bounds count (retained store, session
// queues), so that many small messages cannot hide behind a small payload total.
std::size_t footprint(const message& m);

} // namespace firehook::mqtt

#pragma once
// What survives a connection: the MQTT session state of MQTT 5.0 section 4.1 (subscriptions,
// QoS 1/2 messages sent and not completed, messages waiting to be sent, QoS 2 messages received
// and not released). Plain values, movable: on a session takeover across shards the whole
// `state` travels to the new connection's shard.
//
// Thread safety: none; a state is used by one shard thread at a time.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/container/deque.hpp>

#include "mqtt/message.hpp"
#include "mqtt/packet.hpp"
#include "session/authorizer.hpp"

namespace firehook::session {

// One message on its way to one session. The message itself is shared, never copied.
struct delivery {
  mqtt::message_ptr message;
  mqtt::qos qos = mqtt::qos::at_most_once;     // already min(message QoS, granted QoS) [MQTT-3.8.4-8]
  bool retain = false;                         // the RETAIN flag to send [MQTT-3.3.1-8], [MQTT-3.3.1-9]
  std::vector<std::uint32_t> subscription_ids; // 5.0: of every matching subscription [MQTT-3.3.4-4]
  // Its record in the durable store (the broker's sequence number), 0 when it has none. The
  // session says when it lets go of it (stored_released), so that the record goes too.
  std::uint64_t stored = 0;
};

struct stored_subscription {
  mqtt::subscribe_options options; // max_qos is the granted QoS
  std::optional<std::uint32_t> identifier;
};

// A QoS 1/2 PUBLISH sent and not yet completed. Its packet identifier is not reused until then
// [MQTT-2.2.1-3].
struct inflight_message {
  delivery what;
  bool released = false;   // QoS 2: PUBREC received, PUBREL sent, waiting for PUBCOMP
  std::uint64_t order = 0; // send order, to resend in the original order [MQTT-4.6.0-1]
  std::uint64_t bytes = 0; // counted in state::inflight_bytes; 0 once released (message dropped)
};

// The memory a delivery holds while it waits in a session: its message (mqtt::footprint, shared
// with other subscribers but counted for each, so that the bound holds whoever else lets go).
std::uint64_t footprint(const delivery& d);

struct state {
  std::string client_id;
  // By topic filter as subscribed (with any "$share/group/" prefix).
  std::map<std::string, stored_subscription, std::less<>> subscriptions;
  std::unordered_map<std::uint16_t, inflight_message> inflight; // by packet identifier
  // QoS 1/2 messages waiting for the inflight window or for the client to reconnect, oldest
  // first. Bounded by limits::max_queued_messages and max_queued_bytes. Boost's deque allocates
  // nothing while empty, which most queues are; libstdc++'s std::deque allocates about 0.6 KB
  // even then.
  boost::container::deque<delivery> queue;
  std::uint64_t queued_bytes = 0;   // footprint() of `queue`
  std::uint64_t inflight_bytes = 0; // footprint() of the messages `inflight` still holds
  // QoS 2 packet identifiers received and not yet released by PUBREL: a PUBLISH with one of them
  // is a duplicate and is not routed again [MQTT-4.3.3-9].
  std::unordered_set<std::uint16_t> awaiting_pubrel;
  std::uint16_t last_packet_id = 0;
  std::uint64_t next_order = 0;
  // Seconds, already capped by limits::max_session_expiry. 0xFFFFFFFF: never.
  std::uint32_t expiry_interval = 0;
  // Whether other shards may know this session (it subscribed at least once).
  bool ever_subscribed = false;
  // Number of "$share/..." entries in `subscriptions`.
  std::size_t shared_subscriptions = 0;
  // What the client may publish, subscribe to and receive; null: every topic (no topics file).
  // Kept while offline, so deliveries queued for the session are checked too.
  std::shared_ptr<const authorizer> rights;
};

} // namespace firehook::session

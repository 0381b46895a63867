#pragma once
// How the broker's durable state is written into the store (store/batch.hpp records) and read
// back: a message, a delivery waiting in a session, a session. docs/store.md lists what is kept.
//
// Binary, versioned by a leading format byte; a message is kept as the MQTT 5.0 PUBLISH packet that
// carries it (the codec's own encoding of topic, payload, QoS, retain and properties) behind the
// fields a PUBLISH has no room for. Expiry is kept as wall-clock time, so that the time a broker
// was down counts: a message that expired meanwhile is not restored.
//
// Decoding never throws: a record that does not decode is reported (nullopt) and left out.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.hpp"
#include "mqtt/message.hpp"
#include "mqtt/packet.hpp"
#include "security/authenticator.hpp"
#include "session/state.hpp"

namespace firehook::broker::persist {

// Now, on both clocks: the broker's (steady) and the wall clock, to carry expiry across restarts.
struct instant {
  base::time_point steady;
  std::chrono::system_clock::time_point wall;
};

std::string encode_message(const mqtt::message& m, const instant& now);
// nullopt: damaged, or expired by `now`.
std::optional<mqtt::message> decode_message(std::string_view blob, const instant& now);

// A QoS 1/2 delivery waiting in (or in flight to) a session.
std::string encode_delivery(const session::delivery& d, const instant& now);
// The same, sent under `packet_id` (QoS 2); `released`: PUBREL was sent, and only the packet
// identifier is kept, not the message.
std::string encode_in_flight(const session::delivery& d, std::uint16_t packet_id, bool released,
                             const instant& now);
struct stored_delivery {
  session::delivery what; // its message is null when released
  std::optional<std::uint16_t> packet_id; // in flight under it
  bool released = false;
};
// nullopt: damaged, or its message expired by `now` (a released one never expires).
std::optional<stored_delivery> decode_delivery(std::string_view blob, const instant& now);

// What a persistent session keeps besides its messages.
struct session_record {
  security::identity owner; // without its certificate: name, method, roles, attributes, claims
  std::uint32_t expiry_interval = 0;
  std::map<std::string, session::stored_subscription, std::less<>> subscriptions;
  std::vector<std::uint16_t> awaiting_pubrel;
  std::optional<mqtt::will> will; // of the connection that was last connected
  std::uint32_t will_delay = 0;
};

std::string encode_session(const session_record& r);
std::optional<session_record> decode_session(std::string_view blob);

} // namespace firehook::broker::persist

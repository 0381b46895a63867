#pragma once
// What a session enforces and advertises. Plain values, copied into every session; the session
// itself knows nothing of configuration files.
//
// The values that come from the configuration's [limits] have the same name here and in
// config::limit_settings, and FIREHOOK_SESSION_LIMITS lists them: from_config() is generated from
// that list, so a new session limit is its field in each struct and one name in the list (a type
// that differs between the two is a compile error, not a silent narrowing).

#include <chrono>
#include <cstdint>

#include "mqtt/packet.hpp"

namespace firehook::config {
struct limit_settings;
}

#define FIREHOOK_SESSION_LIMITS(X)                                                                           \
  X(max_packet_size)                                                                                         \
  X(max_inflight)                                                                                            \
  X(max_queued_messages)                                                                                     \
  X(max_queued_bytes)                                                                                        \
  X(slow_subscriber_timeout)                                                                                 \
  X(queue_overflow)                                                                                          \
  X(max_subscriptions_per_client)                                                                            \
  X(max_topic_levels)                                                                                        \
  X(max_topic_length)                                                                                        \
  X(max_client_id_length)                                                                                    \
  X(max_keep_alive)                                                                                          \
  X(max_session_expiry)                                                                                      \
  X(topic_alias_maximum)                                                                                     \
  X(max_qos)                                                                                                 \
  X(retain_available)                                                                                        \
  X(max_message_expiry)

namespace firehook::session {

// What an offline session's full queue gives up for a new QoS 1/2 message.
enum class overflow_policy : std::uint8_t { drop_newest, drop_oldest };

struct limits {
  // Largest packet the broker accepts; advertised as CONNACK Maximum Packet Size (5.0). The
  // decoder enforces it on input (net sets the decode limits).
  std::uint32_t max_packet_size = 268'435'455;
  // Both directions of the QoS 1/2 window: CONNACK Receive Maximum (inbound, [MQTT-3.3.4-9]) and
  // the cap on unacknowledged QoS 1/2 PUBLISH sent to one client, together with the client's own
  // Receive Maximum [MQTT-3.3.4-7]. At least 1.
  std::uint16_t max_inflight = 65'535;
  // Per-session queue of QoS 1/2 messages waiting for the inflight window or for the client to
  // come back. 0 messages: nothing is queued.
  std::uint32_t max_queued_messages = 1000;
  std::uint64_t max_queued_bytes = 16'777'216;
  // Backpressure (session.hpp): a connected session over its bounds that acknowledges nothing for
  // this long is disconnected (5.0: DISCONNECT 0x97 Quota exceeded).
  std::chrono::seconds slow_subscriber_timeout{30};
  overflow_policy queue_overflow = overflow_policy::drop_newest;
  std::uint32_t max_subscriptions_per_client = 1000;
  std::uint16_t max_topic_levels = 32;
  std::uint16_t max_topic_length = 4096;
  std::uint16_t max_client_id_length = 128;
  // Seconds; 0 = no cap. A 5.0 client asking for more (or for 0) gets Server Keep Alive.
  std::uint16_t max_keep_alive = 0;
  // Seconds. Session Expiry Intervals above it are lowered to it (and CONNACK says so); a 3.1.1
  // session with clean session = 0, which never expires by the spec, also lasts this long.
  std::uint32_t max_session_expiry = 0xFFFF'FFFF;
  // Inbound aliases accepted (CONNACK Topic Alias Maximum); outbound aliases used are at most
  // min(this, the client's Topic Alias Maximum). 0: no aliases either way.
  std::uint16_t topic_alias_maximum = 0;
  mqtt::qos max_qos = mqtt::qos::exactly_once;
  bool retain_available = true;
  // Seconds; 0 = no cap. Lowers the Message Expiry Interval of incoming messages that have one.
  std::uint32_t max_message_expiry = 0;
  // A PUBLISH the client has no right to: false = 5.0 PUBACK/PUBREC 0x87, 3.1/3.1.1 acknowledged
  // and dropped; true = the connection ends (5.0: DISCONNECT 0x87).
  bool disconnect_on_denied_publish = false; // from [authorization] on_denied_publish, not [limits]
};

// The FIREHOOK_SESSION_LIMITS of `l`; every other field keeps its default.
limits from_config(const config::limit_settings& l);

} // namespace firehook::session

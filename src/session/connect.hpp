#pragma once
// The checks a CONNECT passes before a session exists for it, and the CONNACK that refuses one.
// Pure functions: authentication and session takeover are the broker's, not done here.

#include "mqtt/packet.hpp"
#include "session/limits.hpp"

namespace firehook::session {

// Success, or the reason to refuse `c` with (as a 5.0 reason code; a 3.1.1 CONNACK carries its
// mqtt::to_v3_connack() meaning):
//  - Authentication Method (5.0): none is supported yet -> 0x8C Bad Authentication Method.
//  - Client identifier [MQTT-3.1.3-5..8]: empty needs 5.0 or clean session (3.1.1); 3.1 needs
//    1..23 characters; longer than limits.max_client_id_length -> 0x85 (3.1.1: 0x02).
//  - Keep Alive: a 3.1/3.1.1 client asking more than limits.max_keep_alive cannot be told the
//    Server Keep Alive, so it is refused with 0x85 (3.1.1: 0x02, "identifier rejected"), as
//    mosquitto does, rather than disconnected later for keeping its own word.
//  - Will: QoS above limits.max_qos -> 0x9B [MQTT-3.2.2-12] (3.1.1: lowered to it instead);
//    retained when retain is not available -> 0x9A [MQTT-3.2.2-13] (3.1.1: sent unretained);
//    a topic beyond the level/length limits -> 0x90; a "$SYS" topic -> 0x87.
mqtt::reason_code check_connect(const mqtt::connect& c, const limits& lim);

// The QoS and retain flag a will accepted by check_connect() is published with: a 3.1/3.1.1 will
// above the broker's limits is lowered to them rather than refused. What the will's right to
// publish is checked for, at CONNECT and again when it is published.
struct will_flags {
  mqtt::qos qos = mqtt::qos::at_most_once;
  bool retain = false;
};
will_flags will_as_published(const mqtt::will& w, const limits& lim);

// The CONNACK refusing a connection with `reason` (Session Present 0 [MQTT-3.2.2-6]).
mqtt::connack refusal(mqtt::reason_code reason);

// Whether `topic` (a valid name) is within limits.max_topic_levels / max_topic_length.
bool within_topic_limits(std::string_view topic, const limits& lim);

// Whether `topic` is in the broker's own "$SYS" tree, which clients may not publish to.
bool is_sys_topic(std::string_view topic);

} // namespace firehook::session

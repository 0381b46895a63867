#pragma once
// MQTT control packets as plain values, for MQTT 3.1 (level 3), 3.1.1 (level 4) and 5.0 (level 5).
//
// A decoded packet owns its strings (topic, payload, properties): they are copied once out of the
// receive buffer and can be moved on from there. Fields that a version does not have stay at their
// defaults (e.g. `properties` and `reason` for 3.1.1 PUBACK). For 3.1.1 SUBACK the return codes are
// stored as reason codes (0x00, 0x01, 0x02, 0x80 have the same values in both versions).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mqtt/properties.hpp"
#include "mqtt/reason_code.hpp"

namespace firehook::mqtt {

enum class protocol_version : std::uint8_t { v3_1 = 3, v3_1_1 = 4, v5 = 5 };

enum class packet_type : std::uint8_t {
  connect = 1,
  connack = 2,
  publish = 3,
  puback = 4,
  pubrec = 5,
  pubrel = 6,
  pubcomp = 7,
  subscribe = 8,
  suback = 9,
  unsubscribe = 10,
  unsuback = 11,
  pingreq = 12,
  pingresp = 13,
  disconnect = 14,
  auth = 15, // 5.0 only
};

enum class qos : std::uint8_t { at_most_once = 0, at_least_once = 1, exactly_once = 2 };

struct will {
  std::string topic;
  std::string payload;
  mqtt::qos qos = qos::at_most_once;
  bool retain = false;
  properties props; // 5.0 will properties (will delay, expiry, content type, ...)

  bool operator==(const will&) const = default;
};

struct connect {
  protocol_version version = protocol_version::v5;
  bool clean_start = true; // "clean session" in 3.1/3.1.1
  std::uint16_t keep_alive = 0;
  std::string client_id;
  std::optional<will> will_message;
  std::optional<std::string> username;
  std::optional<std::string> password; // binary data
  properties props;

  bool operator==(const connect&) const = default;
};

struct connack {
  bool session_present = false;
  reason_code reason = reason_code::success; // 3.1.1: encoded with to_v3_connack()
  properties props;

  bool operator==(const connack&) const = default;
};

struct publish {
  bool dup = false;
  mqtt::qos qos = qos::at_most_once;
  bool retain = false;
  std::string topic;           // may be empty in 5.0 when props.topic_alias is set
  std::uint16_t packet_id = 0; // 0 for QoS 0
  properties props;
  std::string payload;

  bool operator==(const publish&) const = default;
};

// PUBACK, PUBREC, PUBREL, PUBCOMP share one layout. In 5.0 the reason code and properties may
// be omitted on the wire when they are 0x00 and empty; the encoder does that.
struct puback {
  std::uint16_t packet_id = 0;
  reason_code reason = reason_code::success;
  properties props;
  bool operator==(const puback&) const = default;
};
struct pubrec {
  std::uint16_t packet_id = 0;
  reason_code reason = reason_code::success;
  properties props;
  bool operator==(const pubrec&) const = default;
};
struct pubrel {
  std::uint16_t packet_id = 0;
  reason_code reason = reason_code::success;
  properties props;
  bool operator==(const pubrel&) const = default;
};
struct pubcomp {
  std::uint16_t packet_id = 0;
  reason_code reason = reason_code::success;
  properties props;
  bool operator==(const pubcomp&) const = default;
};

enum class retain_handling : std::uint8_t { send_on_subscribe = 0, send_if_new = 1, do_not_send = 2 };

struct subscribe_options {
  mqtt::qos max_qos = qos::at_most_once;
  bool no_local = false;                                                      // 5.0
  bool retain_as_published = false;                                           // 5.0
  mqtt::retain_handling retain_handling = retain_handling::send_on_subscribe; // 5.0
  bool operator==(const subscribe_options&) const = default;
};

struct subscription {
  std::string filter; // as sent, including any "$share/group/" prefix
  subscribe_options options;
  bool operator==(const subscription&) const = default;
};

struct subscribe {
  std::uint16_t packet_id = 0;
  properties props; // subscription identifier, user properties
  std::vector<subscription> subscriptions;
  bool operator==(const subscribe&) const = default;
};

struct suback {
  std::uint16_t packet_id = 0;
  properties props;
  std::vector<reason_code> reasons;
  bool operator==(const suback&) const = default;
};

struct unsubscribe {
  std::uint16_t packet_id = 0;
  properties props;
  std::vector<std::string> filters;
  bool operator==(const unsubscribe&) const = default;
};

struct unsuback {
  std::uint16_t packet_id = 0;
  properties props;
  std::vector<reason_code> reasons; // 5.0 only; empty for 3.1.1
  bool operator==(const unsuback&) const = default;
};

struct pingreq {
  bool operator==(const pingreq&) const = default;
};
struct pingresp {
  bool operator==(const pingresp&) const = default;
};

struct disconnect {
  reason_code reason = reason_code::success;
  properties props;
  bool operator==(const disconnect&) const = default;
};

struct auth {
  reason_code reason = reason_code::success;
  properties props;
  bool operator==(const auth&) const = default;
};

// Alternatives are in packet_type order, so `packet.index() + 1 == packet_type`.
using packet = std::variant<connect, connack, publish, puback, pubrec, pubrel, pubcomp, subscribe, suback,
                            unsubscribe, unsuback, pingreq, pingresp, disconnect, auth>;

inline packet_type type_of(const packet& p) {
  return static_cast<packet_type>(p.index() + 1);
}

// "PUBLISH", "SUBSCRIBE", ...: the packet's name in the specification.
constexpr std::string_view to_string(packet_type t) {
  constexpr std::string_view names[] = {"CONNECT",  "CONNACK", "PUBLISH",   "PUBACK",     "PUBREC",
                                        "PUBREL",   "PUBCOMP", "SUBSCRIBE", "SUBACK",     "UNSUBSCRIBE",
                                        "UNSUBACK", "PINGREQ", "PINGRESP",  "DISCONNECT", "AUTH"};
  const auto i = static_cast<std::size_t>(t);
  return i >= 1 && i <= 15 ? names[i - 1] : std::string_view("?");
}

} // namespace firehook::mqtt

#pragma once
// Errors of the codec (decoding and validation). One std::error_category ("mqtt.codec");
// to_reason_code() is the one place that maps a codec error to the reason code a CONNACK or
// DISCONNECT carries.

#include <system_error>

#include "mqtt/reason_code.hpp"

namespace firehook::mqtt {

enum class codec_errc {
  // 0 is reserved for "no error"
  malformed_packet = 1,         // generic malformed: truncated field, length mismatch, bad value
  bad_remaining_length,         // variable byte integer longer than 4 bytes or over the limit
  reserved_flags,               // fixed-header flags not as the spec requires [MQTT-2.2.2-2]
  invalid_packet_type,          // type 0, or 15 (AUTH) before 5.0
  invalid_utf8,                 // ill-formed UTF-8, U+0000 or a surrogate [MQTT-1.5.4-1..2]
  invalid_property,             // an identifier not valid for this packet, or a wrong value type
  duplicate_property,           // a property that may appear once appears twice (Protocol Error)
  property_value_invalid,       // e.g. Receive Maximum 0, Maximum QoS 3 (Protocol Error)
  invalid_qos,                  // QoS 3 (Malformed)
  packet_identifier_zero,       // a packet identifier of 0 where one is required
  empty_subscription_list,      // SUBSCRIBE/UNSUBSCRIBE without a topic filter [MQTT-3.8.3-3]
  invalid_topic_name,           // empty, or containing wildcards [MQTT-3.3.2-2]
  invalid_topic_filter,         // misplaced wildcard, empty [MQTT-4.7.1-1..2]
  invalid_protocol_name,        // CONNECT protocol name not "MQTT"/"MQIsdp"
  unsupported_protocol_version, // CONNECT protocol level not 3, 4 or 5
  invalid_connect_flags, // reserved bit set, will flags inconsistent, password without user name in 3.1.1
  packet_too_large,      // over the configured maximum packet size
  invalid_reason_code,   // a reason code not allowed in this packet
  protocol_error,        // a Protocol Error that is none of the above
};

const std::error_category& codec_category();

inline std::error_code make_error_code(codec_errc e) {
  return {static_cast<int>(e), codec_category()};
}

// The reason code a server sends for this error (0x81, 0x82, 0x84, 0x90, 0x95, ...).
// Any error_code not from codec_category() maps to unspecified_error.
reason_code to_reason_code(std::error_code ec);

} // namespace firehook::mqtt

template <>
struct std::is_error_code_enum<firehook::mqtt::codec_errc> : std::true_type {};

#pragma once
// Errors of the session state machine (category "firehook.session"), and to_reason_code(), the
// one place that maps an internal error (of the session or of the codec) to the reason code a
// CONNACK or DISCONNECT carries. 3.1.1 CONNACKs carry the same meaning through
// mqtt::to_v3_connack(), which the encoder applies.

#include <system_error>

#include "mqtt/reason_code.hpp"

namespace firehook::session {

enum class session_errc {
  // 0 is reserved for "no error"
  protocol_error = 1,           // a packet not allowed now: second CONNECT, AUTH, server-only packet
  keep_alive_timeout,           // nothing received for 1.5 x Keep Alive [MQTT-3.1.2-22]
  session_taken_over,           // a new connection used this client id [MQTT-3.1.4-3]
  receive_maximum_exceeded,     // more unacknowledged QoS 1/2 than our Receive Maximum [MQTT-3.3.4-9]
  topic_alias_invalid,          // alias 0 or above our Topic Alias Maximum [MQTT-3.3.2-9]
  qos_not_supported,            // PUBLISH above Maximum QoS [MQTT-3.2.2-11]
  retain_not_supported,         // retained PUBLISH when Retain Available is 0 [MQTT-3.2.2-14]
  client_identifier_not_valid,  // CONNECT client id refused
  bad_user_name_or_password,    // credentials given and not accepted
  not_authorized,               // anonymous refused, or a forbidden topic
  bad_authentication_method,    // CONNECT named an authentication method we do not have
  unsupported_protocol_version, // CONNECT protocol level we do not speak
  topic_name_invalid,           // a topic over the broker's level/length limits
  packet_too_large,             // over the Maximum Packet Size
  server_shutting_down,         // SIGTERM
  normal_disconnection,         // the client sent DISCONNECT
  administrative_action,        // the operator or a CRL update ended the connection
  maximum_connect_time,         // the client's credential (a token) expired
  slow_subscriber,              // over its queue bounds with no acknowledgement for too long
  message_rate_too_high,        // over its publish or subscribe rate for too long
};

const std::error_category& session_category();

inline std::error_code make_error_code(session_errc e) {
  return {static_cast<int>(e), session_category()};
}

// The reason code a server sends for `ec`: session errors map to their namesake, codec errors go
// through mqtt::to_reason_code(), anything else is Unspecified Error (0x80).
mqtt::reason_code to_reason_code(std::error_code ec);

} // namespace firehook::session

template <>
struct std::is_error_code_enum<firehook::session::session_errc> : std::true_type {};

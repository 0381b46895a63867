// Reason code names (MQTT 5.0 section 2.4, table 2-6) and the 3.1.1 CONNACK return code mapping.

#include "mqtt/reason_code.hpp"

namespace firehook::mqtt {

connack_return_code_v3 to_v3_connack(reason_code rc) {
  using enum reason_code;
  switch (rc) {
  case success:
    return connack_return_code_v3::accepted;
  case unsupported_protocol_version:
    return connack_return_code_v3::unacceptable_protocol_version;
  case client_identifier_not_valid:
    return connack_return_code_v3::identifier_rejected;
  case bad_user_name_or_password:
    return connack_return_code_v3::bad_user_name_or_password;
  case not_authorized:
  case banned:
  case bad_authentication_method:
    return connack_return_code_v3::not_authorized;
  default:
    // Server unavailable, busy, moved, rate or quota limits, and every error 3.1.1 has no word for:
    // 0x03 tells the client that the server will not serve it now without blaming its credentials.
    return connack_return_code_v3::server_unavailable;
  }
}

std::string_view to_string(reason_code rc) {
  using enum reason_code;
  switch (rc) {
  case success:
    return "Success";
  case granted_qos_1:
    return "Granted QoS 1";
  case granted_qos_2:
    return "Granted QoS 2";
  case disconnect_with_will_message:
    return "Disconnect with Will Message";
  case no_matching_subscribers:
    return "No matching subscribers";
  case no_subscription_existed:
    return "No subscription existed";
  case continue_authentication:
    return "Continue authentication";
  case re_authenticate:
    return "Re-authenticate";
  case unspecified_error:
    return "Unspecified error";
  case malformed_packet:
    return "Malformed Packet";
  case protocol_error:
    return "Protocol Error";
  case implementation_specific_error:
    return "Implementation specific error";
  case unsupported_protocol_version:
    return "Unsupported Protocol Version";
  case client_identifier_not_valid:
    return "Client Identifier not valid";
  case bad_user_name_or_password:
    return "Bad User Name or Password";
  case not_authorized:
    return "Not authorized";
  case server_unavailable:
    return "Server unavailable";
  case server_busy:
    return "Server busy";
  case banned:
    return "Banned";
  case server_shutting_down:
    return "Server shutting down";
  case bad_authentication_method:
    return "Bad authentication method";
  case keep_alive_timeout:
    return "Keep Alive timeout";
  case session_taken_over:
    return "Session taken over";
  case topic_filter_invalid:
    return "Topic Filter invalid";
  case topic_name_invalid:
    return "Topic Name invalid";
  case packet_identifier_in_use:
    return "Packet Identifier in use";
  case packet_identifier_not_found:
    return "Packet Identifier not found";
  case receive_maximum_exceeded:
    return "Receive Maximum exceeded";
  case topic_alias_invalid:
    return "Topic Alias invalid";
  case packet_too_large:
    return "Packet too large";
  case message_rate_too_high:
    return "Message rate too high";
  case quota_exceeded:
    return "Quota exceeded";
  case administrative_action:
    return "Administrative action";
  case payload_format_invalid:
    return "Payload format invalid";
  case retain_not_supported:
    return "Retain not supported";
  case qos_not_supported:
    return "QoS not supported";
  case use_another_server:
    return "Use another server";
  case server_moved:
    return "Server moved";
  case shared_subscriptions_not_supported:
    return "Shared Subscriptions not supported";
  case connection_rate_exceeded:
    return "Connection rate exceeded";
  case maximum_connect_time:
    return "Maximum connect time";
  case subscription_identifiers_not_supported:
    return "Subscription Identifiers not supported";
  case wildcard_subscriptions_not_supported:
    return "Wildcard Subscriptions not supported";
  }
  return "Unknown";
}

} // namespace firehook::mqtt

#pragma once
// MQTT 5.0 properties (section 2.2.2). A `properties` value holds every property as an
// optional field; the codec decides which ones each packet may carry and rejects the rest.
// Properties are absent (nullopt / empty) for MQTT 3.1 and 3.1.1 packets.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace firehook::mqtt {

enum class property_id : std::uint8_t {
  payload_format_indicator = 0x01,     // byte              PUBLISH, Will
  message_expiry_interval = 0x02,      // four byte int     PUBLISH, Will
  content_type = 0x03,                 // UTF-8 string      PUBLISH, Will
  response_topic = 0x08,               // UTF-8 string      PUBLISH, Will
  correlation_data = 0x09,             // binary data       PUBLISH, Will
  subscription_identifier = 0x0B,      // var byte int      PUBLISH, SUBSCRIBE
  session_expiry_interval = 0x11,      // four byte int     CONNECT, CONNACK, DISCONNECT
  assigned_client_identifier = 0x12,   // UTF-8 string      CONNACK
  server_keep_alive = 0x13,            // two byte int      CONNACK
  authentication_method = 0x15,        // UTF-8 string      CONNECT, CONNACK, AUTH
  authentication_data = 0x16,          // binary data       CONNECT, CONNACK, AUTH
  request_problem_information = 0x17,  // byte              CONNECT
  will_delay_interval = 0x18,          // four byte int     Will
  request_response_information = 0x19, // byte              CONNECT
  response_information = 0x1A,         // UTF-8 string      CONNACK
  server_reference = 0x1C,             // UTF-8 string      CONNACK, DISCONNECT
  reason_string =
      0x1F, // UTF-8 string      CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH
  receive_maximum = 0x21,                   // two byte int      CONNECT, CONNACK
  topic_alias_maximum = 0x22,               // two byte int      CONNECT, CONNACK
  topic_alias = 0x23,                       // two byte int      PUBLISH
  maximum_qos = 0x24,                       // byte              CONNACK
  retain_available = 0x25,                  // byte              CONNACK
  user_property = 0x26,                     // UTF-8 pair        all packets with properties (may repeat)
  maximum_packet_size = 0x27,               // four byte int     CONNECT, CONNACK
  wildcard_subscription_available = 0x28,   // byte              CONNACK
  subscription_identifier_available = 0x29, // byte              CONNACK
  shared_subscription_available = 0x2A,     // byte              CONNACK
};

using user_properties = std::vector<std::pair<std::string, std::string>>;

struct properties {
  std::optional<std::uint8_t> payload_format_indicator;
  std::optional<std::uint32_t> message_expiry_interval;
  std::optional<std::string> content_type;
  std::optional<std::string> response_topic;
  std::optional<std::string> correlation_data;
  // PUBLISH from server to client may carry several; SUBSCRIBE carries at most one.
  std::vector<std::uint32_t> subscription_identifiers;
  std::optional<std::uint32_t> session_expiry_interval;
  std::optional<std::string> assigned_client_identifier;
  std::optional<std::uint16_t> server_keep_alive;
  std::optional<std::string> authentication_method;
  std::optional<std::string> authentication_data;
  std::optional<std::uint8_t> request_problem_information;
  std::optional<std::uint32_t> will_delay_interval;
  std::optional<std::uint8_t> request_response_information;
  std::optional<std::string> response_information;
  std::optional<std::string> server_reference;
  std::optional<std::string> reason_string;
  std::optional<std::uint16_t> receive_maximum;
  std::optional<std::uint16_t> topic_alias_maximum;
  std::optional<std::uint16_t> topic_alias;
  std::optional<std::uint8_t> maximum_qos;
  std::optional<std::uint8_t> retain_available;
  user_properties user;
  std::optional<std::uint32_t> maximum_packet_size;
  std::optional<std::uint8_t> wildcard_subscription_available;
  std::optional<std::uint8_t> subscription_identifier_available;
  std::optional<std::uint8_t> shared_subscription_available;

  bool operator==(const properties&) const = default;
};

} // namespace firehook::mqtt

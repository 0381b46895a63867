#pragma once
// Private to src/mqtt: MQTT 5.0 properties on the wire (5.0 section 2.2.2).
//
//   properties      = property-length property*
//   property-length = Variable Byte Integer, the number of bytes of property* that follow
//   property        = identifier (Variable Byte Integer, one byte in 5.0) value
//   value           = Byte | Two Byte Integer | Four Byte Integer | Variable Byte Integer
//                   | UTF-8 Encoded String | Binary Data | UTF-8 String Pair, by identifier
//
// Each packet (and the Will) allows its own set of identifiers; one outside the set is a Malformed
// Packet (5.0 section 2.2.2.2). A property other than User Property (and Subscription Identifier in
// PUBLISH) that appears twice is a Protocol Error.

#include <cstdint>

#include "mqtt/error.hpp"
#include "mqtt/properties.hpp"
#include "mqtt/wire.hpp"

namespace firehook::mqtt::detail {

using property_set = std::uint64_t; // bit n stands for identifier n; every identifier is below 64

constexpr property_set bit(property_id id) {
  return property_set{1} << static_cast<unsigned>(id);
}

struct property_rules {
  property_set allowed = 0;
  property_set repeatable = bit(property_id::user_property);
};

namespace rules {
using enum property_id;

inline constexpr property_rules publish{
    bit(payload_format_indicator) | bit(message_expiry_interval) | bit(content_type) | bit(response_topic) |
        bit(correlation_data) | bit(subscription_identifier) | bit(topic_alias) | bit(user_property),
    // A server forwards one PUBLISH for several matching subscriptions, each with its identifier
    // (5.0 section 3.3.2.3.8).
    bit(user_property) | bit(subscription_identifier)};

inline constexpr property_rules will{bit(payload_format_indicator) | bit(message_expiry_interval) |
                                     bit(content_type) | bit(response_topic) | bit(correlation_data) |
                                     bit(will_delay_interval) | bit(user_property)};

inline constexpr property_rules connect{
    bit(session_expiry_interval) | bit(authentication_method) | bit(authentication_data) |
    bit(request_problem_information) | bit(request_response_information) | bit(receive_maximum) |
    bit(topic_alias_maximum) | bit(user_property) | bit(maximum_packet_size)};

inline constexpr property_rules connack{
    bit(session_expiry_interval) | bit(assigned_client_identifier) | bit(server_keep_alive) |
    bit(authentication_method) | bit(authentication_data) | bit(response_information) |
    bit(server_reference) | bit(reason_string) | bit(receive_maximum) | bit(topic_alias_maximum) |
    bit(maximum_qos) | bit(retain_available) | bit(user_property) | bit(maximum_packet_size) |
    bit(wildcard_subscription_available) | bit(subscription_identifier_available) |
    bit(shared_subscription_available)};

// PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK
inline constexpr property_rules acknowledgement{bit(reason_string) | bit(user_property)};

inline constexpr property_rules subscribe{bit(subscription_identifier) | bit(user_property)};

inline constexpr property_rules unsubscribe{bit(user_property)};

inline constexpr property_rules disconnect{bit(session_expiry_interval) | bit(server_reference) |
                                           bit(reason_string) | bit(user_property)};

inline constexpr property_rules auth{bit(authentication_method) | bit(authentication_data) |
                                     bit(reason_string) | bit(user_property)};
} // namespace rules

// Reads a property length and the properties it covers, all of which must lie inside `r`.
codec_errc decode_properties(wire::reader& r, const property_rules& rules, properties& out);

// Writes the properties of `p` that `rules` allows (others are left out), without the length.
template <class Out>
void put_property_list(Out& o, const properties& p, const property_rules& rules) {
  using enum property_id;
  const auto allowed = [&](property_id id) { return (rules.allowed & bit(id)) != 0; };
  const auto id_byte = [](property_id id) { return static_cast<std::uint8_t>(id); };
  const auto put_u8 = [&](property_id id, const std::optional<std::uint8_t>& v) {
    if (v && allowed(id)) {
      o.u8(id_byte(id));
      o.u8(*v);
    }
  };
  const auto put_u16 = [&](property_id id, const std::optional<std::uint16_t>& v) {
    if (v && allowed(id)) {
      o.u8(id_byte(id));
      o.u16(*v);
    }
  };
  const auto put_u32 = [&](property_id id, const std::optional<std::uint32_t>& v) {
    if (v && allowed(id)) {
      o.u8(id_byte(id));
      o.u32(*v);
    }
  };
  const auto put_string = [&](property_id id, const std::optional<std::string>& v) {
    if (v && allowed(id)) {
      o.u8(id_byte(id));
      o.string(*v);
    }
  };

  put_u8(payload_format_indicator, p.payload_format_indicator);
  put_u32(message_expiry_interval, p.message_expiry_interval);
  put_string(content_type, p.content_type);
  put_string(response_topic, p.response_topic);
  put_string(correlation_data, p.correlation_data);
  if (allowed(subscription_identifier)) {
    for (const std::uint32_t id : p.subscription_identifiers) {
      o.u8(id_byte(subscription_identifier));
      o.variable_byte_integer(id);
      if ((rules.repeatable & bit(subscription_identifier)) == 0) {
        break; // SUBSCRIBE carries at most one
      }
    }
  }
  put_u32(session_expiry_interval, p.session_expiry_interval);
  put_string(assigned_client_identifier, p.assigned_client_identifier);
  put_u16(server_keep_alive, p.server_keep_alive);
  put_string(authentication_method, p.authentication_method);
  put_string(authentication_data, p.authentication_data);
  put_u8(request_problem_information, p.request_problem_information);
  put_u32(will_delay_interval, p.will_delay_interval);
  put_u8(request_response_information, p.request_response_information);
  put_string(response_information, p.response_information);
  put_string(server_reference, p.server_reference);
  put_string(reason_string, p.reason_string);
  put_u16(receive_maximum, p.receive_maximum);
  put_u16(topic_alias_maximum, p.topic_alias_maximum);
  put_u16(topic_alias, p.topic_alias);
  put_u8(maximum_qos, p.maximum_qos);
  put_u8(retain_available, p.retain_available);
  if (allowed(user_property)) {
    for (const auto& [key, value] : p.user) {
      o.u8(id_byte(user_property));
      o.string(key);
      o.string(value);
    }
  }
  put_u32(maximum_packet_size, p.maximum_packet_size);
  put_u8(wildcard_subscription_available, p.wildcard_subscription_available);
  put_u8(subscription_identifier_available, p.subscription_identifier_available);
  put_u8(shared_subscription_available, p.shared_subscription_available);
}

inline std::size_t property_list_size(const properties& p, const property_rules& rules) {
  wire::size_counter n;
  put_property_list(n, p, rules);
  return n.size();
}

// Writes the property length followed by the properties.
template <class Out>
void put_properties(Out& o, const properties& p, const property_rules& rules) {
  const std::size_t n = property_list_size(p, rules);
  o.variable_byte_integer(static_cast<std::uint32_t>(n));
  put_property_list(o, p, rules);
}

} // namespace firehook::mqtt::detail

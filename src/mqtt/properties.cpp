// Reading MQTT 5.0 properties; the grammar is in property_codec.hpp.

#include "mqtt/properties.hpp"

#include "mqtt/property_codec.hpp"
#include "mqtt/topic.hpp"

namespace firehook::mqtt::detail {
namespace {

constexpr codec_errc malformed = codec_errc::malformed_packet;

// Properties whose value is a Byte that only means 0 or 1. Any other value is a Protocol Error
// (5.0 sections 3.1.2.11.6, 3.1.2.11.7, 3.2.2.3.4, 3.2.2.3.5, 3.2.2.3.11-13, 3.3.2.3.2).
codec_errc read_flag_byte(wire::reader& r, std::optional<std::uint8_t>& out) {
  std::uint8_t v = 0;
  if (!r.read_u8(v)) {
    return malformed;
  }
  if (v > 1) {
    return codec_errc::property_value_invalid;
  }
  out = v;
  return wire::ok;
}

codec_errc read_u16(wire::reader& r, std::optional<std::uint16_t>& out) {
  std::uint16_t v = 0;
  if (!r.read_u16(v)) {
    return malformed;
  }
  out = v;
  return wire::ok;
}

codec_errc read_u32(wire::reader& r, std::optional<std::uint32_t>& out) {
  std::uint32_t v = 0;
  if (!r.read_u32(v)) {
    return malformed;
  }
  out = v;
  return wire::ok;
}

codec_errc read_string(wire::reader& r, std::optional<std::string>& out) {
  return r.read_utf8(out.emplace());
}

codec_errc read_binary(wire::reader& r, std::optional<std::string>& out) {
  return r.read_binary(out.emplace()) ? wire::ok : malformed;
}

codec_errc read_property(wire::reader& r, property_id id, properties& p) {
  using enum property_id;
  switch (id) {
  case payload_format_indicator:
    return read_flag_byte(r, p.payload_format_indicator);
  case message_expiry_interval:
    return read_u32(r, p.message_expiry_interval);
  case content_type:
    return read_string(r, p.content_type);
  case response_topic: {
    if (const codec_errc e = read_string(r, p.response_topic); e != wire::ok) {
      return e;
    }
    // [MQTT-3.3.2-14]: a Response Topic is a Topic Name, so no wildcards.
    return is_valid_topic_name(*p.response_topic) ? wire::ok : codec_errc::invalid_topic_name;
  }
  case correlation_data:
    return read_binary(r, p.correlation_data);
  case subscription_identifier: {
    std::uint32_t v = 0;
    if (!r.read_variable_byte_integer(v)) {
      return malformed;
    }
    // 5.0 section 3.3.2.3.8: "It is a Protocol Error if the Subscription Identifier has a value of 0."
    if (v == 0) {
      return codec_errc::property_value_invalid;
    }
    p.subscription_identifiers.push_back(v);
    return wire::ok;
  }
  case session_expiry_interval:
    return read_u32(r, p.session_expiry_interval);
  case assigned_client_identifier:
    return read_string(r, p.assigned_client_identifier);
  case server_keep_alive:
    return read_u16(r, p.server_keep_alive);
  case authentication_method:
    return read_string(r, p.authentication_method);
  case authentication_data:
    return read_binary(r, p.authentication_data);
  case request_problem_information:
    return read_flag_byte(r, p.request_problem_information);
  case will_delay_interval:
    return read_u32(r, p.will_delay_interval);
  case request_response_information:
    return read_flag_byte(r, p.request_response_information);
  case response_information:
    return read_string(r, p.response_information);
  case server_reference:
    return read_string(r, p.server_reference);
  case reason_string:
    return read_string(r, p.reason_string);
  case receive_maximum: {
    if (const codec_errc e = read_u16(r, p.receive_maximum); e != wire::ok) {
      return e;
    }
    // 5.0 section 3.1.2.11.3 / 3.2.2.3.3: "It is a Protocol Error to include ... a value of 0."
    return *p.receive_maximum == 0 ? codec_errc::property_value_invalid : wire::ok;
  }
  case topic_alias_maximum:
    return read_u16(r, p.topic_alias_maximum);
  case topic_alias:
    // 0 is not a valid alias [MQTT-3.3.2-8], but what the receiver does about it (DISCONNECT with
    // 0x94 Topic Alias invalid) is decided by the session, together with the alias maximum.
    return read_u16(r, p.topic_alias);
  case maximum_qos:
    return read_flag_byte(r, p.maximum_qos);
  case retain_available:
    return read_flag_byte(r, p.retain_available);
  case user_property: {
    auto& [key, value] = p.user.emplace_back();
    if (const codec_errc e = r.read_utf8(key); e != wire::ok) {
      return e;
    }
    return r.read_utf8(value);
  }
  case maximum_packet_size: {
    if (const codec_errc e = read_u32(r, p.maximum_packet_size); e != wire::ok) {
      return e;
    }
    // 5.0 section 3.1.2.11.4 / 3.2.2.3.6: "It is a Protocol Error to include ... the value zero."
    return *p.maximum_packet_size == 0 ? codec_errc::property_value_invalid : wire::ok;
  }
  case wildcard_subscription_available:
    return read_flag_byte(r, p.wildcard_subscription_available);
  case subscription_identifier_available:
    return read_flag_byte(r, p.subscription_identifier_available);
  case shared_subscription_available:
    return read_flag_byte(r, p.shared_subscription_available);
  }
  return codec_errc::invalid_property;
}

} // namespace

codec_errc decode_properties(wire::reader& r, const property_rules& rules, properties& out) {
  std::uint32_t length = 0;
  wire::reader list;
  if (!r.read_variable_byte_integer(length) || !r.take(length, list)) {
    return malformed;
  }
  property_set seen = 0;
  while (!list.empty()) {
    std::uint32_t id = 0;
    if (!list.read_variable_byte_integer(id)) {
      return malformed;
    }
    // 5.0 section 2.2.2.2: an identifier not valid for the packet is a Malformed Packet. The
    // allowed sets hold only defined identifiers, so this also rejects unknown ones.
    if (id >= 64 || (rules.allowed & (property_set{1} << id)) == 0) {
      return codec_errc::invalid_property;
    }
    const property_set b = property_set{1} << id;
    if ((seen & b) != 0 && (rules.repeatable & b) == 0) {
      return codec_errc::duplicate_property;
    }
    seen |= b;
    if (const codec_errc e = read_property(list, static_cast<property_id>(id), out); e != wire::ok) {
      return e;
    }
  }
  return wire::ok;
}

} // namespace firehook::mqtt::detail

// The codec's error category, and the one mapping from codec errors to MQTT 5.0 reason codes.
//
// The 5.0 spec sorts bad input into two kinds (section 1.2): a Malformed Packet "cannot be parsed
// according to this specification", a Protocol Error is found "after the packet has been parsed" in
// data the protocol does not allow. Where a section names the kind for a rule, that wins.

#include "mqtt/error.hpp"

#include <string>

namespace firehook::mqtt {
namespace {

class codec_category_impl final : public std::error_category {
public:
  const char* name() const noexcept override { return "mqtt.codec"; }

  std::string message(int ev) const override {
    switch (static_cast<codec_errc>(ev)) {
    case codec_errc::malformed_packet:
      return "malformed packet";
    case codec_errc::bad_remaining_length:
      return "bad remaining length";
    case codec_errc::reserved_flags:
      return "fixed header flags not as the specification requires";
    case codec_errc::invalid_packet_type:
      return "invalid packet type";
    case codec_errc::invalid_utf8:
      return "invalid UTF-8 string";
    case codec_errc::invalid_property:
      return "property not valid for this packet";
    case codec_errc::duplicate_property:
      return "property included more than once";
    case codec_errc::property_value_invalid:
      return "property value not allowed";
    case codec_errc::invalid_qos:
      return "invalid QoS";
    case codec_errc::packet_identifier_zero:
      return "packet identifier 0";
    case codec_errc::empty_subscription_list:
      return "no topic filter in SUBSCRIBE or UNSUBSCRIBE";
    case codec_errc::invalid_topic_name:
      return "invalid topic name";
    case codec_errc::invalid_topic_filter:
      return "invalid topic filter";
    case codec_errc::invalid_protocol_name:
      return "invalid protocol name";
    case codec_errc::unsupported_protocol_version:
      return "unsupported protocol version";
    case codec_errc::invalid_connect_flags:
      return "invalid CONNECT flags";
    case codec_errc::packet_too_large:
      return "packet too large";
    case codec_errc::invalid_reason_code:
      return "reason code not allowed in this packet";
    case codec_errc::protocol_error:
      return "protocol error";
    }
    return "unknown mqtt.codec error";
  }
};

} // namespace

const std::error_category& codec_category() {
  static const codec_category_impl category;
  return category;
}

reason_code to_reason_code(std::error_code ec) {
  if (!ec) {
    return reason_code::success;
  }
  if (ec.category() != codec_category()) {
    return reason_code::unspecified_error;
  }
  switch (static_cast<codec_errc>(ec.value())) {
  case codec_errc::malformed_packet:
  case codec_errc::bad_remaining_length:
  case codec_errc::reserved_flags:        // [MQTT-2.2.2-2]
  case codec_errc::invalid_packet_type:   // 5.0 section 2.1.2: type 0 is "Reserved"
  case codec_errc::invalid_utf8:          // 5.0 section 1.5.4: ill-formed UTF-8 "is a Malformed Packet"
  case codec_errc::invalid_property:      // 5.0 section 2.2.2.2: an identifier not valid for the packet
  case codec_errc::invalid_qos:           // [MQTT-3.3.1-4]: PUBLISH with both QoS bits set
  case codec_errc::invalid_connect_flags: // [MQTT-3.1.2-3] and the Will flag rules of 3.1.2.5-3.1.2.7
    return reason_code::malformed_packet;
  // A Topic Name with a wildcard or without a character is not a Topic Name at all (4.7.1, 4.7.3):
  // 0x90 Topic Name invalid is defined (table 2-6) for a name that "is correctly formed, but is not
  // accepted", which such a name is not, so it is a Malformed Packet.
  case codec_errc::invalid_topic_name:
  // An ill-formed filter in SUBSCRIBE or UNSUBSCRIBE ends the connection as a Malformed Packet: the
  // codec cannot tell which pairs follow a broken one. The session answers a well-formed filter that it
  // does not accept with 0x8F Topic Filter invalid in that filter's SUBACK slot instead.
  case codec_errc::invalid_topic_filter:
    return reason_code::malformed_packet;
  case codec_errc::duplicate_property: // 5.0 section 2.2.2.2 and each property's "It is a Protocol Error to
                                       // include ... more than once"
  case codec_errc::property_value_invalid:  // each property's "It is a Protocol Error to include ... value"
  case codec_errc::packet_identifier_zero:  // [MQTT-2.2.1-3]: the field parses; its value is not allowed
  case codec_errc::empty_subscription_list: // 3.8.3 / 3.10.3: "... with no Payload is a Protocol Error"
  case codec_errc::invalid_reason_code:     // parsed, but not a value this packet may carry (1.2)
  case codec_errc::protocol_error:          // e.g. a first packet that is not CONNECT [MQTT-3.1.0-1]
    return reason_code::protocol_error;
  case codec_errc::invalid_protocol_name:        // [MQTT-3.1.2-1]: "MAY send a CONNACK ... 0x84"
  case codec_errc::unsupported_protocol_version: // [MQTT-3.1.2-2]
    return reason_code::unsupported_protocol_version;
  case codec_errc::packet_too_large: // 5.0 section 3.1.2.11.4 / 4.13
    return reason_code::packet_too_large;
  }
  return reason_code::unspecified_error;
}

} // namespace firehook::mqtt

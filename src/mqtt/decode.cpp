// Decoding MQTT control packets (3.1, 3.1.1, 5.0). The fixed header is in codec.hpp; the primitive
// types in wire.hpp; properties in property_codec.hpp. After the fixed header, by packet type
// ("[5.0]" marks fields only 5.0 has; "?" marks fields present only under a condition):
//
//   CONNECT      protocol-name protocol-level connect-flags keep-alive [5.0]properties
//                client-id ?([5.0]will-properties will-topic will-payload) ?user-name ?password
//   CONNACK      ack-flags reason-code [5.0]properties          (3.1: reserved byte, return code)
//   PUBLISH      topic-name ?packet-id [5.0]properties payload   (packet id when QoS > 0)
//   PUBACK, PUBREC, PUBREL, PUBCOMP
//                packet-id [5.0]?(reason-code ?properties)       (omitted when remaining length allows)
//   SUBSCRIBE    packet-id [5.0]properties 1*(topic-filter subscription-options)
//   SUBACK       packet-id [5.0]properties 1*reason-code
//   UNSUBSCRIBE  packet-id [5.0]properties 1*topic-filter
//   UNSUBACK     packet-id [5.0]properties [5.0]1*reason-code
//   PINGREQ, PINGRESP  (empty)
//   DISCONNECT   [5.0]?(reason-code ?properties)
//   AUTH         [5.0 only] ?(reason-code properties)
//
// Every packet's fields must use exactly its remaining length: bytes left over are as malformed
// as bytes missing.

#include <array>
#include <initializer_list>

#include "mqtt/codec.hpp"
#include "mqtt/property_codec.hpp"
#include "mqtt/topic.hpp"
#include "mqtt/wire.hpp"

namespace firehook::mqtt {
namespace {

using detail::decode_properties;
using wire::ok;
using wire::reader;
namespace rules = detail::rules;

constexpr codec_errc malformed = codec_errc::malformed_packet;

// Evaluates a step that returns a codec_errc and returns from the caller when it failed.
#define FIREHOOK_MQTT_TRY(expr)                                                                              \
  do {                                                                                                       \
    if (const codec_errc try_e_ = (expr); try_e_ != ok) {                                                    \
      return try_e_;                                                                                         \
    }                                                                                                        \
  } while (false)

// A set of byte values, for the reason codes each 5.0 packet may carry.
class reason_set {
public:
  constexpr reason_set(std::initializer_list<std::uint8_t> codes) {
    for (const std::uint8_t c : codes) {
      bits_[c >> 6] |= std::uint64_t{1} << (c & 63u);
    }
  }
  constexpr bool contains(std::uint8_t c) const { return ((bits_[c >> 6] >> (c & 63u)) & 1u) != 0; }

private:
  std::array<std::uint64_t, 4> bits_{};
};

// The reason code tables of 5.0 sections 3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3,
// 3.11.3, 3.14.2.1 and 3.15.2.1.
constexpr reason_set connack_reasons{0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
                                     0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
constexpr reason_set puback_reasons{0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99}; // and PUBREC
constexpr reason_set pubrel_reasons{0x00, 0x92};                                           // and PUBCOMP
constexpr reason_set suback_reasons{0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
constexpr reason_set suback_reasons_v3{0x00, 0x01, 0x02, 0x80};
constexpr reason_set unsuback_reasons{0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
constexpr reason_set disconnect_reasons{0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
                                        0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
                                        0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
constexpr reason_set auth_reasons{0x00, 0x18, 0x19};

codec_errc read_reason(reader& r, const reason_set& allowed, reason_code& out) {
  std::uint8_t v = 0;
  if (!r.read_u8(v)) {
    return malformed;
  }
  if (!allowed.contains(v)) {
    return codec_errc::invalid_reason_code;
  }
  out = static_cast<reason_code>(v);
  return ok;
}

codec_errc read_packet_id(reader& r, std::uint16_t& id) {
  if (!r.read_u16(id)) {
    return malformed;
  }
  // [MQTT-2.2.1-3] (3.1.1: [MQTT-2.3.1-1]); an acknowledgement echoes such an identifier.
  return id == 0 ? codec_errc::packet_identifier_zero : ok;
}

codec_errc expect_end(const reader& r) {
  return r.empty() ? ok : malformed;
}

// --- CONNECT ------------------------------------------------------------------------------------

constexpr std::uint8_t connect_user_name = 0x80;
constexpr std::uint8_t connect_password = 0x40;
constexpr std::uint8_t connect_will_retain = 0x20;
constexpr std::uint8_t connect_will_qos = 0x18;
constexpr std::uint8_t connect_will = 0x04;
constexpr std::uint8_t connect_clean_start = 0x02;
constexpr std::uint8_t connect_reserved = 0x01;

codec_errc read_protocol(reader& r, protocol_version& version) {
  std::uint16_t name_size = 0;
  reader name;
  std::uint8_t level = 0;
  if (!r.read_u16(name_size) || !r.take(name_size, name) || !r.read_u8(level)) {
    return malformed;
  }
  const std::string_view n = name.read_rest();
  // 3.1.1 section 3.1.2.1 / 5.0 section 3.1.2.1: the name is "MQTT"; MQTT 3.1 used "MQIsdp".
  if (n == "MQTT") {
    if (level == 4 || level == 5) {
      version = static_cast<protocol_version>(level);
      return ok;
    }
  } else if (n == "MQIsdp") {
    if (level == 3) {
      version = protocol_version::v3_1;
      return ok;
    }
  } else {
    return codec_errc::invalid_protocol_name;
  }
  // [MQTT-3.1.2-2]: a level the server does not support. The session answers with a 3.1.1 style
  // CONNACK 0x01 (or 0x84), which the error code alone is enough to choose.
  return codec_errc::unsupported_protocol_version;
}

codec_errc decode_connect(reader& r, packet& out) {
  auto& c = out.emplace<connect>();
  FIREHOOK_MQTT_TRY(read_protocol(r, c.version));
  const bool v5 = c.version == protocol_version::v5;

  std::uint8_t flags = 0;
  if (!r.read_u8(flags) || !r.read_u16(c.keep_alive)) {
    return malformed;
  }
  // [MQTT-3.1.2-3]: the reserved flag is zero.
  if ((flags & connect_reserved) != 0) {
    return codec_errc::invalid_connect_flags;
  }
  const bool has_will = (flags & connect_will) != 0;
  const auto will_qos = static_cast<std::uint8_t>((flags & connect_will_qos) >> 3);
  const bool will_retain = (flags & connect_will_retain) != 0;
  if (has_will) {
    // 5.0 [MQTT-3.1.2-12] (3.1.1 [MQTT-3.1.2-14]): Will QoS 3 is malformed.
    if (will_qos == 3) {
      return codec_errc::invalid_qos;
    }
  } else if (will_qos != 0 || will_retain) {
    // 5.0 [MQTT-3.1.2-11], [MQTT-3.1.2-13] (3.1.1 [MQTT-3.1.2-13], [MQTT-3.1.2-15]).
    return codec_errc::invalid_connect_flags;
  }
  const bool has_user = (flags & connect_user_name) != 0;
  const bool has_password = (flags & connect_password) != 0;
  // 3.1.1 [MQTT-3.1.2-22]: no password without a user name (5.0 allows it, 3.1.2.9).
  if (!v5 && has_password && !has_user) {
    return codec_errc::invalid_connect_flags;
  }
  c.clean_start = (flags & connect_clean_start) != 0;

  if (v5) {
    FIREHOOK_MQTT_TRY(decode_properties(r, rules::connect, c.props));
    // 5.0 section 3.1.2.11.10: "It is a Protocol Error to include Authentication Data if there is no
    // Authentication Method."
    if (c.props.authentication_data && !c.props.authentication_method) {
      return codec_errc::protocol_error;
    }
  }

  // The client identifier may be empty (3.1.1 [MQTT-3.1.3-6], 5.0 [MQTT-3.1.3-6]); whether an empty or a
  // long one is accepted is the session's answer (CONNACK 0x85 / 0x02), not a decoding error.
  FIREHOOK_MQTT_TRY(r.read_utf8(c.client_id));
  if (has_will) {
    auto& w = c.will_message.emplace();
    w.qos = static_cast<qos>(will_qos);
    w.retain = will_retain;
    if (v5) {
      FIREHOOK_MQTT_TRY(decode_properties(r, rules::will, w.props));
    }
    FIREHOOK_MQTT_TRY(r.read_utf8(w.topic));
    // The Will Topic is the topic name of the PUBLISH it becomes [MQTT-3.1.3-11], [MQTT-3.3.2-2].
    if (!is_valid_topic_name(w.topic)) {
      return codec_errc::invalid_topic_name;
    }
    if (!r.read_binary(w.payload)) {
      return malformed;
    }
  }
  if (has_user) {
    FIREHOOK_MQTT_TRY(r.read_utf8(c.username.emplace()));
  }
  if (has_password && !r.read_binary(c.password.emplace())) {
    return malformed;
  }
  return expect_end(r);
}

// --- CONNACK ------------------------------------------------------------------------------------

codec_errc from_v3_return_code(std::uint8_t v, reason_code& out) {
  switch (static_cast<connack_return_code_v3>(v)) {
  case connack_return_code_v3::accepted:
    out = reason_code::success;
    return ok;
  case connack_return_code_v3::unacceptable_protocol_version:
    out = reason_code::unsupported_protocol_version;
    return ok;
  case connack_return_code_v3::identifier_rejected:
    out = reason_code::client_identifier_not_valid;
    return ok;
  case connack_return_code_v3::server_unavailable:
    out = reason_code::server_unavailable;
    return ok;
  case connack_return_code_v3::bad_user_name_or_password:
    out = reason_code::bad_user_name_or_password;
    return ok;
  case connack_return_code_v3::not_authorized:
    out = reason_code::not_authorized;
    return ok;
  }
  return codec_errc::invalid_reason_code;
}

codec_errc decode_connack(reader& r, protocol_version v, packet& out) {
  auto& c = out.emplace<connack>();
  std::uint8_t ack_flags = 0;
  if (!r.read_u8(ack_flags)) {
    return malformed;
  }
  if (v == protocol_version::v3_1) {
    // MQTT 3.1 has no Session Present flag: the first byte is reserved and not used.
    std::uint8_t rc = 0;
    if (!r.read_u8(rc)) {
      return malformed;
    }
    FIREHOOK_MQTT_TRY(from_v3_return_code(rc, c.reason));
    return expect_end(r);
  }
  // 3.1.1 section 3.2.2.1 / 5.0 [MQTT-3.2.2-1]: bits 7-1 are reserved and zero.
  if ((ack_flags & 0xFEu) != 0) {
    return malformed;
  }
  c.session_present = (ack_flags & 0x01u) != 0;
  if (v == protocol_version::v3_1_1) {
    std::uint8_t rc = 0;
    if (!r.read_u8(rc)) {
      return malformed;
    }
    FIREHOOK_MQTT_TRY(from_v3_return_code(rc, c.reason));
  } else {
    FIREHOOK_MQTT_TRY(read_reason(r, connack_reasons, c.reason));
    FIREHOOK_MQTT_TRY(decode_properties(r, rules::connack, c.props));
  }
  // 3.1.1 [MQTT-3.2.2-4], 5.0 [MQTT-3.2.2-6]: a refusal never says a session is present.
  if (c.session_present && c.reason != reason_code::success) {
    return codec_errc::protocol_error;
  }
  return expect_end(r);
}

// --- PUBLISH ------------------------------------------------------------------------------------

codec_errc decode_publish(reader& r, std::uint8_t flags, protocol_version v, packet& out) {
  auto& p = out.emplace<publish>();
  const auto q = static_cast<std::uint8_t>((flags >> 1) & 0x03u);
  if (q == 3) {
    return codec_errc::invalid_qos; // [MQTT-3.3.1-4]
  }
  p.qos = static_cast<qos>(q);
  p.dup = (flags & 0x08u) != 0;
  p.retain = (flags & 0x01u) != 0;
  if (p.dup && p.qos == qos::at_most_once) {
    return codec_errc::reserved_flags; // [MQTT-3.3.1-2]
  }
  FIREHOOK_MQTT_TRY(r.read_utf8(p.topic));
  if (p.qos != qos::at_most_once) {
    FIREHOOK_MQTT_TRY(read_packet_id(r, p.packet_id));
  }
  if (v == protocol_version::v5) {
    FIREHOOK_MQTT_TRY(decode_properties(r, rules::publish, p.props));
  }
  if (p.topic.empty()) {
    if (v != protocol_version::v5) {
      return codec_errc::invalid_topic_name; // 3.1.1 [MQTT-4.7.3-1]
    }
    // 5.0 section 3.3.2.1: "It is a Protocol Error if the Topic Name is zero length and there is no
    // Topic Alias." With an alias, the session resolves the name.
    if (!p.props.topic_alias) {
      return codec_errc::protocol_error;
    }
  } else if (has_wildcard(p.topic)) {
    return codec_errc::invalid_topic_name; // [MQTT-3.3.2-2]
  }
  p.payload.assign(r.read_rest());
  return ok;
}

// --- PUBACK, PUBREC, PUBREL, PUBCOMP --------------------------------------------------------------

template <class Ack>
codec_errc decode_ack(reader& r, protocol_version v, const reason_set& reasons, packet& out) {
  auto& a = out.emplace<Ack>();
  FIREHOOK_MQTT_TRY(read_packet_id(r, a.packet_id));
  if (v == protocol_version::v5) {
    // 5.0 section 3.4.2.1: no reason code when the remaining length is 2 (Success); no properties
    // when it is less than 4.
    if (!r.empty()) {
      FIREHOOK_MQTT_TRY(read_reason(r, reasons, a.reason));
    }
    if (!r.empty()) {
      FIREHOOK_MQTT_TRY(decode_properties(r, rules::acknowledgement, a.props));
    }
  }
  return expect_end(r);
}

// --- SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK --------------------------------------------------------

codec_errc read_subscribe_options(std::uint8_t o, protocol_version v, subscribe_options& out) {
  const auto q = static_cast<std::uint8_t>(o & 0x03u);
  if (v != protocol_version::v5) {
    // 3.1.1 [MQTT-3-8.3-4]: reserved bits zero and QoS 0, 1 or 2, or the packet is malformed.
    if ((o & 0xFCu) != 0) {
      return malformed;
    }
    if (q == 3) {
      return codec_errc::invalid_qos;
    }
    out.max_qos = static_cast<qos>(q);
    return ok;
  }
  // 5.0 [MQTT-3.8.3-5]: reserved bits 6 and 7 set make the packet malformed.
  if ((o & 0xC0u) != 0) {
    return malformed;
  }
  const auto rh = static_cast<std::uint8_t>((o >> 4) & 0x03u);
  // 5.0 section 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3" and
  // "It is a Protocol Error to send a Retain Handling value of 3".
  if (q == 3 || rh == 3) {
    return codec_errc::protocol_error;
  }
  out.max_qos = static_cast<qos>(q);
  out.no_local = (o & 0x04u) != 0;
  out.retain_as_published = (o & 0x08u) != 0;
  out.retain_handling = static_cast<retain_handling>(rh);
  return ok;
}

codec_errc decode_subscribe(reader& r, protocol_version v, packet& out) {
  auto& s = out.emplace<subscribe>();
  FIREHOOK_MQTT_TRY(read_packet_id(r, s.packet_id));
  if (v == protocol_version::v5) {
    FIREHOOK_MQTT_TRY(decode_properties(r, rules::subscribe, s.props));
  }
  // 5.0 [MQTT-3.8.3-2] (3.1.1 [MQTT-3.8.3-3]): at least one pair.
  if (r.empty()) {
    return codec_errc::empty_subscription_list;
  }
  while (!r.empty()) {
    auto& sub = s.subscriptions.emplace_back();
    FIREHOOK_MQTT_TRY(r.read_utf8(sub.filter));
    std::uint8_t options = 0;
    if (!r.read_u8(options)) {
      return malformed;
    }
    FIREHOOK_MQTT_TRY(read_subscribe_options(options, v, sub.options));
    if (!is_valid_topic_filter(sub.filter)) {
      return codec_errc::invalid_topic_filter; // [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.8.2-1..2]
    }
    // [MQTT-3.8.3-4]: No Local on a shared subscription is a Protocol Error.
    if (sub.options.no_local && sub.filter.starts_with("$share/")) {
      return codec_errc::protocol_error;
    }
  }
  return ok;
}

codec_errc decode_suback(reader& r, protocol_version v, packet& out) {
  auto& s = out.emplace<suback>();
  FIREHOOK_MQTT_TRY(read_packet_id(r, s.packet_id));
  if (v == protocol_version::v5) {
    FIREHOOK_MQTT_TRY(decode_properties(r, rules::acknowledgement, s.props));
  }
  // One code per subscription of the SUBSCRIBE, which has at least one [MQTT-3.9.3-1].
  if (r.empty()) {
    return malformed;
  }
  const reason_set& allowed = v == protocol_version::v5 ? suback_reasons : suback_reasons_v3;
  while (!r.empty()) {
    FIREHOOK_MQTT_TRY(read_reason(r, allowed, s.reasons.emplace_back()));
  }
  return ok;
}

codec_errc decode_unsubscribe(reader& r, protocol_version v, packet& out) {
  auto& u = out.emplace<unsubscribe>();
  FIREHOOK_MQTT_TRY(read_packet_id(r, u.packet_id));
  if (v == protocol_version::v5) {
    FIREHOOK_MQTT_TRY(decode_properties(r, rules::unsubscribe, u.props));
  }
  // 5.0 [MQTT-3.10.3-2] (3.1.1 [MQTT-3.10.3-2]): at least one filter.
  if (r.empty()) {
    return codec_errc::empty_subscription_list;
  }
  while (!r.empty()) {
    auto& filter = u.filters.emplace_back();
    FIREHOOK_MQTT_TRY(r.read_utf8(filter));
    if (!is_valid_topic_filter(filter)) {
      return codec_errc::invalid_topic_filter;
    }
  }
  return ok;
}

codec_errc decode_unsuback(reader& r, protocol_version v, packet& out) {
  auto& u = out.emplace<unsuback>();
  FIREHOOK_MQTT_TRY(read_packet_id(r, u.packet_id));
  if (v != protocol_version::v5) {
    return expect_end(r);
  }
  FIREHOOK_MQTT_TRY(decode_properties(r, rules::acknowledgement, u.props));
  // 5.0 section 3.11.3: one reason code per topic filter of the UNSUBSCRIBE.
  if (r.empty()) {
    return malformed;
  }
  while (!r.empty()) {
    FIREHOOK_MQTT_TRY(read_reason(r, unsuback_reasons, u.reasons.emplace_back()));
  }
  return ok;
}

// --- DISCONNECT, AUTH ---------------------------------------------------------------------------

codec_errc decode_disconnect(reader& r, protocol_version v, packet& out) {
  auto& d = out.emplace<disconnect>();
  if (v == protocol_version::v5) {
    // 5.0 sections 3.14.2.1 and 3.14.2.2.1: remaining length 0 means Normal disconnection, and
    // below 2 there is no property length.
    if (!r.empty()) {
      FIREHOOK_MQTT_TRY(read_reason(r, disconnect_reasons, d.reason));
    }
    if (!r.empty()) {
      FIREHOOK_MQTT_TRY(decode_properties(r, rules::disconnect, d.props));
    }
  }
  return expect_end(r);
}

codec_errc decode_auth(reader& r, packet& out) {
  auto& a = out.emplace<auth>();
  // 5.0 section 3.15.2.1: reason code and properties may be omitted together (remaining length 0);
  // unlike DISCONNECT there is no form with a reason code alone.
  if (!r.empty()) {
    FIREHOOK_MQTT_TRY(read_reason(r, auth_reasons, a.reason));
    FIREHOOK_MQTT_TRY(decode_properties(r, rules::auth, a.props));
  }
  return expect_end(r);
}

// --- fixed header ---------------------------------------------------------------------------------

// [MQTT-2.2.2-1], [MQTT-2.2.2-2]: the flags of every type but PUBLISH are fixed (table 2-2).
codec_errc check_fixed_flags(packet_type type, std::uint8_t flags, std::optional<protocol_version> v) {
  switch (type) {
  case packet_type::publish:
    return ok; // DUP, QoS, RETAIN: checked with the packet
  case packet_type::pubrel:
  case packet_type::subscribe:
  case packet_type::unsubscribe:
    // MQTT 3.1 told clients to set DUP when they sent these again (3.1 sections 3.6, 3.8, 3.10), so
    // only its QoS bits are fixed there.
    if (v == protocol_version::v3_1) {
      return (flags & 0x07u) == 0x02u ? ok : codec_errc::reserved_flags;
    }
    return flags == 0x02u ? ok : codec_errc::reserved_flags;
  default:
    return flags == 0 ? ok : codec_errc::reserved_flags;
  }
}

codec_errc decode_body(packet_type type, std::uint8_t flags, protocol_version v, reader& r, packet& out) {
  switch (type) {
  case packet_type::connect:
    return decode_connect(r, out);
  case packet_type::connack:
    return decode_connack(r, v, out);
  case packet_type::publish:
    return decode_publish(r, flags, v, out);
  case packet_type::puback:
    return decode_ack<puback>(r, v, puback_reasons, out);
  case packet_type::pubrec:
    return decode_ack<pubrec>(r, v, puback_reasons, out);
  case packet_type::pubrel:
    return decode_ack<pubrel>(r, v, pubrel_reasons, out);
  case packet_type::pubcomp:
    return decode_ack<pubcomp>(r, v, pubrel_reasons, out);
  case packet_type::subscribe:
    return decode_subscribe(r, v, out);
  case packet_type::suback:
    return decode_suback(r, v, out);
  case packet_type::unsubscribe:
    return decode_unsubscribe(r, v, out);
  case packet_type::unsuback:
    return decode_unsuback(r, v, out);
  case packet_type::pingreq:
    out.emplace<pingreq>();
    return expect_end(r);
  case packet_type::pingresp:
    out.emplace<pingresp>();
    return expect_end(r);
  case packet_type::disconnect:
    return decode_disconnect(r, v, out);
  case packet_type::auth:
    return decode_auth(r, out);
  }
  return codec_errc::invalid_packet_type;
}

#undef FIREHOOK_MQTT_TRY

decode_result make_error(codec_errc e) {
  decode_result res;
  res.status = decode_status::error;
  res.error = e;
  return res;
}

} // namespace

decode_result decode(std::span<const std::byte> bytes, std::optional<protocol_version> version,
                     const decode_limits& limits) {
  if (bytes.empty()) {
    return {};
  }
  const auto first = static_cast<std::uint8_t>(bytes[0]);
  const auto type_value = static_cast<std::uint8_t>(first >> 4);
  const auto flags = static_cast<std::uint8_t>(first & 0x0Fu);
  // Everything the first byte can tell is checked before waiting for more.
  if (type_value == 0) {
    return make_error(codec_errc::invalid_packet_type); // reserved (table 2-1)
  }
  const auto type = static_cast<packet_type>(type_value);
  if (!version && type != packet_type::connect) {
    return make_error(codec_errc::protocol_error); // [MQTT-3.1.0-1]
  }
  if (type == packet_type::auth && version != protocol_version::v5) {
    return make_error(codec_errc::invalid_packet_type); // reserved before 5.0
  }
  if (const codec_errc e = check_fixed_flags(type, flags, version); e != ok) {
    return make_error(e);
  }

  std::uint32_t remaining = 0;
  std::size_t length_size = 0;
  switch (wire::parse_variable_byte_integer(bytes.data() + 1, bytes.size() - 1, remaining, length_size)) {
  case wire::vbi_status::need_more:
    return {};
  case wire::vbi_status::invalid:
    return make_error(codec_errc::bad_remaining_length);
  case wire::vbi_status::complete:
    break;
  }
  // The limit applies to the whole packet, fixed header included (5.0 section 3.1.2.11.4), and is
  // enforced now, before the body is waited for and buffered.
  const std::size_t header_size = 1 + length_size;
  const std::size_t total = header_size + remaining;
  if (total > limits.max_packet_size) {
    return make_error(codec_errc::packet_too_large);
  }
  if (bytes.size() < total) {
    return {};
  }

  decode_result res;
  reader body(bytes.subspan(header_size, remaining));
  // Before CONNECT has set the version only CONNECT gets here, which reads its own.
  const protocol_version v = version.value_or(protocol_version::v5);
  if (const codec_errc e = decode_body(type, flags, v, body, res.pkt); e != ok) {
    return make_error(e);
  }
  res.status = decode_status::complete;
  res.consumed = total;
  return res;
}

} // namespace firehook::mqtt

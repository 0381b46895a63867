// Encoding MQTT control packets; the grammar of each is in decode.cpp.
//
// Each packet body is written by one template run twice: with a wire::size_counter to learn the
// remaining length, then with a wire::byte_writer into space appended to the caller's vector once.
// So the fixed header is written first and nothing is shifted or copied twice, and encoded_size()
// is the same computation as encode(). The encoder writes the shortest form the spec allows
// (5.0 acknowledgements and DISCONNECT without reason code or properties when they are Success and
// empty) and leaves out what the version does not have (properties, reason codes before 5.0) and
// properties the packet may not carry.

#include <cassert>

#include "mqtt/codec.hpp"
#include "mqtt/property_codec.hpp"
#include "mqtt/wire.hpp"

namespace firehook::mqtt {
namespace {

using detail::property_list_size;
using detail::put_properties;
namespace rules = detail::rules;

std::uint8_t u8(reason_code rc) {
  return static_cast<std::uint8_t>(rc);
}

template <class Out>
void put(Out& o, const connect& c, protocol_version v) {
  // The version argument decides, not c.version, so that one struct can be sent as any version.
  if (v == protocol_version::v3_1) {
    o.string("MQIsdp");
  } else {
    o.string("MQTT");
  }
  o.u8(static_cast<std::uint8_t>(v));
  unsigned flags = 0;
  if (c.username) {
    flags |= 0x80u;
  }
  if (c.password) {
    flags |= 0x40u;
  }
  if (c.will_message) {
    flags |= 0x04u | (static_cast<unsigned>(c.will_message->qos) << 3);
    if (c.will_message->retain) {
      flags |= 0x20u;
    }
  }
  if (c.clean_start) {
    flags |= 0x02u;
  }
  o.u8(static_cast<std::uint8_t>(flags));
  o.u16(c.keep_alive);
  const bool v5 = v == protocol_version::v5;
  if (v5) {
    put_properties(o, c.props, rules::connect);
  }
  o.string(c.client_id);
  if (c.will_message) {
    if (v5) {
      put_properties(o, c.will_message->props, rules::will);
    }
    o.string(c.will_message->topic);
    o.string(c.will_message->payload);
  }
  if (c.username) {
    o.string(*c.username);
  }
  if (c.password) {
    o.string(*c.password);
  }
}

template <class Out>
void put(Out& o, const connack& c, protocol_version v) {
  switch (v) {
  case protocol_version::v3_1:
    o.u8(0);
    o.u8(static_cast<std::uint8_t>(to_v3_connack(c.reason)));
    break;
  case protocol_version::v3_1_1:
    o.u8(c.session_present ? 1 : 0);
    o.u8(static_cast<std::uint8_t>(to_v3_connack(c.reason)));
    break;
  case protocol_version::v5:
    o.u8(c.session_present ? 1 : 0);
    o.u8(u8(c.reason));
    put_properties(o, c.props, rules::connack);
    break;
  }
}

// `payload_size` stands for the payload when only the header is written (encode_publish_header).
template <class Out>
void put_publish(Out& o, const publish& p, protocol_version v, const std::size_t* payload_size) {
  o.string(p.topic);
  if (p.qos != qos::at_most_once) {
    o.u16(p.packet_id);
  }
  if (v == protocol_version::v5) {
    put_properties(o, p.props, rules::publish);
  }
  if (payload_size == nullptr) {
    o.raw(p.payload);
  } else if constexpr (std::is_same_v<Out, wire::size_counter>) {
    o.skip(*payload_size);
  }
}

template <class Out, class Ack>
void put_ack(Out& o, const Ack& a, protocol_version v) {
  o.u16(a.packet_id);
  if (v != protocol_version::v5) {
    return;
  }
  // 5.0 section 3.4.2.1: the reason code may be left out when it is Success and there are no
  // properties; the property length may be left out when there are none.
  const std::size_t props = property_list_size(a.props, rules::acknowledgement);
  if (props == 0 && a.reason == reason_code::success) {
    return;
  }
  o.u8(u8(a.reason));
  if (props != 0) {
    put_properties(o, a.props, rules::acknowledgement);
  }
}

template <class Out>
void put(Out& o, const puback& a, protocol_version v) {
  put_ack(o, a, v);
}
template <class Out>
void put(Out& o, const pubrec& a, protocol_version v) {
  put_ack(o, a, v);
}
template <class Out>
void put(Out& o, const pubrel& a, protocol_version v) {
  put_ack(o, a, v);
}
template <class Out>
void put(Out& o, const pubcomp& a, protocol_version v) {
  put_ack(o, a, v);
}

template <class Out>
void put(Out& o, const subscribe& s, protocol_version v) {
  o.u16(s.packet_id);
  const bool v5 = v == protocol_version::v5;
  if (v5) {
    put_properties(o, s.props, rules::subscribe);
  }
  for (const subscription& sub : s.subscriptions) {
    o.string(sub.filter);
    auto options = static_cast<unsigned>(sub.options.max_qos);
    if (v5) {
      options |= (sub.options.no_local ? 0x04u : 0u) | (sub.options.retain_as_published ? 0x08u : 0u) |
                 (static_cast<unsigned>(sub.options.retain_handling) << 4);
    }
    o.u8(static_cast<std::uint8_t>(options));
  }
}

template <class Out>
void put(Out& o, const suback& s, protocol_version v) {
  o.u16(s.packet_id);
  const bool v5 = v == protocol_version::v5;
  if (v5) {
    put_properties(o, s.props, rules::acknowledgement);
  }
  for (const reason_code rc : s.reasons) {
    // 3.1.1 knows one failure code, 0x80; the granted QoS values are the same in both versions.
    o.u8(v5 || !is_error(rc) ? u8(rc) : std::uint8_t{0x80});
  }
}

template <class Out>
void put(Out& o, const unsubscribe& u, protocol_version v) {
  o.u16(u.packet_id);
  if (v == protocol_version::v5) {
    put_properties(o, u.props, rules::unsubscribe);
  }
  for (const std::string& filter : u.filters) {
    o.string(filter);
  }
}

template <class Out>
void put(Out& o, const unsuback& u, protocol_version v) {
  o.u16(u.packet_id);
  if (v != protocol_version::v5) {
    return;
  }
  put_properties(o, u.props, rules::acknowledgement);
  for (const reason_code rc : u.reasons) {
    o.u8(u8(rc));
  }
}

template <class Out>
void put(Out&, const pingreq&, protocol_version) {}
template <class Out>
void put(Out&, const pingresp&, protocol_version) {}

template <class Out>
void put(Out& o, const disconnect& d, protocol_version v) {
  if (v != protocol_version::v5) {
    return;
  }
  // 5.0 section 3.14.2.1: no reason code for Normal disconnection without properties; no property
  // length when there are no properties.
  const std::size_t props = property_list_size(d.props, rules::disconnect);
  if (props == 0 && d.reason == reason_code::success) {
    return;
  }
  o.u8(u8(d.reason));
  if (props != 0) {
    put_properties(o, d.props, rules::disconnect);
  }
}

template <class Out>
void put(Out& o, const auth& a, protocol_version v) {
  if (v != protocol_version::v5) {
    return;
  }
  // 5.0 section 3.15.2.1: both may be left out only together.
  if (a.reason == reason_code::success && property_list_size(a.props, rules::auth) == 0) {
    return;
  }
  o.u8(u8(a.reason));
  put_properties(o, a.props, rules::auth);
}

template <class Out>
void put_body(Out& o, const packet& p, protocol_version v) {
  std::visit(
      [&](const auto& pkt) {
        if constexpr (std::is_same_v<std::decay_t<decltype(pkt)>, publish>) {
          put_publish(o, pkt, v, nullptr);
        } else {
          put(o, pkt, v);
        }
      },
      p);
}

std::uint8_t publish_first_byte(const publish& p) {
  unsigned b = 0x30u | (static_cast<unsigned>(p.qos) << 1);
  if (p.dup) {
    b |= 0x08u;
  }
  if (p.retain) {
    b |= 0x01u;
  }
  return static_cast<std::uint8_t>(b);
}

std::uint8_t first_byte(const packet& p) {
  if (const auto* pub = std::get_if<publish>(&p)) {
    return publish_first_byte(*pub);
  }
  const packet_type type = type_of(p);
  // Table 2-2: these three carry 0b0010 in their flags, every other type 0.
  const bool flagged =
      type == packet_type::pubrel || type == packet_type::subscribe || type == packet_type::unsubscribe;
  return static_cast<std::uint8_t>((static_cast<unsigned>(type) << 4) | (flagged ? 0x02u : 0u));
}

// Appends the fixed header for `remaining` bytes of body and space for all of them but the last
// `left_to_caller`; returns where the body goes and sets `appended`.
wire::byte_writer append_packet(std::vector<std::byte>& out, std::uint8_t first, std::size_t remaining,
                                std::size_t left_to_caller, std::size_t& appended) {
  assert(remaining <= wire::max_variable_byte_integer && "packet larger than MQTT can carry");
  const auto rl = static_cast<std::uint32_t>(remaining);
  appended = 1 + wire::variable_byte_integer_size(rl) + remaining - left_to_caller;
  const std::size_t old_size = out.size();
  out.resize(old_size + appended);
  wire::byte_writer w(out.data() + old_size);
  w.u8(first);
  w.variable_byte_integer(rl);
  return w;
}

} // namespace

std::size_t encode(const packet& p, protocol_version version, std::vector<std::byte>& out) {
  wire::size_counter body;
  put_body(body, p, version);
  std::size_t appended = 0;
  wire::byte_writer w = append_packet(out, first_byte(p), body.size(), 0, appended);
  put_body(w, p, version);
  assert(w.position() == out.data() + out.size());
  return appended;
}

std::size_t encode_publish_header(const publish& p, std::size_t payload_size, protocol_version version,
                                  std::vector<std::byte>& out) {
  wire::size_counter body;
  put_publish(body, p, version, &payload_size);
  std::size_t appended = 0;
  wire::byte_writer w = append_packet(out, publish_first_byte(p), body.size(), payload_size, appended);
  put_publish(w, p, version, &payload_size);
  assert(w.position() == out.data() + out.size());
  return appended;
}

std::size_t encoded_size(const packet& p, protocol_version version) {
  wire::size_counter body;
  put_body(body, p, version);
  return 1 + wire::variable_byte_integer_size(static_cast<std::uint32_t>(body.size())) + body.size();
}

} // namespace firehook::mqtt

#pragma once
// Test-only: valid packets of every type for each version, for the round-trip tests and the fuzz seed
// corpus. 5.0 packets carry every property their type allows, so a round trip covers each one.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mqtt/codec.hpp"
#include "mqtt/packet.hpp"

namespace firehook::mqtt::test {

inline std::vector<std::byte> bytes(std::initializer_list<int> values) {
  std::vector<std::byte> out;
  out.reserve(values.size());
  for (const int v : values) {
    out.push_back(static_cast<std::byte>(v));
  }
  return out;
}

inline std::vector<std::byte> bytes(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

inline std::vector<std::byte> concat(std::vector<std::byte> a, const std::vector<std::byte>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

inline std::vector<std::byte> encoded(const packet& p, protocol_version v) {
  std::vector<std::byte> out;
  encode(p, v, out);
  return out;
}

inline user_properties sample_user_properties() {
  return {{"region", "eu-west"}, {"région", "ünïcödé ✓"}, {"region", "repeated key"}, {"", ""}};
}

inline properties will_properties() {
  properties p;
  p.payload_format_indicator = 1;
  p.message_expiry_interval = 3600;
  p.content_type = "text/plain";
  p.response_topic = "replies/device-7";
  p.correlation_data = std::string("\x00\x01\xFF", 3);
  p.will_delay_interval = 30;
  p.user = sample_user_properties();
  return p;
}

inline connect sample_connect(protocol_version v) {
  connect c;
  c.version = v;
  c.clean_start = false;
  c.keep_alive = 60;
  c.client_id = "device-7";
  will w;
  w.topic = "devices/7/status";
  w.payload = std::string("offline\0\xFF", 9);
  w.qos = qos::at_least_once;
  w.retain = true;
  c.username = "device-7";
  c.password = std::string("s3cr\0t", 6);
  if (v == protocol_version::v5) {
    w.props = will_properties();
    c.props.session_expiry_interval = 0xFFFFFFFF;
    c.props.receive_maximum = 20;
    c.props.maximum_packet_size = 1024 * 1024;
    c.props.topic_alias_maximum = 10;
    c.props.request_response_information = 1;
    c.props.request_problem_information = 0;
    c.props.authentication_method = "SCRAM-SHA-256";
    c.props.authentication_data = std::string("n,,n=user,r=\x01\x02", 14);
    c.props.user = sample_user_properties();
  }
  c.will_message = w;
  return c;
}

inline connack sample_connack(protocol_version v) {
  connack c;
  c.session_present = v != protocol_version::v3_1; // 3.1 has no Session Present flag
  if (v == protocol_version::v5) {
    auto& p = c.props;
    p.session_expiry_interval = 120;
    p.receive_maximum = 100;
    p.maximum_qos = 1;
    p.retain_available = 0;
    p.maximum_packet_size = 65536;
    p.assigned_client_identifier = "auto-4f2a";
    p.topic_alias_maximum = 16;
    p.reason_string = "welcome";
    p.user = sample_user_properties();
    p.wildcard_subscription_available = 1;
    p.subscription_identifier_available = 1;
    p.shared_subscription_available = 0;
    p.server_keep_alive = 30;
    p.response_information = "replies/";
    p.server_reference = "other.example:8883";
    p.authentication_method = "SCRAM-SHA-256";
    p.authentication_data = "server-final";
  }
  return c;
}

inline publish sample_publish(protocol_version v, qos q) {
  publish p;
  p.qos = q;
  p.retain = q == qos::at_least_once;
  p.dup = q == qos::exactly_once;
  p.topic = "sensors/room-1/temperature";
  p.packet_id = q == qos::at_most_once ? 0 : 4711;
  p.payload = std::string(64, 'x');
  if (v == protocol_version::v5) {
    p.props = will_properties();
    p.props.will_delay_interval.reset(); // a Will property, not a PUBLISH one
    p.props.topic_alias = 3;
    p.props.subscription_identifiers = {1, 268'435'455, 128};
  }
  return p;
}

template <class Ack>
Ack sample_ack(protocol_version v, reason_code rc) {
  Ack a;
  a.packet_id = 65535;
  if (v == protocol_version::v5) {
    a.reason = rc;
    a.props.reason_string = "see the audit log";
    a.props.user = sample_user_properties();
  }
  return a;
}

inline subscribe sample_subscribe(protocol_version v) {
  subscribe s;
  s.packet_id = 1;
  const bool v5 = v == protocol_version::v5;
  s.subscriptions.push_back(
      {"sensors/+/temperature", {qos::at_most_once, v5, false, retain_handling::send_on_subscribe}});
  s.subscriptions.push_back({"sensors/#",
                             {qos::at_least_once, false, v5,
                              v5 ? retain_handling::send_if_new : retain_handling::send_on_subscribe}});
  s.subscriptions.push_back({"$share/workers/jobs/+",
                             {qos::exactly_once, false, false,
                              v5 ? retain_handling::do_not_send : retain_handling::send_on_subscribe}});
  s.subscriptions.push_back({"#", {}});
  if (v5) {
    s.props.subscription_identifiers = {268'435'455};
    s.props.user = sample_user_properties();
  }
  return s;
}

inline suback sample_suback(protocol_version v) {
  suback s;
  s.packet_id = 1;
  s.reasons = {reason_code::success, reason_code::granted_qos_1, reason_code::granted_qos_2,
               reason_code::unspecified_error};
  if (v == protocol_version::v5) {
    s.reasons.push_back(reason_code::not_authorized);
    s.reasons.push_back(reason_code::wildcard_subscriptions_not_supported);
    s.props.reason_string = "partly granted";
    s.props.user = sample_user_properties();
  }
  return s;
}

inline unsubscribe sample_unsubscribe(protocol_version v) {
  unsubscribe u;
  u.packet_id = 2;
  u.filters = {"sensors/+/temperature", "$share/workers/jobs/+", "a/b/c"};
  if (v == protocol_version::v5) {
    u.props.user = sample_user_properties();
  }
  return u;
}

inline unsuback sample_unsuback(protocol_version v) {
  unsuback u;
  u.packet_id = 2;
  if (v == protocol_version::v5) {
    u.reasons = {reason_code::success, reason_code::no_subscription_existed, reason_code::not_authorized};
    u.props.reason_string = "done";
    u.props.user = sample_user_properties();
  }
  return u;
}

inline disconnect sample_disconnect(protocol_version v) {
  disconnect d;
  if (v == protocol_version::v5) {
    d.reason = reason_code::server_moved;
    d.props.session_expiry_interval = 0;
    d.props.reason_string = "maintenance";
    d.props.server_reference = "other.example";
    d.props.user = sample_user_properties();
  }
  return d;
}

inline auth sample_auth() {
  auth a;
  a.reason = reason_code::continue_authentication;
  a.props.authentication_method = "SCRAM-SHA-256";
  a.props.authentication_data = std::string("c=biws,r=\x00\x01", 11);
  a.props.reason_string = "step 2";
  a.props.user = sample_user_properties();
  return a;
}

// One packet of every type the version has (AUTH only in 5.0), plus the variants worth covering:
// PUBLISH at each QoS, acknowledgements in their short form.
inline std::vector<packet> sample_packets(protocol_version v) {
  std::vector<packet> out;
  out.emplace_back(sample_connect(v));
  out.emplace_back(sample_connack(v));
  out.emplace_back(sample_publish(v, qos::at_most_once));
  out.emplace_back(sample_publish(v, qos::at_least_once));
  out.emplace_back(sample_publish(v, qos::exactly_once));
  out.emplace_back(sample_ack<puback>(v, reason_code::no_matching_subscribers));
  out.emplace_back(sample_ack<pubrec>(v, reason_code::quota_exceeded));
  out.emplace_back(sample_ack<pubrel>(v, reason_code::packet_identifier_not_found));
  out.emplace_back(sample_ack<pubcomp>(v, reason_code::success));
  out.emplace_back(puback{7, {}, {}});
  out.emplace_back(pubrel{8, {}, {}});
  out.emplace_back(sample_subscribe(v));
  out.emplace_back(sample_suback(v));
  out.emplace_back(sample_unsubscribe(v));
  out.emplace_back(sample_unsuback(v));
  out.emplace_back(pingreq{});
  out.emplace_back(pingresp{});
  out.emplace_back(sample_disconnect(v));
  out.emplace_back(disconnect{});
  if (v == protocol_version::v5) {
    out.emplace_back(sample_auth());
    out.emplace_back(auth{});
    out.emplace_back(disconnect{reason_code::disconnect_with_will_message, {}});
    out.emplace_back(puback{9, reason_code::not_authorized, {}});
  }
  return out;
}

inline constexpr protocol_version all_versions[] = {protocol_version::v3_1, protocol_version::v3_1_1,
                                                    protocol_version::v5};

inline std::string_view version_name(protocol_version v) {
  switch (v) {
  case protocol_version::v3_1:
    return "v3_1";
  case protocol_version::v3_1_1:
    return "v3_1_1";
  case protocol_version::v5:
    return "v5";
  }
  return "unknown";
}

inline std::string_view type_name(packet_type t) {
  constexpr std::string_view names[] = {
      "reserved",  "connect", "connack",     "publish",  "puback",  "pubrec",   "pubrel",     "pubcomp",
      "subscribe", "suback",  "unsubscribe", "unsuback", "pingreq", "pingresp", "disconnect", "auth"};
  return names[static_cast<unsigned>(t)];
}

} // namespace firehook::mqtt::test

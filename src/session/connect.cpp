#include "session/connect.hpp"

#include <algorithm>
#include <string_view>

#include "mqtt/topic.hpp"

namespace firehook::session {

namespace {

using mqtt::reason_code;

reason_code check_client_id(const mqtt::connect& c, const limits& lim) {
  if (c.version == mqtt::protocol_version::v3_1) {
    // 3.1: "between 1 and 23 characters".
    if (c.client_id.empty() || c.client_id.size() > 23) {
      return reason_code::client_identifier_not_valid;
    }
  }
  if (c.client_id.empty() && c.version != mqtt::protocol_version::v5 && !c.clean_start) {
    return reason_code::client_identifier_not_valid; // [MQTT-3.1.3-8]
  }
  if (c.client_id.size() > lim.max_client_id_length) {
    return reason_code::client_identifier_not_valid;
  }
  return reason_code::success;
}

reason_code check_will(const mqtt::will& w, mqtt::protocol_version v, const limits& lim) {
  if (v == mqtt::protocol_version::v5) {
    if (static_cast<int>(w.qos) > static_cast<int>(lim.max_qos)) {
      return reason_code::qos_not_supported; // [MQTT-3.2.2-12]
    }
    if (w.retain && !lim.retain_available) {
      return reason_code::retain_not_supported; // [MQTT-3.2.2-13]
    }
  }
  if (!mqtt::is_valid_topic_name(w.topic) || !within_topic_limits(w.topic, lim)) {
    return reason_code::topic_name_invalid;
  }
  if (is_sys_topic(w.topic)) {
    return reason_code::not_authorized;
  }
  return reason_code::success;
}

} // namespace

mqtt::reason_code check_connect(const mqtt::connect& c, const limits& lim) {
  const bool v5 = c.version == mqtt::protocol_version::v5;
  if (v5 && c.props.authentication_method) {
    return reason_code::bad_authentication_method;
  }
  if (const reason_code rc = check_client_id(c, lim); rc != reason_code::success) {
    return rc;
  }
  if (!v5 && lim.max_keep_alive != 0 && c.keep_alive > lim.max_keep_alive) {
    return reason_code::client_identifier_not_valid;
  }
  if (c.will_message) {
    return check_will(*c.will_message, c.version, lim);
  }
  return reason_code::success;
}

will_flags will_as_published(const mqtt::will& w, const limits& lim) {
  return will_flags{std::min(w.qos, lim.max_qos), w.retain && lim.retain_available};
}

mqtt::connack refusal(mqtt::reason_code reason) {
  mqtt::connack ack;
  ack.session_present = false;
  ack.reason = reason;
  return ack;
}

bool within_topic_limits(std::string_view topic, const limits& lim) {
  if (topic.size() > lim.max_topic_length) {
    return false;
  }
  const auto levels = static_cast<std::size_t>(std::count(topic.begin(), topic.end(), '/')) + 1;
  return levels <= lim.max_topic_levels;
}

bool is_sys_topic(std::string_view topic) {
  return topic == "$SYS" || topic.starts_with("$SYS/");
}

} // namespace firehook::session

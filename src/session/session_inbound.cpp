// What the client sends: PUBLISH (QoS 0/1/2, topic aliases), PUBREL, SUBSCRIBE, UNSUBSCRIBE.
#include <algorithm>
#include <chrono>

#include "mqtt/topic.hpp"
#include "session/connect.hpp"
#include "session/error.hpp"
#include "session/session.hpp"

namespace firehook::session {

namespace {

bool above(mqtt::qos a, mqtt::qos b) {
  return static_cast<int>(a) > static_cast<int>(b);
}

mqtt::reason_code granted(mqtt::qos q) {
  return static_cast<mqtt::reason_code>(static_cast<std::uint8_t>(q));
}

} // namespace

void session::on_publish(mqtt::publish&& p) {
  stats_.add(events::stat::messages_received);
  if (!p.props.subscription_identifiers.empty()) {
    fail(session_errc::protocol_error); // only the server sends them [MQTT-3.3.4-6]
    return;
  }
  if (!resolve_topic_alias(p)) {
    return;
  }
  if (above(p.qos, limits_.max_qos)) {
    fail(session_errc::qos_not_supported); // [MQTT-3.2.2-11]
    return;
  }
  if (p.retain && !limits_.retain_available) {
    if (v5()) {
      fail(session_errc::retain_not_supported); // [MQTT-3.2.2-14]
      return;
    }
    p.retain = false; // 3.1.1 has no way to refuse it: routed as not retained
  }
  if (p.qos == mqtt::qos::exactly_once && st_->awaiting_pubrel.contains(p.packet_id)) {
    acknowledge(p.qos, p.packet_id,
                mqtt::reason_code::success); // a resend: PUBREC again, not routed twice [MQTT-4.3.3-9]
    return;
  }
  // QoS 1 is acknowledged at once, so only QoS 2 awaiting PUBREL holds the receive window.
  if (v5() && p.qos != mqtt::qos::at_most_once &&
      st_->awaiting_pubrel.size() >= std::max<std::uint16_t>(limits_.max_inflight, 1)) {
    fail(session_errc::receive_maximum_exceeded); // [MQTT-3.3.4-9]
    return;
  }
  mqtt::reason_code rc = check_publish_topic(p);
  if (rc == mqtt::reason_code::topic_name_invalid && !v5()) {
    fail(session_errc::topic_name_invalid); // 3.1.1 cannot say it in an ack
    return;
  }
  if (rc == mqtt::reason_code::not_authorized || rc == mqtt::reason_code::no_matching_subscribers) {
    // $SYS (check_publish_topic): the broker's own tree, whatever the topics file says.
    stats_.add(events::stat::publishes_denied);
    actions_.push_back(
        publish_refused{p.topic, p.qos, p.retain, false, {"the $SYS tree is the broker's", {}, false}});
  }
  if (!mqtt::is_error(rc) && rc != mqtt::reason_code::no_matching_subscribers &&
      !permitted(p.topic, p.qos, p.retain, false)) {
    if (limits_.disconnect_on_denied_publish) {
      fail(session_errc::not_authorized);
      return;
    }
    rc = mqtt::reason_code::not_authorized; // 5.0: PUBACK/PUBREC 0x87; 3.1.1: acknowledged, dropped
  }
  const mqtt::qos qos = p.qos;
  const std::uint16_t packet_id = p.packet_id;
  if (!mqtt::is_error(rc) && rc != mqtt::reason_code::no_matching_subscribers) {
    route(std::move(p));
  }
  acknowledge(qos, packet_id, rc);
}

bool session::permitted(std::string_view topic, mqtt::qos qos, bool retain, bool will) {
  if (!st_->rights || st_->rights->may_publish(topic, qos, retain)) {
    return true;
  }
  stats_.add(events::stat::publishes_denied);
  actions_.push_back(publish_refused{std::string(topic), qos, retain, will,
                                     st_->rights->explain_publish(topic, qos, retain)});
  return false;
}

bool session::resolve_topic_alias(mqtt::publish& p) {
  if (!p.props.topic_alias) {
    if (p.topic.empty()) {
      fail(session_errc::protocol_error); // [MQTT-3.3.2-?] no topic and no alias
      return false;
    }
    return true;
  }
  const std::uint16_t alias = *p.props.topic_alias;
  p.props.topic_alias.reset();
  if (alias == 0 || alias > limits_.topic_alias_maximum) {
    fail(session_errc::topic_alias_invalid); // [MQTT-3.3.2-8], [MQTT-3.3.2-9]
    return false;
  }
  if (in_aliases_.size() <= alias) {
    in_aliases_.resize(std::size_t{limits_.topic_alias_maximum} + 1);
  }
  if (p.topic.empty()) {
    if (in_aliases_[alias].empty()) {
      fail(session_errc::protocol_error); // an alias never set on this connection
      return false;
    }
    p.topic = in_aliases_[alias];
  } else {
    in_aliases_[alias] = p.topic; // set or replace the mapping [MQTT-3.3.2-12]
  }
  return true;
}

mqtt::reason_code session::check_publish_topic(const mqtt::publish& p) const {
  if (!within_topic_limits(p.topic, limits_)) {
    return mqtt::reason_code::topic_name_invalid;
  }
  if (is_sys_topic(p.topic)) {
    // The broker's own tree. 5.0 says so; 3.1.1 cannot, so the message is acknowledged and
    // dropped (as an ACL denial would be).
    return v5() ? mqtt::reason_code::not_authorized : mqtt::reason_code::no_matching_subscribers;
  }
  return mqtt::reason_code::success;
}

void session::route(mqtt::publish&& p) {
  auto m = std::make_shared<mqtt::message>();
  m->topic = std::move(p.topic);
  m->payload = std::move(p.payload);
  m->qos = p.qos;
  m->retain = p.retain;
  // Properties that travel with the message [MQTT-3.3.2-15..20]; the per-delivery ones (alias,
  // subscription identifiers, expiry) are set on the way out.
  m->props.payload_format_indicator = p.props.payload_format_indicator;
  m->props.content_type = std::move(p.props.content_type);
  m->props.response_topic = std::move(p.props.response_topic);
  m->props.correlation_data = std::move(p.props.correlation_data);
  m->props.user = std::move(p.props.user);
  if (p.props.message_expiry_interval) {
    std::uint32_t expiry = *p.props.message_expiry_interval;
    if (limits_.max_message_expiry != 0) {
      expiry = std::min(expiry, limits_.max_message_expiry);
    }
    m->expires_at = clock_.now() + std::chrono::seconds(expiry);
  }
  m->origin_client_id = st_->client_id;
  actions_.push_back(route_message{std::move(m)});
}

void session::acknowledge(mqtt::qos qos, std::uint16_t packet_id, mqtt::reason_code rc) {
  if (!v5()) {
    rc = mqtt::reason_code::success; // 3.1.1 acks carry no reason code
  }
  if (qos == mqtt::qos::at_least_once) {
    send(mqtt::puback{packet_id, rc, {}});
  } else if (qos == mqtt::qos::exactly_once) {
    if (!mqtt::is_error(rc)) {
      st_->awaiting_pubrel.insert(packet_id); // until PUBREL [MQTT-4.3.3-9]
      persist(); // in the same write as the message: a resend after a restart is not routed twice
    }
    send(mqtt::pubrec{packet_id, rc, {}});
  }
}

void session::forget_awaiting_pubrel(std::uint16_t packet_id) {
  st_->awaiting_pubrel.erase(packet_id); // the owner writes the session's record again
}

void session::on_pubrel(const mqtt::pubrel& p) {
  const bool known = st_->awaiting_pubrel.erase(p.packet_id) > 0;
  if (known) {
    persist();
  }
  mqtt::pubcomp c;
  c.packet_id = p.packet_id; // [MQTT-4.3.3-11]
  if (!known && v5()) {
    c.reason = mqtt::reason_code::packet_identifier_not_found;
  }
  send(std::move(c));
}

mqtt::reason_code session::check_filter(std::string_view filter) const {
  if (!mqtt::is_valid_topic_filter(filter)) {
    return mqtt::reason_code::topic_filter_invalid;
  }
  std::string_view plain = filter;
  if (const auto shared = mqtt::parse_shared_filter(filter)) {
    plain = shared->filter;
  }
  if (!within_topic_limits(plain, limits_) || filter.size() > limits_.max_topic_length) {
    return mqtt::reason_code::topic_filter_invalid;
  }
  return mqtt::reason_code::success;
}

void session::on_subscribe(mqtt::subscribe&& s) {
  for (const auto& sub : s.subscriptions) {
    if (sub.options.no_local && mqtt::parse_shared_filter(sub.filter)) {
      fail(session_errc::protocol_error); // [MQTT-3.8.3-4]
      return;
    }
  }
  std::optional<std::uint32_t> id;
  if (!s.props.subscription_identifiers.empty()) {
    id = s.props.subscription_identifiers.front();
  }
  apply_subscriptions out;
  out.ack.packet_id = s.packet_id; // [MQTT-3.8.4-2]
  out.ack.reasons.reserve(s.subscriptions.size());
  out.decisions.reserve(s.subscriptions.size());
  for (auto& sub : s.subscriptions) {
    mqtt::reason_code rc = check_filter(sub.filter);
    authorizer::explanation why;
    if (rc == mqtt::reason_code::success && st_->rights) {
      why = st_->rights->explain_subscribe(sub.filter);
      if (!why.allowed) {
        stats_.add(events::stat::subscribes_denied);
        rc = mqtt::reason_code::not_authorized; // 3.1.1: 0x80 below
      }
    }
    const auto existing = st_->subscriptions.find(sub.filter);
    const bool existed = existing != st_->subscriptions.end();
    if (rc == mqtt::reason_code::success && !existed &&
        st_->subscriptions.size() >= limits_.max_subscriptions_per_client) {
      rc = mqtt::reason_code::quota_exceeded;
      why.reason = "limits.max_subscriptions_per_client reached";
    }
    if (mqtt::is_error(rc)) {
      if (why.reason.empty()) {
        why.reason = mqtt::to_string(rc);
      }
      out.decisions.push_back(subscribe_decision{sub.filter, rc, std::move(why)});
      out.ack.reasons.push_back(v5() ? rc : mqtt::reason_code::unspecified_error); // 3.1.1: 0x80
      continue;
    }
    mqtt::subscribe_options opts = sub.options;
    opts.max_qos = std::min(opts.max_qos, limits_.max_qos); // [MQTT-3.2.2-9]
    if (!existed && mqtt::parse_shared_filter(sub.filter)) {
      ++st_->shared_subscriptions;
    }
    st_->subscriptions.insert_or_assign(sub.filter, stored_subscription{opts, id}); // [MQTT-3.8.4-3]
    out.ack.reasons.push_back(granted(opts.max_qos));
    out.decisions.push_back(subscribe_decision{sub.filter, granted(opts.max_qos), std::move(why)});
    out.changes.push_back(subscription_change{std::move(sub.filter), opts, id, existed});
  }
  st_->ever_subscribed = st_->ever_subscribed || !out.changes.empty();
  if (!out.changes.empty()) {
    persist();
  }
  actions_.push_back(std::move(out));
}

void session::on_unsubscribe(mqtt::unsubscribe&& u) {
  apply_unsubscriptions out;
  out.ack.packet_id = u.packet_id; // [MQTT-3.10.4-4]
  for (auto& filter : u.filters) {
    mqtt::reason_code rc = mqtt::reason_code::no_subscription_existed;
    if (!mqtt::is_valid_topic_filter(filter)) {
      rc = mqtt::reason_code::topic_filter_invalid;
    } else if (const auto it = st_->subscriptions.find(filter); it != st_->subscriptions.end()) {
      if (mqtt::parse_shared_filter(filter)) {
        --st_->shared_subscriptions;
      }
      st_->subscriptions.erase(it);
      rc = mqtt::reason_code::success;
      out.filters.push_back(std::move(filter));
    }
    if (v5()) {
      out.ack.reasons.push_back(rc); // 3.1.1 UNSUBACK has no payload
    }
  }
  if (!out.filters.empty()) {
    persist();
  }
  actions_.push_back(std::move(out));
}

} // namespace firehook::session

// Session lifecycle: CONNECT/CONNACK, keep alive, will, session expiry, takeover, shutdown.
#include "session/session.hpp"

#include <algorithm>
#include <chrono>

#include "mqtt/codec.hpp"
#include "mqtt/topic.hpp"
#include "session/connect.hpp"
#include "session/error.hpp"

namespace firehook::session {

namespace {

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};

constexpr std::uint32_t never_expires = 0xFFFF'FFFF;

std::chrono::seconds seconds(std::uint32_t s) {
  return std::chrono::seconds(s);
}

} // namespace

session::session(std::unique_ptr<state> st, const limits& lim, const base::clock& clock, counters& stats)
    : st_(std::move(st)), limits_(lim), clock_(clock), stats_(stats) {}

void session::on_connect(const mqtt::connect& c, bool session_present, bool client_id_assigned) {
  version_ = c.version;
  connected_ = true;
  last_received_ = clock_.now();
  will_.reset();
  will_delay_ = 0;
  if (c.will_message) {
    will_ = std::make_unique<mqtt::will>(*c.will_message);
    will_delay_ = will_->props.will_delay_interval.value_or(0);
    const will_flags flags = will_as_published(*will_, limits_); // 3.1.1 only, see check_connect
    will_->qos = flags.qos;
    will_->retain = flags.retain;
  }
  // The client's side of the flow control [MQTT-3.3.4-7], [MQTT-3.1.2-24], [MQTT-3.1.2-26].
  out_window_ = std::max<std::uint16_t>(1, std::min(c.props.receive_maximum.value_or(65'535),
                                                    std::max<std::uint16_t>(limits_.max_inflight, 1)));
  client_max_packet_ = c.props.maximum_packet_size.value_or(0);
  out_alias_max_ = std::min(c.props.topic_alias_maximum.value_or(0), limits_.topic_alias_maximum);
  out_aliases_.clear();
  in_aliases_.clear();

  send(make_connack(c, session_present, client_id_assigned));
  persist();
  if (session_present) {
    resend_inflight();
  }
  pump();
  arm();
}

void session::restore_offline(std::optional<mqtt::will> will, std::uint32_t will_delay) {
  if (will) {
    will_ = std::make_unique<mqtt::will>(std::move(*will));
    will_delay_ = will_delay;
  }
  // As if its connection had just been lost: the broker stopped without a DISCONNECT from it.
  connected_ = true;
  go_offline(true);
}

mqtt::connack session::make_connack(const mqtt::connect& c, bool session_present, bool client_id_assigned) {
  mqtt::connack ack;
  ack.session_present = session_present; // [MQTT-3.2.2-2], [MQTT-3.2.2-3]
  keep_alive_ = c.keep_alive;

  std::uint32_t requested_expiry = 0;
  if (v5()) {
    requested_expiry = c.props.session_expiry_interval.value_or(0);
  } else if (!c.clean_start) {
    requested_expiry = never_expires; // 3.1.1 clean session 0: kept "forever", capped below
  }
  connect_expiry_zero_ = requested_expiry == 0;
  st_->expiry_interval = std::min(requested_expiry, limits_.max_session_expiry);
  if (!v5()) {
    return ack;
  }

  auto& p = ack.props;
  if (st_->expiry_interval != requested_expiry) {
    p.session_expiry_interval = st_->expiry_interval; // the server's value [MQTT-3.2.2-?]
  }
  if (limits_.max_keep_alive != 0 && (c.keep_alive == 0 || c.keep_alive > limits_.max_keep_alive)) {
    keep_alive_ = limits_.max_keep_alive;
    p.server_keep_alive = keep_alive_; // the client must use it [MQTT-3.2.2-21]
  }
  if (client_id_assigned) {
    p.assigned_client_identifier = st_->client_id; // [MQTT-3.2.2-16]
  }
  if (limits_.max_inflight < 65'535) {
    p.receive_maximum = std::max<std::uint16_t>(limits_.max_inflight, 1);
  }
  if (limits_.max_qos != mqtt::qos::exactly_once) {
    p.maximum_qos = static_cast<std::uint8_t>(limits_.max_qos);
  }
  p.retain_available = limits_.retain_available ? 1 : 0;
  p.maximum_packet_size = limits_.max_packet_size;
  if (limits_.topic_alias_maximum > 0) {
    p.topic_alias_maximum = limits_.topic_alias_maximum;
  }
  p.wildcard_subscription_available = 1;
  p.subscription_identifier_available = 1;
  p.shared_subscription_available = 1;
  if (c.props.request_response_information.value_or(0) == 1) {
    // The prefix a requester may use for its response topics; no access control enforces it yet.
    p.response_information = "firehook/response/" + st_->client_id;
  }
  return ack;
}

void session::on_packet(mqtt::packet&& p) {
  if (!connected_) {
    return; // after our own close, the rest of what was read is ignored
  }
  last_received_ = clock_.now();
  handling_ = mqtt::type_of(p);
  std::visit(overloaded{
                 [&](mqtt::publish& x) { on_publish(std::move(x)); },
                 [&](mqtt::puback& x) { on_puback(x); },
                 [&](mqtt::pubrec& x) { on_pubrec(x); },
                 [&](mqtt::pubrel& x) { on_pubrel(x); },
                 [&](mqtt::pubcomp& x) { on_pubcomp(x); },
                 [&](mqtt::subscribe& x) { on_subscribe(std::move(x)); },
                 [&](mqtt::unsubscribe& x) { on_unsubscribe(std::move(x)); },
                 [&](mqtt::pingreq&) { send(mqtt::pingresp{}); },
                 [&](mqtt::disconnect& x) { on_disconnect(x); },
                 // A second CONNECT [MQTT-3.1.0-2]; AUTH without an authentication method
                 // [MQTT-4.12.0-?]; packets only a server sends.
                 [&](auto&) { fail(session_errc::protocol_error); },
             },
             p);
  handling_.reset();
}

void session::on_disconnect(const mqtt::disconnect& d) {
  if (v5() && d.props.session_expiry_interval) {
    if (connect_expiry_zero_ && *d.props.session_expiry_interval != 0) {
      fail(session_errc::protocol_error); // [MQTT-3.14.2-2]
      return;
    }
    st_->expiry_interval = std::min(*d.props.session_expiry_interval, limits_.max_session_expiry);
  }
  // A normal DISCONNECT discards the will [MQTT-3.14.4-3], unless it asks for it (0x04).
  const bool with_will = v5() && d.reason == mqtt::reason_code::disconnect_with_will_message;
  actions_.push_back(
      close_connection{session_errc::normal_disconnection, true, mqtt::packet_type::disconnect});
  go_offline(with_will);
}

void session::on_connection_lost() {
  if (connected_) {
    go_offline(true);
  }
}

void session::on_decode_error(std::error_code ec) {
  fail(ec);
}

void session::fail(std::error_code ec) {
  close(ec, true);
}

void session::close(std::error_code ec, bool publish_will_now) {
  if (!connected_) {
    return;
  }
  // 3.1.1 has no DISCONNECT from the server: the connection is just closed.
  if (v5()) {
    send_disconnect(to_reason_code(ec));
  }
  actions_.push_back(close_connection{ec, true, handling_});
  go_offline(publish_will_now);
}

void session::go_offline(bool with_will) {
  connected_ = false;
  set_congested(false);
  out_aliases_.clear();
  in_aliases_.clear();
  const time_point now = clock_.now();
  if (with_will && will_) {
    if (will_delay_ == 0 || st_->expiry_interval == 0) {
      publish_will();
    } else {
      will_due_ = now + seconds(will_delay_); // or the session's end, if earlier [MQTT-3.1.3-9]
    }
  } else {
    will_.reset();
  }
  if (st_->expiry_interval == 0) {
    end();
    return;
  }
  trim_to_bounds();
  persist(); // the will is gone, or due later; the expiry may have changed (DISCONNECT)
  if (st_->expiry_interval != never_expires) {
    expiry_due_ = now + seconds(st_->expiry_interval);
  }
  arm();
}

void session::publish_will() {
  if (!will_) {
    return;
  }
  // Checked at CONNECT, and again now: the rights may have changed since (a topics reload).
  if (!permitted(will_->topic, will_->qos, will_->retain, true)) {
    will_.reset();
    will_due_.reset();
    return;
  }
  auto m = std::make_shared<mqtt::message>();
  m->topic = std::move(will_->topic);
  m->payload = std::move(will_->payload);
  m->qos = will_->qos;
  m->retain = will_->retain;
  const mqtt::properties& wp = will_->props;
  m->props.payload_format_indicator = wp.payload_format_indicator;
  m->props.content_type = wp.content_type;
  m->props.response_topic = wp.response_topic;
  m->props.correlation_data = wp.correlation_data;
  m->props.user = wp.user;
  if (wp.message_expiry_interval) {
    std::uint32_t expiry = *wp.message_expiry_interval;
    if (limits_.max_message_expiry != 0) {
      expiry = std::min(expiry, limits_.max_message_expiry);
    }
    m->expires_at = clock_.now() + seconds(expiry);
  }
  m->origin_client_id = st_->client_id;
  will_.reset();
  will_due_.reset();
  actions_.push_back(route_message{std::move(m), true});
}

void session::end() {
  publish_will(); // a will still waiting for its delay goes now [MQTT-3.1.3-9]
  will_due_.reset();
  expiry_due_.reset();
  ended_ = true;
  actions_.push_back(session_ended{});
}

void session::on_timer() {
  if (ended_) {
    return;
  }
  const time_point now = clock_.now();
  if (armed_ && *armed_ <= now) {
    armed_.reset();
  }
  if (connected_ && keep_alive_ != 0) {
    // 1.5 x Keep Alive without a packet [MQTT-3.1.2-22].
    const auto limit = std::chrono::milliseconds(std::uint64_t{keep_alive_} * 1500);
    if (now - last_received_ >= limit) {
      fail(session_errc::keep_alive_timeout);
    }
  }
  if (connected_ && congested_ && now - progress_at_ >= limits_.slow_subscriber_timeout) {
    fail(session_errc::slow_subscriber);
  }
  if (will_due_ && *will_due_ <= now) {
    publish_will();
  }
  if (expiry_due_ && *expiry_due_ <= now) {
    end();
    return;
  }
  arm();
}

std::optional<base::time_point> session::next_deadline() const {
  std::optional<time_point> next;
  const auto consider = [&](std::optional<time_point> t) {
    if (t && (!next || *t < *next)) {
      next = t;
    }
  };
  if (connected_ && keep_alive_ != 0) {
    consider(last_received_ + std::chrono::milliseconds(std::uint64_t{keep_alive_} * 1500));
  }
  if (connected_ && congested_) {
    consider(progress_at_ + limits_.slow_subscriber_timeout);
  }
  consider(will_due_);
  consider(expiry_due_);
  return next;
}

void session::arm() {
  // Only an earlier deadline needs a new timer: a later one is found when the armed one fires,
  // so keep alive costs one timer per 1.5 x Keep Alive, not one per packet.
  const auto next = next_deadline();
  if (next && (!armed_ || *next < *armed_)) {
    armed_ = next;
    actions_.push_back(arm_timer{*next});
  }
}

void session::take_over(bool resumed) {
  if (connected_) {
    if (v5()) {
      send_disconnect(mqtt::reason_code::session_taken_over); // [MQTT-3.1.4-3]
    }
    actions_.push_back(close_connection{session_errc::session_taken_over, true, std::nullopt});
    connected_ = false;
    set_congested(false); // the new connection starts with a fresh backlog
    // The old connection ended without DISCONNECT: its will is due, unless its delay lets the
    // resumed session cancel it [MQTT-3.1.3-9].
    if (will_ && (!resumed || will_delay_ == 0)) {
      publish_will();
    }
  } else if (will_due_ && !resumed) {
    publish_will(); // the session ends before the delay [MQTT-3.1.3-9]
  }
  will_.reset();
  will_due_.reset();
  expiry_due_.reset();
  if (!resumed) {
    ended_ = true;
    actions_.push_back(session_ended{});
  }
}

void session::publish_will_now() {
  if (connected_) {
    publish_will();
  }
}

void session::shut_down() {
  close(session_errc::server_shutting_down, true);
}

void session::end_connection(mqtt::reason_code reason) {
  if (!connected_) {
    return;
  }
  if (v5()) {
    send_disconnect(reason);
  }
  session_errc why = session_errc::administrative_action;
  if (reason == mqtt::reason_code::maximum_connect_time) {
    why = session_errc::maximum_connect_time;
  } else if (reason == mqtt::reason_code::message_rate_too_high) {
    why = session_errc::message_rate_too_high;
  }
  actions_.push_back(close_connection{why, true, std::nullopt});
  go_offline(true);
}

void session::set_rights(std::shared_ptr<const authorizer> rights) {
  st_->rights = std::move(rights);
}

std::vector<std::string> session::recheck_subscriptions() {
  std::vector<std::string> revoked;
  if (!st_->rights) {
    return revoked;
  }
  for (auto it = st_->subscriptions.begin(); it != st_->subscriptions.end();) {
    if (st_->rights->may_subscribe(it->first)) {
      ++it;
      continue;
    }
    if (mqtt::parse_shared_filter(it->first)) {
      --st_->shared_subscriptions;
    }
    revoked.push_back(it->first);
    it = st_->subscriptions.erase(it);
  }
  if (!revoked.empty()) {
    persist();
    stats_.add(events::stat::subscriptions_revoked, revoked.size());
    apply_unsubscriptions out;
    out.filters = revoked;
    out.acknowledge = false;
    actions_.push_back(std::move(out));
  }
  return revoked;
}

std::unique_ptr<state> session::release_state() {
  return std::move(st_);
}

void session::send(mqtt::packet p) {
  actions_.push_back(send_packet{std::move(p)});
}

void session::send_disconnect(mqtt::reason_code reason) {
  mqtt::disconnect d;
  d.reason = reason;
  // A Reason String naming the reason, for the client's logs. Besides, clients that read the
  // reason code of a DISCONNECT only when properties follow it (paho-mqtt 1.x) see it then.
  // Left out when it would take the packet past the client's Maximum Packet Size [MQTT-3.14.2-3].
  d.props.reason_string = std::string(mqtt::to_string(reason));
  if (client_max_packet_ != 0 && mqtt::encoded_size(d, version_) > client_max_packet_) {
    d.props.reason_string.reset();
  }
  send(std::move(d));
}

} // namespace firehook::session

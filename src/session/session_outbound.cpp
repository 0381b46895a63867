// What the broker sends the client: deliveries, the inflight window, the queue, outbound QoS 1/2
// flows, topic aliases, Maximum Packet Size.
#include <algorithm>
#include <chrono>
#include <limits>
#include <utility>

#include "mqtt/codec.hpp"
#include "session/session.hpp"

namespace firehook::session {

namespace {

// Whole seconds left, rounded up so that a message sent at once keeps its full interval.
std::uint32_t remaining_seconds(base::time_point expires_at, base::time_point now) {
  if (expires_at <= now) {
    return 0;
  }
  const auto left = std::chrono::ceil<std::chrono::seconds>(expires_at - now).count();
  return static_cast<std::uint32_t>(std::min<std::int64_t>(left, std::numeric_limits<std::uint32_t>::max()));
}

} // namespace

std::uint64_t footprint(const delivery& d) {
  return sizeof(delivery) + mqtt::footprint(*d.message) + d.subscription_ids.size() * sizeof(std::uint32_t);
}

bool session::expired(const mqtt::message& m) {
  if (m.expires_at && *m.expires_at <= clock_.now()) {
    stats_.add(events::stat::messages_expired);
    return true;
  }
  return false;
}

void session::drop(bool too_large) {
  stats_.add(events::stat::messages_dropped);
  stats_.add(too_large ? events::stat::messages_dropped_too_large : events::stat::messages_dropped_queue_full);
  ++(too_large ? dropped_.too_large : dropped_.over_bound);
  if (!drops_reported_) {
    drops_reported_ = true;
    actions_.push_back(messages_dropped{});
  }
}

session::dropped_counts session::take_dropped() {
  drops_reported_ = false;
  return std::exchange(dropped_, dropped_counts{});
}

bool session::deliverable(const delivery& d) {
  if (!st_->rights || st_->rights->may_receive(d.message->topic)) {
    return true;
  }
  stats_.add(events::stat::deliveries_withheld); // e.g. "#" granted beside a denied "internal/#", or a reload
  return false;
}

bool session::fits(std::uint64_t bytes, std::size_t backlog) const {
  const std::uint64_t held = backlog + st_->queued_bytes + st_->inflight_bytes;
  if (held == 0 && connected_) {
    return true; // a client with nothing outstanding always gets the next message
  }
  return held + bytes <= limits_.max_queued_bytes;
}

void session::deliver(delivery&& d, std::size_t backlog) {
  accept(std::move(d), backlog, true);
}

void session::deliver_retained(const mqtt::message_ptr& m, const subscription_change& sub,
                               std::size_t backlog) {
  delivery d;
  d.message = m;
  d.qos = std::min(m->qos, sub.options.max_qos);
  d.retain = true; // [MQTT-3.3.1-9]
  if (sub.identifier) {
    d.subscription_ids.push_back(*sub.identifier);
  }
  accept(std::move(d), backlog, false);
}

bool session::queue_full(std::uint64_t bytes, std::size_t backlog) const {
  return !fits(bytes, backlog) || st_->queue.size() >= limits_.max_queued_messages;
}

void session::accept(delivery&& d, std::size_t backlog, bool live) {
  if (ended_ || expired(*d.message) || !deliverable(d)) { // [MQTT-3.3.2-5]
    discard(d);
    return;
  }
  if (d.qos == mqtt::qos::at_most_once && !connected_) {
    return; // QoS 0 is not kept for an offline session (policy, see session.hpp)
  }
  const std::uint64_t bytes = footprint(d);
  if (d.qos == mqtt::qos::at_most_once) {
    if (fits(bytes, backlog)) {
      send_delivery(d, false, 0);
    } else {
      drop(false);
    }
    return;
  }
  const bool window_open = connected_ && st_->queue.empty() && st_->inflight.size() < out_window_;
  if (window_open && fits(bytes, backlog)) {
    start_inflight(std::move(d), bytes);
    return;
  }
  if (queue_full(bytes, backlog)) {
    if (connected_ && live) {
      set_congested(true); // taken all the same: its publisher was acknowledged
    } else if (connected_ || !make_room(bytes)) {
      drop(false);
      discard(d);
      return;
    }
  }
  if (window_open) {
    start_inflight(std::move(d), bytes);
  } else {
    enqueue(std::move(d), bytes);
  }
}

void session::enqueue(delivery&& d, std::uint64_t bytes) {
  st_->queued_bytes += bytes;
  st_->queue.push_back(std::move(d));
}

bool session::make_room(std::uint64_t bytes) {
  if (limits_.queue_overflow == overflow_policy::drop_newest || limits_.max_queued_messages == 0 ||
      st_->inflight_bytes + bytes > limits_.max_queued_bytes) {
    return false; // giving up the queue would not make room for it
  }
  while (!st_->queue.empty() && queue_full(bytes, 0)) {
    st_->queued_bytes -= footprint(st_->queue.front());
    discard(st_->queue.front());
    st_->queue.pop_front();
    drop(false);
  }
  return !queue_full(bytes, 0);
}

void session::discard(const delivery& d) {
  if (d.stored != 0) {
    actions_.push_back(stored_released{d.stored});
  }
}

void session::persist() {
  if (st_->expiry_interval != 0) {
    actions_.push_back(persist_session{});
  }
}

void session::progress() {
  if (congested_) {
    progress_at_ = clock_.now(); // the slow_subscriber_timeout starts again
  }
}

void session::set_congested(bool on) {
  if (congested_ == on) {
    return;
  }
  congested_ = on;
  actions_.push_back(congestion_changed{on});
  if (on) {
    progress_at_ = clock_.now();
    arm(); // the slow_subscriber_timeout deadline
  }
}

void session::trim_to_bounds() {
  while (!st_->queue.empty() && (st_->queue.size() > limits_.max_queued_messages ||
                                 st_->queued_bytes + st_->inflight_bytes > limits_.max_queued_bytes)) {
    if (limits_.queue_overflow == overflow_policy::drop_newest) {
      st_->queued_bytes -= footprint(st_->queue.back());
      discard(st_->queue.back());
      st_->queue.pop_back();
    } else {
      st_->queued_bytes -= footprint(st_->queue.front());
      discard(st_->queue.front());
      st_->queue.pop_front();
    }
    drop(false);
  }
}

void session::relieve(std::size_t backlog) {
  if (!congested_) {
    return;
  }
  const std::uint64_t held = backlog + st_->queued_bytes + st_->inflight_bytes;
  if (st_->queue.size() <= limits_.max_queued_messages / 2 && held <= limits_.max_queued_bytes / 2) {
    set_congested(false);
  }
}

void session::pump() {
  while (connected_ && !st_->queue.empty() && st_->inflight.size() < out_window_) {
    delivery d = std::move(st_->queue.front());
    st_->queue.pop_front();
    const std::uint64_t bytes = footprint(d);
    st_->queued_bytes -= bytes;
    // Checked again on the way out: the rights may have changed while it waited (a reload).
    if (!expired(*d.message) && deliverable(d)) {
      start_inflight(std::move(d), bytes);
    } else {
      discard(d);
    }
  }
}

void session::start_inflight(delivery&& d, std::uint64_t bytes) {
  if (st_->inflight.size() >= 65'535) {
    enqueue(std::move(d), bytes); // every packet identifier is in use
    return;
  }
  const std::uint16_t id = next_packet_id();
  // Ahead of its PUBLISH: the owner holds the PUBLISH back until this record is on disk.
  const bool recorded = d.stored != 0 && d.qos == mqtt::qos::exactly_once;
  const std::size_t record_at = actions_.size();
  if (recorded) {
    actions_.push_back(stored_in_flight{d.stored, id, false, d});
  }
  if (!send_delivery(d, false, id)) {
    if (recorded) {
      actions_.erase(actions_.begin() + static_cast<std::ptrdiff_t>(record_at));
    }
    discard(d); // too large for the client: dropped as if delivered [MQTT-3.1.2-25]
    return;
  }
  st_->inflight.emplace(id, inflight_message{std::move(d), false, st_->next_order++, bytes});
  st_->inflight_bytes += bytes;
}

void session::forget_inflight(std::unordered_map<std::uint16_t, inflight_message>::iterator it) {
  discard(it->second.what);
  st_->inflight_bytes -= it->second.bytes;
  st_->inflight.erase(it); // the identifier is free again [MQTT-4.3.2-?]
}

std::uint16_t session::next_packet_id() {
  // Never 0, never one still in flight [MQTT-2.2.1-3]. The caller made sure one is free.
  do {
    ++st_->last_packet_id;
    if (st_->last_packet_id == 0) {
      st_->last_packet_id = 1;
    }
  } while (st_->inflight.contains(st_->last_packet_id));
  return st_->last_packet_id;
}

bool session::send_delivery(const delivery& d, bool dup, std::uint16_t packet_id) {
  std::uint16_t new_alias = 0;
  auto header = make_publish(d, dup, packet_id, new_alias);
  if (!header) {
    drop(true);
    return false;
  }
  if (new_alias != 0) {
    out_aliases_.emplace(d.message->topic, new_alias);
  }
  stats_.add(events::stat::messages_sent);
  actions_.push_back(send_publish{std::move(*header), d.message});
  return true;
}

std::optional<mqtt::publish> session::make_publish(const delivery& d, bool dup, std::uint16_t packet_id,
                                                   std::uint16_t& new_alias) {
  const mqtt::message& m = *d.message;
  mqtt::publish p;
  p.dup = dup;
  p.qos = d.qos;
  p.retain = d.retain;
  p.packet_id = packet_id;
  if (!v5()) {
    p.topic = m.topic;
    return p;
  }
  p.props.payload_format_indicator = m.props.payload_format_indicator;
  p.props.content_type = m.props.content_type;
  p.props.response_topic = m.props.response_topic;
  p.props.correlation_data = m.props.correlation_data;
  p.props.user = m.props.user; // in the order received [MQTT-3.3.2-18]
  p.props.subscription_identifiers = d.subscription_ids;
  if (m.expires_at) {
    p.props.message_expiry_interval = remaining_seconds(*m.expires_at, clock_.now()); // [MQTT-3.3.2-6]
  }
  if (const auto it = out_aliases_.find(m.topic); it != out_aliases_.end()) {
    p.props.topic_alias = it->second;
  } else {
    p.topic = m.topic;
    if (out_aliases_.size() < out_alias_max_) {
      new_alias = static_cast<std::uint16_t>(out_aliases_.size() + 1);
      p.props.topic_alias = new_alias;
    }
  }
  if (too_large_for_client(p, m.payload.size())) {
    new_alias = 0;
    return std::nullopt;
  }
  return p;
}

bool session::too_large_for_client(const mqtt::publish& header, std::size_t payload_size) {
  if (client_max_packet_ == 0) {
    return false;
  }
  scratch_.clear();
  const std::size_t size =
      mqtt::encode_publish_header(header, payload_size, version_, scratch_) + payload_size;
  return size > client_max_packet_; // [MQTT-3.1.2-24]
}

void session::resend_inflight() {
  std::vector<std::pair<std::uint64_t, std::uint16_t>> order;
  order.reserve(st_->inflight.size());
  for (const auto& [id, entry] : st_->inflight) {
    order.emplace_back(entry.order, id);
  }
  std::sort(order.begin(), order.end());
  // The original order, PUBLISH with DUP 1 or PUBREL [MQTT-4.4.0-1], [MQTT-4.6.0-1].
  for (const auto& [unused, id] : order) {
    auto it = st_->inflight.find(id);
    if (it->second.released) {
      send(mqtt::pubrel{id, mqtt::reason_code::success, {}});
    } else if (!deliverable(it->second.what) || !send_delivery(it->second.what, true, id)) {
      forget_inflight(it); // no longer readable (a reload), or too large for the new connection
    }
  }
}

void session::on_puback(const mqtt::puback& p) {
  const auto it = st_->inflight.find(p.packet_id);
  if (it == st_->inflight.end() || it->second.what.qos != mqtt::qos::at_least_once) {
    return; // unknown: nothing to complete
  }
  progress();
  forget_inflight(it);
  pump();
}

void session::on_pubrec(const mqtt::pubrec& p) {
  const auto it = st_->inflight.find(p.packet_id);
  if (it == st_->inflight.end() || it->second.what.qos != mqtt::qos::exactly_once) {
    mqtt::pubrel rel;
    rel.packet_id = p.packet_id;
    if (v5()) {
      rel.reason = mqtt::reason_code::packet_identifier_not_found;
    }
    send(std::move(rel));
    return;
  }
  progress();
  if (mqtt::is_error(p.reason)) {
    forget_inflight(it); // the receiver ended the flow [MQTT-4.3.3-?]
    pump();
    return;
  }
  it->second.released = true;
  it->second.what.message.reset(); // PUBREL needs only the identifier; `stored` stays until PUBCOMP
  if (it->second.what.stored != 0) {
    actions_.push_back(stored_in_flight{it->second.what.stored, p.packet_id, true, it->second.what});
  }
  st_->inflight_bytes -= it->second.bytes;
  it->second.bytes = 0;
  send(mqtt::pubrel{p.packet_id, mqtt::reason_code::success, {}}); // [MQTT-4.3.3-4]
}

void session::on_pubcomp(const mqtt::pubcomp& p) {
  const auto it = st_->inflight.find(p.packet_id);
  if (it == st_->inflight.end() || !it->second.released) {
    return;
  }
  progress();
  forget_inflight(it);
  pump();
}

} // namespace firehook::session

// Backpressure: congested subscribers slow the publishers that feed them (docs/broker.md, "Flow
// control").
//
// A session that live QoS 1/2 deliveries take past its bounds keeps them (its publishers were
// acknowledged, or are about to be) and says it is congested. Every replica learns it
// (congestion_update, ordered by registry epoch). A publisher whose QoS 1/2 message then reaches
// a congested subscriber, on any shard, is slowed: its PUBACK/PUBREC wait, in order, and its later
// packets are held (reading pauses once its Receive Maximum of them wait), so that the client
// feels it through its own inflight window and TCP. What it receives goes on, and so do the
// acknowledgements it sends for that, so two clients feeding each other do not lock up. When the
// subscriber is back under half its bounds, goes offline or ends, its publishers are released.
// Other publishers, subscribers and shards are not slowed.
#include <algorithm>
#include <utility>

#include "broker/shard.hpp"

namespace firehook::broker {

void shard::congestion_changed(subscriber_id sid, const session_slot& slot, bool congested) {
  if (congested) {
    counters_.add(events::stat::subscribers_congested);
    if (std::find(congested_.begin(), congested_.end(), sid) == congested_.end()) {
      congested_.push_back(sid);
    }
  }
  apply_congestion(sid, congested, slot.epoch);
  broadcast(message::congestion_update{sid, congested, slot.epoch});
}

void shard::apply_congestion(subscriber_id sid, bool congested, std::uint64_t epoch) {
  replica_.set_congested(sid, congested, epoch);
  if (!replica_.congested(sid)) {
    release_publishers(sid);
  }
}

void shard::slow_publisher(subscriber_id publisher) {
  auto [it, inserted] = held_.try_emplace(publisher);
  if (it->second.waiting_on.empty()) {
    counters_.add(events::stat::publishers_slowed);
  }
  auto& waiting = it->second.waiting_on;
  for (const subscriber_id s : congested_targets_) {
    if (std::find(waiting.begin(), waiting.end(), s) == waiting.end()) {
      waiting.push_back(s);
    }
  }
  congested_targets_.clear();
}

void shard::release_publishers(subscriber_id relieved) {
  std::vector<subscriber_id> ready;
  for (auto& [publisher, h] : held_) {
    if (std::erase(h.waiting_on, relieved) != 0 && h.waiting_on.empty()) {
      ready.push_back(publisher);
    }
  }
  for (const subscriber_id publisher : ready) {
    release_acks(publisher);
  }
}

void shard::release_acks(subscriber_id publisher) {
  const auto it = held_.find(publisher);
  if (it == held_.end() || !it->second.waiting_on.empty()) {
    return;
  }
  const auto s = sessions_.find(publisher);
  if (s == sessions_.end() || !s->second.conn) {
    held_.erase(it);
    return;
  }
  auto& acks = it->second.acks;
  const connection_id conn = *s->second.conn;
  while (!acks.empty() && acks.front().generation <= committed_generation_) {
    if (acks.front().send) {
      send_packet(conn, s->second.s->version(), acks.front().packet);
    }
    acks.pop_front();
  }
  if (acks.empty()) {
    held_.erase(it);
  }
  replay_held(conn); // may slow it again
}

bool shard::withhold(subscriber_id sid, mqtt::packet& p) {
  if (!std::holds_alternative<mqtt::puback>(p) && !std::holds_alternative<mqtt::pubrec>(p)) {
    return false;
  }
  // The message this acknowledges went into this turn's store batch: the ack waits for its commit.
  const std::uint64_t generation =
      std::exchange(ack_waits_for_, 0) == sid && broker_.acknowledge_after_write() ? open_generation_ : 0;
  auto it = held_.find(sid);
  if (it == held_.end()) {
    if (generation == 0) {
      return false;
    }
    it = held_.try_emplace(sid).first;
  }
  it->second.acks.push_back(
      pending_ack{std::move(p), generation, true}); // [MQTT-4.6.0-2], [MQTT-4.6.0-3]: in order
  return true;
}

bool shard::passes_while_slowed(const mqtt::packet& p) {
  // Answers to what the broker sent, which free its session's window: independent of the
  // client's own flows. PUBREL is not among them: it must follow its PUBLISH.
  return std::holds_alternative<mqtt::puback>(p) || std::holds_alternative<mqtt::pubrec>(p) ||
         std::holds_alternative<mqtt::pubcomp>(p) || std::holds_alternative<mqtt::pingreq>(p);
}

std::size_t shard::hold_bound() const {
  // A 5.0 publisher has at most Receive Maximum unacknowledged QoS 1/2 PUBLISH packets out, and
  // theirs are withheld: reading on up to that many costs nothing a compliant client would not
  // send anyway; a 3.1.1 client or a QoS 0 flood is paused there.
  return std::max<std::size_t>(limits_.max_inflight, 1);
}

void shard::relieve_congested() {
  // The connection writes on between the client's packets: a congested session whose backlog
  // drained is relieved here. Sessions that were relieved, went offline or ended leave the list.
  std::vector<subscriber_id> check = std::move(congested_);
  congested_.clear();
  for (const subscriber_id sid : check) {
    const auto it = sessions_.find(sid);
    if (it == sessions_.end() || !it->second.s->congested()) {
      continue;
    }
    it->second.s->relieve(backlog(it->second));
    run_actions(sid);
    const auto again = sessions_.find(sid);
    if (again != sessions_.end() && again->second.s->congested() &&
        std::find(congested_.begin(), congested_.end(), sid) == congested_.end()) {
      congested_.push_back(sid);
    }
  }
}

bool shard::over_rate(connection_id id, connection& c, const mqtt::packet& p) {
  using kind = security::client_rate::kind;
  kind k = kind::publish;
  std::uint64_t bytes = 0;
  if (const auto* pub = std::get_if<mqtt::publish>(&p)) {
    bytes = pub->topic.size() + pub->payload.size();
  } else if (std::holds_alternative<mqtt::subscribe>(p) || std::holds_alternative<mqtt::unsubscribe>(p)) {
    k = kind::subscribe;
  } else {
    return false;
  }
  const base::time_point now = clock_.now();
  const bool was_over = c.rate.over_since().has_value();
  const auto until = c.rate.admit(k, bytes, now);
  if (!until) {
    return false;
  }
  const std::string_view key = k == kind::publish ? "limits.publish_rate" : "limits.subscribe_rate";
  if (!was_over) {
    counters_.add(events::stat::clients_rate_limited);
    const auto slot = sessions_.find(c.sid);
    events::event e = slot != sessions_.end() ? session_event(events::event_type::limit_reached, slot->second)
                                              : event_of(events::event_type::limit_reached, c);
    e.verdict = events::decision::deny;
    e.subject = std::string(key);
    e.reason = k == kind::publish ? "over its publish rate: held back" : "over its subscribe rate: held back";
    events_.emit(std::move(e));
  } else if (now - *c.rate.over_since() >= broker_.cfg().limits.rate_limit_timeout) {
    counters_.add(events::stat::rate_limit_disconnects);
    disconnect(id, mqtt::reason_code::message_rate_too_high,
               std::string(key) + " exceeded for limits.rate_limit_timeout");
    return true;
  }
  if (!c.rate_timer) {
    c.rate_timer = true;
    timers_.push(timer{*until, timer::kind::rate_resume, id});
  }
  return true;
}

} // namespace firehook::broker

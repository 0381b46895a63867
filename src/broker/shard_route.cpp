// Session actions, routing, cross-shard delivery batches, subscription changes across replicas.
#include <algorithm>
#include <utility>

#include "broker/fan_out.hpp"
#include "broker/shard.hpp"
#include "mqtt/codec.hpp"
#include "mqtt/topic.hpp"
#include "session/error.hpp"

namespace firehook::broker {

namespace {

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};

} // namespace

void shard::run_actions(subscriber_id sid) {
  const auto it = sessions_.find(sid);
  if (it == sessions_.end() || it->second.running) {
    return; // the outer run_actions() of this session picks the new actions up
  }
  // Sessions are only erased below, after the loop, so `slot` stays valid throughout.
  session_slot& slot = it->second;
  slot.running = true;
  bool ended = false;
  while (!slot.s->actions().empty()) {
    // Moved out, not swapped with a spare: the session is left without a buffer. An action can
    // hold any packet (about 1.2 KB), so the buffer of its busiest turn, kept by every idle
    // session, would be the largest part of an idle connection's memory; a new buffer per busy
    // turn costs less than that.
    std::vector<session::action> batch = std::move(slot.s->actions());
    for (auto& a : batch) {
      std::visit(overloaded{
                     [&](session::send_packet& x) {
                       if (slot.conn && !withhold(sid, x.packet) && !hold_output(sid, a)) {
                         send_packet(*slot.conn, slot.s->version(), x.packet);
                       }
                     },
                     [&](session::send_publish& x) {
                       if (slot.conn && !hold_output(sid, a)) {
                         send_publish(slot, x);
                       }
                     },
                     [&](session::close_connection& x) { closed_by_session(slot, sid, x); },
                     [&](session::route_message& x) {
                       if (slot.who && slot.who->method == "enrollment") {
                         enrollment_request(sid, slot, x.message, x.will);
                         return;
                       }
                       if (x.will) {
                         events::event e = session_event(events::event_type::will_published, slot);
                         e.topic = x.message->topic;
                         e.qos = static_cast<std::uint8_t>(x.message->qos);
                         e.retain = x.message->retain;
                         events_.emit(std::move(e));
                       }
                       route(x.message, sid, !x.will);
                       // Its acknowledgement, next among these actions, waits for the write.
                       ack_waits_for_ = route_wrote_ && !x.will ? sid : 0;
                     },
                     [&](session::publish_refused& x) { record_refused_publish(slot, x); },
                     [&](session::messages_dropped&) { drop_reports_.push_back(sid); },
                     [&](session::congestion_changed& x) { congestion_changed(sid, slot, x.congested); },
                     [&](session::persist_session&) { mark_dirty(sid); },
                     [&](session::stored_released& x) { release_stored(slot, x.seq); },
                     [&](session::stored_in_flight& x) { rewrite_stored(sid, slot, x); },
                     [&](session::apply_subscriptions& x) {
                       record_subscriptions(slot, x);
                       start_subscribe(sid, slot, std::move(x));
                     },
                     [&](session::apply_unsubscriptions& x) { start_unsubscribe(sid, slot, std::move(x)); },
                     [&](session::arm_timer& x) {
                       timers_.push(timer{x.at, timer::kind::session, sid});
                     },
                     [&](session::session_ended&) { ended = true; },
                 },
                 a);
    }
  }
  slot.running = false;
  if (ended) {
    end_session(sid);
  }
}

void shard::closed_by_session(session_slot& slot, subscriber_id sid, const session::close_connection& x) {
  if (!slot.conn) {
    return;
  }
  transport_.close(*slot.conn, x.flush);
  const bool by_client = x.reason == session::session_errc::normal_disconnection;
  std::string reason = by_client                 ? std::string("the client sent DISCONNECT")
                       : closing_reason_.empty() ? x.reason.message()
                                                 : closing_reason_;
  const ending why{by_client ? "client" : "server", session::to_reason_code(x.reason), std::move(reason),
                   x.packet};
  detach(slot, sid, why);
}

void shard::record_refused_publish(const session_slot& slot, session::publish_refused& x) {
  events::event e =
      session_event(x.will ? events::event_type::will_refused : events::event_type::publish_refused, slot);
  e.verdict = events::decision::deny;
  e.topic = std::move(x.topic);
  e.qos = static_cast<std::uint8_t>(x.qos);
  e.retain = x.retain;
  e.reason = std::move(x.why.reason);
  e.rule = std::move(x.why.rule);
  if (!x.will) {
    e.reason_code = mqtt::reason_code::not_authorized;
  }
  events_.emit(std::move(e));
}

void shard::record_subscriptions(const session_slot& slot, const session::apply_subscriptions& x) {
  for (const auto& d : x.decisions) {
    const bool granted = !mqtt::is_error(d.code);
    events::event e = session_event(
        granted ? events::event_type::subscribe_granted : events::event_type::subscribe_refused, slot);
    e.verdict = granted ? events::decision::allow : events::decision::deny;
    e.topic = d.filter;
    if (granted) {
      e.qos = static_cast<std::uint8_t>(d.code);
    } else {
      e.reason_code = d.code;
      e.reason = d.why.reason;
    }
    e.rule = d.why.rule;
    events_.emit(std::move(e));
  }
}

void shard::send_packet(connection_id id, mqtt::protocol_version v, const mqtt::packet& p) {
  wire_.clear();
  mqtt::encode(p, v, wire_);
  transport_.send(id, wire_);
}

void shard::send_publish(session_slot& slot, const session::send_publish& p) {
  const connection_id id = *slot.conn;
  ++slot.delivered;
  wire_.clear();
  mqtt::encode_publish_header(p.header, p.message->payload.size(), slot.s->version(), wire_);
  transport_.send(id, wire_);
  if (!p.message->payload.empty()) {
    transport_.send_payload(id, p.message);
  }
}

// --- routing ---------------------------------------------------------------------------------

void shard::store_retained(const mqtt::message_ptr& m) {
  // Replace, or delete with an empty payload [MQTT-3.3.1-5..7]. One the store refuses (full, or
  // over its byte bounds) is still delivered to the current subscribers.
  const auto status = broker_.retained().set(m);
  if (status != router::retain_status::refused && status != router::retain_status::too_large) {
    write_retained(m, status);
    return;
  }
  counters_.add(events::stat::retained_refused);
  const auto& l = broker_.cfg().limits;
  events::event e;
  e.type = events::event_type::limit_reached;
  e.client_id = m->origin_client_id;
  e.topic = m->topic;
  e.verdict = events::decision::deny;
  e.reason = "retained message not stored; it was still delivered";
  e.subject = status == router::retain_status::too_large
                  ? "limits.max_retained_message_bytes (" + std::to_string(l.max_retained_message_bytes) + ")"
                  : "limits.max_retained_messages (" + std::to_string(l.max_retained_messages) +
                        ") or limits.max_retained_bytes (" + std::to_string(l.max_retained_bytes) + ")";
  events_.emit(std::move(e));
}

void shard::route(const mqtt::message_ptr& m, subscriber_id publisher, bool may_slow) {
  route_wrote_ = false;
  if (m->retain && limits_.retain_available) {
    store_retained(m);
  }
  fan_out(
      replica_.match(m->topic), m, publisher, [this](subscriber_id s) { return replica_.online(s); },
      [&](subscriber_id to, session::delivery&& d) {
        if (d.qos != mqtt::qos::at_most_once) {
          if (may_slow && to != publisher && replica_.congested(to)) {
            congested_targets_.push_back(to);
          }
          write_delivery(to, d);
        }
        dispatch_delivery(to, std::move(d), 0);
      });
  if (!congested_targets_.empty()) {
    slow_publisher(publisher);
  }
}

void shard::dispatch_delivery(subscriber_id to, session::delivery&& d, unsigned hops) {
  const unsigned target = replica_.shard_of(to, shard_index_);
  if (target == shard_index_) {
    deliver_local(to, std::move(d), hops);
    return;
  }
  outbox_[target].push_back(remote_delivery{to, std::move(d), hops});
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    transport_.defer([this] {
      flush_scheduled_ = false;
      flush_outbox();
    });
  }
}

void shard::deliver_local(subscriber_id to, session::delivery&& d, unsigned hops) {
  const auto it = sessions_.find(to);
  if (it == sessions_.end()) {
    // The session moved on (takeover): forward. Gone for good: nobody to deliver to.
    if (replica_.shard_of(to, shard_index_) != shard_index_ && hops < broker_.shard_count()) {
      dispatch_delivery(to, std::move(d), hops + 1);
    }
    return;
  }
  session_slot& slot = it->second;
  slot.s->deliver(std::move(d), backlog(slot));
  run_actions(to);
}

void shard::receive_deliveries(std::vector<remote_delivery>&& batch) {
  for (auto& r : batch) {
    deliver_local(r.to, std::move(r.what), r.hops);
  }
}

void shard::flush_outbox() {
  // The records of these deliveries go to the store first: their erasure, which another shard
  // may submit as soon as it has them, must come after.
  if (!outgoing_.empty()) {
    flush_store();
  }
  for (unsigned t = 0; t < outbox_.size(); ++t) {
    if (outbox_[t].empty()) {
      continue;
    }
    shard* to = &broker_.shard_at(t);
    transport_.post_to_shard(t, [to, batch = message::deliveries{std::move(outbox_[t])}]() mutable {
      to->receive(std::move(batch));
    });
    outbox_[t].clear();
  }
}

// --- subscription changes --------------------------------------------------------------------

void shard::start_subscribe(subscriber_id sid, session_slot& slot, session::apply_subscriptions&& a) {
  std::vector<replica_change> changes;
  changes.reserve(a.changes.size());
  for (const auto& c : a.changes) {
    changes.push_back(replica_change{true, c.filter, c.options, c.identifier});
    replica_.subscribe(sid, changes.back());
  }
  if (durable(slot)) {
    replica_.set_durable(sid, slot.s->client_id());
  }
  pending_change p;
  p.sid = sid;
  p.conn = slot.conn.value_or(0);
  p.ack = std::move(a.ack);
  p.subscribed = std::move(a.changes);
  start_change(sid, slot, std::move(changes), std::move(p));
}

void shard::start_unsubscribe(subscriber_id sid, session_slot& slot, session::apply_unsubscriptions&& a) {
  std::vector<replica_change> changes;
  changes.reserve(a.filters.size());
  for (auto& f : a.filters) {
    replica_.unsubscribe(sid, f);
    changes.push_back(replica_change{false, std::move(f), {}, {}});
  }
  pending_change p;
  p.sid = sid;
  p.conn = slot.conn.value_or(0);
  if (a.acknowledge) {
    p.ack = std::move(a.ack);
  }
  start_change(sid, slot, std::move(changes), std::move(p));
}

void shard::start_change(subscriber_id sid, session_slot& slot, std::vector<replica_change>&& changes,
                         pending_change&& pending) {
  publish_subscription_count();
  if (broker_.shard_count() == 1 || changes.empty()) {
    finish_change(std::move(pending));
    return;
  }
  // The ack waits until every replica has the change [MQTT-3.8.4-?]: a message published
  // anywhere after the client got its SUBACK reaches it.
  const std::uint64_t id = replica_.begin_change(std::move(pending), broker_.shard_count() - 1);
  ++slot.changes_in_flight;
  broadcast(
      message::subscription_changes{sid, location{shard_index_, slot.epoch},
                                    std::make_shared<const std::vector<replica_change>>(std::move(changes)),
                                    shard_index_, id, durable(slot) ? slot.s->client_id() : std::string()});
}

void shard::change_applied(std::uint64_t change_id) {
  auto done = replica_.applied(change_id);
  if (!done) {
    return;
  }
  const subscriber_id sid = done->sid;
  const connection_id conn = done->conn;
  finish_change(std::move(*done));
  const auto s = sessions_.find(sid);
  if (s == sessions_.end()) {
    return;
  }
  if (--s->second.changes_in_flight == 0) {
    const std::vector<message::handover_request> deferred = std::move(s->second.deferred);
    s->second.deferred.clear();
    for (const auto& req : deferred) {
      on_handover_request(req);
    }
  }
  replay_held(conn);
}

void shard::finish_change(pending_change&& p) {
  const auto it = sessions_.find(p.sid);
  if (it == sessions_.end() || !it->second.conn || *it->second.conn != p.conn) {
    return; // the connection that asked is gone; nothing to answer
  }
  session_slot& slot = it->second;
  if (p.ack) {
    send_packet(p.conn, slot.s->version(), *p.ack);
  }
  run_actions(p.sid);
  // Retained messages after the SUBACK, as Retain Handling says [MQTT-3.3.1-9..11]; never for a
  // shared subscription [MQTT-3.8.4-?]. One at a time, each carried out before the next, so that
  // the session's byte bound sees what the previous ones queued on the connection: a SUBSCRIBE
  // to "#" cannot pour the whole store into one client's output.
  std::vector<mqtt::message_ptr> retained;
  for (const auto& c : p.subscribed) {
    if (c.options.retain_handling == mqtt::retain_handling::do_not_send ||
        (c.options.retain_handling == mqtt::retain_handling::send_if_new && c.existed) ||
        mqtt::parse_shared_filter(c.filter)) {
      continue;
    }
    broker_.retained().match(c.filter, clock_.now(), retained);
    for (const auto& m : retained) {
      const auto s = sessions_.find(p.sid);
      if (s == sessions_.end() || !s->second.conn) {
        return; // the connection ended meanwhile
      }
      s->second.s->deliver_retained(m, c, backlog(s->second));
      run_actions(p.sid);
    }
  }
}

std::size_t shard::backlog(const session_slot& slot) const {
  return slot.conn ? transport_.queued_bytes(*slot.conn) : 0;
}

} // namespace firehook::broker

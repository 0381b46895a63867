// The durable store on a shard (docs/store.md): what a turn writes, the acknowledgements that wait
// for it, and sessions read back at start-up.
//
// Writes are gathered in one batch per turn and submitted when the turn ends; the store's writer
// thread commits them (group commit) and the completion comes back through this shard's queue.
//  - A QoS 1/2 delivery to a persistent session gets its record here, on the publisher's shard,
//    in the same turn that routes it (replica::durable_id names the session); a retained message
//    likewise. The publisher's PUBACK/PUBREC then waits for that batch's commit ([store]
//    durability = "sync"), behind any earlier acknowledgement of the same client. A failed commit
//    (full disk) refuses them: 5.0 PUBACK/PUBREC 0x97, 3.1.1 no acknowledgement.
//  - A QoS 2 delivery to a persistent session is recorded again under its packet identifier when
//    it goes out, and once its PUBREC is back; the PUBLISH (and PUBREL) wait for that commit
//    (output_held_), so that after a crash the receiver gets it again under the identifier it knows.
//  - The session lets go of a delivery (completed, expired, dropped): its record is erased, not
//    waited for; a crash before that commit sends it again (DUP), which QoS 1 allows.
//  - A persistent session's own record (owner, expiry, subscriptions, QoS 2 packet ids awaiting
//    PUBREL, will) is written when it changes, in the batch of the turn. A QoS 2 packet id goes in
//    the same batch as its message, so a PUBLISH resent after a restart is not routed twice.
//  - A session that ends is erased with its messages at once (its batch submitted before anything
//    it answers), so that a new session of the client id, on any shard, is written after it.
#include <utility>

#include "broker/shard.hpp"
#include "mqtt/topic.hpp"
#include "store/store.hpp"

namespace firehook::broker {

bool shard::durable(const session_slot& slot) const {
  return broker_.durable() != nullptr && slot.s->current().expiry_interval != 0;
}

void shard::write_delivery(subscriber_id to, session::delivery& d) {
  if (broker_.durable() == nullptr) {
    return;
  }
  const std::string* client_id = replica_.durable_id(to);
  if (client_id == nullptr) {
    return;
  }
  d.stored = broker_.next_stored_seq();
  outgoing_.put_session_message(*client_id, d.stored, persist::encode_delivery(d, broker_.now()));
  route_wrote_ = true;
  schedule_store_flush();
}

void shard::write_retained(const mqtt::message_ptr& m, router::retain_status status) {
  if (broker_.durable() == nullptr || m->topic.starts_with("$SYS/")) {
    return; // the broker's own tree is published afresh after a restart
  }
  if (status == router::retain_status::deleted) {
    outgoing_.erase_retained(m->topic);
  } else if (status == router::retain_status::stored || status == router::retain_status::replaced) {
    outgoing_.put_retained(m->topic, persist::encode_message(*m, broker_.now()));
  } else {
    return;
  }
  route_wrote_ = true;
  schedule_store_flush();
}

void shard::mark_dirty(subscriber_id sid) {
  const auto it = sessions_.find(sid);
  if (broker_.durable() == nullptr || it == sessions_.end() || it->second.dirty) {
    return;
  }
  it->second.dirty = true;
  dirty_.push_back(sid);
  schedule_store_flush();
}

void shard::release_stored(const session_slot& slot, std::uint64_t seq) {
  if (broker_.durable() == nullptr) {
    return;
  }
  outgoing_.erase_session_message(slot.s->client_id(), seq);
  schedule_store_flush();
}

void shard::rewrite_stored(subscriber_id sid, const session_slot& slot, const session::stored_in_flight& x) {
  if (broker_.durable() == nullptr) {
    return;
  }
  // The same key as the record the publisher's shard wrote, which was submitted before this
  // delivery was handed over: the store commits in submit order, so this one lands after it.
  outgoing_.put_session_message(slot.s->client_id(), x.seq,
                                persist::encode_in_flight(x.what, x.packet_id, x.released, broker_.now()));
  schedule_store_flush();
  if (broker_.acknowledge_after_write()) {
    output_held_[sid].barrier = open_generation_; // the PUBLISH or PUBREL next waits for it
  }
}

bool shard::hold_output(subscriber_id sid, session::action& a) {
  if (output_held_.empty()) {
    return false; // no QoS 2 record of any session waits: nothing on the publish path to look up
  }
  if (const auto* p = std::get_if<session::send_packet>(&a); p && !std::holds_alternative<mqtt::pubrel>(p->packet)) {
    return false; // acknowledgements of its own messages, SUBACK, PINGRESP: not in the delivery order
  }
  const auto it = output_held_.find(sid);
  if (it == output_held_.end()) {
    return false;
  }
  held_output& h = it->second;
  if (h.barrier <= committed_generation_ && h.sends.empty()) {
    return false;
  }
  h.sends.emplace_back(h.barrier, std::move(a));
  return true;
}

void shard::release_output() {
  for (auto it = output_held_.begin(); it != output_held_.end();) {
    held_output& h = it->second;
    const auto s = sessions_.find(it->first);
    while (!h.sends.empty() && h.sends.front().first <= committed_generation_) {
      if (s != sessions_.end()) {
        send_action(s->second, h.sends.front().second);
      }
      h.sends.pop_front();
    }
    if (h.sends.empty() && h.barrier <= committed_generation_) {
      it = output_held_.erase(it);
    } else {
      ++it;
    }
  }
}

void shard::send_action(session_slot& slot, session::action& a) {
  if (!slot.conn) {
    return; // gone meanwhile: the session sends it again when the client is back
  }
  if (auto* p = std::get_if<session::send_publish>(&a)) {
    send_publish(slot, *p);
  } else if (auto* q = std::get_if<session::send_packet>(&a)) {
    send_packet(*slot.conn, slot.s->version(), q->packet);
  }
}

void shard::schedule_store_flush() {
  if (!store_flush_scheduled_) {
    store_flush_scheduled_ = true;
    transport_.defer([this] { flush_store(); });
  }
}

void shard::flush_store() {
  store_flush_scheduled_ = false;
  store::store* st = broker_.durable();
  if (st == nullptr) {
    return;
  }
  for (const subscriber_id sid : dirty_) {
    const auto it = sessions_.find(sid);
    if (it == sessions_.end()) {
      continue;
    }
    session_slot& slot = it->second;
    slot.dirty = false;
    if (!durable(slot)) {
      continue;
    }
    const session::state& state = slot.s->current();
    persist::session_record r;
    if (slot.who) {
      r.owner = *slot.who;
      r.owner.certificate.reset();
    }
    r.expiry_interval = state.expiry_interval;
    r.subscriptions = state.subscriptions;
    r.awaiting_pubrel.assign(state.awaiting_pubrel.begin(), state.awaiting_pubrel.end());
    if (const mqtt::will* w = slot.s->will()) {
      r.will = *w;
      r.will_delay = slot.s->will_delay();
    }
    outgoing_.put_session(state.client_id, persist::encode_session(r));
    slot.persisted = true;
  }
  dirty_.clear();
  if (outgoing_.empty()) {
    return;
  }
  const std::uint64_t generation = open_generation_++;
  broker* b = &broker_;
  const unsigned index = shard_index_;
  const auto submitted =
      st->submit(std::exchange(outgoing_, store::batch{}), [b, index, generation](std::error_code ec) {
        b->committed(index, generation, ec); // on the store's writer thread: back to this shard's
      });
  if (submitted) {
    on_committed(generation, submitted); // the store is closing (shutdown)
  }
}

void shard::committed(std::uint64_t generation, std::error_code ec) {
  transport_.post_to_shard(shard_index_, [this, generation, ec] { on_committed(generation, ec); });
}

void shard::on_committed(std::uint64_t generation, std::error_code ec) {
  committed_generation_ = std::max(committed_generation_, generation);
  std::vector<subscriber_id> ready;
  std::uint64_t refused = 0;
  for (auto& [publisher, h] : held_) {
    if (ec) {
      const auto s = sessions_.find(publisher);
      for (auto& a : h.acks) {
        if (a.generation != generation || s == sessions_.end()) {
          continue;
        }
        ++refused;
        // Not on disk: refused, so that the publisher keeps it (5.0: 0x97 Quota exceeded); 3.1.1
        // has no refusal, so no acknowledgement (it sends the message again when it reconnects).
        std::visit(
            [&](auto& p) {
              if constexpr (requires { p.reason; }) {
                p.reason = mqtt::reason_code::quota_exceeded;
                if constexpr (std::is_same_v<std::decay_t<decltype(p)>, mqtt::pubrec>) {
                  s->second.s->forget_awaiting_pubrel(p.packet_id);
                  mark_dirty(publisher);
                }
              }
            },
            a.packet);
        a.send = s->second.s->version() == mqtt::protocol_version::v5;
      }
    }
    if (h.waiting_on.empty()) {
      ready.push_back(publisher);
    }
  }
  if (ec) {
    events::event e;
    e.type = events::event_type::store;
    e.verdict = events::decision::deny;
    e.reason = "a write to the store failed (" + ec.message() + "): the messages it carried were refused";
    e.subject = (broker_.cfg().broker.state_dir / "store").string();
    e.count = refused;
    events_.emit(std::move(e));
  }
  for (const subscriber_id publisher : ready) {
    release_acks(publisher);
  }
  // A failed batch releases its sends too: the broker keeps serving, and only a crash before a
  // later batch commits could send them again under new identifiers.
  release_output();
}

void shard::erase_durable(subscriber_id sid, session_slot& slot) {
  if (broker_.durable() == nullptr || !slot.persisted) {
    return;
  }
  std::erase(dirty_, sid); // no record of it may follow the erase
  slot.dirty = false;
  outgoing_.erase_session_and_messages(slot.s->client_id());
  slot.persisted = false;
  flush_store(); // now: before any answer that lets a new session of this client id be written
}

// --- start-up ----------------------------------------------------------------------------------

void shard::restore_session(const std::string& client_id, persist::session_record&& record,
                            std::vector<persist::stored_delivery>&& messages) {
  auto who = std::make_shared<security::identity>(std::move(record.owner));
  const auto claim = broker_.registry().claim(client_id, shard_index_, who->key(), {});
  if (claim.status != session_registry::claim_status::ok) {
    return;
  }
  broker_.registry().disconnected(client_id, claim.epoch);
  auto st = std::make_unique<session::state>();
  st->client_id = client_id;
  st->expiry_interval = record.expiry_interval;
  st->subscriptions = std::move(record.subscriptions);
  st->awaiting_pubrel.insert(record.awaiting_pubrel.begin(), record.awaiting_pubrel.end());
  st->ever_subscribed = !st->subscriptions.empty();
  std::vector<replica_change> changes;
  for (const auto& [filter, sub] : st->subscriptions) {
    if (mqtt::parse_shared_filter(filter)) {
      ++st->shared_subscriptions;
    }
    changes.push_back(replica_change{true, filter, sub.options, sub.identifier});
  }
  // In sequence order: what was in flight under a packet identifier (QoS 2) is in flight again
  // under it, to be resent as it was (PUBLISH with DUP, or PUBREL) when the client is back; the
  // rest waits in the queue.
  for (auto& d : messages) {
    if (d.packet_id && !st->inflight.contains(*d.packet_id)) {
      const std::uint64_t bytes = d.released ? 0 : session::footprint(d.what);
      st->inflight_bytes += bytes;
      st->inflight.emplace(*d.packet_id,
                           session::inflight_message{std::move(d.what), d.released, st->next_order++, bytes});
      continue;
    }
    if (d.released) {
      continue; // a second record under one packet identifier: cannot be, unless damaged
    }
    st->queued_bytes += session::footprint(d.what);
    st->queue.push_back(std::move(d.what));
  }
  const subscriber_id sid = broker_.next_subscriber_id();
  session_slot& slot = sessions_[sid];
  slot.s = std::make_unique<session::session>(std::move(st), limits_, clock_, counters_);
  slot.epoch = claim.epoch;
  slot.who = who;
  slot.persisted = true;
  slot.s->set_rights(admission_.rights_for(*who, client_id));
  by_client_[client_id] = sid;
  const location here{shard_index_, claim.epoch};
  const bool shared = slot.s->current().shared_subscriptions != 0;
  for (unsigned t = 0; t < broker_.shard_count(); ++t) {
    broker_.shard_at(t).learn_restored(sid, here, changes, client_id, shared);
  }
  restored_.push_back(restored_will{sid, std::move(record.will), record.will_delay});
}

void shard::learn_restored(subscriber_id sid, location where, const std::vector<replica_change>& changes,
                           const std::string& client_id, bool shared) {
  replica_.apply(sid, where, changes);
  replica_.set_durable(sid, client_id);
  if (shared) {
    replica_.set_presence(sid, false, where.epoch);
  }
  publish_subscription_count();
}

void shard::finish_restore() {
  for (auto& r : std::exchange(restored_, {})) {
    if (const auto it = sessions_.find(r.sid); it != sessions_.end()) {
      it->second.s->restore_offline(std::move(r.will), r.delay);
      run_actions(r.sid);
    }
  }
}

} // namespace firehook::broker

// Session takeover: an admitted CONNECT takes its client id's session over, wherever it lives
// (messages.hpp: handover_request / handover_reply), and sessions end.
#include <algorithm>
#include <utility>

#include "broker/shard.hpp"

namespace firehook::broker {

void shard::start_session(connection_id id, connection& c, const session_registry::claim_result& claim) {
  const mqtt::connect& p = *c.connect;
  // Another identity's session under this client id is ended, never resumed (it was squatting).
  const message::handover_request req{
      p.client_id, shard_index_, id, claim.epoch, p.clean_start || claim.evicted, c.peer()};
  c.state = connection::phase::awaiting_session;
  c.epoch = claim.epoch;
  awaiting_[req.client_id].push_back(id);
  if (!claim.previous_shard) {
    adopt(message::handover_reply{req.client_id, id, claim.epoch, 0, nullptr, false});
  } else if (*claim.previous_shard == shard_index_) {
    on_handover_request(req);
  } else {
    connections_.pause(id, c);
    post(*claim.previous_shard, message::handover_request(req));
  }
}

void shard::on_handover_request(const message::handover_request& req) {
  if (const auto it = by_client_.find(req.client_id); it != by_client_.end()) {
    session_slot& slot = sessions_.at(it->second);
    if (slot.changes_in_flight > 0) {
      slot.deferred.push_back(req); // after the SUBACK/UNSUBACK being waited for
      return;
    }
    hand_over(it->second, req);
    return;
  }
  // An older CONNECT of this client id on this shard still waits for its session: it is served
  // first, then this one takes over from it.
  if (const auto a = awaiting_.find(req.client_id); a != awaiting_.end()) {
    const bool older = std::any_of(a->second.begin(), a->second.end(), [&](connection_id other) {
      return req.to_shard != shard_index_ || other != req.to_connection;
    });
    if (older) {
      deferred_handovers_[req.client_id].push_back(req);
      return;
    }
  }
  reply(req, message::handover_reply{req.client_id, req.to_connection, req.epoch, 0, nullptr, false});
}

void shard::hand_over(subscriber_id sid, const message::handover_request& req) {
  const bool resume = !req.clean_start;
  session_slot& slot = sessions_.at(sid);
  const std::string client_id = slot.s->client_id();
  events::event e = session_event(events::event_type::session_taken_over, slot);
  if (e.peer_port != 0) {
    e.old_peer = e.peer + ":" + std::to_string(e.peer_port);
  }
  e.listener.clear();
  e.peer.clear();
  e.peer_port = 0;
  e.new_peer = req.peer;
  e.reason = resume ? "resumed" : "clean start: the old session ended";
  events_.emit(std::move(e));
  slot.s->take_over(resume);
  closing_reason_ = "session taken over by a new connection from " + req.peer;
  run_actions(sid); // DISCONNECT 0x8E, close, will; without resume the session ends here
  closing_reason_.clear();
  if (!resume) {
    reply(req, message::handover_reply{client_id, req.to_connection, req.epoch, 0, nullptr, false});
    return;
  }
  const auto it = sessions_.find(sid);
  auto st = std::make_shared<session::state>(std::move(*it->second.s->release_state()));
  sessions_.erase(it);
  by_client_.erase(client_id);
  const bool moves = req.to_shard != shard_index_;
  replica_.set_location(sid, location{req.to_shard, req.epoch}); // deliveries still coming are forwarded
  if (moves) {
    // Its records go to the store before the other shard can write after them (adopt).
    output_held_.erase(sid);
    if (!outgoing_.empty()) {
      flush_store();
    }
  }
  reply(req, message::handover_reply{client_id, req.to_connection, req.epoch, sid, std::move(st), moves});
}

void shard::reply(const message::handover_request& req, message::handover_reply rep) {
  if (req.to_shard == shard_index_) {
    adopt(std::move(rep));
    return;
  }
  post(req.to_shard, std::move(rep));
}

void shard::adopt(message::handover_reply&& rep) {
  const std::string client_id = rep.client_id;
  if (const auto a = awaiting_.find(client_id); a != awaiting_.end()) {
    std::erase(a->second, rep.to_connection);
    if (a->second.empty()) {
      awaiting_.erase(a);
    }
  }
  connection* found = connections_.find(rep.to_connection);
  if (found == nullptr || found->state != connection::phase::awaiting_session || found->epoch != rep.epoch) {
    install_offline(std::move(rep)); // the connection went away meanwhile
    run_deferred_handovers(client_id);
    return;
  }
  connection& c = *found;
  const std::unique_ptr<mqtt::connect> cp = std::move(c.connect);
  const bool resumed = rep.state != nullptr;
  const subscriber_id sid = resumed ? rep.sid : broker_.next_subscriber_id();
  std::unique_ptr<session::state> st;
  if (resumed) {
    st = std::make_unique<session::state>(std::move(*rep.state));
  } else {
    st = std::make_unique<session::state>();
    st->client_id = client_id;
  }
  session_slot& slot = sessions_[sid];
  slot.s = std::make_unique<session::session>(std::move(st), limits_, clock_, counters_);
  slot.conn = rep.to_connection;
  slot.epoch = rep.epoch;
  by_client_[client_id] = sid;
  replica_.set_location(sid, location{shard_index_, rep.epoch});
  if (rep.moved && slot.s->current().ever_subscribed) {
    announce_location(sid, location{shard_index_, rep.epoch});
  }
  c.state = connection::phase::connected;
  c.sid = sid;
  broker_.stats().add(events::stat::clients_connected, 1);
  slot.listener = static_cast<std::uint16_t>(broker_.listener_index(c.listener));
  broker_.count_client(slot.listener, 1);
  slot.who = c.who;
  slot.chosen_client_id = !c.client_id_assigned;
  if (c.rights && c.rights->access().policy() != broker_.policy().get()) {
    c.rights = admission_.rights_for(*slot.who, client_id); // the topics file was reloaded meanwhile
  }
  c.rate = security::client_rate(rates_.of(c.listener, c.rights ? &c.rights->access() : nullptr), clock_.now());
  slot.s->set_rights(std::move(c.rights));
  if (slot.who && slot.who->expires_at) {
    // The credential (a token) stops being valid: the connection ends then (5.0: 0xA0).
    const auto left = *slot.who->expires_at - std::chrono::system_clock::now();
    timers_.push(timer{clock_.now() + std::chrono::duration_cast<base::time_point::duration>(left),
                       timer::kind::credential_expiry, rep.to_connection});
  }
  slot.s->on_connect(*cp, resumed, c.client_id_assigned);
  if (rep.moved && durable(slot) && broker_.acknowledge_after_write()) {
    // What it sends again (QoS 2 under its identifiers) waits until the records the other shard
    // submitted are on disk: this shard's next batch, with the session's record, commits after them.
    mark_dirty(sid);
    output_held_[sid].barrier = open_generation_;
  }
  announce_presence(sid, slot, true);
  run_actions(sid);
  replay_held(rep.to_connection);
  run_deferred_handovers(client_id);
}

void shard::install_offline(message::handover_reply&& rep) {
  if (!rep.state) {
    broker_.registry().release(rep.client_id, rep.epoch);
    return;
  }
  // A session taken over for a connection that is gone: it stays, offline, until it expires.
  const subscriber_id sid = rep.sid;
  session_slot& slot = sessions_[sid];
  slot.s = std::make_unique<session::session>(std::make_unique<session::state>(std::move(*rep.state)),
                                              limits_, clock_, counters_);
  slot.epoch = rep.epoch;
  by_client_[rep.client_id] = sid;
  broker_.registry().disconnected(rep.client_id, rep.epoch);
  replica_.set_location(sid, location{shard_index_, rep.epoch});
  if (rep.moved && slot.s->current().ever_subscribed) {
    announce_location(sid, location{shard_index_, rep.epoch});
  }
  slot.s->on_connection_lost();
  run_actions(sid);
}

void shard::run_deferred_handovers(const std::string& client_id) {
  const auto it = deferred_handovers_.find(client_id);
  if (it == deferred_handovers_.end()) {
    return;
  }
  const std::vector<message::handover_request> requests = std::move(it->second);
  deferred_handovers_.erase(it);
  for (const auto& req : requests) {
    on_handover_request(req);
  }
}

void shard::end_session(subscriber_id sid) {
  const auto it = sessions_.find(sid);
  if (it == sessions_.end()) {
    return;
  }
  session_slot& slot = it->second;
  detach(slot, sid, ending{"server", mqtt::reason_code::success, "session ended", std::nullopt});
  erase_durable(sid, slot);
  const std::string client_id = slot.s->client_id();
  broker_.registry().release(client_id, slot.epoch);
  if (const auto c = by_client_.find(client_id); c != by_client_.end() && c->second == sid) {
    by_client_.erase(c);
  }
  const bool known_elsewhere = slot.s->current().ever_subscribed;
  std::vector<message::handover_request> deferred = std::move(slot.deferred);
  sessions_.erase(it);
  output_held_.erase(sid);
  replica_.forget(sid);
  release_publishers(sid);
  publish_subscription_count();
  if (known_elsewhere) {
    broadcast(message::subscriber_gone{sid});
  }
  for (const auto& req : deferred) {
    on_handover_request(req); // nothing left to hand over: the new connection starts afresh
  }
}

} // namespace firehook::broker

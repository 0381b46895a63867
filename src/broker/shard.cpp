// Connections as the shard sees them, the CONNECT handed to admission, cross-shard messages, shutdown.
#include "broker/shard.hpp"

#include <algorithm>
#include <utility>

#include "base/quoted.hpp"
#include "broker/authentication.hpp"
#include "mqtt/error.hpp"
#include "session/connect.hpp"
#include "session/error.hpp"

namespace firehook::broker {

namespace {

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};

} // namespace

shard::shard(broker& b, unsigned index, transport& t)
    : broker_(b), shard_index_(index), transport_(t), events_(b.shard_events(index)),
      limits_(b.session_limits()), clock_(b.clock()), rates_(b.cfg().listeners), connections_(t),
      admission_(
          b, index, t, events_, connections_,
          [this](connection_id id, connection& c, const session_registry::claim_result& claim) {
            start_session(id, c, claim);
          },
          [this](connection_id id, base::time_point at) {
            timers_.push(timer{at, timer::kind::login_delay, id});
          }),
      outbox_(b.shard_count()) {
  broker_.attach(index, this);
  next_sys_ = clock_.now() + broker_.cfg().broker.sys_interval;
}

shard::~shard() {
  broker_.detach(shard_index_);
}

void shard::on_accept(connection_id id, connection_info info) {
  connection& c = connections_.add(id, std::move(info));
  if (shutting_down_) {
    connections_.close(id, c, false);
    return;
  }
  events_.record(events::event_type::connection_accepted,
                 [&] { return event_of(events::event_type::connection_accepted, c); });
  timers_.push(timer{clock_.now() + broker_.cfg().limits.connect_timeout, timer::kind::connect_deadline, id});
}

void shard::report_refused(const connection_info& info, std::string_view why, std::string_view subject) {
  events::event e;
  e.type = events::event_type::connection_refused;
  e.listener = info.listener;
  e.peer = info.peer_address;
  e.peer_port = info.peer_port;
  e.verdict = events::decision::deny;
  e.reason = std::string(why);
  e.subject = std::string(subject);
  events_.emit(std::move(e));
}

events::event shard::session_event(events::event_type t, const session_slot& slot) const {
  events::event e;
  if (const connection* c = slot.conn ? connections_.find(*slot.conn) : nullptr) {
    e = event_of(t, *c);
  }
  e.type = t;
  e.client_id = slot.s->client_id();
  if (slot.who) {
    e.method = slot.who->method;
    e.identity = slot.who->name;
  }
  return e;
}

void shard::on_packet(connection_id id, mqtt::packet&& p) {
  connection* c = connections_.find(id);
  if (c == nullptr) {
    return;
  }
  switch (c->state) {
  case connection::phase::awaiting_connect:
    if (auto* cp = std::get_if<mqtt::connect>(&p)) {
      admission_.on_connect(id, *c, std::move(*cp));
    } else {
      connections_.close(id, *c, false); // [MQTT-3.1.0-1]; net's decoder already ensures it
    }
    return;
  case connection::phase::authenticating:
  case connection::phase::awaiting_session:
    connections_.hold(id, *c, std::move(p));
    return;
  case connection::phase::connected:
    if (must_wait(*c, p) || (!c->held.empty() && !passes_while_slowed(p))) {
      // A slowed publisher is read on up to its Receive Maximum of held packets, so that the
      // acknowledgements it sends for its own deliveries keep coming (shard_flow.cpp). Nothing
      // overtakes a packet held for the client's rates.
      connections_.hold(id, *c, std::move(p), slowed(c->sid) ? hold_bound() : 1);
    } else if (over_rate(id, *c, p)) {
      if (connection* still = connections_.find(id);
          still != nullptr && still->state != connection::phase::closing) {
        connections_.hold(id, *still, std::move(p), 1);
      }
    } else {
      dispatch(*c, std::move(p));
    }
    return;
  case connection::phase::closing:
    return;
  }
}

void shard::dispatch(const connection& c, mqtt::packet&& p) {
  const subscriber_id sid = c.sid;
  const auto it = sessions_.find(sid);
  if (it == sessions_.end()) {
    return;
  }
  session_slot& slot = it->second;
  if (std::holds_alternative<mqtt::publish>(p)) {
    ++slot.published;
  }
  slot.s->on_packet(std::move(p));
  if (slot.s->congested()) {
    slot.s->relieve(backlog(slot)); // its acknowledgements may have made room
  }
  run_actions(sid);
}

bool shard::must_wait(const connection& c, const mqtt::packet& p) const {
  if (c.state == connection::phase::authenticating || c.state == connection::phase::awaiting_session) {
    return true;
  }
  if (c.state != connection::phase::connected) {
    return false;
  }
  const auto it = sessions_.find(c.sid);
  if (it != sessions_.end() && it->second.changes_in_flight > 0) {
    return true;
  }
  return slowed(c.sid) && !passes_while_slowed(p);
}

void shard::replay_held(connection_id id) {
  while (connection* c = connections_.find(id)) {
    if (c->state == connection::phase::closing) {
      return;
    }
    if (c->held.empty()) {
      connections_.resume(id, *c);
      return;
    }
    if (must_wait(*c, c->held.front()) || over_rate(id, *c, c->held.front())) {
      return;
    }
    mqtt::packet p = std::move(c->held.front());
    c->held.pop_front();
    dispatch(*c, std::move(p));
  }
}

void shard::on_decode_error(connection_id id, std::error_code ec) {
  connection* c = connections_.find(id);
  if (c == nullptr) {
    return;
  }
  switch (c->state) {
  case connection::phase::awaiting_connect:
    // The CONNECT itself was bad, so its version is unknown. An unsupported protocol level gets
    // the 3.1.1 refusal 0x01 that every version can read [MQTT-3.1.2-2]; anything else is closed.
    if (ec == mqtt::codec_errc::unsupported_protocol_version) {
      send_packet(id, mqtt::protocol_version::v3_1_1,
                  session::refusal(mqtt::reason_code::unsupported_protocol_version));
    }
    connections_.close(id, *c, true);
    return;
  case connection::phase::authenticating:
  case connection::phase::awaiting_session:
    connections_.close(id, *c, true);
    return;
  case connection::phase::connected: {
    const subscriber_id sid = c->sid;
    if (auto s = sessions_.find(sid); s != sessions_.end()) {
      s->second.s->on_decode_error(ec);
      run_actions(sid);
    }
    return;
  }
  case connection::phase::closing:
    return;
  }
}

void shard::on_closed(connection_id id) {
  const auto gone = connections_.remove(id);
  if (!gone) {
    return;
  }
  const connection& c = *gone;
  if (c.state == connection::phase::authenticating) {
    if (c.auth_ticket != 0) {
      broker_.authenticator().cancel(c.auth_ticket); // no password is hashed for a client that left
    }
    admission_.forget(id); // held for failed logins: its credentials go now, not at its timer
  }
  if (c.state != connection::phase::connected) {
    return; // awaiting_session: adopt() finds the connection gone
  }
  const auto s = sessions_.find(c.sid);
  if (s == sessions_.end() || s->second.conn != id) {
    return;
  }
  detach(s->second, c.sid,
         ending{"client", mqtt::reason_code::unspecified_error, "connection lost", std::nullopt});
  s->second.s->on_connection_lost();
  run_actions(c.sid);
}

void shard::detach(session_slot& slot, subscriber_id sid, const ending& why) {
  if (!slot.conn) {
    return;
  }
  events_.record(events::event_type::client_disconnected, [&] {
    events::event e = session_event(events::event_type::client_disconnected, slot);
    e.initiator = std::string(why.initiator);
    e.reason_code = why.code;
    e.reason = why.reason;
    if (why.packet) {
      e.packet = std::string(mqtt::to_string(*why.packet));
    }
    return e;
  });
  if (slot.chosen_client_id) {
    // Counted as it ends, so that a connected fleet costs the flapping count nothing.
    broker_.login_guard().disconnected(slot.s->client_id());
  }
  if (connection* c = connections_.find(*slot.conn)) {
    c->state = connection::phase::closing; // the session's close_connection closed the transport
    c->sid = 0;
    c->held.clear();
  }
  slot.conn.reset();
  held_.erase(sid); // a slowed publisher that left: its withheld acknowledgements go with it
  if (const auto h = output_held_.find(sid); h != output_held_.end()) {
    h->second.sends.clear(); // sent again when the client is back, behind the same barrier
  }
  broker_.registry().disconnected(slot.s->client_id(), slot.epoch);
  broker_.stats().add(events::stat::clients_connected, -1);
  broker_.count_client(slot.listener, -1);
  announce_presence(sid, slot, false);
}

// --- CONNECT --------------------------------------------------------------------------------

void shard::on_policy_changed() {
  for_each_session(false, [this](session_slot& slot) {
    if (!slot.who) {
      return;
    }
    session::session& s = *slot.s;
    auto rights = admission_.rights_for(*slot.who, s.client_id());
    if (connection* c = slot.conn ? connections_.find(*slot.conn) : nullptr) {
      c->rate.set_limits(rates_.of(c->listener, rights ? &rights->access() : nullptr), clock_.now());
    }
    s.set_rights(std::move(rights));
    for (auto& filter : s.recheck_subscriptions()) {
      events::event e = session_event(events::event_type::subscription_revoked, slot);
      e.topic = std::move(filter);
      e.verdict = events::decision::deny;
      e.reason = "the topics file no longer grants it";
      events_.emit(std::move(e));
    }
  });
}

// --- cross-shard plumbing --------------------------------------------------------------------

void shard::receive(shard_message&& m) {
  std::visit(overloaded{
                 [&](message::subscription_changes& x) {
                   replica_.apply(x.sid, x.where, *x.changes);
                   if (!x.durable_client_id.empty()) {
                     replica_.set_durable(x.sid, x.durable_client_id);
                   }
                   publish_subscription_count();
                   post(x.origin, message::change_applied{x.change_id});
                 },
                 [&](message::change_applied& x) { change_applied(x.change_id); },
                 [&](message::location_update& x) { replica_.set_location(x.sid, x.where); },
                 [&](message::subscriber_gone& x) {
                   replica_.forget(x.sid);
                   publish_subscription_count();
                   release_publishers(x.sid);
                 },
                 [&](message::presence_update& x) { replica_.set_presence(x.sid, x.online, x.epoch); },
                 [&](message::congestion_update& x) { apply_congestion(x.sid, x.congested, x.epoch); },
                 [&](message::handover_request& x) { on_handover_request(x); },
                 [&](message::handover_reply& x) { adopt(std::move(x)); },
                 [&](message::deliveries& x) { receive_deliveries(std::move(x.batch)); },
             },
             m);
}

void shard::post(unsigned target, shard_message&& m) {
  // Deliveries batched for `target` go first, so a message never overtakes them (and their
  // store records before them, as in flush_outbox).
  if (!outbox_[target].empty()) {
    if (!outgoing_.empty()) {
      flush_store();
    }
    shard* to = &broker_.shard_at(target);
    transport_.post_to_shard(target, [to, batch = message::deliveries{std::move(outbox_[target])}]() mutable {
      to->receive(std::move(batch));
    });
    outbox_[target].clear();
  }
  shard* to = &broker_.shard_at(target);
  transport_.post_to_shard(target, [to, m = std::move(m)]() mutable { to->receive(std::move(m)); });
}

void shard::broadcast(const shard_message& m) {
  for (unsigned t = 0; t < broker_.shard_count(); ++t) {
    if (t != shard_index_) {
      post(t, shard_message(m));
    }
  }
}

void shard::announce_location(subscriber_id sid, location here) {
  broadcast(message::location_update{sid, here});
}

void shard::publish_subscription_count() {
  if (shard_index_ == 0) { // every replica holds all subscriptions: one reports them
    broker_.stats().set(events::stat::subscriptions,
                        static_cast<std::int64_t>(replica_.subscription_count()));
  }
}

void shard::announce_presence(subscriber_id sid, const session_slot& slot, bool is_online) {
  if (slot.s->current().shared_subscriptions == 0) {
    return; // only shared subscriptions care (shared_group::pick)
  }
  replica_.set_presence(sid, is_online, slot.epoch);
  broadcast(message::presence_update{sid, is_online, slot.epoch});
}

// --- shutdown --------------------------------------------------------------------------------

void shard::for_each_session(bool connected_only, const std::function<void(session_slot&)>& f) {
  // Ids first: run_actions() may end a session and so change sessions_.
  std::vector<subscriber_id> sids;
  sids.reserve(sessions_.size());
  for (const auto& [sid, slot] : sessions_) {
    if (!connected_only || slot.conn) {
      sids.push_back(sid);
    }
  }
  for (const subscriber_id sid : sids) {
    if (const auto it = sessions_.find(sid); it != sessions_.end()) {
      f(it->second);
      run_actions(sid);
    }
  }
}

void shard::begin_shutdown() {
  for_each_session(true, [](session_slot& slot) { slot.s->publish_will_now(); });
}

void shard::disconnect(connection_id id, mqtt::reason_code reason, std::string_view why) {
  connection* found = connections_.find(id);
  if (found == nullptr || found->state == connection::phase::closing) {
    return;
  }
  connection& c = *found;
  if (c.state != connection::phase::connected) {
    connections_.close(id, c, false);
    return;
  }
  const subscriber_id sid = c.sid;
  if (const auto s = sessions_.find(sid); s != sessions_.end()) {
    s->second.s->end_connection(reason);
    closing_reason_ = std::string(why);
    run_actions(sid);
    closing_reason_.clear();
  }
}

void shard::drop_banned() {
  const auto now = ban_list::now_seconds();
  std::vector<std::pair<connection_id, std::string>> banned;
  connections_.for_each([&](connection_id id, connection& c) {
    ban_list::subjects of{c.peer_address, {}, {}, c.certificate_fingerprint(), c.token_subject()};
    std::string client_id;
    if (c.connect) {
      of.client_id = c.connect->client_id;
      of.username = c.connect->username;
    } else if (c.state == connection::phase::connected) {
      if (const auto s = sessions_.find(c.sid); s != sessions_.end()) {
        client_id = s->second.s->client_id();
        of.client_id = client_id;
      }
      if (c.who && c.who->method == "password") {
        of.username = c.who->name;
      }
    }
    if (const auto b = broker_.bans().find(of, now)) {
      banned.emplace_back(id,
                          "banned (" + std::string(registry::to_string(b->kind)) + " " + b->subject + ")");
    }
  });
  // A revoked device's sessions end too, connected or offline, and their queued messages with them.
  std::vector<subscriber_id> revoked;
  for (const auto& [sid, slot] : sessions_) {
    const auto b = broker_.bans().find({{}, slot.s->client_id(), {}, {}, {}}, now);
    if (b && b->source == revocation_source) {
      revoked.push_back(sid);
    }
  }
  for (const auto& [id, why] : banned) {
    disconnect(id, mqtt::reason_code::administrative_action, why);
  }
  for (const auto sid : revoked) {
    end_session(sid);
  }
}

void shard::finish_shutdown() {
  shutting_down_ = true;
  admission_.shut_down();
  for_each_session(true, [](session_slot& slot) { slot.s->shut_down(); });
  connections_.for_each([this](connection_id id, connection& c) { connections_.close(id, c, true); });
  flush_store(); // the sessions' last state (offline, wills published) goes to the store now
}

} // namespace firehook::broker

// Connections, CONNECT, session takeover, session end, shutdown.
#include "broker/shard.hpp"

#include <algorithm>
#include <utility>

#include "base/quoted.hpp"
#include "broker/authentication.hpp"
#include "mqtt/error.hpp"
#include "session/connect.hpp"
#include "session/error.hpp"

namespace firehook::broker {

shard::shard(broker& b, unsigned index, transport& t)
    : broker_(b), shard_index_(index), transport_(t), events_(b.shard_events(index)),
      limits_(b.session_limits()), clock_(b.clock()), outbox_(b.shard_count()) {
  broker_.attach(index, this);
  next_sys_ = clock_.now() + broker_.cfg().broker.sys_interval;
}

shard::~shard() {
  broker_.detach(shard_index_);
}

void shard::on_accept(connection_id id, connection_info info) {
  connection& c = connections_[id];
  c.listener = std::move(info.listener);
  c.peer_address = std::move(info.peer_address);
  c.peer_port = info.peer_port;
  if (info.certificate) {
    c.certificate = std::make_unique<security::certificate_info>(std::move(*info.certificate));
  }
  if (shutting_down_) {
    c.state = connection::phase::closing;
    transport_.close(id, false);
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

events::event shard::event_of(events::event_type t, const connection& c) const {
  events::event e;
  e.type = t;
  e.listener = c.listener;
  e.peer = c.peer_address;
  e.peer_port = c.peer_port;
  if (c.connect) {
    e.client_id = c.connect->client_id;
  }
  if (c.who) {
    e.method = c.who->method;
    e.identity = c.who->name;
  }
  return e;
}

events::event shard::event_of(events::event_type t, const session_slot& slot) const {
  events::event e;
  if (const auto c = slot.conn ? connections_.find(*slot.conn) : connections_.end();
      c != connections_.end()) {
    e = event_of(t, c->second);
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
  const auto it = connections_.find(id);
  if (it == connections_.end()) {
    return;
  }
  connection& c = it->second;
  switch (c.state) {
  case connection::phase::awaiting_connect:
    if (auto* cp = std::get_if<mqtt::connect>(&p)) {
      handle_connect(id, c, std::move(*cp));
    } else {
      c.state = connection::phase::closing; // [MQTT-3.1.0-1]; net's decoder already ensures it
      transport_.close(id, false);
    }
    return;
  case connection::phase::authenticating:
  case connection::phase::awaiting_session:
    hold(id, c, std::move(p));
    return;
  case connection::phase::connected:
    if (blocked(c)) {
      hold(id, c, std::move(p));
    } else {
      dispatch(id, std::move(p));
    }
    return;
  case connection::phase::closing:
    return;
  }
}

void shard::dispatch(connection_id id, mqtt::packet&& p) {
  const subscriber_id sid = connections_.at(id).sid;
  const auto it = sessions_.find(sid);
  if (it == sessions_.end()) {
    return;
  }
  it->second.s->on_packet(std::move(p));
  run_actions(sid);
}

bool shard::blocked(const connection& c) const {
  if (c.state == connection::phase::authenticating || c.state == connection::phase::awaiting_session) {
    return true;
  }
  if (c.state != connection::phase::connected) {
    return false;
  }
  const auto it = sessions_.find(c.sid);
  return it != sessions_.end() && it->second.changes_in_flight > 0;
}

void shard::hold(connection_id id, connection& c, mqtt::packet&& p) {
  c.held.push_back(std::move(p));
  if (!c.paused) {
    c.paused = true;
    transport_.pause_reading(id, true);
  }
}

void shard::replay_held(connection_id id) {
  while (true) {
    const auto it = connections_.find(id);
    if (it == connections_.end()) {
      return;
    }
    connection& c = it->second;
    if (c.state == connection::phase::closing) {
      c.held.clear();
      return;
    }
    if (blocked(c)) {
      return;
    }
    if (c.held.empty()) {
      if (c.paused) {
        c.paused = false;
        transport_.pause_reading(id, false);
      }
      return;
    }
    mqtt::packet p = std::move(c.held.front());
    c.held.pop_front();
    dispatch(id, std::move(p));
  }
}

void shard::on_decode_error(connection_id id, std::error_code ec) {
  const auto it = connections_.find(id);
  if (it == connections_.end()) {
    return;
  }
  connection& c = it->second;
  switch (c.state) {
  case connection::phase::awaiting_connect:
    // The CONNECT itself was bad, so its version is unknown. An unsupported protocol level gets
    // the 3.1.1 refusal 0x01 that every version can read [MQTT-3.1.2-2]; anything else is closed.
    if (ec == mqtt::codec_errc::unsupported_protocol_version) {
      send_packet(id, mqtt::protocol_version::v3_1_1,
                  session::refusal(mqtt::reason_code::unsupported_protocol_version));
    }
    c.state = connection::phase::closing;
    transport_.close(id, true);
    return;
  case connection::phase::authenticating:
  case connection::phase::awaiting_session:
    c.state = connection::phase::closing;
    c.held.clear();
    transport_.close(id, true);
    return;
  case connection::phase::connected: {
    const subscriber_id sid = c.sid;
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
  const auto it = connections_.find(id);
  if (it == connections_.end()) {
    return;
  }
  const connection c = std::move(it->second);
  connections_.erase(it);
  if (c.state == connection::phase::authenticating && c.auth_ticket != 0) {
    broker_.authenticator().cancel(c.auth_ticket); // no password is hashed for a client that left
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
    events::event e = event_of(events::event_type::client_disconnected, slot);
    e.initiator = std::string(why.initiator);
    e.reason_code = why.code;
    e.reason = why.reason;
    if (why.packet) {
      e.packet = std::string(mqtt::to_string(*why.packet));
    }
    return e;
  });
  if (const auto it = connections_.find(*slot.conn); it != connections_.end()) {
    it->second.state = connection::phase::closing;
    it->second.sid = 0;
    it->second.held.clear();
  }
  slot.conn.reset();
  broker_.registry().disconnected(slot.s->client_id(), slot.epoch);
  broker_.stats().add(events::stat::clients_connected, -1);
  announce_presence(sid, slot, false);
}

// --- CONNECT --------------------------------------------------------------------------------

void shard::handle_connect(connection_id id, connection& c, mqtt::connect&& p) {
  c.version = p.version;
  c.connect = std::make_unique<mqtt::connect>(std::move(p));
  mqtt::reason_code rc = session::check_connect(*c.connect, limits_);
  if (rc == mqtt::reason_code::success && shutting_down_) {
    rc = mqtt::reason_code::server_unavailable;
  }
  if (mqtt::is_error(rc)) {
    report_connect(c, rc, {}, std::string(mqtt::to_string(rc)));
    refuse(id, c, rc);
    return;
  }
  const mqtt::connect& cp = *c.connect;
  credentials who{c.listener, c.peer_address, cp.client_id, cp.username, cp.password, std::nullopt};
  if (c.certificate) {
    who.certificate = std::move(*c.certificate);
    c.certificate.reset();
  }
  c.state = connection::phase::authenticating;
  // Anonymous access and client certificates are decided here; password and token checks run on
  // the authentication workers, and packets that arrive meanwhile are held.
  if (auto r = broker_.authenticator().try_quick(who)) {
    on_authenticated(id, std::move(*r));
    return;
  }
  const auto ticket = broker_.authenticator().submit(std::move(who), [this, id](security::auth_result r) {
    transport_.post_to_shard(shard_index_,
                             [this, id, r = std::move(r)]() mutable { on_authenticated(id, std::move(r)); });
  });
  c.auth_ticket = ticket; // the callback only posts, so `c` is still this connection's
}

void shard::on_authenticated(connection_id id, security::auth_result&& r) {
  const auto it = connections_.find(id);
  if (it == connections_.end() || it->second.state != connection::phase::authenticating) {
    return; // closed (or timed out) while the chain ran
  }
  connection& c = it->second;
  c.auth_ticket = 0;
  if (r.decision != security::verdict::allow || shutting_down_) {
    const auto rc = shutting_down_ ? mqtt::reason_code::server_unavailable : r.reason;
    report_connect(c, rc, r.method, shutting_down_ ? "shutting down" : r.detail);
    c.held.clear();
    refuse(id, c, rc);
    return;
  }
  if (r.who.assigns_client_id && r.who.client_id) {
    c.connect->client_id = *r.who.client_id;
    c.client_id_assigned = true; // 5.0: sent back as Assigned Client Identifier
  }
  if (r.who.method == "anonymous") {
    // Every anonymous client has the same identity (auth_chain's fallback sets only its method
    // and name, both "anonymous"; topic_policy recognises it by the method too), so the shard
    // shares one instead of allocating one (0.5 KB) per connection.
    if (!anonymous_) {
      anonymous_ = std::make_shared<const security::identity>(std::move(r.who));
    }
    c.who = anonymous_;
  } else {
    c.who = std::make_shared<const security::identity>(std::move(r.who));
  }
  accept_connect(id, c);
}

void shard::report_connect(const connection& c, mqtt::reason_code rc, std::string_view method,
                           std::string reason, std::string subject) {
  const bool allowed = !mqtt::is_error(rc);
  const auto type = allowed ? events::event_type::auth_allowed : events::event_type::auth_denied;
  events_.record(type, [&] {
    events::event e = event_of(type, c);
    if (c.connect && c.connect->username) {
      e.username = *c.connect->username;
    }
    if (!method.empty()) {
      e.method = std::string(method);
    }
    e.verdict = allowed ? events::decision::allow : events::decision::deny;
    e.reason_code = rc;
    e.reason = std::move(reason);
    e.subject = std::move(subject);
    return e;
  });
}

// A client's rights from the compiled topics file, as the session asks for them.
class topic_rights final : public session::authorizer {
public:
  topic_rights(std::shared_ptr<const security::topic_policy> policy, const security::identity& who,
               std::string_view client_id)
      : access_(std::move(policy), who, client_id) {}

  bool may_publish(std::string_view topic, mqtt::qos qos, bool retain) const override {
    return access_.may_publish(topic, static_cast<std::uint8_t>(qos), retain).allowed();
  }
  bool may_subscribe(std::string_view filter) const override {
    return access_.may_subscribe(filter).allowed();
  }
  bool may_receive(std::string_view topic) const override { return access_.may_receive(topic).allowed(); }
  explanation explain_publish(std::string_view topic, mqtt::qos qos, bool retain) const override {
    return explain(access_.may_publish(topic, static_cast<std::uint8_t>(qos), retain));
  }
  explanation explain_subscribe(std::string_view filter) const override {
    return explain(access_.may_subscribe(filter));
  }
  const security::topic_access& access() const { return access_; }

  static explanation explain(const security::topic_decision& d) {
    explanation out;
    out.allowed = d.allowed();
    out.reason = d.verdict == security::topic_verdict::no_grant ? "no grant (deny by default)"
                                                                : std::string(security::to_string(d.verdict));
    if (d.rule != nullptr) {
      out.rule = d.rule->location() + " " + d.rule->describe();
    }
    return out;
  }

private:
  security::topic_access access_;
};

std::shared_ptr<const topic_rights> shard::rights_for(const security::identity& who,
                                                      std::string_view client_id) const {
  auto policy = broker_.policy();
  if (!policy) {
    return nullptr; // no topics file: every topic
  }
  return std::make_shared<const topic_rights>(std::move(policy), who, client_id);
}

void shard::on_policy_changed() {
  for_each_session(false, [this](session_slot& slot) {
    if (!slot.who) {
      return;
    }
    session::session& s = *slot.s;
    s.set_rights(rights_for(*slot.who, s.client_id()));
    for (auto& filter : s.recheck_subscriptions()) {
      events::event e = event_of(events::event_type::subscription_revoked, slot);
      e.topic = std::move(filter);
      e.verdict = events::decision::deny;
      e.reason = "the topics file no longer grants it";
      events_.emit(std::move(e));
    }
  });
}

void shard::accept_connect(connection_id id, connection& c) {
  mqtt::connect& p = *c.connect;
  const bool assigned = p.client_id.empty();
  if (assigned) {
    p.client_id = broker_.assign_client_id(); // [MQTT-3.1.3-6], [MQTT-3.2.2-16]
    c.client_id_assigned = true;
  }
  c.rights = rights_for(*c.who, p.client_id);
  // Both checks come before the session is claimed, so a refused CONNECT takes nothing over.
  if (!will_permitted(c)) {
    refuse(id, c, mqtt::reason_code::not_authorized);
    return;
  }
  const auto claim = claim_session(id, c, assigned);
  if (!claim) {
    return;
  }
  report_connect(c, mqtt::reason_code::success, c.who->method,
                 claim->evicted ? "another identity's session under this client id, which the identity is "
                                  "bound to, is ended"
                                : "");
  // Another identity's session under this client id is ended, never resumed (it was squatting).
  const handover_request req{p.client_id,
                             shard_index_,
                             id,
                             claim->epoch,
                             p.clean_start || claim->evicted,
                             c.peer_address + ":" + std::to_string(c.peer_port)};
  c.state = connection::phase::awaiting_session;
  c.epoch = claim->epoch;
  awaiting_[req.client_id].push_back(id);
  if (!claim->previous_shard) {
    adopt(handover_reply{req.client_id, id, claim->epoch, 0, nullptr, false});
  } else if (*claim->previous_shard == shard_index_) {
    on_handover_request(req);
  } else {
    if (!c.paused) {
      c.paused = true;
      transport_.pause_reading(id, true);
    }
    shard* target = &broker_.shard_at(*claim->previous_shard);
    post(*claim->previous_shard, [target, req] { target->on_handover_request(req); });
  }
}

bool shard::will_permitted(const connection& c) {
  const auto& will = c.connect->will_message;
  if (!will || !c.rights) {
    return true;
  }
  // The same check as the will gets when it is published, and as every PUBLISH gets: a will is
  // a message the client makes enter the broker.
  const session::will_flags flags = session::will_as_published(*will, limits_);
  const auto d =
      c.rights->access().may_publish(will->topic, static_cast<std::uint8_t>(flags.qos), flags.retain);
  if (d.allowed()) {
    return true;
  }
  const auto why = topic_rights::explain(d);
  events::event e = event_of(events::event_type::auth_denied, c);
  e.verdict = events::decision::deny;
  e.reason_code = mqtt::reason_code::not_authorized;
  e.reason = "the will is not allowed: " + why.reason;
  e.rule = why.rule;
  e.topic = will->topic;
  e.qos = static_cast<std::uint8_t>(flags.qos);
  e.retain = flags.retain;
  events_.emit(std::move(e));
  return false;
}

std::optional<session_registry::claim_result> shard::claim_session(connection_id id, connection& c,
                                                                   bool assigned) {
  // Anonymous clients are one identity for everybody: the per-identity limits would cap them all
  // together, so only max_connections bounds them.
  const bool anonymous = c.who->method == "anonymous";
  const auto& lim = broker_.cfg().limits;
  const session_registry::claim_limits limits{anonymous ? 0 : lim.max_sessions_per_identity,
                                              anonymous ? 0 : lim.max_connections_per_identity};
  std::string& client_id = c.connect->client_id;
  // An assigned client id must be new: it never resumes or takes over a session, even if a client
  // chose the same text (128 random bits: it would have had to guess them). A client id the
  // identity is bound to is its own even if another identity squats on it.
  using kind = session_registry::claim_kind;
  const kind how = assigned                                             ? kind::fresh
                   : c.who->client_id && *c.who->client_id == client_id ? kind::entitled
                                                                        : kind::chosen;
  session_registry::claim_result claim;
  for (int attempt = 0;; ++attempt) {
    claim = broker_.registry().claim(client_id, shard_index_, c.who->key(), limits, how);
    if (claim.status != session_registry::claim_status::in_use || attempt == 3) {
      break;
    }
    client_id = broker_.assign_client_id();
  }
  std::string why;
  std::string subject;
  mqtt::reason_code rc = mqtt::reason_code::success;
  switch (claim.status) {
  case session_registry::claim_status::ok:
    return claim;
  case session_registry::claim_status::owned_by_another:
    rc = mqtt::reason_code::client_identifier_not_valid; // 3.1.1: 0x02
    why = "the session of this client id belongs to another identity";
    break;
  case session_registry::claim_status::too_many_sessions:
    rc = mqtt::reason_code::quota_exceeded; // 3.1.1: 0x03
    why = "the identity has " + std::to_string(lim.max_sessions_per_identity) + " sessions";
    subject = "limits.max_sessions_per_identity";
    break;
  case session_registry::claim_status::too_many_connections:
    rc = mqtt::reason_code::quota_exceeded;
    why = "the identity has " + std::to_string(lim.max_connections_per_identity) + " connections";
    subject = "limits.max_connections_per_identity";
    break;
  case session_registry::claim_status::in_use:
    rc = mqtt::reason_code::server_unavailable;
    why = "no unused client id could be assigned";
    break;
  }
  report_connect(c, rc, c.who->method, std::move(why), std::move(subject));
  refuse(id, c, rc);
  return std::nullopt;
}

void shard::refuse(connection_id id, connection& c, mqtt::reason_code rc) {
  send_packet(id, c.version, session::refusal(rc));
  c.state = connection::phase::closing;
  transport_.close(id, true); // [MQTT-3.2.2-7]
}

void shard::on_handover_request(const handover_request& req) {
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
  reply(req, handover_reply{req.client_id, req.to_connection, req.epoch, 0, nullptr, false});
}

void shard::hand_over(subscriber_id sid, const handover_request& req) {
  const bool resume = !req.clean_start;
  session_slot& slot = sessions_.at(sid);
  const std::string client_id = slot.s->client_id();
  events::event e = event_of(events::event_type::session_taken_over, slot);
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
    reply(req, handover_reply{client_id, req.to_connection, req.epoch, 0, nullptr, false});
    return;
  }
  const auto it = sessions_.find(sid);
  auto st = std::make_shared<session::state>(std::move(*it->second.s->release_state()));
  sessions_.erase(it);
  by_client_.erase(client_id);
  const bool moves = req.to_shard != shard_index_;
  set_location(sid, location{req.to_shard, req.epoch}); // deliveries still coming are forwarded
  reply(req, handover_reply{client_id, req.to_connection, req.epoch, sid, std::move(st), moves});
}

void shard::reply(const handover_request& req, handover_reply rep) {
  if (req.to_shard == shard_index_) {
    adopt(std::move(rep));
    return;
  }
  shard* target = &broker_.shard_at(req.to_shard);
  post(req.to_shard, [target, rep = std::move(rep)]() mutable { target->adopt(std::move(rep)); });
}

void shard::adopt(handover_reply&& rep) {
  const std::string client_id = rep.client_id;
  if (const auto a = awaiting_.find(client_id); a != awaiting_.end()) {
    std::erase(a->second, rep.to_connection);
    if (a->second.empty()) {
      awaiting_.erase(a);
    }
  }
  const auto it = connections_.find(rep.to_connection);
  if (it == connections_.end() || it->second.state != connection::phase::awaiting_session ||
      it->second.epoch != rep.epoch) {
    install_offline(std::move(rep)); // the connection went away meanwhile
    run_deferred_handovers(client_id);
    return;
  }
  connection& c = it->second;
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
  set_location(sid, location{shard_index_, rep.epoch});
  if (rep.moved && slot.s->current().ever_subscribed) {
    const location here{shard_index_, rep.epoch};
    broadcast([sid, here](shard& s) { s.set_location(sid, here); });
  }
  c.state = connection::phase::connected;
  c.sid = sid;
  broker_.stats().add(events::stat::clients_connected, 1);
  slot.who = c.who;
  if (c.rights && c.rights->access().policy() != broker_.policy().get()) {
    c.rights = rights_for(*slot.who, client_id); // the topics file was reloaded meanwhile
  }
  slot.s->set_rights(std::move(c.rights));
  if (slot.who && slot.who->expires_at) {
    // The credential (a token) stops being valid: the connection ends then (5.0: 0xA0).
    const auto left = *slot.who->expires_at - std::chrono::system_clock::now();
    timers_.push(timer{clock_.now() + std::chrono::duration_cast<base::time_point::duration>(left),
                       timer::kind::credential_expiry, rep.to_connection});
  }
  slot.s->on_connect(*cp, resumed, c.client_id_assigned);
  announce_presence(sid, slot, true);
  run_actions(sid);
  replay_held(rep.to_connection);
  run_deferred_handovers(client_id);
}

void shard::install_offline(handover_reply&& rep) {
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
  set_location(sid, location{shard_index_, rep.epoch});
  if (rep.moved && slot.s->current().ever_subscribed) {
    const location here{shard_index_, rep.epoch};
    broadcast([sid, here](shard& s) { s.set_location(sid, here); });
  }
  slot.s->on_connection_lost();
  run_actions(sid);
}

void shard::run_deferred_handovers(const std::string& client_id) {
  const auto it = deferred_handovers_.find(client_id);
  if (it == deferred_handovers_.end()) {
    return;
  }
  const std::vector<handover_request> requests = std::move(it->second);
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
  const std::string client_id = slot.s->client_id();
  broker_.registry().release(client_id, slot.epoch);
  if (const auto c = by_client_.find(client_id); c != by_client_.end() && c->second == sid) {
    by_client_.erase(c);
  }
  const bool known_elsewhere = slot.s->current().ever_subscribed;
  std::vector<handover_request> deferred = std::move(slot.deferred);
  sessions_.erase(it);
  index_.remove_subscriber(sid);
  locations_.erase(sid);
  presence_.erase(sid);
  if (shard_index_ == 0) {
    broker_.stats().set(events::stat::subscriptions, static_cast<std::int64_t>(index_.size()));
  }
  if (known_elsewhere) {
    broadcast([sid](shard& s) {
      s.index_.remove_subscriber(sid);
      s.locations_.erase(sid);
      s.presence_.erase(sid);
      if (s.shard_index_ == 0) {
        s.broker_.stats().set(events::stat::subscriptions, static_cast<std::int64_t>(s.index_.size()));
      }
    });
  }
  for (const auto& req : deferred) {
    on_handover_request(req); // nothing left to hand over: the new connection starts afresh
  }
}

// --- cross-shard plumbing --------------------------------------------------------------------

void shard::post(unsigned target, std::function<void()> task) {
  // Deliveries batched for `target` go first, so a task never overtakes them.
  if (!outbox_[target].empty()) {
    shard* to = &broker_.shard_at(target);
    transport_.post_to_shard(target, [to, batch = std::move(outbox_[target])]() mutable {
      to->receive_deliveries(std::move(batch));
    });
    outbox_[target].clear();
  }
  transport_.post_to_shard(target, std::move(task));
}

void shard::broadcast(const std::function<void(shard&)>& task) {
  for (unsigned t = 0; t < broker_.shard_count(); ++t) {
    if (t != shard_index_) {
      shard* to = &broker_.shard_at(t);
      post(t, [to, task] { task(*to); });
    }
  }
}

void shard::set_location(subscriber_id sid, location where) {
  auto [it, inserted] = locations_.try_emplace(sid, where);
  if (!inserted && where.epoch >= it->second.epoch) {
    it->second = where;
  }
}

bool shard::online(subscriber_id sid) const {
  const auto it = presence_.find(sid);
  return it == presence_.end() || it->second.online;
}

void shard::set_presence(subscriber_id sid, bool is_online, std::uint64_t epoch) {
  auto [it, inserted] = presence_.try_emplace(sid, presence{is_online, epoch});
  if (!inserted && epoch >= it->second.epoch) {
    it->second = presence{is_online, epoch};
  }
}

void shard::announce_presence(subscriber_id sid, const session_slot& slot, bool is_online) {
  if (slot.s->current().shared_subscriptions == 0) {
    return; // only shared subscriptions care (shared_group::pick)
  }
  const std::uint64_t epoch = slot.epoch;
  set_presence(sid, is_online, epoch);
  broadcast([sid, is_online, epoch](shard& s) { s.set_presence(sid, is_online, epoch); });
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
  const auto it = connections_.find(id);
  if (it == connections_.end() || it->second.state == connection::phase::closing) {
    return;
  }
  connection& c = it->second;
  if (c.state != connection::phase::connected) {
    c.state = connection::phase::closing;
    c.held.clear();
    transport_.close(id, false);
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

void shard::finish_shutdown() {
  shutting_down_ = true;
  for_each_session(true, [](session_slot& slot) { slot.s->shut_down(); });
  for (auto& [id, c] : connections_) {
    if (c.state != connection::phase::closing) {
      c.state = connection::phase::closing;
      transport_.close(id, true);
    }
  }
}

} // namespace firehook::broker

// CONNECT to a claimed session (admission.hpp).
#include "broker/admission.hpp"

#include <utility>

#include "broker/authentication.hpp"
#include "mqtt/codec.hpp"
#include "session/connect.hpp"

namespace firehook::broker {

admission::admission(broker& b, unsigned shard_index, transport& t, events::emitter& events,
                     connection_table& connections, admitted next, hold hold_until)
    : broker_(b), shard_index_(shard_index), transport_(t), events_(events), connections_(connections),
      limits_(b.session_limits()), next_(std::move(next)), hold_until_(std::move(hold_until)) {}

void admission::on_connect(connection_id id, connection& c, mqtt::connect&& p) {
  c.version = p.version;
  c.connect = std::make_unique<mqtt::connect>(std::move(p));
  mqtt::reason_code rc = session::check_connect(*c.connect, limits_);
  std::string why;
  if (rc == mqtt::reason_code::success && shutting_down_) {
    rc = mqtt::reason_code::server_unavailable;
  } else if (const std::string* refusing = broker_.refusing_connections(); refusing && !mqtt::is_error(rc)) {
    rc = mqtt::reason_code::server_unavailable;
    why = *refusing;
  }
  if (mqtt::is_error(rc)) {
    report(c, rc, {}, why.empty() ? std::string(mqtt::to_string(rc)) : why);
    refuse(id, c, rc);
    return;
  }
  const mqtt::connect& cp = *c.connect;
  // Before any password is checked: a banned client costs no hash.
  if (refuse_banned(id, c, cp.client_id)) {
    return;
  }
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
  // Past failed logins of its user name or address, the check waits on the shard's timer: no
  // thread is held, and the hash is not spent until the time has passed.
  const auto held = broker_.login_guard().before_check(cp.username, c.peer_address);
  if (held.delay.count() > 0) {
    broker_.stats().add(events::stat::logins_delayed, 1);
    events_.record(events::event_type::login_delayed, [&] {
      events::event e = event_of(events::event_type::login_delayed, c);
      if (cp.username) {
        e.username = *cp.username;
      }
      e.delay_ms = static_cast<std::uint32_t>(held.delay.count());
      e.count = held.failures;
      e.reason = std::to_string(held.failures) + " failed logins of this user name or address";
      e.subject = "abuse.login_failures";
      return e;
    });
    delayed_.insert_or_assign(id, std::move(who));
    hold_until_(id, broker_.clock().now() + held.delay);
    return;
  }
  submit(id, c, std::move(who));
}

void admission::resume(connection_id id) {
  const auto held = delayed_.find(id);
  connection* c = connections_.find(id);
  if (held == delayed_.end() || c == nullptr || c->state != connection::phase::authenticating) {
    return; // closed (or timed out) while held: forget() took its credentials
  }
  credentials who = std::move(held->second);
  delayed_.erase(held);
  // The attempts held meanwhile may have earned the address its ban.
  if (refuse_banned(id, *c, who.client_id)) {
    return;
  }
  submit(id, *c, std::move(who));
}

void admission::submit(connection_id id, connection& c, credentials&& who) {
  const auto ticket = broker_.authenticator().submit(std::move(who), [this, id](security::auth_result r) {
    transport_.post_to_shard(shard_index_,
                             [this, id, r = std::move(r)]() mutable { on_authenticated(id, std::move(r)); });
  });
  c.auth_ticket = ticket; // the callback only posts, so `c` is still this connection's
}

bool admission::refuse_banned(connection_id id, connection& c, std::string_view client_id) {
  const auto ban = broker_.bans().find(
      {c.peer_address, client_id, c.connect->username, c.certificate_fingerprint(), c.token_subject()},
      ban_list::now_seconds());
  if (!ban) {
    return false;
  }
  broker_.stats().add(events::stat::refused_banned, 1);
  report(c, mqtt::reason_code::banned, {},
         "banned (" + std::string(registry::to_string(ban->kind)) + " " + ban->subject + ") until " +
             ban_list::until_text(*ban) + ": " + ban->reason,
         "ban");
  c.held.clear();
  refuse(id, c, mqtt::reason_code::banned);
  return true;
}

void admission::count_failure(const connection& c, const security::auth_result& r) {
  // Credentials that did not pass; not a busy queue, a refused will or a session limit.
  if (r.reason != mqtt::reason_code::bad_user_name_or_password &&
      r.reason != mqtt::reason_code::not_authorized) {
    return;
  }
  const auto& username = c.connect->username;
  if (!username && !c.connect->password) {
    return; // no credentials at all: nothing was guessed
  }
  const auto earned = broker_.login_guard().failed(username, c.peer_address);
  if (!earned) {
    return;
  }
  const auto& a = broker_.cfg().abuse;
  const auto now = ban_list::now_seconds();
  broker_.bans().add(registry::ban{registry::ban_kind::address, earned->subject,
                                   std::to_string(earned->failures) + " failed logins within " +
                                       std::to_string(a.login_window.count()) + " s (offence " +
                                       std::to_string(earned->offence) + ")",
                                   "login failures", now, now + earned->duration.count()});
}

void admission::on_authenticated(connection_id id, security::auth_result&& r) {
  connection* found = connections_.find(id);
  if (found == nullptr || found->state != connection::phase::authenticating) {
    return; // closed (or timed out) while the chain ran
  }
  connection& c = *found;
  c.auth_ticket = 0;
  if (r.decision != security::verdict::allow || shutting_down_) {
    if (!shutting_down_) {
      count_failure(c, r);
    }
    const auto rc = shutting_down_ ? mqtt::reason_code::server_unavailable : r.reason;
    report(c, rc, r.method, shutting_down_ ? "shutting down" : r.detail);
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
  accept(id, c);
}

void admission::accept(connection_id id, connection& c) {
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
  // The identity may be banned by user name (its CONNECT's name was checked before), and a client
  // id assigned by its certificate only now is known.
  if (refuse_banned(id, c, p.client_id)) {
    return;
  }
  const auto claim = claim_session(id, c, assigned);
  if (!claim) {
    return;
  }
  // Counted once the claim succeeded: only the identity that owns the client id can make it flap,
  // so another identity's refused CONNECTs cannot get the owner's client id banned. The connection
  // that crosses the line is admitted; the ban disconnects it (0x98) when it comes into force.
  if (const auto ban_for = assigned ? std::nullopt : broker_.login_guard().connected(p.client_id)) {
    const auto& a = broker_.cfg().abuse;
    const auto now = ban_list::now_seconds();
    broker_.bans().add(registry::ban{registry::ban_kind::client_id, p.client_id,
                                     "more than " + std::to_string(a.flapping_connects) +
                                         " connections within " + std::to_string(a.flapping_window.count()) +
                                         " s",
                                     "flapping", now, now + ban_for->count()});
  }
  report(c, mqtt::reason_code::success, c.who->method,
         claim->evicted ? "another identity's session under this client id, which the identity is "
                          "bound to, is ended"
                        : "");
  next_(id, c, *claim);
}

bool admission::will_permitted(const connection& c) {
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

std::optional<session_registry::claim_result> admission::claim_session(connection_id id, connection& c,
                                                                       bool assigned) {
  // Anonymous clients are one identity for everybody: the per-identity limits would cap them all
  // together, so only max_connections bounds them.
  const bool anonymous = c.who->method == "anonymous";
  const auto& lim = broker_.cfg().limits;
  const session_registry::claim_limits limits{anonymous ? 0 : lim.max_sessions_per_identity,
                                              anonymous ? 0 : lim.max_connections_per_identity,
                                              !anonymous && lim.duplicate == 1};
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
  case session_registry::claim_status::already_connected:
    rc = mqtt::reason_code::quota_exceeded;
    why = "the identity is connected already (limits.duplicate = \"refuse_new\")";
    subject = "limits.duplicate";
    break;
  case session_registry::claim_status::in_use:
    rc = mqtt::reason_code::server_unavailable;
    why = "no unused client id could be assigned";
    break;
  }
  report(c, rc, c.who->method, std::move(why), std::move(subject));
  refuse(id, c, rc);
  return std::nullopt;
}

void admission::refuse(connection_id id, connection& c, mqtt::reason_code rc) {
  send_packet(id, c.version, session::refusal(rc));
  connections_.close(id, c, true); // after the CONNACK [MQTT-3.2.2-7]
}

void admission::report(const connection& c, mqtt::reason_code rc, std::string_view method, std::string reason,
                       std::string subject) {
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

std::shared_ptr<const topic_rights> admission::rights_for(const security::identity& who,
                                                          std::string_view client_id) const {
  if (who.method == "enrollment") {
    // A claim identity may only ask for its certificate, with or without a topics file: fixed
    // rights, checked by the same topic_rights as everyone's (security/enrollment_authenticator.hpp).
    return std::make_shared<const topic_rights>(broker_.enrollment_policy(), who, client_id);
  }
  auto policy = broker_.policy();
  if (!policy) {
    return nullptr; // no topics file: every topic
  }
  return std::make_shared<const topic_rights>(std::move(policy), who, client_id);
}

void admission::send_packet(connection_id id, mqtt::protocol_version v, const mqtt::packet& p) {
  wire_.clear();
  mqtt::encode(p, v, wire_);
  transport_.send(id, wire_);
}

topic_rights::explanation topic_rights::explain(const security::topic_decision& d) {
  explanation out;
  out.allowed = d.allowed();
  out.reason = d.verdict == security::topic_verdict::no_grant ? "no grant (deny by default)"
                                                              : std::string(security::to_string(d.verdict));
  if (d.rule != nullptr) {
    out.rule = d.rule->location() + " " + d.rule->describe();
  }
  return out;
}

} // namespace firehook::broker

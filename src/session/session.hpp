#pragma once
// One client's MQTT session as a state machine without I/O (MQTT 3.1, 3.1.1 and 5.0).
//
// Packets, deliveries and timer calls go in; actions (session/action.hpp) come out through
// actions(), which the owner drains after every call. Nothing here blocks, throws on bad input,
// or touches a socket, so tests drive a session with packets and read the actions back.
//
// Lifetime: a session object is made for one accepted CONNECT and lives while the connection
// does, then, offline, until its Session Expiry Interval passes or a new connection with the same
// client id takes it over. A takeover moves the `state` (subscriptions, inflight, queue, QoS 2
// receive state) into a fresh session object for the new connection, possibly on another shard;
// what belongs to one connection (will, keep alive, topic aliases, the client's Receive Maximum
// and Maximum Packet Size) stays behind and ends with the old object.
//
// Thread safety: none. A session is used by the one shard thread that owns it.
//
// Errors: a protocol violation ends the connection from inside the handler: 5.0 gets a
// DISCONNECT with the reason code (session/error.hpp), 3.1/3.1.1 a close without one, and the
// will is published as for any abnormal end.
//
// Queue, backpressure and drop policy (documented for operators in docs/broker.md):
//  - Two bounds per session: limits.max_queued_messages QoS 1/2 messages waiting in the queue, and
//    limits.max_queued_bytes over everything held for it: the bytes its connection has not yet
//    written (`backlog`, told by the owner), the messages in flight and the messages queued, each
//    counted by its footprint() (the message's memory, not only its payload). A connected client
//    with nothing outstanding always gets the next message.
//  - QoS 1/2 deliveries beyond the inflight window (min(client Receive Maximum,
//    limits.max_inflight)) wait in the session queue, in order, also while the client is offline.
//  - A live QoS 1/2 delivery (deliver()) to a connected session past its bounds is never dropped:
//    the session takes it and becomes congested (congestion_changed), and the owner slows the
//    publishers feeding it until relieve() finds it back under half of both bounds. What exceeds
//    the bounds meanwhile is what those publishers had already sent. A congested session that
//    acknowledges nothing for limits.slow_subscriber_timeout is disconnected (slow_subscriber),
//    and goes offline like any other.
//  - An offline session past its bounds gives up the new message (overflow_policy::drop_newest)
//    or its oldest ones (drop_oldest), each counted in counters::messages_dropped; going offline
//    trims a queue that congestion took past them the same way. Retained messages sent for a new
//    subscription (deliver_retained) past the bounds are dropped too: the retained store keeps them.
//  - QoS 0 deliveries are never queued: sent at once while connected, dropped (counted) past the
//    byte bound; not kept for an offline session (MQTT 5.0 section 3.8.4 allows either).
//  - A delivery bigger than the client's Maximum Packet Size is dropped and counted
//    [MQTT-3.1.2-25]. A message whose Message Expiry Interval has passed before it is sent is
//    discarded [MQTT-3.3.2-5] (not counted as a drop).
//  - Every delivery is checked against the client's current rights (authorizer::may_receive) when
//    it arrives, and again when it leaves the queue or is resent after a reconnect, so that a
//    topics reload that took the right away also stops what was already waiting.
// Outbound topic aliases (5.0): first come, first served. While fewer than
// min(client Topic Alias Maximum, limits.topic_alias_maximum) aliases are in use, a topic sent for
// the first time gets the next alias (topic and alias are both sent once); later messages to that
// topic carry only the alias. Aliases are never reassigned within a connection.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "base/clock.hpp"
#include "events/statistics.hpp"
#include "mqtt/packet.hpp"
#include "session/action.hpp"
#include "session/limits.hpp"
#include "session/state.hpp"

namespace firehook::session {

// Statistics a session adds to: one shard's counters (events::local_counters), plain integers, since
// a session is used by one thread. It counts messages_received, messages_sent, messages_dropped,
// publishes_denied, subscribes_denied, deliveries_withheld and subscriptions_revoked.
using counters = events::local_counters;

class session {
public:
  // `st` is a fresh state (client_id set) or one taken over from an earlier session. `lim`,
  // `clock` and `stats` must outlive the session.
  session(std::unique_ptr<state> st, const limits& lim, const base::clock& clock, counters& stats);
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  // The accepted CONNECT (check_connect() and authentication passed, the client id assigned if
  // it was empty). Sends CONNACK, resends what was in flight when `session_present` [MQTT-4.4.0-1],
  // then what was queued. Called once, first.
  void on_connect(const mqtt::connect& c, bool session_present, bool client_id_assigned);

  // A packet received after CONNECT.
  void on_packet(mqtt::packet&& p);

  // The connection was closed by the peer or failed: an abnormal end, the will is due.
  void on_connection_lost();

  // The input could not be decoded (`ec` from the codec): 5.0 DISCONNECT with its reason code,
  // close, will.
  void on_decode_error(std::error_code ec);

  // Keep alive, will delay and session expiry deadlines.
  void on_timer();

  // Another connection claims this client id [MQTT-3.1.4-3]. The connection, if any, gets
  // DISCONNECT 0x8E (5.0) and is closed. With `resumed` (the new connection has clean start 0)
  // the caller then moves release_state() to the new session: a will with a delay is cancelled
  // [MQTT-3.1.3-9]. Otherwise the session ends here, its will (pending or not) is published.
  void take_over(bool resumed);

  // Shutdown phase 1: publish the will now, the connection is about to be lost.
  void publish_will_now();
  // Shutdown phase 2: DISCONNECT 0x8B (5.0) and close.
  void shut_down();
  // The server ends the connection as an administrative action (revoked certificate: 0x98,
  // expired token: 0xA0 Maximum connect time, over its rates: 0x96 Message rate too high): 5.0
  // DISCONNECT with `reason`, 3.1/3.1.1 only a close; the will is published as for any
  // server-side disconnect. No-op when not connected.
  void end_connection(mqtt::reason_code reason);

  // The client's rights (state::rights): set before on_connect, and again when the topics file
  // changes. Null: every topic.
  void set_rights(std::shared_ptr<const authorizer> rights);
  // After set_rights on a reload: removes the subscriptions the new rights no longer grant
  // (apply_unsubscriptions without an UNSUBACK: MQTT has no way to tell the client) and returns
  // their filters, for the log.
  std::vector<std::string> recheck_subscriptions();

  // A message matching this session's subscriptions. See the queue and drop policy above.
  // `backlog`: bytes the connection has queued and not yet written (0 while offline).
  void deliver(delivery&& d, std::size_t backlog = 0);
  // Whether live deliveries took the connected session past its bounds (policy above).
  bool congested() const { return congested_; }
  // While congested: ends the congestion once what is held (with `backlog`) is back under half of
  // both bounds. The owner calls it after the client's packets and every tick.
  void relieve(std::size_t backlog);
  // A retained message matching `sub`, just subscribed: RETAIN flag 1 [MQTT-3.3.1-9].
  void deliver_retained(const mqtt::message_ptr& m, const subscription_change& sub, std::size_t backlog = 0);

  // A session read back from the durable store at start-up, offline since the broker stopped:
  // its will (of the connection that was last connected, if it had one) is due after its delay,
  // its expiry starts now, and its queue is trimmed to the current bounds. Called once, first.
  void restore_offline(std::optional<mqtt::will> will, std::uint32_t will_delay);
  // A PUBREC this session sent is replaced by a refusal (the store could not keep its message):
  // the QoS 2 flow of `packet_id` ends there, a new PUBLISH with it is a new message.
  void forget_awaiting_pubrel(std::uint16_t packet_id);
  // The will of the connection (null when none), for the durable record.
  const mqtt::will* will() const { return will_.get(); }
  std::uint32_t will_delay() const { return will_delay_; }

  // Moves the state out (after take_over(true)). The session object is then only destroyed.
  std::unique_ptr<state> release_state();

  // Deliveries dropped since the last call, by why (after a messages_dropped action).
  struct dropped_counts {
    std::uint64_t over_bound = 0; // over max_queued_bytes or max_queued_messages
    std::uint64_t too_large = 0;  // over the client's Maximum Packet Size
  };
  dropped_counts take_dropped();

  const state& current() const { return *st_; }
  const std::string& client_id() const { return st_->client_id; }
  bool connected() const { return connected_; }
  bool ended() const { return ended_; }
  mqtt::protocol_version version() const { return version_; }

  // Actions to carry out, oldest first. The owner takes them after each call, by moving the
  // vector out: an idle session then holds no buffer (an action is as large as the largest
  // packet, about 1.2 KB).
  std::vector<action>& actions() { return actions_; }

private:
  using time_point = base::time_point;

  // inbound (session_inbound.cpp)
  // The one check of every message this client makes enter the broker (its PUBLISH packets and
  // its will): its current rights for the topic, QoS and retain flag. A refusal is counted and
  // recorded (publish_refused).
  bool permitted(std::string_view topic, mqtt::qos qos, bool retain, bool will);
  void on_publish(mqtt::publish&& p);
  bool resolve_topic_alias(mqtt::publish& p);
  mqtt::reason_code check_publish_topic(const mqtt::publish& p) const;
  void route(mqtt::publish&& p);
  void acknowledge(mqtt::qos qos, std::uint16_t packet_id, mqtt::reason_code rc);
  void on_pubrel(const mqtt::pubrel& p);
  void on_subscribe(mqtt::subscribe&& s);
  mqtt::reason_code check_filter(std::string_view filter) const;
  void on_unsubscribe(mqtt::unsubscribe&& u);
  void on_disconnect(const mqtt::disconnect& d);

  // outbound (session_outbound.cpp)
  void on_puback(const mqtt::puback& p);
  void on_pubrec(const mqtt::pubrec& p);
  void on_pubcomp(const mqtt::pubcomp& p);
  // The one check of every delivery against the client's rights (counted when withheld).
  bool deliverable(const delivery& d);
  // Whether `bytes` more fit under the session's byte bound (see the policy above).
  bool fits(std::uint64_t bytes, std::size_t backlog) const;
  void start_inflight(delivery&& d, std::uint64_t bytes);
  void forget_inflight(std::unordered_map<std::uint16_t, inflight_message>::iterator it);
  bool send_delivery(const delivery& d, bool dup, std::uint16_t packet_id);
  std::optional<mqtt::publish> make_publish(const delivery& d, bool dup, std::uint16_t packet_id,
                                            std::uint16_t& new_alias);
  bool too_large_for_client(const mqtt::publish& header, std::size_t payload_size);
  std::uint16_t next_packet_id();
  void accept(delivery&& d, std::size_t backlog, bool live);
  void enqueue(delivery&& d, std::uint64_t bytes);
  bool queue_full(std::uint64_t bytes, std::size_t backlog) const;
  // Offline, over the bounds: overflow_policy, until `bytes` more fit (or nothing is left to give).
  bool make_room(std::uint64_t bytes);
  void set_congested(bool on);
  void progress(); // an acknowledgement from the client
  // Going offline: no longer congested, and what congestion queued past the bounds is given up
  // as overflow_policy says.
  void trim_to_bounds();
  // A delivery the session does not keep: its durable record goes (stored_released).
  void discard(const delivery& d);
  // Its durable record changed (persist_session), when it has one.
  void persist();
  void pump();
  void resend_inflight();
  // The message's expiry interval has passed: counted (messages_expired), the caller discards it.
  bool expired(const mqtt::message& m);
  // Counts a dropped delivery (in all and by reason) and reports the session's drops once.
  void drop(bool too_large);

  // lifecycle (session.cpp)
  void send(mqtt::packet p);
  void send_disconnect(mqtt::reason_code reason); // 5.0 only
  void fail(std::error_code ec);
  void close(std::error_code ec, bool publish_will);
  void go_offline(bool publish_will);
  void publish_will();
  void end();
  void arm();
  std::optional<time_point> next_deadline() const;
  mqtt::connack make_connack(const mqtt::connect& c, bool session_present, bool client_id_assigned);
  bool v5() const { return version_ == mqtt::protocol_version::v5; }

  std::unique_ptr<state> st_;
  const limits& limits_;
  const base::clock& clock_;
  counters& stats_;
  std::vector<action> actions_;
  dropped_counts dropped_;
  bool drops_reported_ = false; // a messages_dropped action is out, not yet taken
  // The packet being handled, for the close_connection it may cause.
  std::optional<mqtt::packet_type> handling_;

  mqtt::protocol_version version_ = mqtt::protocol_version::v3_1_1;
  bool connected_ = false;
  bool ended_ = false;
  bool congested_ = false;
  time_point progress_at_{}; // while congested: when it became so, or its last acknowledgement
  // Keep alive: seconds in force (client's or Server Keep Alive); 0 = none.
  std::uint16_t keep_alive_ = 0;
  time_point last_received_{};
  // The client asked for Session Expiry Interval 0 in CONNECT: DISCONNECT may not raise it
  // [MQTT-3.14.2-2].
  bool connect_expiry_zero_ = true;

  // Allocated only when the CONNECT has a will: most connections have none, and a will is as
  // large as its properties (about 0.5 KB).
  std::unique_ptr<mqtt::will> will_;
  std::uint32_t will_delay_ = 0;
  std::optional<time_point> will_due_;   // offline, will waiting for its delay
  std::optional<time_point> expiry_due_; // offline, session ends then
  std::optional<time_point> armed_;      // earliest arm_timer not yet seen by on_timer

  // What the client told us (5.0 CONNECT); outbound limits.
  std::uint16_t out_window_ = 1;
  std::uint32_t client_max_packet_ = 0; // 0: no limit beyond the protocol's
  std::uint16_t out_alias_max_ = 0;
  std::unordered_map<std::string, std::uint16_t> out_aliases_; // topic -> alias, this connection
  std::vector<std::string> in_aliases_;                        // alias -> topic, this connection
  std::vector<std::byte> scratch_;                             // to measure outgoing packets
};

} // namespace firehook::session

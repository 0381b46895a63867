#pragma once
// One broker shard: the protocol side of one network thread. It owns the connections accepted
// on its thread (connection_table), their admission (admission: CONNECT to a claimed session), the
// sessions living there, a replica of the subscription state (replica), and a timer queue; it
// takes sessions over (shard_takeover.cpp), turns session actions into transport calls and routes
// messages (shard_route.cpp; who gets a message, and how, is fan_out.hpp). docs/architecture.md
// draws the parts.
//
// Threads (DESIGN.md): every method is called on this shard's thread only, by net/ or by tasks
// posted from other shards through transport::post_to_shard. No lock is taken on the publish
// path: the publisher's shard matches the topic in its own replica, delivers to its own sessions
// directly and hands the others over in one batch per target shard per turn (transport::defer).
//
// Cross-shard protocols, all typed messages (messages.hpp) over post_to_shard (FIFO per pair of
// shards, transport.hpp), received by receive():
//  - SUBSCRIBE/UNSUBSCRIBE are applied to the local replica and posted to every other shard; the
//    SUBACK/UNSUBACK goes out when all have acknowledged, so a message published anywhere after
//    the SUBACK is delivered. Until then the connection's later packets wait in order (reading
//    paused), so its own PUBLISH after SUBSCRIBE is routed with the subscription in place.
//  - A subscriber id (router::subscriber_id) names a session for its whole life. Every replica
//    knows which shard each subscriber lives on (replica, ordered by registry epoch).
//  - Session takeover: the CONNECT's shard claims the client id in the broker's registry and asks
//    the shard that had it to hand the session over. That shard disconnects the old connection
//    (0x8E), and either ends the session (clean start) or sends its state; the session keeps its
//    subscriber id, the replicas learn the new shard, and deliveries still on their way to the
//    old shard are forwarded there. Known limit: a message forwarded that way may arrive after a
//    later message of the same publisher that went directly to the new shard.
//
// Timers: one min-heap of deadlines (connect timeout per connection, one armed deadline per
// session); on_tick pops what is due, so its cost follows what is due, not the session count.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include <boost/container/deque.hpp>

#include "base/clock.hpp"
#include "broker/admission.hpp"
#include "broker/broker.hpp"
#include "broker/client_rates.hpp"
#include "broker/connection_table.hpp"
#include "broker/messages.hpp"
#include "broker/persistence.hpp"
#include "broker/replica.hpp"
#include "broker/transport.hpp"
#include "events/emitter.hpp"
#include "mqtt/packet.hpp"
#include "registry/enrollment.hpp"
#include "session/session.hpp"
#include "store/batch.hpp"

namespace firehook::broker {

class shard {
public:
  // Registers with `b` (b.attach). `b` and `t` must outlive the shard.
  shard(broker& b, unsigned index, transport& t);
  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;
  ~shard();

  // A new connection: it must send CONNECT within limits.connect_timeout or is closed.
  void on_accept(connection_id id, connection_info info);
  // A decoded packet; the first one of a connection is CONNECT (net's decoder guarantees it).
  void on_packet(connection_id id, mqtt::packet&& p);
  // Input that could not be decoded: 5.0 DISCONNECT (or CONNACK for a bad CONNECT) with the
  // reason code, close; the will is published.
  void on_decode_error(connection_id id, std::error_code ec);
  // The connection is gone (peer, error, or after our close).
  void on_closed(connection_id id);
  // Every ~100 ms: due timers, statistics, rate samples, $SYS (shard 0), retained expiry (shard 0).
  void on_tick();
  void count_bytes(std::uint64_t in, std::uint64_t out);
  // SIGTERM phase 1: publish the wills of the connected clients.
  void begin_shutdown();
  // Phase 2: DISCONNECT 0x8B to 5.0 clients, close (flush) every connection.
  void finish_shutdown();
  std::size_t connection_count() const { return connections_.size(); }
  // The topics file changed (broker::policy() is the new one): every session gets its new rights,
  // and live subscriptions they no longer grant are removed (logged and counted).
  void on_policy_changed();
  // Ends a live connection for an administrative reason (0x98 Administrative action for a
  // revoked certificate, 0xA0 Maximum connect time for an expired token): a 5.0 client gets
  // DISCONNECT with that reason, a 3.1/3.1.1 client is only closed, the will is published; one
  // not yet connected is just closed. Unknown ids and connections already closing are ignored.
  // `why`, for the client_disconnected event.
  void disconnect(connection_id id, mqtt::reason_code reason, std::string_view why);
  // Bans were added: every connection here whose address, client id or user name is now banned
  // is disconnected (5.0: DISCONNECT 0x98 Administrative action; 3.1.1: closed).
  void drop_banned();
  // A connection that never reached the broker (net refused it at accept, its TLS handshake failed
  // or timed out): one connection_refused event. `subject`: the limit, when one refused it.
  void report_refused(const connection_info& info, std::string_view why, std::string_view subject = {});

  // A message from another shard (messages.hpp), on this shard's thread.
  void receive(shard_message&& m);
  // The store committed (or failed) this shard's batch `generation`: from the store's writer
  // thread, through broker::committed; handled on this shard's thread.
  void committed(std::uint64_t generation, std::error_code ec);
  // A message of the broker's own, from any thread (broker::publish): routed on this shard's
  // thread like $SYS, with no publisher.
  void publish_own(mqtt::message_ptr m);

  // Start-up (broker::restore), before any shard runs; each is called on the main thread.
  // A session read back from the store, installed here offline; the other replicas learn it
  // through learn_restored().
  void restore_session(const std::string& client_id, persist::session_record&& record,
                       std::vector<persist::stored_delivery>&& messages);
  void learn_restored(subscriber_id sid, location where, const std::vector<replica_change>& changes,
                      const std::string& client_id, bool shared);
  // Once every session is installed everywhere: wills come due, expiries start.
  void finish_restore();

  // For tests and metrics.
  std::size_t session_count() const { return sessions_.size(); }
  const router::subscription_index& subscriptions() const { return replica_.index(); }
  unsigned index() const { return shard_index_; }

private:
  // How a connected session lost its connection, for the client_disconnected event.
  struct ending {
    std::string_view initiator; // "client" or "server"
    mqtt::reason_code code = mqtt::reason_code::success;
    std::string reason;
    std::optional<mqtt::packet_type> packet;
  };

  struct session_slot {
    std::unique_ptr<session::session> s;
    std::optional<connection_id> conn; // while connected
    std::uint64_t epoch = 0;           // registry claim of the connection that made or resumed it
    unsigned changes_in_flight = 0;    // subscription changes not yet acknowledged by every shard
    // PUBLISH packets from the client and to it since the last rate sample (sample_rates).
    std::uint32_t published = 0;
    std::uint32_t delivered = 0;
    std::vector<message::handover_request> deferred; // takeovers waiting for those changes
    std::shared_ptr<const security::identity> who;   // of the current or last connection
    bool running = false;                            // run_actions() is draining it
    bool persisted = false;                          // it has a record in the durable store
    bool dirty = false;                              // in dirty_: its record is written this turn
    bool chosen_client_id = false; // its connection chose the client id (not assigned): flapping counts it
    std::uint16_t listener = 0;    // of its connection (broker::listener_index), while connected
    bool enrollment_asked = false; // a claim identity's connection sent its one request (shard_enroll.cpp)
  };

  struct timer {
    enum class kind : std::uint8_t { connect_deadline, session, credential_expiry, rate_resume, login_delay };
    base::time_point at;
    kind what = kind::session;
    std::uint64_t key = 0; // connection id or subscriber id
    bool operator>(const timer& o) const { return at > o.at; }
  };

  // takeover (shard.cpp)
  // An admitted CONNECT (admission) takes its client id's session over, wherever it is.
  void start_session(connection_id id, connection& c, const session_registry::claim_result& claim);
  // An event about the session (and its connection, when it has one).
  events::event session_event(events::event_type t, const session_slot& slot) const;
  // Runs f on every session (or every connected one), then carries out its actions.
  void for_each_session(bool connected_only, const std::function<void(session_slot&)>& f);
  void on_handover_request(const message::handover_request& req);
  void hand_over(subscriber_id sid, const message::handover_request& req);
  void reply(const message::handover_request& req, message::handover_reply rep);
  void adopt(message::handover_reply&& rep);
  void install_offline(message::handover_reply&& rep);
  void run_deferred_handovers(const std::string& client_id);
  void dispatch(const connection& c, mqtt::packet&& p);
  // Whether `p` from `c` must wait (held, in order): the session is not there yet, a subscription
  // change is in flight, or the publisher is slowed (shard_flow.cpp).
  bool must_wait(const connection& c, const mqtt::packet& p) const;
  void replay_held(connection_id id);
  void detach(session_slot& slot, subscriber_id sid, const ending& why);
  void end_session(subscriber_id sid);
  void post(unsigned target, shard_message&& m);
  void broadcast(const shard_message& m); // to every other shard

  // actions and routing (shard_route.cpp)
  void run_actions(subscriber_id sid);
  void closed_by_session(session_slot& slot, subscriber_id sid, const session::close_connection& x);
  void record_refused_publish(const session_slot& slot, session::publish_refused& x);
  void record_subscriptions(const session_slot& slot, const session::apply_subscriptions& x);
  void send_packet(connection_id id, mqtt::protocol_version v, const mqtt::packet& p);
  // To the slot's connection (which it has), counted in slot.delivered.
  void send_publish(session_slot& slot, const session::send_publish& p);
  // `may_slow`: a client's PUBLISH, whose publisher is slowed when the message reaches a
  // congested subscriber (not a will, not $SYS).
  void route(const mqtt::message_ptr& m, subscriber_id publisher, bool may_slow = false);
  void store_retained(const mqtt::message_ptr& m);
  void dispatch_delivery(subscriber_id to, session::delivery&& d, unsigned hops);
  void deliver_local(subscriber_id to, session::delivery&& d, unsigned hops);
  void receive_deliveries(std::vector<remote_delivery>&& batch);
  // Bytes the session's connection has queued and not yet written; 0 while offline.
  std::size_t backlog(const session_slot& slot) const;
  void flush_outbox();
  void start_subscribe(subscriber_id sid, session_slot& slot, session::apply_subscriptions&& a);
  void start_unsubscribe(subscriber_id sid, session_slot& slot, session::apply_unsubscriptions&& a);
  void start_change(subscriber_id sid, session_slot& slot, std::vector<replica_change>&& changes,
                    pending_change&& pending);
  void change_applied(std::uint64_t change_id);
  void finish_change(pending_change&& p);
  void announce_location(subscriber_id sid, location here);
  void announce_presence(subscriber_id sid, const session_slot& slot, bool is_online);
  void publish_subscription_count();

  // enrollment over MQTT (shard_enroll.cpp)
  // A claim identity's PUBLISH, already allowed by its rights (only its request topic): handed to
  // the enrollment worker, never routed. Its will is dropped: a claim identity publishes nothing.
  void enrollment_request(subscriber_id sid, session_slot& slot, const mqtt::message_ptr& m, bool will);
  // The worker's answer (or a refusal made here): the event, the response on the response topic,
  // then the claim connection is closed.
  void enrollment_answered(subscriber_id sid, std::uint64_t epoch, events::event e,
                           const mqtt::message_ptr& request, registry::enrollment_outcome&& outcome);

  // backpressure (shard_flow.cpp)
  void congestion_changed(subscriber_id sid, const session_slot& slot, bool congested);
  void apply_congestion(subscriber_id sid, bool congested, std::uint64_t epoch);
  void slow_publisher(subscriber_id publisher);
  void release_publishers(subscriber_id relieved);
  // Keeps `p` (a PUBACK or PUBREC) back when its message waits for the store, or behind others.
  bool withhold(subscriber_id sid, mqtt::packet& p);
  static bool passes_while_slowed(const mqtt::packet& p);
  bool slowed(subscriber_id publisher) const {
    const auto it = held_.find(publisher);
    return it != held_.end() && !it->second.waiting_on.empty();
  }
  std::size_t hold_bound() const;
  void relieve_congested();
  // Rates per client: true when `p` must wait for the client's buckets (held then, reading
  // paused, a timer armed); a client over its rate for limits.rate_limit_timeout is disconnected.
  bool over_rate(connection_id id, connection& c, const mqtt::packet& p);

  // durable store (shard_store.cpp)
  bool durable(const session_slot& slot) const;
  // Adds the durable record of a QoS 1/2 delivery to a persistent session (replica::durable_id).
  void write_delivery(subscriber_id to, session::delivery& d);
  void write_retained(const mqtt::message_ptr& m, router::retain_status status);
  void mark_dirty(subscriber_id sid);
  void release_stored(const session_slot& slot, std::uint64_t seq);
  // Rewrites the record of a QoS 2 delivery in flight; the PUBLISH or PUBREL that follows it,
  // and what the session sends after that, wait for its commit (hold_output).
  void rewrite_stored(subscriber_id sid, const session_slot& slot, const session::stored_in_flight& x);
  // True when `a` (a PUBLISH or PUBREL for `sid`) must wait behind a record not yet on disk: kept
  // in output_held_, sent by release_output once that batch is committed.
  bool hold_output(subscriber_id sid, session::action& a);
  void release_output();
  void send_action(session_slot& slot, session::action& a);
  void schedule_store_flush();
  // Submits what this turn wrote (one batch per turn); its acknowledgements wait for the commit.
  void flush_store();
  void on_committed(std::uint64_t generation, std::error_code ec);
  // Sends what `publisher` may have now (its acknowledgements whose batch is on disk, unless it is
  // slowed), then reads it on.
  void release_acks(subscriber_id publisher);
  void erase_durable(subscriber_id sid, session_slot& slot);

  // timers, statistics, $SYS (shard_tick.cpp)
  void fire(const timer& t);
  void flush_statistics();
  // Adds this shard's change of the queued and in-flight message counts to the broker's gauges.
  void count_messages_held();
  void publish_sys();
  void report_drops();
  // Every [alerts] baseline_interval: one rate sample per session that published or received since
  // the last, to broker::rate_samples() (audit/baselines.hpp); the counts start again.
  void sample_rates(base::time_point now);

  broker& broker_;
  const unsigned shard_index_;
  transport& transport_;
  events::emitter& events_;
  const session::limits& limits_;
  const base::clock& clock_;
  client_rates rates_; // what each client's rates are: its listener's and its roles'

  connection_table connections_;
  admission admission_;
  std::unordered_map<subscriber_id, session_slot> sessions_;
  std::unordered_map<std::string, subscriber_id> by_client_;
  // Client ids whose CONNECT on this shard waits for the session, and takeovers of them that
  // arrived meanwhile (served once the session is installed).
  std::unordered_map<std::string, std::vector<connection_id>> awaiting_;
  std::unordered_map<std::string, std::vector<message::handover_request>> deferred_handovers_;

  replica replica_;

  std::vector<std::vector<remote_delivery>> outbox_; // by target shard
  bool flush_scheduled_ = false;

  std::priority_queue<timer, std::vector<timer>, std::greater<>> timers_;

  session::counters counters_; // this shard's, added to broker_.stats() every tick
  // While the shard itself ends a connection (disconnect, takeover) and runs the session's
  // actions: why, for the client_disconnected event. Empty otherwise.
  std::string closing_reason_;
  // Acknowledgements held back, by publisher, in order. Two reasons:
  //  - backpressure (docs/broker.md, "Flow control"): a publisher whose message reached a
  //    congested subscriber is slowed: its PUBACK/PUBREC wait, and its later packets are held
  //    (except the acknowledgements of its own deliveries and PINGREQ) until every subscriber in
  //    `waiting_on` is relieved, or gone;
  //  - durability (shard_store.cpp): an acknowledgement waits for the commit of the batch that
  //    carries its message (`generation`; 0: none).
  struct pending_ack {
    mqtt::packet packet;
    std::uint64_t generation = 0;
    bool send = true; // false: refused where the protocol has no way to say it (3.1.1)
  };
  struct held_acks {
    std::vector<subscriber_id> waiting_on; // empty: not slowed, only acknowledgements wait
    boost::container::deque<pending_ack> acks;
  };
  std::unordered_map<subscriber_id, held_acks> held_;
  std::vector<subscriber_id> congested_targets_; // of the message being routed
  std::vector<subscriber_id> congested_;         // local congested sessions, relieved every tick
  // The durable store's batch of this turn (shard_store.cpp): written at the end of the turn.
  store::batch outgoing_;
  std::vector<subscriber_id> dirty_;       // sessions whose record is written with it
  std::uint64_t open_generation_ = 1;      // the batch being built
  std::uint64_t committed_generation_ = 0; // the newest batch the store has answered
  bool store_flush_scheduled_ = false;
  // What sessions send held back for the store: a QoS 2 delivery to a persistent session goes
  // out only once the record of its packet identifier (and of the message) is committed, and so
  // does its PUBREL with its "released" record; so a crash never makes the broker send the
  // receiver a message it has already had under a new identifier (docs/store.md). What the
  // session sends after them waits behind them, in order. `barrier`: the newest batch with such
  // a record of the session; each held send is tagged with the barrier of its time.
  struct held_output {
    std::uint64_t barrier = 0;
    boost::container::deque<std::pair<std::uint64_t, session::action>> sends;
  };
  std::unordered_map<subscriber_id, held_output> output_held_;
  bool route_wrote_ = false;        // the message being routed went into outgoing_
  subscriber_id ack_waits_for_ = 0; // the session whose next PUBACK/PUBREC waits for outgoing_
  struct restored_will {
    subscriber_id sid = 0;
    std::optional<mqtt::will> will;
    std::uint32_t delay = 0;
  };
  std::vector<restored_will> restored_; // until finish_restore()
  // Sessions that dropped deliveries since the last tick (session::messages_dropped).
  std::vector<subscriber_id> drop_reports_;
  base::time_point next_sys_{};
  base::time_point next_census_{};                              // of count_messages_held()
  std::int64_t queued_counted_ = 0, inflight_counted_ = 0; // this shard's share of the gauges
  base::time_point last_sample_{}; // of sample_rates; {} until the first tick
  bool shutting_down_ = false;

  std::vector<std::byte> wire_; // encode scratch
};

} // namespace firehook::broker

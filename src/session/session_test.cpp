// The session state machine driven by packets, deliveries and clock ticks; the actions it returns
// are what is checked. No socket, no broker: what a test sees is what the shard would carry out.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mqtt/codec.hpp"
#include "session/connect.hpp"
#include "session/error.hpp"
#include "session/session.hpp"

namespace firehook::session {
namespace {

using namespace std::chrono_literals;
using mqtt::protocol_version;
using mqtt::qos;
using mqtt::reason_code;

template <class T>
std::vector<T> all_of(const std::vector<action>& acts) {
  std::vector<T> out;
  for (const auto& a : acts) {
    if (const auto* x = std::get_if<T>(&a)) {
      out.push_back(*x);
    }
  }
  return out;
}

template <class P>
std::vector<P> sent(const std::vector<action>& acts) {
  std::vector<P> out;
  for (const auto& a : acts) {
    if (const auto* x = std::get_if<send_packet>(&a)) {
      if (const auto* p = std::get_if<P>(&x->packet)) {
        out.push_back(*p);
      }
    }
  }
  return out;
}

std::vector<mqtt::publish> publishes(const std::vector<action>& acts) {
  std::vector<mqtt::publish> out;
  for (const auto& a : all_of<send_publish>(acts)) {
    out.push_back(a.header);
  }
  return out;
}

std::vector<std::string> routed_topics(const std::vector<action>& acts) {
  std::vector<std::string> out;
  for (const auto& r : all_of<route_message>(acts)) {
    out.push_back(r.message->topic);
  }
  return out;
}

bool closed(const std::vector<action>& acts) {
  return !all_of<close_connection>(acts).empty();
}
bool ended(const std::vector<action>& acts) {
  return !all_of<session_ended>(acts).empty();
}

mqtt::message_ptr message(std::string topic, std::string payload = "p", qos q = qos::exactly_once) {
  auto m = std::make_shared<mqtt::message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = q;
  return m;
}

delivery to_deliver(const mqtt::message_ptr& m, qos q) {
  delivery d;
  d.message = m;
  d.qos = q;
  return d;
}

mqtt::publish inbound(std::string topic, qos q, std::uint16_t id = 0, std::string payload = "x") {
  mqtt::publish p;
  p.topic = std::move(topic);
  p.qos = q;
  p.packet_id = id;
  p.payload = std::move(payload);
  return p;
}

mqtt::connect connect_packet(protocol_version v, std::string id = "client") {
  mqtt::connect c;
  c.version = v;
  c.client_id = std::move(id);
  return c;
}

// One session plus what it needs; `take()` returns the actions so far and clears them.
class session_test : public ::testing::Test {
protected:
  base::manual_clock clock_{base::time_point{} + 1000s};
  limits lim_;
  counters stats_;
  std::unique_ptr<session> s_;

  session& make(std::unique_ptr<state> st = nullptr, std::string id = "client") {
    if (!st) {
      st = std::make_unique<state>();
      st->client_id = std::move(id);
    }
    s_ = std::make_unique<session>(std::move(st), lim_, clock_, stats_);
    return *s_;
  }

  // A fresh session, connected with `c`; returns the CONNACK.
  mqtt::connack connect(const mqtt::connect& c, bool present = false, bool assigned = false) {
    if (!s_) {
      make(nullptr, c.client_id);
    }
    s_->on_connect(c, present, assigned);
    const auto acks = sent<mqtt::connack>(take());
    EXPECT_EQ(acks.size(), 1u);
    return acks.empty() ? mqtt::connack{} : acks.front();
  }

  // A persistent 3.1.1 session whose connection was lost; returns its CONNECT.
  mqtt::connect offline() {
    auto c = connect_packet(protocol_version::v3_1_1);
    c.clean_start = false;
    connect(c);
    s_->on_connection_lost();
    take();
    return c;
  }

  std::vector<action> take() {
    std::vector<action> out;
    out.swap(s_->actions());
    return out;
  }

  std::vector<action> packet(mqtt::packet p) {
    s_->on_packet(std::move(p));
    return take();
  }

  std::vector<action> tick(base::duration d) {
    clock_.advance(d);
    s_->on_timer();
    return take();
  }

  // Ends this connection by a takeover with resume, and connects the state again on a new
  // session object, as the shard does. Returns the actions of the new session's on_connect.
  std::vector<action> reconnect(const mqtt::connect& c) {
    s_->take_over(true);
    take();
    auto st = s_->release_state();
    make(std::move(st));
    s_->on_connect(c, true, false);
    return take();
  }

  void subscribe(const std::string& filter, qos q) {
    mqtt::subscribe sub;
    sub.packet_id = 1;
    sub.subscriptions.push_back(mqtt::subscription{filter, mqtt::subscribe_options{q}});
    packet(std::move(sub));
  }
};

// --- CONNECT / CONNACK --------------------------------------------------------------------------

TEST_F(session_test, v311_connack_has_no_properties_and_session_present_as_told) {
  const auto ack = connect(connect_packet(protocol_version::v3_1_1), true);
  EXPECT_TRUE(ack.session_present);
  EXPECT_EQ(ack.reason, reason_code::success);
  EXPECT_EQ(ack.props, mqtt::properties{});
}

TEST_F(session_test, v5_connack_advertises_limits_and_assigned_id) {
  lim_.max_inflight = 20;
  lim_.topic_alias_maximum = 5;
  lim_.max_packet_size = 4096;
  lim_.max_qos = qos::at_least_once;
  lim_.max_session_expiry = 100;
  auto c = connect_packet(protocol_version::v5, "fh-assigned");
  c.props.session_expiry_interval = 1000;
  const auto ack = connect(c, false, true);
  EXPECT_EQ(ack.props.receive_maximum, 20);
  EXPECT_EQ(ack.props.topic_alias_maximum, 5);
  EXPECT_EQ(ack.props.maximum_packet_size, 4096u);
  EXPECT_EQ(ack.props.maximum_qos, 1);
  EXPECT_EQ(ack.props.session_expiry_interval, 100u) << "the server's lower value is announced";
  EXPECT_EQ(ack.props.assigned_client_identifier, "fh-assigned");
  EXPECT_FALSE(ack.props.response_information) << "only when requested";
}

TEST_F(session_test, v5_server_keep_alive_when_client_asks_more_than_the_cap) {
  lim_.max_keep_alive = 60;
  auto c = connect_packet(protocol_version::v5);
  c.keep_alive = 0; // no keep alive at all is more than 60 s
  EXPECT_EQ(connect(c).props.server_keep_alive, 60);
  // ... and it is enforced: 1.5 x 60 s of silence ends the connection.
  EXPECT_FALSE(closed(tick(89s)));
  const auto acts = tick(1s);
  ASSERT_EQ(sent<mqtt::disconnect>(acts).size(), 1u);
  EXPECT_EQ(sent<mqtt::disconnect>(acts)[0].reason, reason_code::keep_alive_timeout);
}

TEST_F(session_test, v5_client_keep_alive_below_the_cap_is_kept) {
  lim_.max_keep_alive = 60;
  auto c = connect_packet(protocol_version::v5);
  c.keep_alive = 30;
  EXPECT_FALSE(connect(c).props.server_keep_alive);
}

// --- keep alive ---------------------------------------------------------------------------------

TEST_F(session_test, keep_alive_is_enforced_at_one_and_a_half_times) {
  auto c = connect_packet(protocol_version::v3_1_1);
  c.keep_alive = 10;
  make();
  s_->on_connect(c, false, false);
  const auto first = take();
  const auto timers = all_of<arm_timer>(first);
  ASSERT_EQ(timers.size(), 1u);
  EXPECT_EQ(timers[0].at, clock_.now() + 15s);

  // A packet within the window keeps the connection; the window starts again from it.
  clock_.advance(14s);
  EXPECT_EQ(sent<mqtt::pingresp>(packet(mqtt::pingreq{})).size(), 1u);
  EXPECT_FALSE(closed(tick(1s))) << "15 s after CONNECT, but only 1 s after PINGREQ";
  EXPECT_FALSE(closed(tick(13s)));
  const auto acts = tick(1s); // 15 s after the PINGREQ
  EXPECT_TRUE(closed(acts));
  EXPECT_TRUE(sent<mqtt::disconnect>(acts).empty()) << "3.1.1 gets no DISCONNECT from a server";
  EXPECT_FALSE(s_->connected());
}

TEST_F(session_test, keep_alive_zero_never_times_out) {
  connect(connect_packet(protocol_version::v3_1_1));
  EXPECT_FALSE(closed(tick(24h)));
  EXPECT_TRUE(s_->connected());
}

// --- inbound QoS flows --------------------------------------------------------------------------

TEST_F(session_test, inbound_qos0_is_routed_without_acknowledgement) {
  connect(connect_packet(protocol_version::v5));
  const auto acts = packet(inbound("a/b", qos::at_most_once));
  EXPECT_EQ(routed_topics(acts), std::vector<std::string>{"a/b"});
  EXPECT_TRUE(sent<mqtt::puback>(acts).empty());
  EXPECT_TRUE(sent<mqtt::pubrec>(acts).empty());
  EXPECT_EQ(stats_.get(events::stat::messages_received), 1u);
}

TEST_F(session_test, inbound_qos1_is_routed_and_acknowledged_with_its_id) {
  connect(connect_packet(protocol_version::v3_1_1));
  const auto acts = packet(inbound("a/b", qos::at_least_once, 7));
  EXPECT_EQ(routed_topics(acts), std::vector<std::string>{"a/b"});
  const auto acks = sent<mqtt::puback>(acts);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].packet_id, 7);
}

TEST_F(session_test, inbound_qos2_is_routed_once_until_pubrel) {
  connect(connect_packet(protocol_version::v5));
  auto acts = packet(inbound("a/b", qos::exactly_once, 9));
  EXPECT_EQ(routed_topics(acts).size(), 1u);
  ASSERT_EQ(sent<mqtt::pubrec>(acts).size(), 1u);
  EXPECT_EQ(sent<mqtt::pubrec>(acts)[0].packet_id, 9);

  // The same packet again (a resend with DUP): PUBREC again, not routed twice [MQTT-4.3.3-9].
  auto dup = inbound("a/b", qos::exactly_once, 9);
  dup.dup = true;
  acts = packet(std::move(dup));
  EXPECT_TRUE(routed_topics(acts).empty());
  EXPECT_EQ(sent<mqtt::pubrec>(acts).size(), 1u);

  acts = packet(mqtt::pubrel{9, reason_code::success, {}});
  ASSERT_EQ(sent<mqtt::pubcomp>(acts).size(), 1u);
  EXPECT_EQ(sent<mqtt::pubcomp>(acts)[0].packet_id, 9);
  EXPECT_EQ(sent<mqtt::pubcomp>(acts)[0].reason, reason_code::success);

  // Released: the identifier now names a new message.
  EXPECT_EQ(routed_topics(packet(inbound("a/c", qos::exactly_once, 9))).size(), 1u);
}

TEST_F(session_test, inbound_qos2_state_survives_a_reconnect) {
  auto c = connect_packet(protocol_version::v5);
  c.clean_start = false;
  c.props.session_expiry_interval = 60;
  connect(c);
  EXPECT_EQ(routed_topics(packet(inbound("a/b", qos::exactly_once, 3))).size(), 1u);
  reconnect(c);
  // The client did not see our PUBREC and sends the PUBLISH again: still not routed twice.
  auto dup = inbound("a/b", qos::exactly_once, 3);
  dup.dup = true;
  const auto acts = packet(std::move(dup));
  EXPECT_TRUE(routed_topics(acts).empty());
  EXPECT_EQ(sent<mqtt::pubrec>(acts).size(), 1u);
  EXPECT_EQ(sent<mqtt::pubcomp>(packet(mqtt::pubrel{3, reason_code::success, {}})).size(), 1u);
}

TEST_F(session_test, pubrel_for_an_unknown_id_is_completed_with_not_found_in_v5) {
  connect(connect_packet(protocol_version::v5));
  const auto comps = sent<mqtt::pubcomp>(packet(mqtt::pubrel{42, reason_code::success, {}}));
  ASSERT_EQ(comps.size(), 1u);
  EXPECT_EQ(comps[0].reason, reason_code::packet_identifier_not_found);
}

TEST_F(session_test, inbound_qos2_beyond_receive_maximum_is_a_protocol_violation) {
  lim_.max_inflight = 2;
  connect(connect_packet(protocol_version::v5));
  packet(inbound("t", qos::exactly_once, 1));
  packet(inbound("t", qos::exactly_once, 2));
  const auto acts = packet(inbound("t", qos::exactly_once, 3));
  ASSERT_EQ(sent<mqtt::disconnect>(acts).size(), 1u);
  EXPECT_EQ(sent<mqtt::disconnect>(acts)[0].reason, reason_code::receive_maximum_exceeded);
  EXPECT_TRUE(closed(acts));
}

TEST_F(session_test, v5_publish_above_maximum_qos_disconnects) {
  lim_.max_qos = qos::at_least_once;
  connect(connect_packet(protocol_version::v5));
  const auto acts = packet(inbound("t", qos::exactly_once, 1));
  ASSERT_EQ(sent<mqtt::disconnect>(acts).size(), 1u);
  EXPECT_EQ(sent<mqtt::disconnect>(acts)[0].reason, reason_code::qos_not_supported);
}

TEST_F(session_test, publish_to_sys_is_refused_in_v5_and_dropped_in_v311) {
  connect(connect_packet(protocol_version::v5));
  auto acts = packet(inbound("$SYS/broker/version", qos::at_least_once, 1));
  EXPECT_TRUE(routed_topics(acts).empty());
  EXPECT_EQ(sent<mqtt::puback>(acts).at(0).reason, reason_code::not_authorized);

  s_.reset();
  connect(connect_packet(protocol_version::v3_1_1));
  acts = packet(inbound("$SYS/broker/version", qos::at_least_once, 1));
  EXPECT_TRUE(routed_topics(acts).empty());
  EXPECT_EQ(sent<mqtt::puback>(acts).at(0).reason, reason_code::success);
}

TEST_F(session_test, second_connect_is_a_protocol_error) {
  connect(connect_packet(protocol_version::v5));
  const auto acts = packet(connect_packet(protocol_version::v5));
  EXPECT_EQ(sent<mqtt::disconnect>(acts).at(0).reason, reason_code::protocol_error);
  EXPECT_TRUE(closed(acts));
}

// --- outbound QoS flows -------------------------------------------------------------------------

TEST_F(session_test, outbound_qos0_is_sent_without_id_and_never_queued_offline) {
  connect(connect_packet(protocol_version::v5));
  s_->deliver(to_deliver(message("a"), qos::at_most_once));
  auto pubs = publishes(take());
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_EQ(pubs[0].qos, qos::at_most_once);
  EXPECT_EQ(pubs[0].packet_id, 0);

  // The connection already holds max_queued_bytes unwritten: the delivery would go past the
  // session's byte bound, so it is dropped.
  s_->deliver(to_deliver(message("a"), qos::at_most_once), lim_.max_queued_bytes);
  EXPECT_TRUE(publishes(take()).empty()) << "congested: QoS 0 is dropped";
  EXPECT_EQ(stats_.get(events::stat::messages_dropped), 1u);
}

TEST_F(session_test, outbound_qos1_completes_with_puback_and_is_resent_with_dup_on_reconnect) {
  auto c = connect_packet(protocol_version::v5);
  c.clean_start = false;
  c.props.session_expiry_interval = 60;
  connect(c);
  s_->deliver(to_deliver(message("a"), qos::at_least_once));
  s_->deliver(to_deliver(message("b"), qos::at_least_once));
  auto pubs = publishes(take());
  ASSERT_EQ(pubs.size(), 2u);
  EXPECT_NE(pubs[0].packet_id, 0);
  EXPECT_NE(pubs[0].packet_id, pubs[1].packet_id);
  EXPECT_FALSE(pubs[0].dup);
  packet(mqtt::puback{pubs[0].packet_id, reason_code::success, {}});
  EXPECT_EQ(s_->current().inflight.size(), 1u);

  // The unacknowledged one goes again, with DUP and its identifier [MQTT-4.4.0-1].
  const auto again = publishes(reconnect(c));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[0].dup);
  EXPECT_EQ(again[0].packet_id, pubs[1].packet_id);
  EXPECT_EQ(again[0].topic, "b");
}

TEST_F(session_test, outbound_qos2_pubrec_pubrel_pubcomp_and_pubrel_resent_on_reconnect) {
  auto c = connect_packet(protocol_version::v5);
  c.clean_start = false;
  c.props.session_expiry_interval = 60;
  connect(c);
  s_->deliver(to_deliver(message("a"), qos::exactly_once));
  s_->deliver(to_deliver(message("b"), qos::exactly_once));
  const auto pubs = publishes(take());
  ASSERT_EQ(pubs.size(), 2u);
  const std::uint16_t released = pubs[0].packet_id;
  const std::uint16_t unanswered = pubs[1].packet_id;

  auto rels = sent<mqtt::pubrel>(packet(mqtt::pubrec{released, reason_code::success, {}}));
  ASSERT_EQ(rels.size(), 1u);
  EXPECT_EQ(rels[0].packet_id, released);

  // After a reconnect: PUBREL again for the released one, PUBLISH with DUP for the other, in
  // the order they were first sent [MQTT-4.6.0-1].
  const auto acts = reconnect(c);
  ASSERT_EQ(sent<mqtt::pubrel>(acts).size(), 1u);
  EXPECT_EQ(sent<mqtt::pubrel>(acts)[0].packet_id, released);
  ASSERT_EQ(publishes(acts).size(), 1u);
  EXPECT_EQ(publishes(acts)[0].packet_id, unanswered);
  EXPECT_TRUE(publishes(acts)[0].dup);
  std::size_t pubrel_at = 0;
  std::size_t publish_at = 0;
  for (std::size_t i = 0; i < acts.size(); ++i) {
    if (std::holds_alternative<send_publish>(acts[i])) {
      publish_at = i;
    } else if (const auto* p = std::get_if<send_packet>(&acts[i]);
               p && std::holds_alternative<mqtt::pubrel>(p->packet)) {
      pubrel_at = i;
    }
  }
  EXPECT_LT(pubrel_at, publish_at);

  packet(mqtt::pubcomp{released, reason_code::success, {}});
  EXPECT_EQ(s_->current().inflight.size(), 1u);
  packet(mqtt::pubrec{unanswered, reason_code::success, {}});
  packet(mqtt::pubcomp{unanswered, reason_code::success, {}});
  EXPECT_TRUE(s_->current().inflight.empty());
}

TEST_F(session_test, pubrec_for_an_unknown_id_gets_pubrel_not_found_in_v5) {
  connect(connect_packet(protocol_version::v5));
  const auto rels = sent<mqtt::pubrel>(packet(mqtt::pubrec{77, reason_code::success, {}}));
  ASSERT_EQ(rels.size(), 1u);
  EXPECT_EQ(rels[0].reason, reason_code::packet_identifier_not_found);
}

TEST_F(session_test, pubrec_with_an_error_ends_the_flow_and_frees_the_window) {
  auto c = connect_packet(protocol_version::v5);
  c.props.receive_maximum = 1;
  connect(c);
  s_->deliver(to_deliver(message("a"), qos::exactly_once));
  s_->deliver(to_deliver(message("b"), qos::exactly_once));
  const auto first = publishes(take());
  ASSERT_EQ(first.size(), 1u);
  const auto acts = packet(mqtt::pubrec{first[0].packet_id, reason_code::unspecified_error, {}});
  EXPECT_TRUE(sent<mqtt::pubrel>(acts).empty());
  ASSERT_EQ(publishes(acts).size(), 1u);
  EXPECT_EQ(publishes(acts)[0].topic, "b");
}

// --- inflight window, queue ---------------------------------------------------------------------

TEST_F(session_test, inflight_window_honours_the_client_receive_maximum) {
  auto c = connect_packet(protocol_version::v5);
  c.props.receive_maximum = 2;
  connect(c);
  for (const char* t : {"1", "2", "3", "4", "5"}) {
    s_->deliver(to_deliver(message(t), qos::at_least_once));
  }
  auto pubs = publishes(take());
  ASSERT_EQ(pubs.size(), 2u) << "no more than Receive Maximum unacknowledged [MQTT-3.3.4-7]";
  EXPECT_EQ(s_->current().queue.size(), 3u);
  // Each PUBACK lets exactly one more go, in order.
  std::vector<std::string> order{pubs[0].topic, pubs[1].topic};
  for (int i = 0; i < 3; ++i) {
    const auto next = publishes(packet(mqtt::puback{pubs[0].packet_id, reason_code::success, {}}));
    ASSERT_EQ(next.size(), 1u);
    order.push_back(next[0].topic);
    pubs.erase(pubs.begin());
    pubs.push_back(next[0]);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"1", "2", "3", "4", "5"}));
}

TEST_F(session_test, inflight_window_is_also_capped_by_the_broker_limit) {
  lim_.max_inflight = 3;
  auto c = connect_packet(protocol_version::v5);
  c.props.receive_maximum = 100;
  connect(c);
  for (int i = 0; i < 10; ++i) {
    s_->deliver(to_deliver(message("t"), qos::exactly_once));
  }
  EXPECT_EQ(publishes(take()).size(), 3u);
}

TEST_F(session_test, v311_window_is_the_broker_limit) {
  lim_.max_inflight = 4;
  connect(connect_packet(protocol_version::v3_1_1));
  for (int i = 0; i < 10; ++i) {
    s_->deliver(to_deliver(message("t"), qos::at_least_once));
  }
  EXPECT_EQ(publishes(take()).size(), 4u);
}

TEST_F(session_test, offline_queue_is_bounded_by_count_and_drops_the_newest) {
  lim_.max_queued_messages = 3;
  const auto c = offline();
  for (const char* t : {"1", "2", "3", "4", "5"}) {
    s_->deliver(to_deliver(message(t), qos::at_least_once));
  }
  EXPECT_EQ(stats_.get(events::stat::messages_dropped), 2u);
  EXPECT_EQ(s_->current().queue.size(), 3u);
  // A QoS 0 message is not kept for an offline session.
  s_->deliver(to_deliver(message("zero"), qos::at_most_once));
  EXPECT_EQ(s_->current().queue.size(), 3u);

  auto st = s_->release_state();
  make(std::move(st));
  s_->on_connect(c, true, false);
  std::vector<std::string> got;
  for (const auto& p : publishes(take())) {
    got.push_back(p.topic);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"1", "2", "3"}));
}

TEST_F(session_test, offline_queue_is_bounded_by_bytes) {
  const auto one = footprint(to_deliver(message("t", std::string(10, 'x')), qos::at_least_once));
  lim_.max_queued_bytes = 2 * one + one / 2; // the messages' memory, not only topic and payload
  auto c = connect_packet(protocol_version::v3_1_1);
  c.clean_start = false;
  connect(c);
  s_->on_connection_lost();
  take();
  for (int i = 0; i < 3; ++i) { // the third is dropped
    s_->deliver(to_deliver(message("t", std::string(10, 'x')), qos::at_least_once));
  }
  EXPECT_EQ(s_->current().queue.size(), 2u);
  EXPECT_EQ(s_->current().queued_bytes, 2 * one);
  EXPECT_EQ(stats_.get(events::stat::messages_dropped), 1u);
}

std::vector<bool> congestion(const std::vector<action>& acts) {
  std::vector<bool> out;
  for (const auto& c : all_of<congestion_changed>(acts)) {
    out.push_back(c.congested);
  }
  return out;
}

TEST_F(session_test, live_qos1_past_the_bounds_is_kept_and_the_session_is_congested) {
  const auto one = footprint(to_deliver(message("t", std::string(100, 'x')), qos::at_least_once));
  lim_.max_queued_bytes = 10 * one;
  lim_.max_inflight = 4;
  connect(connect_packet(protocol_version::v5));
  // Nothing acknowledged: 4 in flight, then the queue; past the bound nothing is dropped (its
  // publisher was acknowledged), the session says once that it is congested.
  for (int i = 0; i < 20; ++i) {
    s_->deliver(to_deliver(message("t", std::string(100, 'x')), qos::at_least_once));
  }
  auto acts = take();
  EXPECT_EQ(publishes(acts).size(), 4u);
  EXPECT_EQ(congestion(acts), std::vector<bool>{true});
  EXPECT_TRUE(s_->congested());
  EXPECT_EQ(s_->current().queue.size(), 16u);
  EXPECT_EQ(stats_.get(events::stat::messages_dropped), 0u);
  // QoS 0 is still dropped past the byte bound, which counts the connection's backlog too.
  s_->deliver(to_deliver(message("t", std::string(100, 'x')), qos::at_most_once), 5 * one);
  EXPECT_TRUE(publishes(take()).empty());
  EXPECT_EQ(stats_.get(events::stat::messages_dropped), 1u);
  // Relieved once under half of both bounds: 5 deliveries held (4 in flight, 1 queued) is half
  // of 10, but not with a backlog.
  for (std::uint16_t id = 1; id <= 15; ++id) {
    packet(mqtt::puback{id, reason_code::success, {}});
  }
  EXPECT_EQ(s_->current().inflight_bytes + s_->current().queued_bytes, 5 * one);
  s_->relieve(one);
  EXPECT_TRUE(congestion(take()).empty());
  s_->relieve(0);
  EXPECT_EQ(congestion(take()), std::vector<bool>{false});
  EXPECT_FALSE(s_->congested());
  EXPECT_EQ(stats_.get(events::stat::messages_dropped), 1u);
}

TEST_F(session_test, the_message_count_bound_congests_a_connected_session_too) {
  lim_.max_queued_messages = 4;
  lim_.max_inflight = 1;
  connect(connect_packet(protocol_version::v3_1_1));
  for (int i = 0; i < 8; ++i) {
    s_->deliver(to_deliver(message("t"), qos::exactly_once));
  }
  EXPECT_EQ(congestion(take()), std::vector<bool>{true});
  EXPECT_EQ(s_->current().queue.size(), 7u);
  // Half of 4 queued: relieved.
  for (std::uint16_t id = 1; id <= 5; ++id) {
    packet(mqtt::pubrec{id, reason_code::success, {}});
    packet(mqtt::pubcomp{id, reason_code::success, {}});
  }
  EXPECT_EQ(s_->current().queue.size(), 2u);
  s_->relieve(0);
  EXPECT_EQ(congestion(take()), std::vector<bool>{false});
}

TEST_F(session_test, retained_messages_past_the_bounds_are_dropped_not_congesting) {
  lim_.max_queued_messages = 2;
  lim_.max_inflight = 1;
  connect(connect_packet(protocol_version::v5));
  subscription_change sub;
  sub.filter = "#";
  sub.options.max_qos = qos::at_least_once;
  for (int i = 0; i < 5; ++i) {
    s_->deliver_retained(message("r" + std::to_string(i)), sub);
  }
  auto acts = take();
  EXPECT_EQ(publishes(acts).size(), 1u);
  EXPECT_TRUE(congestion(acts).empty());
  EXPECT_EQ(s_->current().queue.size(), 2u);
  EXPECT_EQ(stats_.get(events::stat::messages_dropped), 2u);
}

TEST_F(session_test, a_congested_session_without_acknowledgements_is_disconnected) {
  lim_.max_queued_messages = 2;
  lim_.max_inflight = 1;
  lim_.slow_subscriber_timeout = 30s;
  auto c = connect_packet(protocol_version::v5);
  c.props.session_expiry_interval = 600;
  connect(c);
  for (int i = 0; i < 6; ++i) {
    s_->deliver(to_deliver(message("t" + std::to_string(i)), qos::at_least_once));
  }
  EXPECT_FALSE(all_of<arm_timer>(take()).empty()) << "the timeout is a deadline of its own";
  EXPECT_FALSE(closed(tick(29s)));
  // An acknowledgement is progress: the timeout starts again.
  packet(mqtt::puback{1, reason_code::success, {}});
  EXPECT_FALSE(closed(tick(29s)));
  auto acts = tick(1s);
  ASSERT_TRUE(closed(acts));
  const auto disconnects = sent<mqtt::disconnect>(acts);
  ASSERT_EQ(disconnects.size(), 1u);
  EXPECT_EQ(disconnects.front().reason, reason_code::quota_exceeded);
  EXPECT_EQ(all_of<close_connection>(acts).front().reason, make_error_code(session_errc::slow_subscriber));
  // Offline, not congested any more, and its queue trimmed back to the bound (the newest given up).
  EXPECT_EQ(congestion(acts), std::vector<bool>{false});
  EXPECT_EQ(s_->current().queue.size(), 2u);
  EXPECT_EQ(stats_.get(events::stat::messages_dropped), 2u);
  EXPECT_EQ(s_->current().queue.front().message->topic, "t2");
}

TEST_F(session_test, an_offline_queue_can_give_up_its_oldest_messages_instead) {
  lim_.max_queued_messages = 3;
  lim_.queue_overflow = overflow_policy::drop_oldest;
  offline();
  for (const char* t : {"1", "2", "3", "4", "5"}) {
    s_->deliver(to_deliver(message(t), qos::at_least_once));
  }
  EXPECT_EQ(stats_.get(events::stat::messages_dropped), 2u);
  std::vector<std::string> kept;
  for (const auto& d : s_->current().queue) {
    kept.push_back(d.message->topic);
  }
  EXPECT_EQ(kept, (std::vector<std::string>{"3", "4", "5"}));
  // One larger than the whole bound is not kept, and costs nothing queued.
  lim_.max_queued_bytes = footprint(to_deliver(message("4"), qos::at_least_once)) * 7 / 2;
  s_->deliver(to_deliver(message("big", std::string(10000, 'x')), qos::at_least_once));
  EXPECT_EQ(s_->current().queue.size(), 3u);
  EXPECT_EQ(stats_.get(events::stat::messages_dropped), 3u);
}

TEST_F(session_test, a_connected_client_with_nothing_outstanding_gets_a_message_larger_than_the_bound) {
  lim_.max_queued_bytes = 100;
  connect(connect_packet(protocol_version::v5));
  s_->deliver(to_deliver(message("t", std::string(1000, 'x')), qos::at_least_once));
  EXPECT_EQ(publishes(take()).size(), 1u);
  // Offline, nothing that large is kept.
  s_->on_connection_lost();
  take();
  s_->deliver(to_deliver(message("t", std::string(1000, 'x')), qos::at_least_once));
  EXPECT_EQ(s_->current().queue.size(), 0u);
}

// --- message expiry -----------------------------------------------------------------------------

TEST_F(session_test, message_expiry_is_sent_as_the_remaining_interval_and_expired_ones_are_discarded) {
  auto c = connect_packet(protocol_version::v5);
  c.clean_start = false;
  c.props.session_expiry_interval = 600;
  connect(c);
  auto m = std::make_shared<mqtt::message>(*message("live"));
  m->expires_at = clock_.now() + 30s;
  clock_.advance(10s);
  s_->deliver(to_deliver(m, qos::at_least_once));
  const auto pubs = publishes(take());
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_EQ(pubs[0].props.message_expiry_interval, 20u) << "[MQTT-3.3.2-6]";

  s_->on_connection_lost();
  take();
  auto q = std::make_shared<mqtt::message>(*message("queued"));
  q->expires_at = clock_.now() + 5s;
  s_->deliver(to_deliver(q, qos::at_least_once));
  clock_.advance(6s);
  auto st = s_->release_state();
  make(std::move(st));
  s_->on_connect(c, true, false);
  for (const auto& p : publishes(take())) {
    EXPECT_NE(p.topic, "queued") << "expired while queued [MQTT-3.3.2-5]";
  }
  EXPECT_EQ(stats_.get(events::stat::messages_dropped), 0u) << "an expired message is not a drop";
}

// --- session expiry, will, will delay ------------------------------------------------------------

TEST_F(session_test, session_with_expiry_zero_ends_with_the_connection) {
  connect(connect_packet(protocol_version::v5));
  s_->on_connection_lost();
  EXPECT_TRUE(ended(take()));
  EXPECT_TRUE(s_->ended());
}

TEST_F(session_test, session_expiry_interval_ends_an_offline_session_on_time) {
  auto c = connect_packet(protocol_version::v5);
  c.props.session_expiry_interval = 10;
  connect(c);
  s_->on_connection_lost();
  const auto acts = take();
  EXPECT_FALSE(ended(acts));
  ASSERT_FALSE(all_of<arm_timer>(acts).empty());
  EXPECT_EQ(all_of<arm_timer>(acts).back().at, clock_.now() + 10s);
  EXPECT_FALSE(ended(tick(9s)));
  EXPECT_TRUE(ended(tick(1s)));
}

TEST_F(session_test, disconnect_may_change_the_expiry_but_not_from_zero) {
  auto c = connect_packet(protocol_version::v5);
  c.props.session_expiry_interval = 10;
  connect(c);
  mqtt::disconnect d;
  d.props.session_expiry_interval = 0;
  EXPECT_TRUE(ended(packet(d))) << "DISCONNECT with expiry 0 ends the session at once";

  s_.reset();
  connect(connect_packet(protocol_version::v5)); // expiry 0 in CONNECT
  d.props.session_expiry_interval = 30;
  const auto acts = packet(d);
  ASSERT_EQ(sent<mqtt::disconnect>(acts).size(), 1u) << "[MQTT-3.14.2-2]";
  EXPECT_EQ(sent<mqtt::disconnect>(acts)[0].reason, reason_code::protocol_error);
}

TEST_F(session_test, v311_persistent_session_lasts_max_session_expiry) {
  lim_.max_session_expiry = 100;
  auto c = connect_packet(protocol_version::v3_1_1);
  c.clean_start = false;
  connect(c);
  s_->on_connection_lost();
  take();
  EXPECT_FALSE(ended(tick(99s)));
  EXPECT_TRUE(ended(tick(1s)));
}

mqtt::connect with_will(protocol_version v, std::uint32_t delay = 0, std::uint32_t expiry = 0) {
  auto c = connect_packet(v);
  mqtt::will w;
  w.topic = "will/t";
  w.payload = "gone";
  w.qos = qos::at_least_once;
  if (delay != 0) {
    w.props.will_delay_interval = delay;
  }
  c.will_message = w;
  if (expiry != 0) {
    c.props.session_expiry_interval = expiry;
  }
  return c;
}

TEST_F(session_test, will_is_published_on_connection_loss_not_on_normal_disconnect) {
  connect(with_will(protocol_version::v3_1_1));
  s_->on_connection_lost();
  const auto routed = all_of<route_message>(take());
  ASSERT_EQ(routed.size(), 1u);
  EXPECT_EQ(routed[0].message->topic, "will/t");
  EXPECT_EQ(routed[0].message->payload, "gone");
  EXPECT_EQ(routed[0].message->qos, qos::at_least_once);

  s_.reset();
  connect(with_will(protocol_version::v3_1_1));
  EXPECT_TRUE(routed_topics(packet(mqtt::disconnect{})).empty()) << "[MQTT-3.14.4-3]";

  s_.reset();
  connect(with_will(protocol_version::v5));
  EXPECT_EQ(routed_topics(packet(mqtt::disconnect{reason_code::disconnect_with_will_message, {}})).size(),
            1u);
}

TEST_F(session_test, will_is_published_on_a_protocol_error) {
  connect(with_will(protocol_version::v5));
  EXPECT_EQ(routed_topics(packet(mqtt::connack{})).size(), 1u);
}

TEST_F(session_test, will_delay_holds_the_will_back) {
  connect(with_will(protocol_version::v5, 5, 60));
  s_->on_connection_lost();
  EXPECT_TRUE(routed_topics(take()).empty());
  EXPECT_TRUE(routed_topics(tick(4s)).empty());
  EXPECT_EQ(routed_topics(tick(1s)), std::vector<std::string>{"will/t"});
  EXPECT_TRUE(routed_topics(tick(60s)).empty()) << "published once";
}

TEST_F(session_test, will_goes_when_the_session_ends_before_its_delay) {
  connect(with_will(protocol_version::v5, 30, 10));
  s_->on_connection_lost();
  take();
  const auto acts = tick(10s);
  EXPECT_EQ(routed_topics(acts), std::vector<std::string>{"will/t"}) << "[MQTT-3.1.3-9]";
  EXPECT_TRUE(ended(acts));
}

TEST_F(session_test, will_delay_without_session_expiry_goes_at_once) {
  connect(with_will(protocol_version::v5, 30, 0));
  s_->on_connection_lost();
  EXPECT_EQ(routed_topics(take()), std::vector<std::string>{"will/t"});
}

TEST_F(session_test, will_with_delay_is_cancelled_by_a_resuming_connection) {
  connect(with_will(protocol_version::v5, 5, 60));
  s_->on_connection_lost();
  take();
  s_->take_over(true);
  EXPECT_TRUE(routed_topics(take()).empty());
  EXPECT_TRUE(routed_topics(tick(10s)).empty());
}

// --- takeover ------------------------------------------------------------------------------------

TEST_F(session_test, takeover_of_a_v5_connection_sends_session_taken_over_and_publishes_the_will) {
  connect(with_will(protocol_version::v5));
  s_->take_over(false);
  const auto acts = take();
  const auto d = sent<mqtt::disconnect>(acts);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].reason, reason_code::session_taken_over);
  EXPECT_TRUE(d[0].props.reason_string) << "paho 1.x reads the reason only when properties follow";
  EXPECT_TRUE(closed(acts));
  EXPECT_EQ(routed_topics(acts), std::vector<std::string>{"will/t"});
  EXPECT_TRUE(ended(acts)) << "clean start: the old session ends";
}

TEST_F(session_test, takeover_of_a_v311_connection_closes_without_disconnect) {
  connect(connect_packet(protocol_version::v3_1_1));
  s_->take_over(false);
  const auto acts = take();
  EXPECT_TRUE(sent<mqtt::disconnect>(acts).empty());
  EXPECT_TRUE(closed(acts));
}

TEST_F(session_test, takeover_with_resume_hands_the_state_over) {
  auto c = connect_packet(protocol_version::v5);
  c.props.session_expiry_interval = 60;
  connect(c);
  subscribe("a/+", qos::at_least_once);
  s_->deliver(to_deliver(message("a/b"), qos::at_least_once));
  take();
  s_->take_over(true);
  const auto acts = take();
  EXPECT_FALSE(ended(acts));
  EXPECT_TRUE(closed(acts));
  const auto st = s_->release_state();
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->subscriptions.contains("a/+"));
  EXPECT_EQ(st->inflight.size(), 1u);
}

TEST_F(session_test, server_disconnect_reason_string_respects_client_maximum_packet_size) {
  auto c = connect_packet(protocol_version::v5);
  c.props.maximum_packet_size = 8;
  connect(c);
  s_->take_over(false);
  const auto d = sent<mqtt::disconnect>(take());
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].reason, reason_code::session_taken_over);
  EXPECT_FALSE(d[0].props.reason_string) << "[MQTT-3.14.2-3]";
  EXPECT_LE(mqtt::encoded_size(d[0], protocol_version::v5), 8u);
}

TEST_F(session_test, shutdown_sends_server_shutting_down) {
  connect(with_will(protocol_version::v5));
  s_->publish_will_now();
  EXPECT_EQ(routed_topics(take()), std::vector<std::string>{"will/t"});
  s_->shut_down();
  const auto acts = take();
  EXPECT_EQ(sent<mqtt::disconnect>(acts).at(0).reason, reason_code::server_shutting_down);
  EXPECT_TRUE(closed(acts));
  EXPECT_TRUE(routed_topics(acts).empty()) << "the will went in phase 1, once";
}

TEST_F(session_test, end_connection_sends_its_reason_and_publishes_the_will) {
  connect(with_will(protocol_version::v5));
  s_->end_connection(reason_code::maximum_connect_time);
  const auto acts = take();
  EXPECT_EQ(sent<mqtt::disconnect>(acts).at(0).reason, reason_code::maximum_connect_time);
  EXPECT_TRUE(closed(acts));
  EXPECT_EQ(routed_topics(acts), std::vector<std::string>{"will/t"});
}

// --- topic aliases -------------------------------------------------------------------------------

TEST_F(session_test, inbound_topic_alias_sets_and_uses_a_mapping) {
  lim_.topic_alias_maximum = 4;
  connect(connect_packet(protocol_version::v5));
  auto p = inbound("a/b", qos::at_most_once);
  p.props.topic_alias = 2;
  auto routed = all_of<route_message>(packet(p));
  ASSERT_EQ(routed.size(), 1u);
  EXPECT_FALSE(routed[0].message->props.topic_alias) << "aliases are per connection, not passed on";

  auto q = inbound("", qos::at_most_once);
  q.props.topic_alias = 2;
  EXPECT_EQ(routed_topics(packet(q)), std::vector<std::string>{"a/b"});

  auto r = inbound("c/d", qos::at_most_once); // replaces the mapping [MQTT-3.3.2-12]
  r.props.topic_alias = 2;
  packet(r);
  EXPECT_EQ(routed_topics(packet(q)), std::vector<std::string>{"c/d"});
}

TEST_F(session_test, inbound_topic_alias_errors) {
  lim_.topic_alias_maximum = 4;
  connect(connect_packet(protocol_version::v5));
  auto p = inbound("a", qos::at_most_once);
  p.props.topic_alias = 5; // above our maximum
  auto acts = packet(p);
  EXPECT_EQ(sent<mqtt::disconnect>(acts).at(0).reason, reason_code::topic_alias_invalid);

  s_.reset();
  connect(connect_packet(protocol_version::v5));
  auto q = inbound("", qos::at_most_once);
  q.props.topic_alias = 1; // never set on this connection
  acts = packet(q);
  EXPECT_EQ(sent<mqtt::disconnect>(acts).at(0).reason, reason_code::protocol_error);
}

TEST_F(session_test, inbound_aliases_do_not_survive_the_connection) {
  lim_.topic_alias_maximum = 4;
  auto c = connect_packet(protocol_version::v5);
  c.props.session_expiry_interval = 60;
  connect(c);
  auto p = inbound("a/b", qos::at_most_once);
  p.props.topic_alias = 1;
  packet(p);
  reconnect(c);
  auto q = inbound("", qos::at_most_once);
  q.props.topic_alias = 1;
  EXPECT_EQ(sent<mqtt::disconnect>(packet(q)).at(0).reason, reason_code::protocol_error);
}

TEST_F(session_test, outbound_topic_aliases_are_assigned_up_to_the_smaller_maximum) {
  lim_.topic_alias_maximum = 10;
  auto c = connect_packet(protocol_version::v5);
  c.props.topic_alias_maximum = 2;
  connect(c);
  for (const char* t : {"x/1", "x/1", "x/2", "x/3", "x/2"}) {
    s_->deliver(to_deliver(message(t), qos::at_most_once));
  }
  const auto pubs = publishes(take());
  ASSERT_EQ(pubs.size(), 5u);
  EXPECT_EQ(pubs[0].topic, "x/1");
  EXPECT_EQ(pubs[0].props.topic_alias, 1);
  EXPECT_EQ(pubs[1].topic, "") << "later messages carry only the alias";
  EXPECT_EQ(pubs[1].props.topic_alias, 1);
  EXPECT_EQ(pubs[2].topic, "x/2");
  EXPECT_EQ(pubs[2].props.topic_alias, 2);
  EXPECT_EQ(pubs[3].topic, "x/3") << "no alias left";
  EXPECT_FALSE(pubs[3].props.topic_alias);
  EXPECT_EQ(pubs[4].topic, "");
  EXPECT_EQ(pubs[4].props.topic_alias, 2);
}

TEST_F(session_test, no_outbound_aliases_to_a_client_that_did_not_allow_them) {
  lim_.topic_alias_maximum = 10;
  connect(connect_packet(protocol_version::v5));
  s_->deliver(to_deliver(message("x"), qos::at_most_once));
  s_->deliver(to_deliver(message("x"), qos::at_most_once));
  for (const auto& p : publishes(take())) {
    EXPECT_EQ(p.topic, "x");
    EXPECT_FALSE(p.props.topic_alias);
  }
}

TEST_F(session_test, outbound_aliases_start_again_on_a_new_connection) {
  lim_.topic_alias_maximum = 10;
  auto c = connect_packet(protocol_version::v5);
  c.props.topic_alias_maximum = 5;
  c.props.session_expiry_interval = 60;
  connect(c);
  s_->deliver(to_deliver(message("x"), qos::at_most_once));
  take();
  reconnect(c);
  s_->deliver(to_deliver(message("x"), qos::at_most_once));
  const auto pubs = publishes(take());
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_EQ(pubs[0].topic, "x") << "the new connection has no mapping yet";
  EXPECT_EQ(pubs[0].props.topic_alias, 1);
}

// --- Maximum Packet Size outbound ----------------------------------------------------------------

TEST_F(session_test, delivery_over_the_client_maximum_packet_size_is_dropped_and_counted) {
  auto c = connect_packet(protocol_version::v5);
  c.props.maximum_packet_size = 64;
  connect(c);
  s_->deliver(to_deliver(message("big", std::string(100, 'x')), qos::at_least_once));
  auto acts = take();
  EXPECT_TRUE(publishes(acts).empty()) << "[MQTT-3.1.2-24]";
  EXPECT_EQ(stats_.get(events::stat::messages_dropped), 1u);
  EXPECT_TRUE(s_->current().inflight.empty()) << "not waiting for a PUBACK that cannot come";

  s_->deliver(to_deliver(message("small", std::string(10, 'x')), qos::at_least_once));
  EXPECT_EQ(publishes(take()).size(), 1u);
}

TEST_F(session_test, maximum_packet_size_counts_the_whole_packet) {
  auto c = connect_packet(protocol_version::v5);
  const auto m = message("t", std::string(20, 'x'));
  mqtt::publish header;
  header.topic = "t";
  header.qos = qos::at_least_once;
  header.packet_id = 1;
  std::vector<std::byte> buf;
  const auto exact = static_cast<std::uint32_t>(
      mqtt::encode_publish_header(header, m->payload.size(), protocol_version::v5, buf) + m->payload.size());
  c.props.maximum_packet_size = exact;
  connect(c);
  s_->deliver(to_deliver(m, qos::at_least_once));
  EXPECT_EQ(publishes(take()).size(), 1u) << "exactly the limit is allowed";

  s_.reset();
  c.props.maximum_packet_size = exact - 1;
  connect(c);
  s_->deliver(to_deliver(m, qos::at_least_once));
  EXPECT_TRUE(publishes(take()).empty());
}

// --- subscriptions -------------------------------------------------------------------------------

TEST_F(session_test, subscribe_grants_at_most_the_broker_qos_and_counts_the_limit) {
  lim_.max_qos = qos::at_least_once;
  lim_.max_subscriptions_per_client = 2;
  connect(connect_packet(protocol_version::v5));
  mqtt::subscribe sub;
  sub.packet_id = 5;
  sub.subscriptions = {{"a", {qos::exactly_once}},
                       {"b", {qos::at_most_once}},
                       {"c", {qos::at_least_once}},
                       {"a/#/b", {qos::at_most_once}}};
  const auto acts = packet(std::move(sub));
  const auto apply = all_of<apply_subscriptions>(acts);
  ASSERT_EQ(apply.size(), 1u);
  EXPECT_EQ(apply[0].ack.packet_id, 5);
  EXPECT_EQ(apply[0].ack.reasons,
            (std::vector<reason_code>{reason_code::granted_qos_1, reason_code::success,
                                      reason_code::quota_exceeded, reason_code::topic_filter_invalid}));
  ASSERT_EQ(apply[0].changes.size(), 2u);
  EXPECT_EQ(apply[0].changes[0].options.max_qos, qos::at_least_once);
}

TEST_F(session_test, v311_refused_filter_gets_0x80) {
  connect(connect_packet(protocol_version::v3_1_1));
  mqtt::subscribe sub;
  sub.packet_id = 1;
  sub.subscriptions = {{"a/#/b", {qos::at_most_once}}};
  const auto apply = all_of<apply_subscriptions>(packet(std::move(sub)));
  ASSERT_EQ(apply.size(), 1u);
  EXPECT_EQ(apply[0].ack.reasons, std::vector<reason_code>{reason_code::unspecified_error});
}

TEST_F(session_test, unsubscribe_reports_each_filter) {
  connect(connect_packet(protocol_version::v5));
  subscribe("a", qos::at_most_once);
  mqtt::unsubscribe u;
  u.packet_id = 3;
  u.filters = {"a", "never"};
  const auto apply = all_of<apply_unsubscriptions>(packet(std::move(u)));
  ASSERT_EQ(apply.size(), 1u);
  EXPECT_EQ(apply[0].filters, std::vector<std::string>{"a"});
  EXPECT_EQ(apply[0].ack.reasons,
            (std::vector<reason_code>{reason_code::success, reason_code::no_subscription_existed}));
}

TEST_F(session_test, no_local_on_a_shared_subscription_is_a_protocol_error) {
  connect(connect_packet(protocol_version::v5));
  mqtt::subscribe sub;
  sub.packet_id = 1;
  mqtt::subscribe_options o;
  o.no_local = true;
  sub.subscriptions = {{"$share/g/t", o}};
  EXPECT_EQ(sent<mqtt::disconnect>(packet(std::move(sub))).at(0).reason, reason_code::protocol_error);
}

TEST_F(session_test, client_publish_with_a_subscription_identifier_is_a_protocol_error) {
  connect(connect_packet(protocol_version::v5));
  auto p = inbound("a/b", qos::at_least_once, 7);
  p.props.subscription_identifiers = {3};
  const auto acts = packet(std::move(p));
  EXPECT_TRUE(sent<mqtt::puback>(acts).empty()) << "not acknowledged";
  EXPECT_TRUE(routed_topics(acts).empty()) << "not routed";
  ASSERT_EQ(sent<mqtt::disconnect>(acts).size(), 1u) << "[MQTT-3.3.4-6]";
  EXPECT_EQ(sent<mqtt::disconnect>(acts)[0].reason, reason_code::protocol_error);
  EXPECT_TRUE(closed(acts));
}

// --- rights (authorizer) ------------------------------------------------------------------------

// Rights by topic prefix: may publish and receive topics that start with `allowed`.
class prefix_rights final : public authorizer {
public:
  explicit prefix_rights(std::string allowed) : allowed_(std::move(allowed)) {}
  bool may_publish(std::string_view topic, qos, bool) const override { return topic.starts_with(allowed_); }
  bool may_subscribe(std::string_view filter) const override { return filter.starts_with(allowed_); }
  bool may_receive(std::string_view topic) const override { return topic.starts_with(allowed_); }
  explanation explain_publish(std::string_view topic, qos, bool) const override {
    return {"prefix", allowed_, topic.starts_with(allowed_)};
  }
  explanation explain_subscribe(std::string_view filter) const override {
    return {"prefix", allowed_, filter.starts_with(allowed_)};
  }

private:
  std::string allowed_;
};

TEST_F(session_test, a_will_is_checked_again_when_it_is_published) {
  make();
  s_->set_rights(std::make_shared<prefix_rights>("will/"));
  connect(with_will(protocol_version::v5, 0, 60));
  // A reload takes the right away before the connection is lost: the will is not published.
  s_->set_rights(std::make_shared<prefix_rights>("other/"));
  s_->on_connection_lost();
  const auto acts = take();
  EXPECT_TRUE(routed_topics(acts).empty());
  const auto refused = all_of<publish_refused>(acts);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].topic, "will/t");
  EXPECT_TRUE(refused[0].will);
  EXPECT_EQ(refused[0].why.rule, "other/");
  EXPECT_EQ(stats_.get(events::stat::publishes_denied), 1u);

  // With the right, it goes as usual.
  s_.reset();
  make();
  s_->set_rights(std::make_shared<prefix_rights>("will/"));
  connect(with_will(protocol_version::v5));
  s_->on_connection_lost();
  EXPECT_EQ(routed_topics(take()), std::vector<std::string>{"will/t"});
}

TEST_F(session_test, a_delayed_will_is_checked_when_its_delay_ends) {
  make();
  s_->set_rights(std::make_shared<prefix_rights>("will/"));
  connect(with_will(protocol_version::v5, 5, 60));
  s_->on_connection_lost();
  EXPECT_TRUE(routed_topics(take()).empty()) << "delayed";
  s_->set_rights(std::make_shared<prefix_rights>("other/"));
  const auto acts = tick(5s);
  EXPECT_TRUE(routed_topics(acts).empty());
  EXPECT_EQ(all_of<publish_refused>(acts).size(), 1u);
}

TEST_F(session_test, queued_and_inflight_deliveries_are_checked_against_the_current_rights) {
  auto c = connect_packet(protocol_version::v5);
  c.props.session_expiry_interval = 60;
  c.props.receive_maximum = 1;
  make();
  s_->set_rights(std::make_shared<prefix_rights>("a/"));
  connect(c);
  s_->deliver(to_deliver(message("a/1"), qos::at_least_once)); // in flight
  s_->deliver(to_deliver(message("a/2"), qos::at_least_once)); // queued
  EXPECT_EQ(publishes(take()).size(), 1u);
  s_->on_connection_lost();
  s_->deliver(to_deliver(message("a/3"), qos::at_least_once)); // queued while offline
  take();
  // A reload takes "a/" away while the session waits: nothing of it reaches the client any more,
  // neither the resend of what was in flight nor the queue.
  s_->set_rights(std::make_shared<prefix_rights>("b/"));
  auto st = s_->release_state();
  make(std::move(st));
  c.props.receive_maximum = 10;
  s_->on_connect(c, true, false);
  EXPECT_TRUE(publishes(take()).empty());
  EXPECT_EQ(stats_.get(events::stat::deliveries_withheld), 3u);
  EXPECT_TRUE(s_->current().inflight.empty());
  EXPECT_TRUE(s_->current().queue.empty());
  EXPECT_EQ(s_->current().inflight_bytes + s_->current().queued_bytes, 0u);
}

// --- connect.cpp ---------------------------------------------------------------------------------

TEST(check_connect, client_identifier_rules) {
  limits lim;
  lim.max_client_id_length = 10;
  auto c = connect_packet(protocol_version::v3_1_1, "");
  c.clean_start = true;
  EXPECT_EQ(check_connect(c, lim), reason_code::success) << "[MQTT-3.1.3-7]";
  c.clean_start = false;
  EXPECT_EQ(check_connect(c, lim), reason_code::client_identifier_not_valid) << "[MQTT-3.1.3-8]";
  c.version = protocol_version::v5;
  EXPECT_EQ(check_connect(c, lim), reason_code::success) << "5.0: the server assigns one";
  c.client_id = std::string(11, 'a');
  EXPECT_EQ(check_connect(c, lim), reason_code::client_identifier_not_valid);

  limits wide;
  auto old = connect_packet(protocol_version::v3_1, std::string(24, 'a'));
  EXPECT_EQ(check_connect(old, wide), reason_code::client_identifier_not_valid) << "3.1: 1 to 23 characters";
  old.client_id = std::string(23, 'a');
  EXPECT_EQ(check_connect(old, wide), reason_code::success);
}

TEST(check_connect, authentication_method_is_refused) {
  auto c = connect_packet(protocol_version::v5);
  c.props.authentication_method = "SCRAM-SHA-1";
  EXPECT_EQ(check_connect(c, limits{}), reason_code::bad_authentication_method);
}

TEST(check_connect, v311_keep_alive_above_the_cap_is_refused) {
  limits lim;
  lim.max_keep_alive = 60;
  auto c = connect_packet(protocol_version::v3_1_1);
  c.keep_alive = 61;
  EXPECT_EQ(check_connect(c, lim), reason_code::client_identifier_not_valid);
  c.version = protocol_version::v5;
  EXPECT_EQ(check_connect(c, lim), reason_code::success) << "5.0 gets Server Keep Alive instead";
}

TEST(check_connect, will_rules) {
  limits lim;
  lim.max_qos = qos::at_least_once;
  lim.retain_available = false;
  lim.max_topic_levels = 3;
  auto c = with_will(protocol_version::v5);
  EXPECT_EQ(check_connect(c, lim), reason_code::success);
  c.will_message->qos = qos::exactly_once;
  EXPECT_EQ(check_connect(c, lim), reason_code::qos_not_supported) << "[MQTT-3.2.2-12]";
  c.version = protocol_version::v3_1_1;
  EXPECT_EQ(check_connect(c, lim), reason_code::success) << "3.1.1: lowered instead";
  c = with_will(protocol_version::v5);
  c.will_message->retain = true;
  EXPECT_EQ(check_connect(c, lim), reason_code::retain_not_supported) << "[MQTT-3.2.2-13]";
  c = with_will(protocol_version::v5);
  c.will_message->topic = "a/b/c/d";
  EXPECT_EQ(check_connect(c, lim), reason_code::topic_name_invalid);
  c.will_message->topic = "$SYS/x";
  EXPECT_EQ(check_connect(c, lim), reason_code::not_authorized);
}

TEST(check_connect, topic_limits_and_sys) {
  limits lim;
  lim.max_topic_levels = 2;
  lim.max_topic_length = 5;
  EXPECT_TRUE(within_topic_limits("a/b", lim));
  EXPECT_FALSE(within_topic_limits("a/b/c", lim));
  EXPECT_FALSE(within_topic_limits("abcdef", lim));
  EXPECT_TRUE(is_sys_topic("$SYS"));
  EXPECT_TRUE(is_sys_topic("$SYS/broker"));
  EXPECT_FALSE(is_sys_topic("$SYSTEM"));
  EXPECT_FALSE(is_sys_topic("a/$SYS"));
  const auto r = refusal(reason_code::not_authorized);
  EXPECT_FALSE(r.session_present) << "[MQTT-3.2.2-6]";
  EXPECT_EQ(r.reason, reason_code::not_authorized);
}

} // namespace
} // namespace firehook::session

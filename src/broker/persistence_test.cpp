// The durable encodings: what goes into the store comes back the same, expiry counts the time the
// broker was down, and damaged records are refused rather than misread.
#include <gtest/gtest.h>

#include <chrono>

#include "broker/persistence.hpp"

namespace firehook::broker::persist {
namespace {

using namespace std::chrono_literals;

instant at(std::chrono::seconds since) {
  return instant{base::time_point{} + 1000s + since,
                 std::chrono::system_clock::time_point{} + 1'700'000'000s + since};
}

mqtt::message sample() {
  mqtt::message m;
  m.topic = "plant/line-1/temp";
  m.payload = std::string("\0\x01binary", 8);
  m.qos = mqtt::qos::exactly_once;
  m.retain = true;
  m.props.payload_format_indicator = 1;
  m.props.content_type = "application/octet-stream";
  m.props.response_topic = "replies/1";
  m.props.correlation_data = "corr";
  m.props.user = {{"k", "v"}, {"k", "w"}};
  m.origin_client_id = "sensor-7";
  return m;
}

TEST(persistence, a_message_comes_back_the_same) {
  mqtt::message m = sample();
  m.expires_at = at(0s).steady + 60s;
  const auto back = decode_message(encode_message(m, at(0s)), at(0s));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->topic, m.topic);
  EXPECT_EQ(back->payload, m.payload);
  EXPECT_EQ(back->qos, m.qos);
  EXPECT_TRUE(back->retain);
  EXPECT_EQ(back->props, m.props);
  EXPECT_EQ(back->origin_client_id, "sensor-7");
  ASSERT_TRUE(back->expires_at);
  EXPECT_EQ(*back->expires_at, *m.expires_at);
}

TEST(persistence, expiry_counts_the_time_the_broker_was_down) {
  mqtt::message m = sample();
  m.expires_at = at(0s).steady + 60s;
  const std::string blob = encode_message(m, at(0s));
  // Read back 20 s later (a restart: the steady clock starts elsewhere, the wall clock goes on).
  instant later = at(20s);
  later.steady = base::time_point{} + 5s;
  const auto back = decode_message(blob, later);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back->expires_at, later.steady + 40s);
  EXPECT_FALSE(decode_message(blob, at(61s))) << "expired while the broker was down";
  mqtt::message forever = sample();
  EXPECT_FALSE(decode_message(encode_message(forever, at(0s)), at(1'000'000s))->expires_at);
}

TEST(persistence, a_delivery_keeps_its_qos_retain_flag_and_subscription_identifiers) {
  session::delivery d;
  d.message = std::make_shared<const mqtt::message>(sample());
  d.qos = mqtt::qos::at_least_once;
  d.retain = false;
  d.subscription_ids = {3, 70000};
  const auto stored = decode_delivery(encode_delivery(d, at(0s)), at(0s));
  ASSERT_TRUE(stored);
  EXPECT_FALSE(stored->packet_id) << "queued, not in flight";
  EXPECT_FALSE(stored->released);
  const session::delivery* back = &stored->what;
  EXPECT_EQ(back->qos, mqtt::qos::at_least_once);
  EXPECT_FALSE(back->retain);
  EXPECT_EQ(back->subscription_ids, d.subscription_ids);
  EXPECT_EQ(back->message->payload, d.message->payload);
  EXPECT_EQ(back->stored, 0u) << "the sequence number is the record's key, not in its blob";
}

TEST(persistence, a_qos2_delivery_in_flight_keeps_its_packet_identifier_and_then_only_that) {
  session::delivery d;
  d.message = std::make_shared<const mqtt::message>(sample());
  d.qos = mqtt::qos::exactly_once;
  d.subscription_ids = {9};
  const auto sent = decode_delivery(encode_in_flight(d, 513, false, at(0s)), at(0s));
  ASSERT_TRUE(sent);
  EXPECT_EQ(sent->packet_id, 513);
  EXPECT_FALSE(sent->released);
  EXPECT_EQ(sent->what.message->payload, d.message->payload);
  EXPECT_EQ(sent->what.subscription_ids, d.subscription_ids);

  const std::string blob = encode_in_flight(d, 513, true, at(0s));
  EXPECT_LT(blob.size(), encode_in_flight(d, 513, false, at(0s)).size()) << "the message is not kept";
  const auto released = decode_delivery(blob, at(1'000'000s));
  ASSERT_TRUE(released) << "a released delivery never expires: its PUBREL is still owed";
  EXPECT_EQ(released->packet_id, 513);
  EXPECT_TRUE(released->released);
  EXPECT_FALSE(released->what.message);
  EXPECT_EQ(released->what.qos, mqtt::qos::exactly_once);

  std::string bad = blob;
  bad[1] = static_cast<char>(0x08 | 0x02); // released without a packet identifier
  EXPECT_FALSE(decode_delivery(bad, at(0s)));
}

TEST(persistence, a_session_comes_back_the_same) {
  session_record r;
  r.owner.method = "password";
  r.owner.name = "alice";
  r.owner.roles = {"sensor", "reader"};
  r.owner.attributes = {{"site", "north"}};
  r.owner.claims = {{"tenant", "t1"}};
  r.owner.client_id = "dev-42";
  r.expiry_interval = 3600;
  session::stored_subscription s;
  s.options.max_qos = mqtt::qos::at_least_once;
  s.options.no_local = true;
  s.options.retain_as_published = true;
  s.options.retain_handling = mqtt::retain_handling::do_not_send;
  s.identifier = 9;
  r.subscriptions.emplace("a/+/c", s);
  r.subscriptions.emplace("$share/g/b/#", session::stored_subscription{});
  r.awaiting_pubrel = {1, 65535};
  mqtt::will w;
  w.topic = "wills/dev-42";
  w.payload = "gone";
  w.qos = mqtt::qos::at_least_once;
  w.retain = true;
  w.props.content_type = "text/plain";
  r.will = w;
  r.will_delay = 30;
  const auto back = decode_session(encode_session(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->owner.key(), "password:alice");
  EXPECT_EQ(back->owner.roles, r.owner.roles);
  EXPECT_EQ(back->owner.attributes, r.owner.attributes);
  EXPECT_EQ(back->owner.claims, r.owner.claims);
  EXPECT_EQ(back->owner.client_id, r.owner.client_id);
  EXPECT_EQ(back->expiry_interval, 3600u);
  ASSERT_EQ(back->subscriptions.size(), 2u);
  EXPECT_EQ(back->subscriptions.at("a/+/c").options, s.options);
  EXPECT_EQ(back->subscriptions.at("a/+/c").identifier, 9u);
  EXPECT_FALSE(back->subscriptions.at("$share/g/b/#").identifier);
  EXPECT_EQ(back->awaiting_pubrel, r.awaiting_pubrel);
  ASSERT_TRUE(back->will);
  EXPECT_EQ(*back->will, w);
  EXPECT_EQ(back->will_delay, 30u);
}

TEST(persistence, damaged_records_are_refused) {
  session_record r;
  r.owner.method = "anonymous";
  r.expiry_interval = 10;
  r.subscriptions.emplace("t", session::stored_subscription{});
  const std::string session_blob = encode_session(r);
  const std::string message_blob = encode_message(sample(), at(0s));
  for (std::size_t cut = 0; cut < session_blob.size(); ++cut) {
    EXPECT_FALSE(decode_session(session_blob.substr(0, cut))) << "cut at " << cut;
  }
  for (std::size_t cut = 0; cut < message_blob.size(); ++cut) {
    EXPECT_FALSE(decode_message(message_blob.substr(0, cut), at(0s))) << "cut at " << cut;
  }
  EXPECT_FALSE(decode_session(session_blob + "x")) << "trailing bytes";
  std::string other_format = session_blob;
  other_format[0] = 9;
  EXPECT_FALSE(decode_session(other_format));
}

} // namespace
} // namespace firehook::broker::persist

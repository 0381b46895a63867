#include <gtest/gtest.h>

#include "config/config.hpp"
#include "session/limits.hpp"

namespace firehook::session {
namespace {

TEST(limits, from_config_takes_every_session_limit_of_the_configuration) {
  config::limit_settings c;
  c.max_packet_size = 70'000;
  c.max_inflight = 7;
  c.max_queued_messages = 11;
  c.max_queued_bytes = 12'345;
  c.slow_subscriber_timeout = std::chrono::seconds(17);
  c.queue_overflow = 1;
  c.max_subscriptions_per_client = 13;
  c.max_topic_levels = 5;
  c.max_topic_length = 99;
  c.max_client_id_length = 23;
  c.max_keep_alive = 61;
  c.max_session_expiry = 3'600;
  c.topic_alias_maximum = 3;
  c.max_qos = 1;
  c.retain_available = false;
  c.max_message_expiry = 600;
  const limits s = from_config(c);
  EXPECT_EQ(s.max_packet_size, 70'000U);
  EXPECT_EQ(s.max_inflight, 7U);
  EXPECT_EQ(s.max_queued_messages, 11U);
  EXPECT_EQ(s.max_queued_bytes, 12'345U);
  EXPECT_EQ(s.slow_subscriber_timeout, std::chrono::seconds(17));
  EXPECT_EQ(s.queue_overflow, overflow_policy::drop_oldest);
  EXPECT_EQ(s.max_subscriptions_per_client, 13U);
  EXPECT_EQ(s.max_topic_levels, 5U);
  EXPECT_EQ(s.max_topic_length, 99U);
  EXPECT_EQ(s.max_client_id_length, 23U);
  EXPECT_EQ(s.max_keep_alive, 61U);
  EXPECT_EQ(s.max_session_expiry, 3'600U);
  EXPECT_EQ(s.topic_alias_maximum, 3U);
  EXPECT_EQ(s.max_qos, mqtt::qos::at_least_once);
  EXPECT_FALSE(s.retain_available);
  EXPECT_EQ(s.max_message_expiry, 600U);
  EXPECT_FALSE(s.disconnect_on_denied_publish); // not a [limits] key: left to the broker
}

} // namespace
} // namespace firehook::session

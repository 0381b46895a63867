#include "broker/fan_out.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

namespace firehook::broker {
namespace {

using mqtt::qos;

struct FanOut : ::testing::Test {
  router::subscription_index index;
  std::set<subscriber_id> online;

  void sub(subscriber_id s, std::string_view filter, qos q, std::optional<std::uint32_t> id = {},
           bool no_local = false, bool retain_as_published = false) {
    mqtt::subscribe_options o;
    o.max_qos = q;
    o.no_local = no_local;
    o.retain_as_published = retain_as_published;
    index.subscribe(s, filter, o, id);
  }

  std::multimap<subscriber_id, session::delivery> publish(std::string topic, qos q, bool retain = false,
                                                          subscriber_id publisher = 0) {
    auto m = std::make_shared<mqtt::message>();
    m->topic = std::move(topic);
    m->qos = q;
    m->retain = retain;
    router::match_result match;
    index.match(m->topic, match);
    std::multimap<subscriber_id, session::delivery> out;
    fan_out(
        match, m, publisher, [this](subscriber_id s) { return online.count(s) > 0; },
        [&out](subscriber_id to, session::delivery&& d) { out.emplace(to, std::move(d)); });
    return out;
  }
};

TEST_F(FanOut, OverlappingSubscriptionsMakeOneDeliveryWithTheHighestQosAndEveryIdentifier) {
  sub(1, "a/+", qos::at_most_once, 7);
  sub(1, "a/#", qos::exactly_once, 9);
  sub(1, "a/b", qos::at_least_once);
  sub(2, "a/b", qos::at_least_once, 3);
  const auto got = publish("a/b", qos::exactly_once);
  ASSERT_EQ(got.size(), 2U);
  const auto& one = got.find(1)->second;
  EXPECT_EQ(one.qos, qos::exactly_once); // [MQTT-3.3.4-2]
  EXPECT_EQ(std::multiset<std::uint32_t>(one.subscription_ids.begin(), one.subscription_ids.end()),
            (std::multiset<std::uint32_t>{7, 9})); // [MQTT-3.3.4-4]
  const auto& two = got.find(2)->second;
  EXPECT_EQ(two.qos, qos::at_least_once);
  EXPECT_EQ(two.subscription_ids, std::vector<std::uint32_t>{3});
}

TEST_F(FanOut, TheMessageQosCapsTheGrantedOne) {
  sub(1, "t", qos::exactly_once);
  EXPECT_EQ(publish("t", qos::at_most_once).find(1)->second.qos, qos::at_most_once); // [MQTT-3.8.4-8]
}

TEST_F(FanOut, RetainIsKeptOnlyForRetainAsPublished) {
  sub(1, "t", qos::at_most_once);
  sub(2, "t", qos::at_most_once, {}, false, true);
  sub(2, "#", qos::at_most_once);
  const auto got = publish("t", qos::at_most_once, true);
  EXPECT_FALSE(got.find(1)->second.retain); // [MQTT-3.3.1-12]
  EXPECT_TRUE(got.find(2)->second.retain);  // [MQTT-3.3.1-13]: one subscription asking is enough
  EXPECT_FALSE(publish("t", qos::at_most_once, false).find(2)->second.retain);
}

TEST_F(FanOut, NoLocalSkipsOnlyThePublishersOwnSubscription) {
  sub(1, "t", qos::at_least_once, {}, true);
  sub(2, "t", qos::at_least_once, {}, true);
  auto got = publish("t", qos::at_least_once, false, 1);
  EXPECT_EQ(got.count(1), 0U); // [MQTT-3.8.3-3]
  EXPECT_EQ(got.count(2), 1U);
  // A second, plain subscription of the publisher still matches, with its own QoS only.
  sub(1, "#", qos::at_most_once);
  got = publish("t", qos::at_least_once, false, 1);
  ASSERT_EQ(got.count(1), 1U);
  EXPECT_EQ(got.find(1)->second.qos, qos::at_most_once);
}

TEST_F(FanOut, ASharedGroupDeliversToOneMemberPreferringOnlineOnes) {
  sub(1, "$share/g/t", qos::at_least_once, 5);
  sub(2, "$share/g/t", qos::at_least_once);
  sub(3, "t", qos::at_most_once);
  online = {2};
  for (int i = 0; i < 4; ++i) {
    const auto got = publish("t", qos::at_least_once);
    EXPECT_EQ(got.size(), 2U);
    EXPECT_EQ(got.count(2), 1U) << "the online member, every time"; // [MQTT-4.8.2-3]
    EXPECT_EQ(got.count(3), 1U);
  }
  online.clear(); // nobody online: still exactly one member
  const auto got = publish("t", qos::at_least_once);
  EXPECT_EQ(got.count(1) + got.count(2), 1U);
}

} // namespace
} // namespace firehook::broker

// A shard's replica of the subscription state on its own: matching, changes from other shards,
// locations and presence ordered by epoch, and the tracking of changes waiting for the others.
#include <gtest/gtest.h>

#include "broker/replica.hpp"

namespace firehook::broker {
namespace {

replica_change sub(std::string filter, bool subscribe = true) {
  return replica_change{subscribe, std::move(filter), mqtt::subscribe_options{mqtt::qos::at_least_once}, {}};
}

std::vector<subscriber_id> subscribers(replica& r, std::string_view topic) {
  std::vector<subscriber_id> out;
  for (const auto& e : r.match(topic).subscriptions) {
    out.push_back(e.subscriber);
  }
  return out;
}

TEST(replica, local_and_remote_changes_reach_the_index) {
  replica r;
  r.subscribe(1, sub("a/+"));
  r.apply(2, location{1, 5}, {sub("a/b"), sub("x/#")});
  EXPECT_EQ(subscribers(r, "a/b").size(), 2u);
  EXPECT_EQ(r.shard_of(2, 0), 1u);
  EXPECT_EQ(r.shard_of(1, 0), 0u) << "a local subscriber is here";
  r.apply(2, location{1, 5}, {sub("a/b", false)});
  EXPECT_EQ(subscribers(r, "a/b"), std::vector<subscriber_id>{1});
  EXPECT_EQ(r.subscription_count(), 2u);
  r.forget(2);
  EXPECT_TRUE(subscribers(r, "x/y").empty());
  EXPECT_EQ(r.shard_of(2, 0), 0u);
}

TEST(replica, an_older_location_or_presence_never_overwrites_a_newer_one) {
  replica r;
  r.set_location(7, location{1, 10});
  r.set_location(7, location{0, 9}); // a late message from before a takeover
  EXPECT_EQ(r.shard_of(7, 3), 1u);
  r.set_location(7, location{2, 11});
  EXPECT_EQ(r.shard_of(7, 3), 2u);

  EXPECT_TRUE(r.online(7)) << "unknown: connected";
  r.set_presence(7, false, 10);
  r.set_presence(7, true, 9);
  EXPECT_FALSE(r.online(7));
  r.set_presence(7, true, 10);
  EXPECT_TRUE(r.online(7));
}

TEST(replica, a_change_is_done_when_every_other_replica_applied_it) {
  replica r;
  pending_change p;
  p.sid = 4;
  const auto id = r.begin_change(std::move(p), 2);
  EXPECT_FALSE(r.applied(id));
  const auto done = r.applied(id);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->sid, 4u);
  EXPECT_FALSE(r.applied(id)) << "answered once";
  EXPECT_FALSE(r.applied(id + 100));
}

} // namespace
} // namespace firehook::broker

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "audit/baselines.hpp"

namespace firehook::audit {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Samples are handed over as the shards do; time is the test's (the tick's argument).
struct Baselines : ::testing::Test {
  events::recording_emitter out;
  events::rate_samples in{1000};
  events::statistics stats;
  baselines::time_point now = baselines::time_point{} + 1h;

  // One interval of 10 s in which `client` (a password identity, or anonymous) published
  // `published` and received `received` messages; then the detector ticks.
  void interval(baselines& d, std::string identity, std::uint32_t published, std::uint32_t received = 0,
                std::string client = "c1") {
    now += 10s;
    const std::string method = identity.empty() ? "anonymous" : "password";
    in.add({events::rate_sample{method, identity, client, published, received, 10s}});
    d.tick(now);
  }
  std::vector<std::string> subjects() const {
    std::vector<std::string> s;
    for (const auto& e : out.events) {
      s.push_back(e.subject);
    }
    return s;
  }
};

TEST_F(Baselines, NoAlertDuringWarmUpThenABurstOverFactorAndFloorAlertsNamingTheIdentity) {
  baselines d({.warmup = 3, .factor = 10, .min_rate = 10}, in, stats, out);
  for (int i = 0; i < 3; ++i) {
    interval(d, "alice", 50); // 5/s
  }
  EXPECT_TRUE(out.events.empty());
  EXPECT_EQ(d.of("password:alice").samples, 3u);
  EXPECT_NEAR(d.of("password:alice").published, 5.0, 1e-4);
  interval(d, "alice", 1000); // 100/s: 20 times
  ASSERT_EQ(subjects(), std::vector<std::string>{"rate_baseline"});
  const auto& a = out.events[0];
  EXPECT_EQ(a.identity, "alice");
  EXPECT_EQ(a.method, "password");
  EXPECT_EQ(a.client_id, "c1");
  EXPECT_EQ(a.count, 100u);
  EXPECT_THAT(a.reason, HasSubstr("identity \"alice\" published 100.0/s over 10 s"));
  EXPECT_THAT(a.reason, HasSubstr("learned rate of 5.0/s"));
}

TEST_F(Baselines, ABurstDuringWarmUpIsLearnedNotJudged) {
  baselines d({.warmup = 3}, in, stats, out);
  interval(d, "alice", 10);
  interval(d, "alice", 5000);
  EXPECT_TRUE(out.events.empty());
}

TEST_F(Baselines, SteadyTrafficAndSmallBurstsDoNotAlert) {
  baselines d({.warmup = 3, .factor = 10, .min_rate = 10}, in, stats, out);
  for (int i = 0; i < 50; ++i) {
    interval(d, "steady", 200, 300); // 20/s, 30/s
  }
  interval(d, "steady", 1900); // 9.5 times
  EXPECT_TRUE(out.events.empty());
  // Under the floor: 0.1/s learned, 9/s is 90 times that but below min_rate.
  for (int i = 0; i < 5; ++i) {
    interval(d, "quiet", 1, 0, "c2");
  }
  interval(d, "quiet", 90, 0, "c2");
  EXPECT_TRUE(out.events.empty());
}

TEST_F(Baselines, ReceivingIsJudgedToo) {
  baselines d({.warmup = 3}, in, stats, out);
  for (int i = 0; i < 3; ++i) {
    interval(d, "sub", 0, 100);
  }
  interval(d, "sub", 0, 20'000);
  ASSERT_EQ(subjects(), std::vector<std::string>{"rate_baseline"});
  EXPECT_THAT(out.events[0].reason, HasSubstr("received 2000.0/s"));
}

TEST_F(Baselines, AnonymousClientsAreJudgedByClientId) {
  baselines d({.warmup = 3}, in, stats, out);
  for (int i = 0; i < 3; ++i) {
    interval(d, "", 50, 0, "anon-1");
  }
  EXPECT_EQ(d.of("client id:anon-1").samples, 3u);
  interval(d, "", 5000, 0, "anon-1");
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_THAT(out.events[0].reason, HasSubstr("client id \"anon-1\" published"));
  EXPECT_TRUE(out.events[0].identity.empty());
}

TEST_F(Baselines, OneAlertPerIdentityPerWindowAndAFloodIsLearnedOnlyGradually) {
  baselines d({.warmup = 3, .factor = 10, .min_rate = 10, .window = 60s}, in, stats, out);
  for (int i = 0; i < 3; ++i) {
    interval(d, "alice", 50); // 5/s
  }
  for (int i = 0; i < 6; ++i) {
    interval(d, "alice", 5000); // 500/s for a minute
  }
  EXPECT_EQ(out.events.size(), 1u);
  // Each flooded sample was folded in as at most twice the learned rate: 5 * 1.1^6 is about 8.9.
  EXPECT_LT(d.of("password:alice").published, 10.0);
  interval(d, "alice", 5000); // the window has passed: alerted again
  EXPECT_EQ(out.events.size(), 2u);
}

TEST_F(Baselines, TheNumberOfIdentitiesIsBoundedTheLeastRecentlySeenGoFirst) {
  baselines d({.warmup = 3, .max_tracked = 100}, in, stats, out);
  for (int i = 0; i < 100; ++i) {
    interval(d, "device-" + std::to_string(i), 10);
  }
  EXPECT_EQ(d.tracked(), 100u);
  interval(d, "device-0", 10); // seen again: now the most recent
  interval(d, "newcomer", 10);
  EXPECT_EQ(subjects(), std::vector<std::string>{"detector_full"});
  EXPECT_EQ(d.tracked(), 91u); // a tenth forgotten, the newcomer added
  EXPECT_EQ(d.of("password:device-0").samples, 2u);
  EXPECT_EQ(d.of("password:device-1").samples, 0u); // forgotten
  EXPECT_EQ(d.of("password:newcomer").samples, 1u);
  for (int i = 0; i < 20; ++i) {
    interval(d, "more-" + std::to_string(i), 10);
  }
  EXPECT_LE(d.tracked(), 100u);
  EXPECT_EQ(out.events.size(), 1u); // said once
}

TEST_F(Baselines, DroppedSamplesAreReportedOncePerWindow) {
  events::rate_samples small{2};
  baselines d({.warmup = 3, .window = 60s}, small, stats, out);
  small.add({events::rate_sample{"password", "a", "a", 1, 0, 10s},
             events::rate_sample{"password", "b", "b", 1, 0, 10s},
             events::rate_sample{"password", "c", "c", 1, 0, 10s}});
  EXPECT_EQ(small.dropped(), 1u);
  d.tick(now);
  ASSERT_EQ(subjects(), std::vector<std::string>{"detector_full"});
  EXPECT_EQ(out.events[0].count, 1u);
  EXPECT_EQ(d.tracked(), 2u);
  small.add({events::rate_sample{}, events::rate_sample{}, events::rate_sample{}});
  d.tick(now + 10s);
  EXPECT_EQ(out.events.size(), 1u);
  d.tick(now + 70s);
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[1].count, 1u);
}

TEST_F(Baselines, FleetCeilingComparesTheBrokersReceivedRateEachInterval) {
  baselines d({.interval = 10s, .factor = 0, .fleet_ceiling = 100, .window = 60s}, in, stats, out);
  d.tick(now);                                     // starts counting
  stats.add(events::stat::messages_received, 900); // 90/s
  d.tick(now + 10s);
  EXPECT_TRUE(out.events.empty());
  stats.add(events::stat::messages_received, 500);
  d.tick(now + 15s); // not an interval yet
  stats.add(events::stat::messages_received, 1000);
  d.tick(now + 20s); // 150/s
  ASSERT_EQ(subjects(), std::vector<std::string>{"fleet_ceiling"});
  EXPECT_EQ(out.events[0].count, 150u);
  EXPECT_THAT(out.events[0].reason, HasSubstr("clients published 150.0/s in all over 10 s"));
  stats.add(events::stat::messages_received, 5000);
  d.tick(now + 30s); // within the window: once
  EXPECT_EQ(out.events.size(), 1u);
}

TEST_F(Baselines, ZeroTurnsEachCheckOff) {
  baselines d({.warmup = 1, .factor = 0, .fleet_ceiling = 0}, in, stats, out);
  interval(d, "alice", 10);
  interval(d, "alice", 100'000);
  stats.add(events::stat::messages_received, 1'000'000);
  d.tick(now + 100s);
  EXPECT_TRUE(out.events.empty());
  EXPECT_EQ(d.tracked(), 0u);
}

} // namespace
} // namespace firehook::audit

#include "security/rate_limit.hpp"

#include <gtest/gtest.h>

namespace firehook::security {
namespace {

using namespace std::chrono_literals;
using kind = client_rate::kind;

const base::time_point t0 = base::time_point{} + 1h;

// Nothing limited but what a test sets.
std::shared_ptr<rate_limits> none() {
  auto l = std::make_shared<rate_limits>();
  *l = rate_limits{0, 0, 0, 0, 0, 0};
  return l;
}

std::shared_ptr<const rate_limits> publish_limits(std::uint32_t rate, std::uint32_t burst) {
  auto l = none();
  l->publish_rate = rate;
  l->publish_burst = burst;
  return l;
}

TEST(client_rate, a_burst_passes_then_the_rate_holds) {
  client_rate r(publish_limits(10, 5), t0);
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(r.admit(kind::publish, 100, t0)) << i;
  }
  const auto wait = r.admit(kind::publish, 100, t0);
  ASSERT_TRUE(wait);
  // Empty: one token takes a tenth of a second at 10/s.
  EXPECT_GE(*wait, t0 + 100ms);
  EXPECT_LE(*wait, t0 + 102ms);
  EXPECT_EQ(r.over_since(), t0);
  EXPECT_FALSE(r.admit(kind::publish, 100, *wait));
  EXPECT_TRUE(r.admit(kind::publish, 100, *wait)); // empty again
}

TEST(client_rate, over_until_the_buckets_are_half_full_again) {
  client_rate r(publish_limits(10, 10), t0);
  for (int i = 0; i < 10; ++i) {
    r.admit(kind::publish, 1, t0);
  }
  ASSERT_TRUE(r.admit(kind::publish, 1, t0));
  // Sending at its rate keeps it over.
  EXPECT_FALSE(r.admit(kind::publish, 1, t0 + 150ms));
  EXPECT_EQ(r.over_since(), t0);
  // Quiet for a second: the bucket refills past half, and the next packet clears it.
  EXPECT_FALSE(r.admit(kind::publish, 1, t0 + 1150ms));
  EXPECT_FALSE(r.over_since());
}

TEST(client_rate, bytes_limit_lets_one_large_message_through_alone) {
  auto l = none();
  l->publish_bytes_rate = 1000;
  l->publish_bytes_burst = 1000;
  client_rate r(l, t0);
  EXPECT_FALSE(r.admit(kind::publish, 5000, t0)); // bigger than the burst: passes, into debt
  const auto wait = r.admit(kind::publish, 1, t0);
  ASSERT_TRUE(wait);
  EXPECT_GE(*wait, t0 + 4s); // the 4,000 bytes of debt at 1,000/s
  EXPECT_LE(*wait, t0 + 4010ms);
}

TEST(client_rate, subscribe_bucket_is_separate) {
  auto l = none();
  l->publish_rate = 1;
  l->publish_burst = 1;
  l->subscribe_rate = 1;
  l->subscribe_burst = 2;
  client_rate r(l, t0);
  EXPECT_FALSE(r.admit(kind::publish, 0, t0));
  EXPECT_TRUE(r.admit(kind::publish, 0, t0));
  EXPECT_FALSE(r.admit(kind::subscribe, 0, t0));
  EXPECT_FALSE(r.admit(kind::subscribe, 0, t0));
  EXPECT_TRUE(r.admit(kind::subscribe, 0, t0));
}

TEST(client_rate, new_limits_keep_the_levels_cut_to_their_bursts) {
  client_rate r(publish_limits(10, 5), t0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(r.admit(kind::publish, 1, t0)) << i;
  }
  r.set_limits(publish_limits(1000, 100), t0); // 2 tokens left: a reload does not refill them
  EXPECT_FALSE(r.admit(kind::publish, 1, t0));
  EXPECT_FALSE(r.admit(kind::publish, 1, t0));
  EXPECT_TRUE(r.admit(kind::publish, 1, t0));
  EXPECT_FALSE(r.admit(kind::publish, 1, t0 + 10ms)); // at the new rate

  client_rate full(publish_limits(10, 50), t0);
  full.set_limits(publish_limits(10, 2), t0); // cut to the new burst
  EXPECT_FALSE(full.admit(kind::publish, 1, t0));
  EXPECT_FALSE(full.admit(kind::publish, 1, t0));
  EXPECT_TRUE(full.admit(kind::publish, 1, t0));

  client_rate unlimited;
  unlimited.set_limits(publish_limits(10, 1), t0); // from none: a full bucket
  EXPECT_FALSE(unlimited.admit(kind::publish, 1, t0));
  EXPECT_TRUE(unlimited.admit(kind::publish, 1, t0));
  unlimited.set_limits(nullptr, t0);
  EXPECT_FALSE(unlimited.admit(kind::publish, 1, t0));
}

TEST(client_rate, no_limits_limit_nothing) {
  client_rate unlimited;
  client_rate zero(none(), t0);
  for (int i = 0; i < 100'000; ++i) {
    ASSERT_FALSE(unlimited.admit(kind::publish, 1 << 20, t0));
    ASSERT_FALSE(zero.admit(kind::subscribe, 0, t0));
  }
  EXPECT_FALSE(zero.over_since());
}

TEST(client_rate, a_clock_that_goes_nowhere_refills_nothing) {
  client_rate r(publish_limits(1000, 1), t0);
  EXPECT_FALSE(r.admit(kind::publish, 0, t0 + 1s));
  EXPECT_TRUE(r.admit(kind::publish, 0, t0)); // earlier than the last packet: no refill
}

} // namespace
} // namespace firehook::security

// The counting that decides whether a run passes: sequence gaps, late arrivals and duplicates,
// and the latency percentiles the report prints.

#include <gtest/gtest.h>

#include "stats.hpp"

namespace firehook::bench {
namespace {

using verdict = sequence_tracker::verdict;

TEST(SequenceTracker, CountsInOrderDelivery) {
  sequence_tracker t;
  for (std::uint64_t s = 0; s < 5; ++s) {
    EXPECT_EQ(t.observe(s), verdict::in_order);
  }
  EXPECT_EQ(t.unique(), 5u);
  EXPECT_EQ(t.next(), 5u);
  EXPECT_EQ(t.missing_below_next(), 0u);
  EXPECT_EQ(t.duplicates(), 0u);
  EXPECT_EQ(t.out_of_order(), 0u);
}

TEST(SequenceTracker, AGapIsMissingUntilTheLateMessageArrives) {
  sequence_tracker t;
  t.observe(0);
  EXPECT_EQ(t.observe(3), verdict::gap);
  EXPECT_EQ(t.missing_below_next(), 2u);
  EXPECT_TRUE(t.is_missing(1));
  EXPECT_TRUE(t.is_missing(2));

  EXPECT_EQ(t.observe(2), verdict::out_of_order);
  EXPECT_EQ(t.missing_below_next(), 1u);
  EXPECT_FALSE(t.is_missing(2));
  EXPECT_EQ(t.out_of_order(), 1u);
  EXPECT_EQ(t.unique(), 3u);

  std::vector<std::uint64_t> missing;
  t.for_each_missing([&](std::uint64_t s) { missing.push_back(s); });
  EXPECT_EQ(missing, std::vector<std::uint64_t>{1});
}

TEST(SequenceTracker, ASecondCopyIsADuplicateAndNotCountedTwice) {
  sequence_tracker t;
  t.observe(0);
  t.observe(1);
  EXPECT_EQ(t.observe(1), verdict::duplicate);
  EXPECT_EQ(t.observe(0), verdict::duplicate);
  EXPECT_EQ(t.duplicates(), 2u);
  EXPECT_EQ(t.unique(), 2u);
  EXPECT_EQ(t.missing_below_next(), 0u);
}

TEST(DeliveryCount, EverythingReceivedIsNothingLost) {
  sequence_tracker t;
  for (std::uint64_t s = 0; s < 4; ++s) {
    t.observe(s);
  }
  delivery_count c;
  c.add(t, 4, 1, [](std::uint64_t) { return true; });
  EXPECT_EQ(c.delivered, 4u);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.lost_acked, 0u);
}

TEST(DeliveryCount, GapsAndTheUnreceivedTailAreLostButOnlyAcknowledgedOnesBreakTheGuarantee) {
  sequence_tracker t;
  t.observe(0);
  t.observe(2); // 1 missing
  t.observe(3);
  t.observe(2); // a duplicate
  // Sent 0..6: 4, 5 and 6 never arrived. The broker acknowledged all but 5 (still in flight).
  delivery_count c;
  c.add(t, 7, 1, [](std::uint64_t seq) { return seq != 5; });
  EXPECT_EQ(c.delivered, 3u);
  EXPECT_EQ(c.lost, 4u);       // 1, 4, 5, 6
  EXPECT_EQ(c.lost_acked, 3u); // 1, 4, 6
  EXPECT_EQ(c.duplicates, 1u);
}

TEST(DeliveryCount, SumsOverPairsAndAtQosZeroNothingIsAcknowledged) {
  sequence_tracker a;
  sequence_tracker b;
  a.observe(1);
  b.observe(0);
  b.observe(1);
  delivery_count c;
  c.add(a, 2, 0, [](std::uint64_t) { return false; });
  c.add(b, 3, 0, [](std::uint64_t) { return false; });
  EXPECT_EQ(c.delivered, 3u);
  EXPECT_EQ(c.lost, 2u); // a's 0 and b's 2
  EXPECT_EQ(c.lost_acked, 0u);
}

TEST(LatencyHistogram, PercentilesAreWithinThreePercent) {
  latency_histogram h;
  for (std::int64_t v = 1; v <= 100'000; ++v) {
    h.record(v * 1000); // 1 us .. 100 ms, uniform
  }
  EXPECT_EQ(h.count(), 100'000u);
  EXPECT_EQ(h.max(), 100'000'000);
  const auto near = [](std::int64_t got, double want) {
    return static_cast<double>(got) >= want && static_cast<double>(got) <= want * 1.03;
  };
  EXPECT_TRUE(near(h.quantile(0.5), 50'000'000.0)) << h.quantile(0.5);
  EXPECT_TRUE(near(h.quantile(0.99), 99'000'000.0)) << h.quantile(0.99);
  EXPECT_TRUE(near(h.quantile(0.999), 99'900'000.0)) << h.quantile(0.999);
  EXPECT_NEAR(h.mean(), 50'000'500.0, 1.0);
}

TEST(LatencyHistogram, MergeAddsCountsAndKeepsTheMaximum) {
  latency_histogram a;
  latency_histogram b;
  a.record(10);
  b.record(5000);
  b.record(-3); // a clock read before the stamp: counted as 0, not dropped
  a.merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.max(), 5000);
  EXPECT_EQ(a.quantile(0.0), 0);
  EXPECT_EQ(latency_histogram{}.quantile(0.99), 0);
}

} // namespace
} // namespace firehook::bench

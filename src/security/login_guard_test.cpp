#include "security/login_guard.hpp"

#include <gtest/gtest.h>

namespace firehook::security {
namespace {

using namespace std::chrono_literals;

struct login_guard_test : ::testing::Test {
  config::abuse_settings settings;
  base::manual_clock clock;
  const std::optional<std::string> user = std::string("device1");
  const std::optional<std::string> nobody;
};

TEST_F(login_guard_test, attempts_are_held_progressively_past_the_failures_and_never_from_the_allowlist) {
  std::string error;
  settings.allowlist = base::address_set({*base::address_range::parse("10.0.0.0/8", error)});
  login_guard g(settings, clock);
  for (int i = 0; i < 9; ++i) {
    g.failed(user, "192.0.2.7");
  }
  EXPECT_EQ(g.before_check(user, "192.0.2.7").delay, 0ms); // 9 failures: below 10
  g.failed(user, "192.0.2.7");
  EXPECT_EQ(g.before_check(user, "192.0.2.7").delay, 500ms);
  EXPECT_EQ(g.before_check(user, "192.0.2.7").failures, 10U);
  g.failed(user, "192.0.2.7");
  EXPECT_EQ(g.before_check(user, "192.0.2.7").delay, 1000ms);
  g.failed(user, "192.0.2.7");
  EXPECT_EQ(g.before_check(user, "192.0.2.7").delay, 2000ms);
  g.failed(user, "192.0.2.7");
  EXPECT_EQ(g.before_check(user, "192.0.2.7").delay, 4000ms);
  g.failed(user, "192.0.2.7");
  EXPECT_EQ(g.before_check(user, "192.0.2.7").delay, 4000ms); // at most login_delay_max
  // The user name is held from another address too; another name from another address is not;
  // the allowlist never is.
  EXPECT_EQ(g.before_check(user, "198.51.100.1").delay, 4000ms);
  EXPECT_EQ(g.before_check(std::string("other"), "198.51.100.1").delay, 0ms);
  EXPECT_EQ(g.before_check(user, "10.1.2.3").delay, 0ms);
  // The window passes: forgotten.
  clock.advance(600s);
  EXPECT_EQ(g.before_check(user, "192.0.2.7").delay, 0ms);
}

TEST_F(login_guard_test, an_address_earns_a_ban_that_doubles_per_offence_up_to_the_maximum) {
  settings.ban_time = 600s;
  settings.ban_time_max = 2000s;
  login_guard g(settings, clock);
  const auto fail_times = [&](int n, std::string_view peer) {
    std::optional<login_guard::address_ban> last;
    for (int i = 0; i < n; ++i) {
      if (auto b = g.failed(nobody, peer)) {
        last = b;
      }
    }
    return last;
  };
  EXPECT_FALSE(fail_times(19, "192.0.2.7"));
  auto ban = g.failed(nobody, "192.0.2.7");
  ASSERT_TRUE(ban);
  EXPECT_EQ(ban->subject, "192.0.2.7");
  EXPECT_EQ(ban->duration, 600s);
  EXPECT_EQ(ban->failures, 20U);
  // Its count starts again: 20 more for the next ban, twice as long; then capped.
  EXPECT_FALSE(fail_times(19, "192.0.2.7"));
  EXPECT_EQ(g.failed(nobody, "192.0.2.7")->duration, 1200s);
  EXPECT_EQ(fail_times(20, "192.0.2.7")->duration, 2000s);
  // IPv6 is counted by its /64.
  EXPECT_FALSE(fail_times(10, "2001:db8:1:2::1"));
  ban = fail_times(10, "2001:db8:1:2:ffff::9");
  ASSERT_TRUE(ban);
  EXPECT_EQ(ban->subject, "2001:db8:1:2::/64");
}

TEST_F(login_guard_test, zero_turns_delays_bans_and_flapping_off_and_the_allowlist_is_never_banned) {
  std::string error;
  settings.allowlist = base::address_set({*base::address_range::parse("127.0.0.1", error)});
  login_guard on(settings, clock);
  for (int i = 0; i < 100; ++i) {
    EXPECT_FALSE(on.failed(nobody, "127.0.0.1"));
  }
  settings.login_failures = 0;
  settings.ban_after_failures = 0;
  settings.flapping_connects = 0;
  login_guard off(settings, clock);
  for (int i = 0; i < 100; ++i) {
    EXPECT_FALSE(off.failed(user, "192.0.2.7"));
    off.disconnected("c");
    EXPECT_FALSE(off.connected("c"));
  }
  EXPECT_EQ(off.before_check(user, "192.0.2.7").delay, 0ms);
}

TEST_F(login_guard_test, a_client_id_whose_connections_end_more_than_the_limit_in_the_window_flaps) {
  login_guard g(settings, clock);
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(g.connected("sensor-1"));
    g.disconnected("sensor-1");
  }
  EXPECT_EQ(g.connected("sensor-1"), 300s); // the 21st, after 20 ended
  EXPECT_FALSE(g.connected("sensor-1"));    // counted afresh
  // A slower client id never does.
  for (int i = 0; i < 100; ++i) {
    clock.advance(4s);
    EXPECT_FALSE(g.connected("sensor-2"));
    g.disconnected("sensor-2");
  }
}

TEST_F(login_guard_test, a_connected_fleet_is_not_remembered) {
  login_guard g(settings, clock);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_FALSE(g.connected("device-" + std::to_string(i)));
  }
  g.disconnected("device-7");
  EXPECT_EQ(g.tracked_client_ids(), 1U);
}

TEST(windowed_counts, memory_is_bounded_and_the_oldest_window_goes_first) {
  base::manual_clock clock;
  windowed_counts c(std::chrono::seconds(60), 100);
  for (int i = 0; i < 1000; ++i) {
    clock.advance(1ms);
    c.add("key" + std::to_string(i), clock.now());
  }
  EXPECT_EQ(c.size(), 100U);
  EXPECT_EQ(c.count("key0", clock.now()), 0U);
  EXPECT_EQ(c.count("key999", clock.now()), 1U);
  clock.advance(60s);
  c.add("fresh", clock.now());
  EXPECT_EQ(c.size(), 1U); // the rest had their window pass
}

} // namespace
} // namespace firehook::security

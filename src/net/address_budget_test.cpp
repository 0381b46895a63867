#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "net/address_budget.hpp"

namespace firehook::net {
namespace {

using namespace std::chrono_literals;
using refusal = address_budget::refusal;

base::address_bytes v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return base::address_bytes{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

// Every budget so large that it never refuses; each test lowers the one it is about.
config::abuse_settings generous() {
  config::abuse_settings s;
  s.max_connections_per_address = 1'000'000;
  s.connection_rate_per_address = 1'000'000;
  s.connection_burst_per_address = 1'000'000;
  s.max_pending_per_address = 1'000'000;
  s.max_pending_connections = 1'000'000;
  s.max_connections_per_network = 1'000'000;
  s.connection_rate_per_network = 1'000'000;
  s.connection_burst_per_network = 1'000'000;
  s.max_pending_per_network = 1'000'000;
  return s;
}

class address_budget_test : public ::testing::Test {
protected:
  address_budget& make(const config::abuse_settings& s) {
    settings_ = s;
    budget_.emplace(settings_, clock_, stats_);
    return *budget_;
  }
  std::int64_t stat(events::stat s) const { return stats_.get(s); }

  config::abuse_settings settings_;
  base::manual_clock clock_{base::time_point{} + 1000s};
  events::statistics stats_;
  std::optional<address_budget> budget_;
};

const auto a = v4(192, 0, 2, 1);
const auto b = v4(192, 0, 2, 2);

TEST_F(address_budget_test, connections_per_address_are_bounded_and_given_back) {
  auto s = generous();
  s.max_connections_per_address = 3;
  auto& budget = make(s);
  std::vector<address_budget::ticket> held;
  for (int i = 0; i < 3; ++i) {
    auto d = budget.admit(a);
    ASSERT_EQ(d.refused, refusal::none);
    d.admitted.authenticated(); // open connections count whether authenticated or not
    held.push_back(std::move(d.admitted));
  }
  auto over = budget.admit(a);
  EXPECT_EQ(over.refused, refusal::connections_per_address);
  EXPECT_FALSE(over.admitted.pending());
  EXPECT_EQ(stat(events::stat::refused_connections_per_address), 1);
  EXPECT_EQ(budget.admit(b).refused, refusal::none); // another address has its own budget
  held.pop_back();                                   // its socket is closed
  EXPECT_EQ(budget.admit(a).refused, refusal::none);
}

TEST_F(address_budget_test, new_connections_per_second_are_a_token_bucket) {
  auto s = generous();
  s.connection_rate_per_address = 2;
  s.connection_burst_per_address = 3;
  auto& budget = make(s);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(budget.admit(a).refused, refusal::none) << i; // each closed at once
  }
  EXPECT_EQ(budget.admit(a).refused, refusal::rate_per_address);
  EXPECT_EQ(budget.admit(a).refused, refusal::rate_per_address); // a refusal takes no token
  clock_.advance(500ms);                                         // one token, at 2 per second
  EXPECT_EQ(budget.admit(a).refused, refusal::none);
  clock_.advance(400ms);
  EXPECT_EQ(budget.admit(a).refused, refusal::rate_per_address);
  clock_.advance(100ms);
  EXPECT_EQ(budget.admit(a).refused, refusal::none);
  clock_.advance(1h); // the bucket holds the burst, no more
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(budget.admit(a).refused, refusal::none) << i;
  }
  EXPECT_EQ(budget.admit(a).refused, refusal::rate_per_address);
  EXPECT_EQ(stat(events::stat::refused_connection_rate_per_address), 4);
  EXPECT_EQ(budget.admit(b).refused, refusal::none);
}

TEST_F(address_budget_test, pending_per_address_ends_when_authenticated_or_closed) {
  auto s = generous();
  s.max_pending_per_address = 2;
  auto& budget = make(s);
  auto first = budget.admit(a);
  auto second = budget.admit(a);
  ASSERT_EQ(first.refused, refusal::none);
  ASSERT_EQ(second.refused, refusal::none);
  EXPECT_TRUE(first.admitted.pending());
  EXPECT_EQ(budget.pending(), 2U);
  EXPECT_EQ(budget.admit(a).refused, refusal::pending_per_address);
  EXPECT_EQ(stat(events::stat::refused_pending_per_address), 1);

  first.admitted.authenticated();
  first.admitted.authenticated(); // once is what counts
  EXPECT_FALSE(first.admitted.pending());
  EXPECT_EQ(budget.pending(), 1U);
  auto third = budget.admit(a);
  ASSERT_EQ(third.refused, refusal::none);
  EXPECT_EQ(budget.admit(a).refused, refusal::pending_per_address);
  third.admitted.release(); // closed before it was authenticated
  EXPECT_EQ(budget.admit(a).refused, refusal::none);
  EXPECT_EQ(stat(events::stat::connections_pending), 1); // second's; the one just admitted is gone
}

TEST_F(address_budget_test, pending_in_all_bounds_every_address_allowlisted_ones_too) {
  auto s = generous();
  s.max_pending_connections = 2;
  std::string error;
  s.allowlist = base::address_set({*base::address_range::parse("10.0.0.0/8", error)});
  auto& budget = make(s);
  auto first = budget.admit(a);
  auto second = budget.admit(v4(10, 1, 2, 3));
  EXPECT_EQ(stat(events::stat::connections_pending), 2);
  EXPECT_EQ(budget.admit(b).refused, refusal::pending_connections);
  EXPECT_EQ(budget.admit(v4(10, 1, 2, 3)).refused, refusal::pending_connections);
  EXPECT_EQ(stat(events::stat::refused_pending_connections), 2);
  EXPECT_EQ(budget.tracked_addresses(), 1U); // a refused address leaves nothing behind
  second.admitted.authenticated();
  EXPECT_EQ(stat(events::stat::connections_pending), 1);
  EXPECT_EQ(budget.admit(b).refused, refusal::none);
}

TEST_F(address_budget_test, allowlisted_addresses_skip_the_per_address_budgets_and_cost_no_entry) {
  auto s = generous();
  s.max_connections_per_address = 1;
  s.connection_burst_per_address = 1;
  s.connection_rate_per_address = 1;
  s.max_pending_per_address = 1;
  std::string error;
  s.allowlist = base::address_set({*base::address_range::parse("10.0.0.0/8", error)});
  auto& budget = make(s);
  std::vector<address_budget::ticket> held;
  for (int i = 0; i < 50; ++i) {
    auto d = budget.admit(v4(10, 1, 2, 3));
    ASSERT_EQ(d.refused, refusal::none) << i;
    EXPECT_TRUE(d.admitted.pending());
    held.push_back(std::move(d.admitted));
  }
  EXPECT_EQ(budget.tracked_addresses(), 0U);
  EXPECT_EQ(budget.pending(), 50U);
  auto outsider = budget.admit(a);
  EXPECT_EQ(outsider.refused, refusal::none);
  EXPECT_EQ(budget.admit(a).refused, refusal::connections_per_address);
  held.clear();
  EXPECT_EQ(budget.pending(), 1U);
}

TEST_F(address_budget_test, a_ticket_gives_back_once_whether_released_moved_or_destroyed) {
  auto s = generous();
  s.max_connections_per_address = 1;
  auto& budget = make(s);
  {
    auto d = budget.admit(a);
    address_budget::ticket moved = std::move(d.admitted);
    EXPECT_FALSE(d.admitted.pending()); // NOLINT(bugprone-use-after-move): moved-from holds nothing
    moved.release();
    moved.release();
    EXPECT_EQ(budget.pending(), 0U);
    auto again = budget.admit(a);
    ASSERT_EQ(again.refused, refusal::none);
    address_budget::ticket other;
    other = std::move(again.admitted);
    EXPECT_EQ(budget.admit(a).refused, refusal::connections_per_address);
  } // `other`, `d` and `moved` are destroyed: only `other` still held anything
  EXPECT_EQ(budget.pending(), 0U);
  EXPECT_EQ(stat(events::stat::connections_pending), 0);
  auto after = budget.admit(a);
  EXPECT_EQ(after.refused, refusal::none);
}

TEST_F(address_budget_test, an_address_without_connections_and_with_a_full_bucket_is_forgotten) {
  auto s = generous();
  s.connection_rate_per_address = 10;
  s.connection_burst_per_address = 20;
  auto& budget = make(s);
  {
    auto d = budget.admit(a);
    EXPECT_EQ(budget.tracked_addresses(), 1U);
    clock_.advance(1s); // the bucket is full again by the time the connection ends
  }
  EXPECT_EQ(budget.tracked_addresses(), 0U);

  // Many addresses, one connection each, closed at once: each is remembered until its bucket has
  // refilled (one token at 10 per second: 100 ms), then forgotten, so the table does not grow
  // with time.
  for (std::uint32_t i = 0; i < 10'000; ++i) {
    EXPECT_EQ(
        budget.admit(v4(198, 18, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i))).refused,
        refusal::none);
  }
  EXPECT_EQ(budget.tracked_addresses(), 10'000U);
  auto holder = budget.admit(b); // an address that keeps its connection stays
  clock_.advance(50ms);
  EXPECT_EQ(budget.admit(a).refused, refusal::none);
  EXPECT_EQ(budget.tracked_addresses(), 10'002U); // not full yet
  clock_.advance(60ms);
  EXPECT_EQ(budget.admit(b).refused, refusal::none); // a call sweeps what is due
  EXPECT_EQ(budget.tracked_addresses(), 2U);                   // b (held) and a (full 50 ms later)
  holder.admitted.release();
  clock_.advance(1s);
  EXPECT_EQ(budget.admit(v4(203, 0, 113, 1)).refused, refusal::none);
  EXPECT_EQ(budget.tracked_addresses(), 1U); // only the one just closed, until its bucket is full
}

TEST_F(address_budget_test, an_address_that_reconnects_while_refilling_stays_until_full) {
  auto s = generous();
  s.connection_rate_per_address = 1;
  s.connection_burst_per_address = 2;
  auto& budget = make(s);
  EXPECT_EQ(budget.admit(a).refused, refusal::none); // 1 token left: full in 1 s
  clock_.advance(900ms);
  EXPECT_EQ(budget.admit(a).refused, refusal::none); // 0.9 left
  clock_.advance(200ms);                             // the first mark is due; the bucket is not full
  EXPECT_EQ(budget.admit(b).refused, refusal::none);
  EXPECT_EQ(budget.tracked_addresses(), 2U);
  clock_.advance(1s);
  EXPECT_EQ(budget.admit(b).refused, refusal::none);
  EXPECT_EQ(budget.tracked_addresses(), 1U); // a is full and gone; b is refilling
}

TEST(address_budget, a_connection_carries_32_bytes_for_its_share) {
  EXPECT_LE(sizeof(address_budget::ticket), 32U); // docs/hardening.md says so
}

base::address_bytes v6(std::uint16_t group4, std::uint16_t last) {
  return base::address_bytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, static_cast<std::uint8_t>(group4 >> 8),
                             static_cast<std::uint8_t>(group4), 0, 0, 0, 0, 0, 0,
                             static_cast<std::uint8_t>(last >> 8), static_cast<std::uint8_t>(last)};
}

TEST_F(address_budget_test, the_addresses_of_one_network_share_its_budgets) {
  auto s = generous();
  s.max_connections_per_network = 3;
  auto& budget = make(s);
  std::vector<address_budget::ticket> held;
  for (std::uint8_t host = 1; host <= 3; ++host) {
    auto d = budget.admit(v4(192, 0, 2, host));
    ASSERT_EQ(d.refused, refusal::none);
    held.push_back(std::move(d.admitted));
  }
  EXPECT_EQ(budget.admit(v4(192, 0, 2, 200)).refused, refusal::connections_per_network); // same /24
  EXPECT_EQ(stat(events::stat::refused_connections_per_network), 1);
  EXPECT_EQ(budget.admit(v4(192, 0, 3, 1)).refused, refusal::none); // the next /24
  EXPECT_EQ(budget.tracked_networks(), 2U); // 192.0.3.0/24 too, closed but refilling its bucket
  held.pop_back();
  EXPECT_EQ(budget.admit(v4(192, 0, 2, 200)).refused, refusal::none);

  // IPv6: an attacker's /64 is one network, however many addresses it uses.
  for (std::uint16_t host = 1; host <= 3; ++host) {
    auto d = budget.admit(v6(7, host));
    ASSERT_EQ(d.refused, refusal::none);
    held.push_back(std::move(d.admitted));
  }
  EXPECT_EQ(budget.admit(v6(7, 0xbeef)).refused, refusal::connections_per_network);
  EXPECT_EQ(budget.admit(v6(8, 1)).refused, refusal::none); // another /64
}

TEST_F(address_budget_test, network_rate_and_pending_and_prefixes) {
  auto s = generous();
  s.connection_rate_per_network = 1;
  s.connection_burst_per_network = 2;
  s.network_prefix_ipv4 = 16;
  auto& budget = make(s);
  EXPECT_EQ(budget.admit(v4(10, 9, 1, 1)).refused, refusal::none);
  EXPECT_EQ(budget.admit(v4(10, 9, 200, 1)).refused, refusal::none); // same /16
  EXPECT_EQ(budget.admit(v4(10, 9, 3, 3)).refused, refusal::rate_per_network);
  EXPECT_EQ(stat(events::stat::refused_connection_rate_per_network), 1);
  clock_.advance(1s);
  EXPECT_EQ(budget.admit(v4(10, 9, 3, 3)).refused, refusal::none);

  s = generous();
  s.max_pending_per_network = 1;
  s.network_prefix_ipv6 = 48;
  auto& pending = make(s);
  auto first = pending.admit(v6(1, 1));
  EXPECT_EQ(pending.admit(v6(2, 1)).refused, refusal::pending_per_network); // same /48
  first.admitted.authenticated();
  EXPECT_EQ(pending.admit(v6(2, 1)).refused, refusal::none);
  EXPECT_EQ(stat(events::stat::refused_pending_per_network), 1);
}

TEST_F(address_budget_test, allowlisted_addresses_do_not_count_in_their_network) {
  auto s = generous();
  s.max_connections_per_network = 1;
  std::string error;
  s.allowlist = base::address_set({*base::address_range::parse("192.0.2.7", error)});
  auto& budget = make(s);
  std::vector<address_budget::ticket> held;
  for (int i = 0; i < 3; ++i) {
    auto d = budget.admit(v4(192, 0, 2, 7));
    ASSERT_EQ(d.refused, refusal::none);
    held.push_back(std::move(d.admitted));
  }
  auto other = budget.admit(v4(192, 0, 2, 8));
  EXPECT_EQ(other.refused, refusal::none);
  EXPECT_EQ(budget.admit(v4(192, 0, 2, 9)).refused, refusal::connections_per_network);
  EXPECT_EQ(budget.reason_of(refusal::connections_per_network), "limit reached: 1 connections from this network");
}

TEST_F(address_budget_test, every_refusal_names_its_key) {
  EXPECT_EQ(address_budget::key_of(refusal::connections_per_address), "abuse.max_connections_per_address");
  EXPECT_EQ(address_budget::key_of(refusal::rate_per_address), "abuse.connection_rate_per_address");
  EXPECT_EQ(address_budget::key_of(refusal::pending_per_address), "abuse.max_pending_per_address");
  EXPECT_EQ(address_budget::key_of(refusal::pending_connections), "abuse.max_pending_connections");
  EXPECT_EQ(address_budget::key_of(refusal::rate_per_network), "abuse.connection_rate_per_network");
  EXPECT_EQ(address_budget::key_of(refusal::none), "");
}

TEST_F(address_budget_test, acceptors_and_connections_on_several_threads_balance) {
  auto s = generous();
  s.max_connections_per_address = 8;
  auto& budget = make(s);
  std::vector<std::thread> threads;
  std::atomic<int> admitted{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&budget, &admitted, t] {
      for (int i = 0; i < 5000; ++i) {
        auto d = budget.admit(v4(192, 0, 2, static_cast<std::uint8_t>(i % 3)));
        if (d.refused == refusal::none) {
          ++admitted;
          if ((i + t) % 2 == 0) {
            d.admitted.authenticated();
          }
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_GT(admitted.load(), 0);
  EXPECT_EQ(budget.pending(), 0U);
  EXPECT_EQ(stat(events::stat::connections_pending), 0);
}

} // namespace
} // namespace firehook::net

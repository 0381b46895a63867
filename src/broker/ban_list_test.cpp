#include <gtest/gtest.h>

#include "base/temp_dir.hpp"
#include "broker/ban_list.hpp"

namespace firehook::broker {
namespace {

using registry::ban;
using registry::ban_kind;

base::address_bytes address(std::string_view text) {
  return *base::parse_address(text);
}

TEST(ban_list, addresses_networks_client_ids_and_user_names_are_found_until_they_expire) {
  events::recording_emitter events;
  events::statistics stats;
  ban_list bans(events, stats);
  bans.add(ban{ban_kind::address, "192.0.2.7", "guessing", "login failures", 100, 200});
  bans.add(ban{ban_kind::address, "2001:db8:1:2::/64", "guessing", "login failures", 100, 200});
  bans.add(ban{ban_kind::address, "10.0.0.0/8", "lab", "manual", 100, std::nullopt});
  bans.add(ban{ban_kind::client_id, "sensor-1", "flapping", "flapping", 100, 200});
  bans.add(ban{ban_kind::username, "dev1", "lost", "manual", 100, std::nullopt});
  EXPECT_EQ(stats.get(events::stat::bans_active), 5);
  EXPECT_TRUE(bans.find_address(address("192.0.2.7"), 150));
  EXPECT_FALSE(bans.find_address(address("192.0.2.8"), 150));
  EXPECT_TRUE(bans.find_address(address("2001:db8:1:2:ffff::1"), 150));
  EXPECT_FALSE(bans.find_address(address("2001:db8:1:3::1"), 150));
  EXPECT_EQ(bans.find_address(address("10.20.30.40"), 150)->subject, "10.0.0.0/8");
  EXPECT_TRUE(bans.find({"198.51.100.1", "sensor-1", {}, {}, {}}, 150));
  EXPECT_TRUE(bans.find({"198.51.100.1", "other", "dev1", {}, {}}, 150));
  EXPECT_FALSE(bans.find({"198.51.100.1", "other", "dev2", {}, {}}, 150));
  const std::string stolen(64, 'c');
  bans.add(ban{ban_kind::certificate, stolen, "stolen", "manual", 100, 200});
  EXPECT_EQ(bans.find({"198.51.100.1", "other", {}, stolen, {}}, 150)->kind, ban_kind::certificate);
  EXPECT_FALSE(bans.find({"198.51.100.1", "other", {}, std::string(64, 'd'), {}}, 150));
  EXPECT_FALSE(bans.find({"198.51.100.1", "other", {}, {}, {}}, 150)); // no certificate
  bans.add(ban{ban_kind::token_subject, "meter-3", "revoked", "device revoke", 100, std::nullopt});
  EXPECT_EQ(bans.find({"198.51.100.1", "other", {}, {}, "meter-3"}, 150)->kind, ban_kind::token_subject);
  EXPECT_FALSE(bans.find({"198.51.100.1", "meter-3", {}, {}, {}}, 150)); // a client id, not a token subject
  // Expired: not found even before poll() forgets it; then forgotten, one event each.
  EXPECT_FALSE(bans.find_address(address("192.0.2.7"), 200));
  EXPECT_TRUE(bans.poll(200)); // bans were added since the last poll
  EXPECT_EQ(bans.list(200).size(), 3U);
  EXPECT_EQ(stats.get(events::stat::bans_active), 3);
  int expired = 0;
  for (const auto& e : events.events) {
    expired += e.type == events::event_type::ban && e.change == "expired";
  }
  EXPECT_EQ(expired, 4);
  EXPECT_FALSE(bans.poll(201));
  EXPECT_TRUE(bans.remove(ban_kind::username, "dev1", "test"));
  EXPECT_FALSE(bans.remove(ban_kind::username, "dev1", "test"));
  EXPECT_EQ(events.events.back().change, "removed");
}

TEST(ban_list, bans_are_written_by_poll_and_changes_of_another_process_are_read) {
  const base::temp_dir dir("firehook-ban-list");
  events::recording_emitter events;
  events::statistics stats;
  ban_list bans(events, stats);
  bans.open(dir.path() / "bans.db");
  const auto now = ban_list::now_seconds();
  bans.add(ban{ban_kind::address, "192.0.2.7", "guessing", "login failures", now, now + 600});
  registry::ban_store cli(dir.path() / "bans.db");
  EXPECT_TRUE(cli.list().empty()); // not yet: written off the caller's thread
  bans.poll(now);
  EXPECT_EQ(cli.list().size(), 1U);
  cli.put(ban{ban_kind::client_id, "c1", "by hand", "manual", now, std::nullopt});
  EXPECT_TRUE(bans.poll(now)); // a ban added by another process: connected clients are checked
  EXPECT_TRUE(bans.find({"198.51.100.1", "c1", {}, {}, {}}, now));
  cli.remove(ban_kind::address, "192.0.2.7");
  EXPECT_FALSE(bans.poll(now));
  EXPECT_FALSE(bans.find_address(address("192.0.2.7"), now));
  EXPECT_EQ(events.events.back().change, "removed");
}

} // namespace
} // namespace firehook::broker

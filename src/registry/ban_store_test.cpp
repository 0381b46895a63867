#include <gtest/gtest.h>

#include "base/temp_dir.hpp"
#include "registry/ban_store.hpp"

namespace firehook::registry {
namespace {

TEST(ban_store, bans_survive_reopening_replace_by_subject_and_expire) {
  const base::temp_dir dir("firehook-bans");
  const auto path = dir.path() / "bans.db";
  const ban forever{ban_kind::client_id, "sensor-1", "flapping", "manual", 100, std::nullopt};
  const ban brief{ban_kind::address, "192.0.2.7", "20 login failures", "login failures", 100, 700};
  {
    ban_store s(path);
    s.put(forever);
    s.put(brief);
    ban longer = brief;
    longer.expires = 1300;
    s.put(longer); // replaces the one of the same kind and subject
  }
  ban_store s(path);
  auto all = s.list();
  ASSERT_EQ(all.size(), 2U);
  EXPECT_EQ(all[0].subject, "192.0.2.7");
  EXPECT_EQ(all[0].expires, 1300);
  EXPECT_EQ(all[1], forever);
  EXPECT_TRUE(s.remove_expired(1299).empty());
  const auto gone = s.remove_expired(1300);
  ASSERT_EQ(gone.size(), 1U);
  EXPECT_EQ(gone[0].subject, "192.0.2.7");
  EXPECT_TRUE(s.remove(ban_kind::client_id, "sensor-1"));
  EXPECT_FALSE(s.remove(ban_kind::client_id, "sensor-1"));
  EXPECT_TRUE(s.list().empty());
}

TEST(ban_store, data_version_moves_when_another_connection_commits) {
  const base::temp_dir dir("firehook-bans");
  ban_store broker(dir.path() / "bans.db");
  ban_store cli(dir.path() / "bans.db");
  const auto before = broker.data_version();
  broker.put(ban{ban_kind::username, "mallory", "", "manual", 1, std::nullopt});
  EXPECT_EQ(broker.data_version(), before); // its own commit
  cli.remove(ban_kind::username, "mallory");
  EXPECT_NE(broker.data_version(), before);
}

TEST(ban_store, subjects_are_checked) {
  std::string error;
  EXPECT_EQ(check_subject(ban_kind::address, "10.0.0.0/8", error), "10.0.0.0/8");
  EXPECT_FALSE(check_subject(ban_kind::address, "10.0.0.0/33", error));
  EXPECT_EQ(error, "prefix length must be 0..32");
  EXPECT_FALSE(check_subject(ban_kind::address, "example.com", error));
  EXPECT_FALSE(check_subject(ban_kind::client_id, "", error));
  EXPECT_EQ(check_subject(ban_kind::username, "bob", error), "bob");
  EXPECT_EQ(ban_kind_of("client_id"), ban_kind::client_id);
  EXPECT_FALSE(ban_kind_of("device"));
}

} // namespace
} // namespace firehook::registry

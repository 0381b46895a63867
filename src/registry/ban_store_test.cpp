#include <gtest/gtest.h>

#include <sqlite3.h>

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
  EXPECT_EQ(ban_kind_of("certificate"), ban_kind::certificate);
  EXPECT_FALSE(ban_kind_of("device"));
  // Fingerprints as openssl prints them are stored in lower case without the colons.
  const std::string colons = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:"
                             "67:89";
  EXPECT_EQ(check_subject(ban_kind::certificate, colons, error),
            "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  EXPECT_FALSE(check_subject(ban_kind::certificate, colons.substr(3), error)); // 31 bytes
  EXPECT_FALSE(check_subject(ban_kind::certificate, "sensor-1", error));
  EXPECT_NE(error.find("SHA-256 fingerprint"), std::string::npos) << error;
}

TEST(ban_store, a_database_of_the_first_schema_keeps_its_bans_and_takes_certificates) {
  const base::temp_dir dir("firehook-bans");
  const auto path = dir.path() / "bans.db";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, R"sql(
CREATE TABLE bans (
  kind TEXT NOT NULL CHECK (kind IN ('address', 'client_id', 'username')),
  subject TEXT NOT NULL, reason TEXT NOT NULL, source TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER,
  PRIMARY KEY (kind, subject)) WITHOUT ROWID;
INSERT INTO bans VALUES ('username', 'mallory', 'lost', 'manual', 5, NULL);
PRAGMA user_version = 1;
)sql",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  ban_store s(path);
  const ban cert{ban_kind::certificate, std::string(64, 'a'), "stolen", "manual", 6, std::nullopt};
  s.put(cert);
  const auto all = s.list();
  ASSERT_EQ(all.size(), 2U);
  EXPECT_EQ(all[0], cert);
  EXPECT_EQ(all[1].subject, "mallory");
}

} // namespace
} // namespace firehook::registry

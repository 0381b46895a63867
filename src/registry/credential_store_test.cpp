#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "base/temp_dir.hpp"
#include "registry/credential_store.hpp"

namespace firehook::registry {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using outcome = check_result::outcome;

class credential_store_test : public ::testing::Test {
protected:
  void SetUp() override {
    db_ = std::make_shared<store>(dir_ / "firehook.db");
    creds_ = std::make_unique<credential_store>(db_);
  }
  void TearDown() override {
    creds_.reset();
    db_.reset();
  }

  std::string stored_hash(std::string_view name) {
    auto c = db_->lock();
    auto s = c.prepare("SELECT hash FROM users WHERE name = ?1");
    s.bind(1, name);
    return s.step() ? s.column_text(0) : std::string();
  }

  base::temp_dir dir_{"firehook-cred"};
  std::shared_ptr<store> db_;
  std::unique_ptr<credential_store> creds_;
};

// Made with Debian 12's mosquitto_passwd 2.0.11: `mosquitto_passwd -c -b F alice secret` ($7$,
// the default) and `mosquitto_passwd -H sha512 -c -b F bob hunter2` ($6$).
constexpr std::string_view alice_7 =
    "$7$101$J5bJnOntTktUncDm$epke5zwpqe9d6fwxr3UnFvOmeK5tgjibpD7HL69TxI+6BMGm6XmG247VXRNydTHt"
    "ri60unZLmUNVmQMedzHwdQ==";
constexpr std::string_view bob_6 =
    "$6$rnlGef7AoiKj9F7Z$3otKRREKgrvhwQZEfJLa7rHjREXggcICnZs5sren4V1bfwwqXuiI909wg81hhT7ofi"
    "iC+2z82VMefkG3kggzLQ==";

TEST_F(credential_store_test, add_then_check_right_wrong_and_unknown) {
  creds_->add_user("dev1", "correct horse", {"sensor", "reader"}, {{"building", "b1"}, {"floor", "3"}});
  const auto ok = creds_->check("dev1", "correct horse");
  ASSERT_EQ(ok.result, outcome::ok);
  EXPECT_EQ(ok.user.name, "dev1");
  EXPECT_EQ(ok.user.kind, hash_kind::argon2id);
  EXPECT_THAT(ok.user.roles, ElementsAre("sensor", "reader")) << "roles keep the order they were given in";
  EXPECT_EQ(ok.user.attributes.at("building"), "b1");
  EXPECT_EQ(ok.user.attributes.at("floor"), "3");
  EXPECT_FALSE(ok.upgraded);

  EXPECT_EQ(creds_->check("dev1", "correct horsE").result, outcome::wrong_password);
  EXPECT_EQ(creds_->check("dev1", "").result, outcome::wrong_password);
  EXPECT_EQ(creds_->check("dev2", "correct horse").result, outcome::unknown_user);
  EXPECT_EQ(creds_->check("DEV1", "correct horse").result, outcome::unknown_user)
      << "names are case-sensitive";
}

TEST_F(credential_store_test, stores_an_argon2id_hash_at_the_interactive_limits_never_the_password) {
  creds_->add_user("dev1", "s3cret-pass", {}, {});
  const std::string hash = stored_hash("dev1");
  EXPECT_THAT(hash, ::testing::StartsWith("$argon2id$v=19$m=65536,t=2,p=1$"));
  EXPECT_EQ(hash.find("s3cret-pass"), std::string::npos);
}

TEST_F(credential_store_test, binary_passwords_with_nul_bytes_are_compared_whole) {
  const std::string pw("ab\0cd", 5);
  creds_->add_user("bin", pw, {}, {});
  EXPECT_EQ(creds_->check("bin", pw).result, outcome::ok);
  EXPECT_EQ(creds_->check("bin", "ab").result, outcome::wrong_password);
}

TEST_F(credential_store_test, add_refuses_duplicates_bad_names_roles_attributes_and_empty_passwords) {
  creds_->add_user("dev1", "pw", {}, {});
  EXPECT_THROW(creds_->add_user("dev1", "other", {}, {}), credential_error);
  EXPECT_THROW(creds_->add_user("", "pw", {}, {}), credential_error);
  EXPECT_THROW(creds_->add_user("a\nb", "pw", {}, {}), credential_error);
  EXPECT_THROW(creds_->add_user("bad\xff", "pw", {}, {}), credential_error);
  EXPECT_THROW(creds_->add_user("dev2", "", {}, {}), credential_error);
  EXPECT_THROW(creds_->add_user("dev2", "pw", {"r", "r"}, {}), credential_error);
  EXPECT_THROW(creds_->add_user("dev2", "pw", {""}, {}), credential_error);
  EXPECT_THROW(creds_->add_user("dev2", "pw", {}, {{"a=b", "c"}}), credential_error);
  EXPECT_THROW(creds_->add_user("dev2", "pw", {}, {{"", "c"}}), credential_error);
  EXPECT_FALSE(creds_->find_user("dev2")) << "a refused add must leave nothing behind";
  EXPECT_EQ(creds_->check("dev1", "pw").result, outcome::ok)
      << "a refused duplicate must not change the first";
}

TEST_F(credential_store_test, set_password_replaces_the_old_one) {
  creds_->add_user("dev1", "old", {"r"}, {{"k", "v"}});
  creds_->set_password("dev1", "new");
  EXPECT_EQ(creds_->check("dev1", "old").result, outcome::wrong_password);
  const auto r = creds_->check("dev1", "new");
  ASSERT_EQ(r.result, outcome::ok);
  EXPECT_THAT(r.user.roles, ElementsAre("r"));
  EXPECT_THROW(creds_->set_password("nobody", "x"), credential_error);
  EXPECT_THROW(creds_->set_password("dev1", ""), credential_error);
}

TEST_F(credential_store_test, remove_deletes_the_user_with_roles_and_attributes) {
  creds_->add_user("dev1", "pw", {"r"}, {{"k", "v"}});
  EXPECT_TRUE(creds_->remove_user("dev1"));
  EXPECT_FALSE(creds_->remove_user("dev1"));
  EXPECT_EQ(creds_->check("dev1", "pw").result, outcome::unknown_user);
  auto c = db_->lock();
  auto s = c.prepare("SELECT (SELECT count(*) FROM user_roles) + (SELECT count(*) FROM user_attributes)");
  ASSERT_TRUE(s.step());
  EXPECT_EQ(s.column_int(0), 0);
}

TEST_F(credential_store_test, list_is_sorted_by_name_with_kinds_and_times) {
  const auto before = std::chrono::system_clock::now() - std::chrono::seconds(1);
  creds_->add_user("zed", "pw", {}, {});
  creds_->add_user("amy", "pw", {"admin"}, {{"site", "x"}});
  creds_->import_mosquitto({{1, "bob", std::string(bob_6)}}, false, {}, {});
  const auto users = creds_->list_users();
  ASSERT_EQ(users.size(), 3U);
  EXPECT_EQ(users[0].name, "amy");
  EXPECT_EQ(users[1].name, "bob");
  EXPECT_EQ(users[2].name, "zed");
  EXPECT_EQ(users[0].kind, hash_kind::argon2id);
  EXPECT_EQ(users[1].kind, hash_kind::mosquitto_sha512);
  EXPECT_THAT(users[0].roles, ElementsAre("admin"));
  EXPECT_GE(users[0].created_at, before);
  EXPECT_EQ(users[0].created_at, users[0].updated_at);
}

TEST_F(credential_store_test, users_sharing_a_hash_are_those_whose_hash_was_copied) {
  creds_->add_user("amy", "same", {}, {});
  creds_->add_user("zed", "same", {}, {}); // the same password, its own salt: another hash
  EXPECT_TRUE(creds_->users_sharing_a_hash().empty());
  creds_->import_mosquitto({{1, "bob", std::string(bob_6)}, {2, "carl", std::string(bob_6)}}, false, {}, {});
  creds_->import_mosquitto({{1, "dan", std::string(alice_7)}, {2, "al", std::string(alice_7)}}, false, {}, {});
  EXPECT_THAT(creds_->users_sharing_a_hash(),
              ElementsAre(ElementsAre("bob", "carl"), ElementsAre("al", "dan"))); // by hash: $6$ before $7$
}

TEST_F(credential_store_test, mosquitto_pbkdf2_hash_verifies_and_is_upgraded_to_argon2id) {
  creds_->import_mosquitto({{1, "alice", std::string(alice_7)}}, false, {"imported"}, {{"src", "mosquitto"}});
  EXPECT_EQ(creds_->find_user("alice")->kind, hash_kind::mosquitto_pbkdf2);
  EXPECT_EQ(creds_->check("alice", "wrong").result, outcome::wrong_password);
  EXPECT_EQ(stored_hash("alice"), alice_7) << "a failed login must not touch the hash";

  const auto r = creds_->check("alice", "secret");
  ASSERT_EQ(r.result, outcome::ok);
  EXPECT_TRUE(r.upgraded) << r.upgrade_error;
  EXPECT_EQ(r.user.kind, hash_kind::argon2id);
  EXPECT_THAT(r.user.roles, ElementsAre("imported"));
  EXPECT_THAT(stored_hash("alice"), ::testing::StartsWith("$argon2id$"));
  // And the password still works with the new hash.
  const auto again = creds_->check("alice", "secret");
  EXPECT_EQ(again.result, outcome::ok);
  EXPECT_FALSE(again.upgraded);
}

TEST_F(credential_store_test, mosquitto_sha512_hash_verifies_and_is_upgraded) {
  creds_->import_mosquitto({{1, "bob", std::string(bob_6)}}, false, {}, {});
  EXPECT_EQ(creds_->check("bob", "hunter3").result, outcome::wrong_password);
  const auto r = creds_->check("bob", "hunter2");
  ASSERT_EQ(r.result, outcome::ok);
  EXPECT_TRUE(r.upgraded);
  EXPECT_EQ(creds_->find_user("bob")->kind, hash_kind::argon2id);
}

TEST_F(credential_store_test, hashes_from_the_installed_mosquitto_passwd) {
  if (std::system("command -v mosquitto_passwd >/dev/null 2>&1") != 0) {
    // A declared dependency (scripts/deps.txt): missing means the set-up is broken, not a pass.
    FAIL() << "mosquitto_passwd is not installed (Debian package mosquitto, in scripts/deps.txt)";
  }
  const fs::path file = dir_ / "passwd";
  const std::string pbkdf2 = "mosquitto_passwd -c -b '" + file.string() +
                             "' u7 'pa ss:7' && mosquitto_passwd -H sha512 -b '" + file.string() +
                             "' u6 'pa$s6'";
  ASSERT_EQ(std::system(pbkdf2.c_str()), 0);
  std::stringstream text;
  text << std::ifstream(file).rdbuf();
  const auto parsed = parse_mosquitto_file(text.str());
  ASSERT_TRUE(parsed.errors.empty()) << parsed.errors[0].message;
  ASSERT_EQ(parsed.entries.size(), 2U);
  creds_->import_mosquitto(parsed.entries, false, {}, {});
  EXPECT_EQ(creds_->check("u7", "pa ss:7").result, outcome::ok);
  EXPECT_EQ(creds_->check("u6", "pa$s6").result, outcome::ok);
}

TEST_F(credential_store_test, import_is_all_or_nothing_and_replace_keeps_roles) {
  creds_->add_user("alice", "old", {"keep"}, {});
  EXPECT_THROW(
      {
        try {
          creds_->import_mosquitto({{1, "bob", std::string(bob_6)}, {2, "alice", std::string(alice_7)}},
                                   false, {}, {});
        } catch (const credential_error& e) {
          EXPECT_THAT(e.what(), HasSubstr("line 2"));
          throw;
        }
      },
      credential_error);
  EXPECT_FALSE(creds_->find_user("bob")) << "nothing may be imported when one entry fails";

  creds_->import_mosquitto({{1, "bob", std::string(bob_6)}, {2, "alice", std::string(alice_7)}}, true,
                           {"new"}, {});
  const auto r = creds_->check("alice", "secret");
  ASSERT_EQ(r.result, outcome::ok);
  EXPECT_THAT(r.user.roles, ElementsAre("keep"));
  EXPECT_THAT(creds_->find_user("bob")->roles, ElementsAre("new"));
}

TEST_F(credential_store_test, set_password_replaces_an_imported_hash) {
  creds_->import_mosquitto({{1, "alice", std::string(alice_7)}}, false, {}, {});
  creds_->set_password("alice", "changed");
  EXPECT_EQ(creds_->check("alice", "secret").result, outcome::wrong_password);
  EXPECT_EQ(creds_->check("alice", "changed").result, outcome::ok);
}

TEST_F(credential_store_test, a_corrupt_stored_hash_is_an_error_not_a_login) {
  creds_->add_user("dev1", "pw", {}, {});
  db_->lock().exec("UPDATE users SET hash = 'plaintext' WHERE name = 'dev1'");
  EXPECT_THROW(creds_->check("dev1", "pw"), credential_error);
  db_->lock().exec("UPDATE users SET hash = '$7$101$!!!$abc' WHERE name = 'dev1'");
  EXPECT_THROW(creds_->check("dev1", "pw"), credential_error);
}

TEST_F(credential_store_test, unknown_user_takes_about_as_long_as_a_wrong_password) {
  creds_->add_user("dev1", "pw", {}, {});
  creds_->import_mosquitto({{1, "alice", std::string(alice_7)}}, false, {}, {});
  auto time_of = [&](std::string_view name) {
    auto best = std::chrono::nanoseconds::max();
    for (int i = 0; i < 3; ++i) {
      const auto start = std::chrono::steady_clock::now();
      creds_->check(name, "nope");
      best = std::min(best, std::chrono::steady_clock::now() - start);
    }
    return best;
  };
  const auto wrong = time_of("dev1");
  const auto unknown = time_of("nobody");
  const auto imported_wrong = time_of("alice");
  // Argon2id at 64 MiB takes tens of milliseconds; a lookup alone takes microseconds. A check
  // that skipped the hash for unknown users would be 100x faster, far outside this factor.
  EXPECT_GT(unknown * 3, wrong);
  EXPECT_GT(wrong * 3, unknown);
  EXPECT_GT(imported_wrong * 3, wrong) << "a wrong password on a (fast) Mosquitto hash must be padded";
}

TEST(mosquitto_file, parses_entries_and_reports_each_bad_line) {
  const std::string text = "# comment\n"
                           "alice:" +
                           std::string(alice_7) +
                           "\r\n"
                           "\n"
                           "nocolon\n"
                           "plain:password123\n"
                           "bad7:$7$0$J5bJnOntTktUncDm$abc\n"
                           "badb64:$6$!!!!$xyz\n"
                           ":" +
                           std::string(bob_6) +
                           "\n"
                           "bob:" +
                           std::string(bob_6) +
                           "\n"
                           "alice:" +
                           std::string(bob_6);
  const auto f = parse_mosquitto_file(text);
  ASSERT_EQ(f.entries.size(), 2U);
  EXPECT_EQ(f.entries[0].name, "alice");
  EXPECT_EQ(f.entries[0].line, 2U);
  EXPECT_EQ(f.entries[0].hash, alice_7) << "the trailing \\r must be dropped";
  EXPECT_EQ(f.entries[1].name, "bob");
  EXPECT_EQ(f.entries[1].line, 9U);
  ASSERT_EQ(f.errors.size(), 6U);
  EXPECT_EQ(f.errors[0].line, 4U);
  EXPECT_EQ(f.errors[1].line, 5U);
  EXPECT_THAT(f.errors[1].message, HasSubstr("mosquitto_passwd -U"));
  EXPECT_THAT(f.errors[1].message, ::testing::Not(HasSubstr("password123"))) << "never echo a password";
  EXPECT_EQ(f.errors[2].line, 6U);
  EXPECT_THAT(f.errors[2].message, HasSubstr("iteration"));
  EXPECT_EQ(f.errors[3].line, 7U);
  EXPECT_EQ(f.errors[4].line, 8U);
  EXPECT_THAT(f.errors[4].message, HasSubstr("user name is empty"));
  EXPECT_EQ(f.errors[5].line, 10U);
  EXPECT_THAT(f.errors[5].message, HasSubstr("first on line 2"));
}

TEST(mosquitto_hash, checks_shape) {
  EXPECT_EQ(check_mosquitto_hash(alice_7), "");
  EXPECT_EQ(check_mosquitto_hash(bob_6), "");
  EXPECT_NE(check_mosquitto_hash("$7$101$J5bJnOntTktUncDm$c2hvcnQ="), "") << "hash must be 64 bytes";
  EXPECT_NE(check_mosquitto_hash("$7$99999999999$J5bJnOntTktUncDm$" + std::string(alice_7.substr(24))), "");
  EXPECT_NE(check_mosquitto_hash("$7$-1$J5bJnOntTktUncDm$" + std::string(alice_7.substr(24))), "");
  EXPECT_NE(check_mosquitto_hash("$6$J5bJnOntTktUncDm"), "");
  EXPECT_NE(check_mosquitto_hash("$argon2id$v=19$m=1,t=1,p=1$abc$def"), "");
}

TEST(credential_database_path, defaults_to_state_dir) {
  config::config cfg;
  cfg.broker.state_dir = "/var/lib/fh";
  EXPECT_EQ(credential_database_path(cfg), fs::path("/var/lib/fh/firehook.db"));
  cfg.auth.password.database = "/etc/fh/users.db";
  EXPECT_EQ(credential_database_path(cfg), fs::path("/etc/fh/users.db"));
}

} // namespace
} // namespace firehook::registry

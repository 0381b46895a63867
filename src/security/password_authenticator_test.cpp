#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "base/temp_dir.hpp"
#include "security/certificate_authenticator.hpp"
#include "security/password_authenticator.hpp"

namespace firehook::security {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class password_authenticator_test : public ::testing::Test {
protected:
  void SetUp() override {
    config::config cfg;
    cfg.broker.state_dir = dir_ / "state";
    auth_ = make_password_authenticator(cfg); // empty database path: <state_dir>/firehook.db
    admin_ = registry::credential_store::open(dir_ / "state" / "firehook.db");
    admin_->add_user("dev1", "right", {"sensor"}, {{"building", "b1"}});
  }
  void TearDown() override {
    auth_.reset();
    admin_.reset();
  }

  auth_result login(std::optional<std::string_view> user, std::optional<std::string_view> password) {
    connect_request r;
    r.listener = "default";
    r.peer_address = "127.0.0.1";
    r.client_id = "c1";
    r.username = user;
    r.password = password;
    return auth_->authenticate(r);
  }

  base::temp_dir dir_{"firehook-pwauth"};
  std::shared_ptr<const password_authenticator> auth_;
  std::shared_ptr<registry::credential_store> admin_; // a second connection, as `firehook user` has
};

TEST_F(password_authenticator_test, right_password_allows_with_roles_and_attributes) {
  const auto r = login("dev1", "right");
  ASSERT_EQ(r.decision, verdict::allow) << r.detail;
  EXPECT_EQ(r.method, "password");
  EXPECT_EQ(r.who.name, "dev1");
  EXPECT_EQ(r.who.method, "password");
  EXPECT_THAT(r.who.roles, ElementsAre("sensor"));
  EXPECT_EQ(r.who.attributes.at("building"), "b1");
  EXPECT_FALSE(r.who.certificate);
  EXPECT_FALSE(r.who.client_id); // a password binds no client id
}

TEST_F(password_authenticator_test, abstains_without_a_user_name) {
  EXPECT_EQ(login(std::nullopt, std::nullopt).decision, verdict::abstain);
  EXPECT_EQ(login(std::nullopt, "a.b.c").decision, verdict::abstain)
      << "a password alone is the jwt method's";
}

TEST_F(password_authenticator_test, wrong_unknown_and_missing_password_are_denied_alike) {
  const auto wrong = login("dev1", "wrong");
  const auto unknown = login("nobody", "right");
  const auto missing = login("dev1", std::nullopt);
  for (const auto* r : {&wrong, &unknown, &missing}) {
    EXPECT_EQ(r->decision, verdict::deny);
    EXPECT_EQ(r->reason, mqtt::reason_code::bad_user_name_or_password);
    EXPECT_EQ(r->method, "password");
  }
  EXPECT_EQ(wrong.detail, "wrong password");
  EXPECT_EQ(unknown.detail, "unknown user");
  EXPECT_EQ(missing.detail, "no password");
}

TEST_F(password_authenticator_test, sees_changes_made_by_another_connection) {
  admin_->set_password("dev1", "rotated");
  EXPECT_EQ(login("dev1", "right").decision, verdict::deny);
  EXPECT_EQ(login("dev1", "rotated").decision, verdict::allow);
  admin_->remove_user("dev1");
  EXPECT_EQ(login("dev1", "rotated").detail, "unknown user");
}

TEST_F(password_authenticator_test, store_error_fails_closed) {
  // Drop the table under the authenticator: every lookup now fails with an SQLite error.
  auto db = std::make_shared<registry::store>(dir_ / "state" / "firehook.db");
  db->lock().exec(
      "PRAGMA foreign_keys = OFF; DROP TABLE user_roles; DROP TABLE user_attributes; DROP TABLE users;");
  const auto r = login("dev1", "right");
  EXPECT_EQ(r.decision, verdict::deny);
  EXPECT_EQ(r.reason, mqtt::reason_code::bad_user_name_or_password);
  EXPECT_THAT(r.detail, HasSubstr("credential store"));
}

TEST_F(password_authenticator_test, imported_mosquitto_hash_logs_in_and_is_upgraded) {
  admin_->import_mosquitto(
      {{1, "alice",
        "$7$101$J5bJnOntTktUncDm$epke5zwpqe9d6fwxr3UnFvOmeK5tgjibpD7HL69TxI+6BMGm6XmG247VXRNydTHtri60"
        "unZLmUNVmQMedzHwdQ=="}},
      false, {}, {});
  const auto r = login("alice", "secret");
  ASSERT_EQ(r.decision, verdict::allow);
  EXPECT_THAT(r.detail, HasSubstr("upgraded"));
  EXPECT_EQ(admin_->find_user("alice")->kind, registry::hash_kind::argon2id);
}

TEST_F(password_authenticator_test, a_user_linked_to_a_disabled_device_is_refused_as_a_wrong_password) {
  const auto devices = registry::device_registry::open(dir_ / "state" / "firehook.db");
  devices->add({"sensor-9", {}, {}, std::string("dev1"), std::nullopt});
  EXPECT_EQ(login("dev1", "right").decision, verdict::allow);
  devices->set_state("sensor-9", registry::device_state::disabled);
  const auto r = login("dev1", "right");
  EXPECT_EQ(r.decision, verdict::deny);
  EXPECT_EQ(r.reason, mqtt::reason_code::bad_user_name_or_password);
  EXPECT_THAT(r.detail, HasSubstr("sensor-9"));
  EXPECT_THAT(r.detail, HasSubstr("disabled"));
  devices->set_state("sensor-9", registry::device_state::active);
  EXPECT_EQ(login("dev1", "right").decision, verdict::allow);
}

TEST_F(password_authenticator_test, factory_uses_the_configured_database) {
  config::config cfg;
  cfg.broker.state_dir = dir_ / "unused";
  cfg.auth.password.database = dir_ / "elsewhere" / "users.db";
  const auto a = make_password_authenticator(cfg);
  EXPECT_TRUE(fs::exists(dir_ / "elsewhere" / "users.db"));
  EXPECT_FALSE(fs::exists(dir_ / "unused"));
}

TEST_F(password_authenticator_test, chain_order_decides_between_password_and_others) {
  // password first: an unknown user is denied even though a later method might have accepted.
  struct accept_all final : authenticator {
    std::string_view method() const override { return "other"; }
    bool quick(const connect_request&) const override { return true; }
    auth_result authenticate(const connect_request&) const override {
      identity who;
      who.name = "x";
      who.method = "other";
      return auth_result::allow(who);
    }
  };
  const auth_chain password_first({auth_, std::make_shared<const accept_all>()}, false);
  const auth_chain other_first({std::make_shared<const accept_all>(), auth_}, false);
  connect_request r;
  r.username = "nobody";
  r.password = "eyJ.eyJ.sig";
  EXPECT_EQ(password_first.authenticate(r).decision, verdict::deny);
  EXPECT_EQ(other_first.authenticate(r).decision, verdict::allow);
}

TEST_F(password_authenticator_test, quick_part_of_a_chain_stops_at_the_password_method) {
  // The certificate method decides on the shard thread; a request it leaves to the password method
  // is not decided there (nullopt), so the Argon2id check runs on the authentication pool.
  const auto cert = std::make_shared<const certificate_authenticator>(
      config::certificate_auth_settings{config::certificate_identity::cn, config::client_id_binding::any});
  connect_request with_password;
  with_password.username = "nobody";
  with_password.password = "secret";
  EXPECT_FALSE(auth_->quick(with_password));
  EXPECT_TRUE(cert->quick(with_password));
  const auth_chain chain({cert, auth_}, false);
  EXPECT_FALSE(chain.authenticate_quick(with_password));
  EXPECT_EQ(chain.authenticate(with_password).decision, verdict::deny);

  // Only quick methods: the anonymous fallback is decided at once, as authenticate() would.
  const auth_chain anonymous({cert}, true);
  const auto anon = anonymous.authenticate_quick(connect_request{});
  ASSERT_TRUE(anon);
  EXPECT_EQ(anon->decision, verdict::allow);
  EXPECT_EQ(anon->who.name, "anonymous");
  const auth_chain closed({cert}, false);
  const auto refused = closed.authenticate_quick(with_password);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->reason, mqtt::reason_code::bad_user_name_or_password);
}

TEST_F(password_authenticator_test, a_client_without_credentials_is_decided_without_the_pool) {
  // On a listener that admits anonymous clients, one that sends no user name never waits behind
  // password hashing: the password method abstains at once, so the chain decides on the shard.
  const auth_chain chain({auth_}, true);
  const auto anon = chain.authenticate_quick(connect_request{});
  ASSERT_TRUE(anon);
  EXPECT_EQ(anon->who.method, "anonymous");
  connect_request with_user;
  with_user.username = "dev1";
  with_user.password = "wrong";
  EXPECT_FALSE(chain.authenticate_quick(with_user)) << "a password is checked on the pool";
}

} // namespace
} // namespace firehook::security

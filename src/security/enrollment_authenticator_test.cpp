#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/temp_dir.hpp"
#include "security/enrollment_authenticator.hpp"

namespace firehook::security {
namespace {

using ::testing::HasSubstr;

config::enrollment_settings one_template() {
  config::enrollment_settings s;
  s.templates.push_back({"thermostat", {"thermostats"}, {}, 30});
  return s;
}

class enrollment_authenticator_test : public ::testing::Test {
protected:
  auth_result login(std::string_view name, std::string_view password) const {
    connect_request r;
    r.listener = "enroll";
    r.peer_address = "127.0.0.1";
    r.username = name;
    r.password = password;
    return auth_.authenticate(r);
  }

  base::temp_dir dir_{"firehook-enroll-auth"};
  std::shared_ptr<registry::device_registry> devices_ = registry::device_registry::open(dir_ / "firehook.db");
  std::shared_ptr<registry::enrollment_tokens> tokens_ =
      std::make_shared<registry::enrollment_tokens>(devices_->database());
  enrollment_authenticator auth_{tokens_, devices_, one_template()};
};

TEST_F(enrollment_authenticator_test, a_valid_token_gives_a_claim_identity_bound_to_the_name) {
  const auto token = tokens_->create("thermostat", 1, registry::unix_now() + 3600).front();
  const auto r = login("thermo-1", token);
  ASSERT_EQ(r.decision, verdict::allow) << r.detail;
  EXPECT_EQ(r.who.method, "enrollment");
  EXPECT_EQ(r.who.name, "thermo-1");
  EXPECT_EQ(r.who.client_id, "thermo-1");
  EXPECT_TRUE(r.who.assigns_client_id);
  EXPECT_EQ(r.who.claims.at("template"), "thermostat");
  EXPECT_EQ(r.who.claims.at("token_sha256"), registry::hash_enrollment_token(token));
  ASSERT_TRUE(r.who.expires_at);
  EXPECT_LE(*r.who.expires_at, std::chrono::system_clock::now() + claim_lifetime);
}

TEST_F(enrollment_authenticator_test, abstains_on_a_password_that_is_not_a_token) {
  EXPECT_EQ(login("alice", "s3cret").decision, verdict::abstain);
  connect_request r;
  EXPECT_TRUE(auth_.quick(r));
  r.password = "fhe1_x";
  EXPECT_FALSE(auth_.quick(r)); // SQLite: the authentication pool
}

TEST_F(enrollment_authenticator_test, refuses_bad_tokens_and_names_as_a_wrong_password) {
  const auto now = registry::unix_now();
  const auto expired = tokens_->create("thermostat", 1, now - 1).front();
  const auto orphan = tokens_->create("gone", 1, now + 60).front();
  const auto good = tokens_->create("thermostat", 1, now + 60).front();
  devices_->add({"taken", {}, {}, std::nullopt, std::nullopt});
  const std::pair<std::pair<std::string, std::string>, std::string> cases[] = {
      {{"d", "fhe1_00"}, "unknown token"}, {{"d", expired}, "token expired"},
      {{"d", orphan}, "not configured"},   {{"a/b", good}, "may hold only"},
      {{"taken", good}, "exists"},
  };
  for (const auto& [login_as, why] : cases) {
    const auto r = login(login_as.first, login_as.second);
    EXPECT_EQ(r.decision, verdict::deny) << why;
    EXPECT_EQ(r.reason, mqtt::reason_code::bad_user_name_or_password);
    EXPECT_THAT(r.detail, HasSubstr(why));
  }
}

TEST(enrollment_policy, a_claim_identity_may_only_use_its_own_request_and_response_topics) {
  identity who;
  who.name = "thermo-1";
  who.method = "enrollment";
  who.roles = {"enrollment"};
  who.client_id = "thermo-1";
  const topic_access access(enrollment_policy(), who, "thermo-1");
  EXPECT_TRUE(access.may_publish("$enroll/thermo-1/request", 1, false).allowed());
  EXPECT_FALSE(access.may_publish("$enroll/thermo-1/request", 1, true).allowed()); // no retain
  EXPECT_FALSE(access.may_publish("$enroll/thermo-1/request", 2, false).allowed());
  EXPECT_FALSE(access.may_publish("$enroll/thermo-2/request", 1, false).allowed());
  EXPECT_FALSE(access.may_publish("$enroll/thermo-1/response", 1, false).allowed());
  EXPECT_FALSE(access.may_publish("devices/thermo-1/status", 0, false).allowed());
  EXPECT_TRUE(access.may_subscribe("$enroll/thermo-1/response").allowed());
  EXPECT_TRUE(access.may_receive("$enroll/thermo-1/response").allowed());
  EXPECT_FALSE(access.may_subscribe("$enroll/+/response").allowed());
  EXPECT_FALSE(access.may_subscribe("#").allowed());
  EXPECT_FALSE(access.may_subscribe("$enroll/thermo-1/request").allowed());
  // Another client id than the one the identity was given binds nothing.
  const topic_access other(enrollment_policy(), who, "thermo-2");
  EXPECT_FALSE(other.may_publish("$enroll/thermo-2/request", 1, false).allowed());
}

} // namespace
} // namespace firehook::security

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "security/topic_policy.hpp"

namespace firehook::security {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<const topic_policy> policy_from(std::string_view text) {
  const auto loaded = config::load_topics_string(text, "topics.toml");
  std::string all;
  for (const auto& d : loaded.diagnostics) {
    all += d.to_string() + "\n";
  }
  EXPECT_TRUE(loaded.ok()) << all;
  if (!loaded.ok()) {
    return nullptr;
  }
  return topic_policy::compile(loaded.topics);
}

// The building fleet of the issue: line numbers matter for the rule locations checked below.
constexpr std::string_view fleet = R"([roles.thermostat]
from = ["cert.ou = thermostats"]
[roles.hvac-controller]
from = ["claim.kind = hvac"]
[roles.dashboard]
service = true
[roles.guest]

[anonymous]
role = "guest"

[[topic]]
pattern = "buildings/{building}/rooms/{room}/temperature"
description = "Room temperature"
max_qos = 1
retain = true
publish = [{ role = "thermostat", where = { building = "attr.building", room = "attr.room" } }]
subscribe = [{ role = "hvac-controller", where = { building = "claim.building" } }, "dashboard"]

[[topic]]
pattern = "buildings/{building}/rooms/{room}/setpoint"
description = "Target temperature"
publish = [{ role = "hvac-controller", where = { building = "claim.building" } }]
subscribe = [{ role = "thermostat", where = { building = "attr.building", room = "attr.room" } }, "dashboard"]

[[topic]]
pattern = "devices/{client_id}/status"
description = "Online/offline"
retain = true
publish = ["thermostat", "hvac-controller"]
subscribe = ["dashboard"]

[[topic]]
pattern = "#"
description = "Everything, for the operations dashboard"
subscribe = ["dashboard"]

[[topic]]
pattern = "lobby/news"
description = "Public news"
subscribe = ["guest"]

[[deny]]
pattern = "internal/#"
roles = ["*"]
description = "Back-end only"
)";

identity thermostat(std::string building, std::string room) {
  identity who;
  who.name = "t1";
  who.method = "certificate";
  who.certificate.emplace();
  who.certificate->common_name = "t1";
  who.certificate->organizational_units = {"thermostats"};
  who.attributes = {{"building", std::move(building)}, {"room", std::move(room)}};
  who.client_id = "t1"; // auth.certificate.client_id = "must_match"
  return who;
}

identity controller(std::string building) {
  identity who;
  who.name = "hvac-1";
  who.method = "jwt";
  who.claims = {{"kind", "hvac"}, {"building", std::move(building)}};
  return who;
}

identity dashboard() {
  identity who;
  who.name = "ops";
  who.method = "password";
  who.roles = {"dashboard"};
  return who;
}

class fleet_policy : public ::testing::Test {
protected:
  std::shared_ptr<const topic_policy> policy_ = policy_from(fleet);
};

TEST_F(fleet_policy, roles_come_from_certificate_claims_credentials_and_anonymous) {
  EXPECT_EQ(policy_->roles_of(thermostat("b1", "r1")), std::vector<std::string>{"thermostat"});
  EXPECT_EQ(policy_->roles_of(controller("b1")), std::vector<std::string>{"hvac-controller"});
  EXPECT_EQ(policy_->roles_of(dashboard()), std::vector<std::string>{"dashboard"});
  identity anonymous;
  anonymous.method = "anonymous";
  anonymous.roles = {"dashboard"}; // never from anything but [anonymous]
  EXPECT_EQ(policy_->roles_of(anonymous), std::vector<std::string>{"guest"});
  identity nobody;
  nobody.method = "password";
  nobody.roles = {"undeclared"};
  EXPECT_TRUE(policy_->roles_of(nobody).empty());
}

TEST_F(fleet_policy, thermostat_publishes_to_its_own_room_only) {
  const topic_access access(policy_, thermostat("b1", "r1"), "t1");
  const auto own = access.may_publish("buildings/b1/rooms/r1/temperature", 1, false);
  EXPECT_TRUE(own.allowed());
  ASSERT_NE(own.rule, nullptr);
  EXPECT_EQ(own.rule->location(), "topics.toml:17:12");
  EXPECT_EQ(own.rule->role, "thermostat");
  EXPECT_EQ(own.rule->type, topic_rule::kind::publish_grant);

  const auto other_room = access.may_publish("buildings/b1/rooms/r2/temperature", 1, false);
  EXPECT_EQ(other_room.verdict, topic_verdict::no_grant);
  EXPECT_EQ(other_room.rule, nullptr);
  EXPECT_EQ(access.may_publish("buildings/b2/rooms/r1/temperature", 0, false).verdict,
            topic_verdict::no_grant);
  EXPECT_EQ(access.may_publish("buildings/b1/rooms/r1/temperature/x", 0, false).verdict,
            topic_verdict::no_grant);
  EXPECT_EQ(access.may_publish("buildings/b1/rooms/r1", 0, false).verdict, topic_verdict::no_grant);
  // Publish and subscribe are separate rights: no setpoint publishing for a thermostat.
  EXPECT_EQ(access.may_publish("buildings/b1/rooms/r1/setpoint", 0, false).verdict, topic_verdict::no_grant);
  // Wildcards are never a topic name.
  EXPECT_EQ(access.may_publish("buildings/b1/rooms/+/temperature", 0, false).verdict,
            topic_verdict::no_grant);
  // {client_id} is the session's client id, which the certificate binds.
  EXPECT_TRUE(access.may_publish("devices/t1/status", 0, true).allowed());
  EXPECT_FALSE(access.may_publish("devices/t2/status", 0, true).allowed());
}

TEST_F(fleet_policy, client_id_placeholder_binds_only_a_client_id_the_identity_is_entitled_to) {
  // A certificate bound to "t1" connecting as "t2" (not possible with must_match, but the rule
  // must hold on its own): the grant does not apply.
  const topic_access other(policy_, thermostat("b1", "r1"), "t2");
  EXPECT_FALSE(other.may_publish("devices/t2/status", 0, true).allowed());
  EXPECT_FALSE(other.may_publish("devices/t1/status", 0, true).allowed());

  // A thermostat without a bound client id (a password, a token, or a certificate with
  // client_id = "any") chooses its own client id, which proves nothing: no {client_id} grant.
  identity unbound = thermostat("b1", "r1");
  unbound.client_id.reset();
  const topic_access chosen(policy_, unbound, "t1");
  EXPECT_FALSE(chosen.may_publish("devices/t1/status", 0, true).allowed());
  EXPECT_TRUE(chosen.may_publish("buildings/b1/rooms/r1/temperature", 1, false).allowed());
  bool explained = false;
  for (const auto& s : chosen.skipped()) {
    if (s.rule->pattern == "devices/{client_id}/status") {
      EXPECT_EQ(s.reason, "client_id is not bound to the identity (only a certificate with "
                          "auth.certificate.client_id = \"must_match\" or \"assign\", or a token with a client_id claim, binds it)");
      explained = true;
    }
  }
  EXPECT_TRUE(explained) << "topics explain must say why the grant did not apply";
}

TEST_F(fleet_policy, max_qos_and_retain_per_topic) {
  const topic_access access(policy_, thermostat("b1", "r1"), "t1");
  const auto qos2 = access.may_publish("buildings/b1/rooms/r1/temperature", 2, false);
  EXPECT_EQ(qos2.verdict, topic_verdict::qos_too_high);
  ASSERT_NE(qos2.rule, nullptr);
  EXPECT_EQ(qos2.rule->pattern, "buildings/{building}/rooms/{room}/temperature");
  EXPECT_TRUE(access.may_publish("buildings/b1/rooms/r1/temperature", 1, true).allowed());

  const topic_access hvac(policy_, controller("b1"), "hvac-1");
  EXPECT_TRUE(hvac.may_publish("buildings/b1/rooms/r1/setpoint", 2, false).allowed());
  EXPECT_EQ(hvac.may_publish("buildings/b1/rooms/r1/setpoint", 0, true).verdict,
            topic_verdict::retain_not_allowed);
}

TEST_F(fleet_policy, thermostat_subscriptions_are_not_narrowed) {
  const topic_access access(policy_, thermostat("b1", "r1"), "t1");
  EXPECT_TRUE(access.may_subscribe("buildings/b1/rooms/r1/setpoint").allowed());
  EXPECT_EQ(access.may_subscribe("buildings/b1/rooms/r2/setpoint").verdict, topic_verdict::no_grant);
  EXPECT_EQ(access.may_subscribe("buildings/b1/rooms/+/setpoint").verdict, topic_verdict::no_grant);
  EXPECT_EQ(access.may_subscribe("#").verdict, topic_verdict::no_grant);
  EXPECT_EQ(access.may_subscribe("buildings/+/rooms/+/temperature").verdict, topic_verdict::no_grant);
  EXPECT_TRUE(access.may_receive("buildings/b1/rooms/r1/setpoint").allowed());
  EXPECT_FALSE(access.may_receive("buildings/b1/rooms/r2/setpoint").allowed());
}

TEST_F(fleet_policy, controller_subscribes_to_its_own_building) {
  const topic_access access(policy_, controller("b1"), "hvac-1");
  const auto own = access.may_subscribe("buildings/b1/rooms/+/temperature");
  EXPECT_TRUE(own.allowed());
  EXPECT_FALSE(own.withheld);
  ASSERT_NE(own.rule, nullptr);
  EXPECT_EQ(own.rule->location(), "topics.toml:18:14");
  EXPECT_TRUE(access.may_subscribe("buildings/b1/rooms/r7/temperature").allowed());
  EXPECT_TRUE(access.may_subscribe("$share/hvac/buildings/b1/rooms/+/temperature").allowed());
  EXPECT_EQ(access.may_subscribe("buildings/b2/rooms/+/temperature").verdict, topic_verdict::no_grant);
  EXPECT_EQ(access.may_subscribe("#").verdict, topic_verdict::no_grant);
  EXPECT_EQ(access.may_subscribe("buildings/+/rooms/+/temperature").verdict, topic_verdict::no_grant);
  EXPECT_EQ(access.may_subscribe("buildings/b1/#").verdict, topic_verdict::no_grant);
  EXPECT_EQ(access.may_subscribe("$share/hvac/#").verdict, topic_verdict::no_grant);
  EXPECT_TRUE(access.may_receive("buildings/b1/rooms/r1/temperature").allowed());
  EXPECT_FALSE(access.may_receive("buildings/b2/rooms/r1/temperature").allowed());
}

TEST_F(fleet_policy, injected_identity_values_never_widen_a_pattern) {
  for (const std::string value : {"+", "#", "b1/rooms/r2", "", "b+", "a#"}) {
    const topic_access access(policy_, thermostat(value, "r1"), "t1");
    EXPECT_FALSE(access.may_publish("buildings/b1/rooms/r1/temperature", 0, false).allowed()) << value;
    EXPECT_FALSE(access.may_publish("buildings/b2/rooms/r1/temperature", 0, false).allowed()) << value;
    EXPECT_FALSE(access.may_publish("buildings/b1/rooms/r2/temperature", 0, false).allowed()) << value;
    EXPECT_FALSE(access.may_subscribe("buildings/b1/rooms/r1/setpoint").allowed()) << value;
    EXPECT_FALSE(access.may_subscribe("buildings/+/rooms/r1/setpoint").allowed()) << value;
    EXPECT_FALSE(access.may_receive("buildings/b1/rooms/r1/setpoint").allowed()) << value;
    ASSERT_EQ(access.skipped().size(), 2u) << value;
    EXPECT_EQ(access.skipped()[0].rule->location(), "topics.toml:17:12");
    EXPECT_THAT(access.skipped()[0].reason, HasSubstr("attr.building")) << value;
  }
  const topic_access plus(policy_, thermostat("+", "r1"), "t1");
  EXPECT_EQ(plus.skipped()[0].reason, "attr.building \"+\" contains '+'");
  // A literal "+" level is not a topic name either, so nothing can even ask for it.
  EXPECT_FALSE(plus.may_publish("buildings/+/rooms/r1/temperature", 0, false).allowed());

  const topic_access missing(policy_, thermostat("b1", "r1"), "t1");
  identity no_room = thermostat("b1", "r1");
  no_room.attributes.erase("room");
  EXPECT_EQ(topic_access(policy_, no_room, "t1").skipped()[0].reason, "attr.room is missing");

  // A client id that is a wildcard or a path is not a level either.
  for (const std::string client_id : {"+", "#", "t1/x", ""}) {
    const topic_access access(policy_, thermostat("b1", "r1"), client_id);
    EXPECT_FALSE(access.may_publish("devices/t1/x/status", 0, false).allowed()) << client_id;
    EXPECT_FALSE(access.may_publish("devices/x/status", 0, false).allowed()) << client_id;
  }
}

TEST(topic_policy, dollar_values_do_not_reach_the_broker_topics) {
  const auto policy = policy_from(R"(
[roles.device]
[[topic]]
pattern = "{client_id}/status"
description = "x"
publish = ["device"]
)");
  identity who;
  who.method = "certificate";
  who.name = "d1";
  who.roles = {"device"};
  who.client_id = "d1";
  EXPECT_TRUE(topic_access(policy, who, "d1").may_publish("d1/status", 0, false).allowed());
  who.name = "$SYS";
  who.client_id = "$SYS";
  EXPECT_FALSE(topic_access(policy, who, "$SYS").may_publish("$SYS/status", 0, false).allowed());
}

TEST_F(fleet_policy, deny_withholds_an_internal_subtree_from_a_broad_subscription) {
  const topic_access access(policy_, dashboard(), "ops");
  const auto all = access.may_subscribe("#");
  EXPECT_TRUE(all.allowed());
  EXPECT_TRUE(all.withheld);
  EXPECT_EQ(all.rule->pattern, "#");
  EXPECT_TRUE(access.may_receive("buildings/b1/rooms/r1/temperature").allowed());
  const auto internal = access.may_receive("internal/keys");
  EXPECT_EQ(internal.verdict, topic_verdict::denied);
  ASSERT_NE(internal.rule, nullptr);
  EXPECT_EQ(internal.rule->location(), "topics.toml:43:1");
  EXPECT_EQ(internal.rule->type, topic_rule::kind::deny);

  const auto inside = access.may_subscribe("internal/#");
  EXPECT_EQ(inside.verdict, topic_verdict::denied);
  EXPECT_EQ(inside.rule, internal.rule);
  EXPECT_EQ(access.may_subscribe("internal/a/+").verdict, topic_verdict::denied);
  EXPECT_EQ(access.may_subscribe("internal").verdict, topic_verdict::denied); // '#' matches the parent

  const auto overlapping = access.may_subscribe("+/keys");
  EXPECT_TRUE(overlapping.allowed());
  EXPECT_TRUE(overlapping.withheld);
  const auto apart = access.may_subscribe("buildings/#");
  EXPECT_TRUE(apart.allowed());
  EXPECT_FALSE(apart.withheld);
  // Deny wins over publish grants as well, for everyone ("*").
  EXPECT_EQ(topic_access(policy_, thermostat("b1", "r1"), "t1").may_publish("internal/x", 0, false).verdict,
            topic_verdict::denied);
}

TEST_F(fleet_policy, anonymous_clients_get_the_anonymous_role_only) {
  identity anonymous;
  anonymous.method = "anonymous";
  anonymous.name = "anonymous";
  const topic_access access(policy_, anonymous, "guest-1");
  EXPECT_TRUE(access.may_subscribe("lobby/news").allowed());
  EXPECT_FALSE(access.may_subscribe("#").allowed());
  EXPECT_FALSE(access.may_publish("lobby/news", 0, false).allowed());
}

TEST_F(fleet_policy, an_empty_access_allows_nothing) {
  const topic_access nothing;
  EXPECT_FALSE(nothing.may_publish("a", 0, false).allowed());
  EXPECT_FALSE(nothing.may_subscribe("a").allowed());
  EXPECT_FALSE(nothing.may_receive("a").allowed());
}

// A subscription covered by the subscribe grants of one role ("r"), given as patterns.
class containment : public ::testing::TestWithParam<std::tuple<std::vector<std::string>, std::string, bool>> {
};

TEST_P(containment, filter_is_granted_only_when_covered) {
  const auto& [grants, filter, expected] = GetParam();
  std::string text = "[roles.r]\nservice = true\n";
  for (const auto& g : grants) {
    text += "[[topic]]\npattern = \"" + g + "\"\ndescription = \"x\"\nsubscribe = [\"r\"]\n";
  }
  identity who;
  who.method = "password";
  who.roles = {"r"};
  const topic_access access(policy_from(text), who, "c");
  EXPECT_EQ(access.may_subscribe(filter).allowed(), expected);
}

using grants = std::vector<std::string>;
INSTANTIATE_TEST_SUITE_P(
    topic_policy, containment,
    ::testing::Values(
        std::tuple(grants{"a/b/c"}, "a/+/c", false), std::tuple(grants{"a/+/c"}, "a/+/c", true),
        std::tuple(grants{"a/{x}/c"}, "a/+/c", true), std::tuple(grants{"a/b/c", "a/d/c"}, "a/+/c", false),
        std::tuple(grants{"a/#"}, "a/+/c", true), std::tuple(grants{"a/+/+"}, "a/+/c", true),
        std::tuple(grants{"a/+"}, "a/+/c", false), std::tuple(grants{"a/b/c"}, "a/b/c", true),
        std::tuple(grants{"+/#"}, "#", true), std::tuple(grants{"#"}, "#", true),
        std::tuple(grants{"a/#"}, "#", false), std::tuple(grants{"a", "a/+", "a/+/#"}, "a/#", true),
        std::tuple(grants{"a/+", "a/+/#"}, "a/#", false), std::tuple(grants{"a/#"}, "a/#", true),
        std::tuple(grants{"a/+/#"}, "a/b", true), std::tuple(grants{"a/b/+"}, "a/b", false),
        std::tuple(grants{"a/b/#"}, "a/b", true), std::tuple(grants{"+/b"}, "a/b", true),
        std::tuple(grants{"+/b", "+/+/#"}, "+/#", false),
        std::tuple(grants{"+", "+/+/#", "+/+"}, "+/#", true),
        // [MQTT-4.7.2-1]: '#' does not cover '$' topics, and '#' does not include them.
        std::tuple(grants{"#"}, "$SYS/#", false), std::tuple(grants{"+/x"}, "$SYS/x", false),
        std::tuple(grants{"$SYS/#"}, "$SYS/x", true), std::tuple(grants{"+/#"}, "a//b", true)));

TEST(topic_policy, multi_valued_sources_accept_each_value) {
  const auto policy = policy_from(R"(
[roles.gw]
from = ["cert.ou = gateways"]
[[topic]]
pattern = "sites/{site}/up"
description = "x"
publish = [{ role = "gw", where = { site = "cert.san_dns" } }]
)");
  identity who;
  who.method = "certificate";
  who.certificate.emplace();
  who.certificate->organizational_units = {"staff", "gateways"};
  who.certificate->san_dns = {"north.example", "south.example", "bad/one"};
  const topic_access access(policy, who, "gw");
  EXPECT_EQ(access.roles(), std::vector<std::string>{"gw"});
  EXPECT_TRUE(access.may_publish("sites/north.example/up", 0, false).allowed());
  EXPECT_TRUE(access.may_publish("sites/south.example/up", 0, false).allowed());
  EXPECT_FALSE(access.may_publish("sites/bad/one/up", 0, false).allowed());
  EXPECT_FALSE(access.may_publish("sites/east.example/up", 0, false).allowed());
}

TEST(topic_policy, username_only_from_a_password) {
  const auto policy = policy_from(R"(
[roles.user]
[[topic]]
pattern = "users/{username}/inbox"
description = "x"
subscribe = ["user"]
)");
  identity who;
  who.name = "alice";
  who.roles = {"user"};
  who.method = "password";
  EXPECT_TRUE(topic_access(policy, who, "c").may_subscribe("users/alice/inbox").allowed());
  who.method = "jwt";
  EXPECT_FALSE(topic_access(policy, who, "c").may_subscribe("users/alice/inbox").allowed());
}

TEST(topic_policy, deny_only_publish_leaves_subscribe) {
  const auto policy = policy_from(R"(
[roles.r]
service = true
[[topic]]
pattern = "#"
description = "x"
publish = ["r"]
subscribe = ["r"]
[[deny]]
pattern = "cmd/+"
roles = ["r"]
only = "publish"
)");
  identity who;
  who.method = "password";
  who.roles = {"r"};
  const topic_access access(policy, who, "c");
  EXPECT_EQ(access.may_publish("cmd/x", 0, false).verdict, topic_verdict::denied);
  EXPECT_TRUE(access.may_publish("cmd/x/y", 0, false).allowed());
  EXPECT_TRUE(access.may_subscribe("cmd/+").allowed());
  EXPECT_FALSE(access.may_subscribe("cmd/+").withheld);
  EXPECT_TRUE(access.may_receive("cmd/x").allowed());
}

TEST(topic_policy, first_matching_grant_decides_and_limits_come_from_it) {
  const auto policy = policy_from(R"(
[roles.r]
service = true
[[topic]]
pattern = "a/+"
description = "x"
max_qos = 0
publish = ["r"]
[[topic]]
pattern = "a/b"
description = "x"
max_qos = 2
publish = ["r"]
)");
  identity who;
  who.method = "password";
  who.roles = {"r"};
  const topic_access access(policy, who, "c");
  const auto d = access.may_publish("a/b", 2, false);
  EXPECT_TRUE(d.allowed());
  EXPECT_EQ(d.rule->pattern, "a/b");
  EXPECT_EQ(access.may_publish("a/c", 1, false).verdict, topic_verdict::qos_too_high);
}

} // namespace
} // namespace firehook::security

#include "broker/client_rates.hpp"

#include <gtest/gtest.h>

#include "config/topics.hpp"

namespace firehook::broker {
namespace {

std::vector<config::listener_settings> listeners() {
  std::vector<config::listener_settings> out(2);
  out[0].name = "devices"; // the defaults of [limits]
  out[1].name = "services";
  out[1].rates = config::rate_settings{0, 0, 0, 0, 0, 0}; // nothing limited
  return out;
}

std::shared_ptr<const security::topic_policy> policy(std::string_view toml) {
  const auto loaded = config::load_topics_string(toml, "topics.toml");
  EXPECT_TRUE(loaded.ok()) << (loaded.diagnostics.empty() ? "" : loaded.diagnostics[0].to_string());
  return security::topic_policy::compile(loaded.topics);
}

security::topic_access access_with(const std::shared_ptr<const security::topic_policy>& p,
                                   std::vector<std::string> roles) {
  security::identity who;
  who.name = "d1";
  who.method = "password";
  who.roles = std::move(roles);
  return security::topic_access(p, who, "d1");
}

constexpr std::string_view topics = R"(
[roles.sensor]
[roles.gateway]
rate_limits = { publish_rate = 20000, publish_burst = 40000 }
[roles.bulk]
rate_limits = { publish_rate = 0, subscribe_rate = 5 }
[roles.quiet]
rate_limits = { publish_rate = 10 }
[[topic]]
pattern = "t/#"
description = "x"
publish = ["sensor", "gateway", "bulk", "quiet"]
)";

TEST(client_rates, a_listener_gives_its_rates_and_null_when_it_limits_nothing) {
  client_rates rates(listeners());
  const auto devices = rates.of("devices", nullptr);
  ASSERT_TRUE(devices);
  EXPECT_EQ(*devices, config::rate_settings{});
  EXPECT_EQ(devices, rates.of("devices", nullptr)); // shared
  EXPECT_FALSE(rates.of("services", nullptr));
  EXPECT_FALSE(rates.of("unknown", nullptr));
}

TEST(client_rates, roles_replace_the_listener_values_they_give_and_the_most_generous_wins) {
  client_rates rates(listeners());
  const auto p = policy(topics);
  const auto sensor = access_with(p, {"sensor"});
  EXPECT_EQ(rates.of("devices", &sensor), rates.of("devices", nullptr)); // a role without rates

  const auto gateway = access_with(p, {"gateway"});
  const auto g = rates.of("devices", &gateway);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->publish_rate, 20000U);
  EXPECT_EQ(g->publish_burst, 40000U);
  EXPECT_EQ(g->subscribe_rate, config::rate_settings{}.subscribe_rate); // the listener's
  EXPECT_EQ(g, rates.of("devices", &gateway));                          // shared by equal clients

  const auto quiet_gateway = access_with(p, {"quiet", "gateway"});
  EXPECT_EQ(rates.of("devices", &quiet_gateway)->publish_rate, 20000U); // the larger

  const auto bulk_quiet = access_with(p, {"quiet", "bulk"});
  const auto b = rates.of("devices", &bulk_quiet);
  EXPECT_EQ(b->publish_rate, 0U); // not limited beats every number
  EXPECT_EQ(b->subscribe_rate, 5U);

  const auto quiet = access_with(p, {"quiet"});
  EXPECT_EQ(rates.of("services", &quiet)->publish_rate, 10U); // a role may limit what the listener does not
}

TEST(client_rates, a_new_topics_file_gives_new_rates) {
  client_rates rates(listeners());
  const auto before = access_with(policy(topics), {"gateway"});
  EXPECT_EQ(rates.of("devices", &before)->publish_rate, 20000U);
  std::string changed(topics);
  changed.replace(changed.find("20000"), 5, "30000");
  const auto after = access_with(policy(changed), {"gateway"});
  EXPECT_EQ(rates.of("devices", &after)->publish_rate, 30000U);
}

} // namespace
} // namespace firehook::broker

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config/topics.hpp"

namespace firehook::config {
namespace {

using ::testing::HasSubstr;

std::string all_diagnostics(const topics_load_result& result) {
  std::string all;
  for (const auto& d : result.diagnostics) {
    all += d.to_string() + "\n";
  }
  return all;
}

// The one error a snippet must produce; fails the test (showing every diagnostic) otherwise.
diagnostic only_error(const topics_load_result& result) {
  const std::string all = all_diagnostics(result);
  EXPECT_FALSE(result.ok()) << all;
  EXPECT_EQ(result.topics, nullptr);
  std::vector<diagnostic> errors;
  for (const auto& d : result.diagnostics) {
    if (!d.warning) {
      errors.push_back(d);
    }
  }
  EXPECT_EQ(errors.size(), 1u) << all;
  return errors.empty() ? diagnostic{} : errors.front();
}

std::vector<diagnostic> warnings(const topics_load_result& result) {
  std::vector<diagnostic> out;
  for (const auto& d : result.diagnostics) {
    if (d.warning) {
      out.push_back(d);
    }
  }
  return out;
}

constexpr std::string_view roles = R"(
[roles.thermostat]
description = "A room thermostat"
from = ["cert.ou = thermostats", "claim.kind = thermostat"]
[roles.hvac-controller]
from = ["attr.kind = hvac"]
[roles.dashboard]
service = true
)";

topics_load_result load(std::string_view body) {
  return load_topics_string(std::string(roles) + std::string(body), "topics.toml");
}

TEST(topics_file, reads_the_full_shape) {
  const auto result = load(R"(
[anonymous]
role = "dashboard"

[[topic]]
pattern = "buildings/{building}/rooms/{room}/temperature"
description = "Room temperature"
payload = { format = "JSON", units = "°C", example = '{"t": 21.5}' }
max_qos = 1
retain = true
publish = [{ role = "thermostat", where = { building = "attr.building", room = "attr.room" } }]
subscribe = [{ role = "hvac-controller", where = { building = "attr.building" } }, "dashboard"]

[[deny]]
pattern = "internal/#"
roles = ["*"]
only = "publish"
description = "Back-end only"
)");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  EXPECT_TRUE(result.diagnostics.empty()) << all_diagnostics(result);
  const topics_file& file = *result.topics;
  EXPECT_EQ(file.file, "topics.toml");

  ASSERT_EQ(file.roles.size(), 3u);
  EXPECT_EQ(file.roles[0].name, "thermostat");
  EXPECT_EQ(file.roles[0].description, "A room thermostat");
  ASSERT_EQ(file.roles[0].from.size(), 2u);
  EXPECT_EQ(file.roles[0].from[0].source.type, identity_source::kind::cert_ou);
  EXPECT_EQ(file.roles[0].from[0].value, "thermostats");
  EXPECT_EQ(file.roles[0].from[1].source.text(), "claim.kind");
  EXPECT_EQ(file.roles[0].from[1].value, "thermostat");
  EXPECT_TRUE(file.roles[2].service);
  EXPECT_EQ(file.anonymous_role, "dashboard");

  ASSERT_EQ(file.topics.size(), 1u);
  const topic_definition& t = file.topics[0];
  EXPECT_EQ(t.pattern.text, "buildings/{building}/rooms/{room}/temperature");
  ASSERT_EQ(t.pattern.levels.size(), 5u);
  EXPECT_EQ(t.pattern.levels[1].type, pattern_level::kind::placeholder);
  EXPECT_EQ(t.pattern.levels[1].text, "building");
  EXPECT_FALSE(t.pattern.levels[1].source);
  EXPECT_EQ(t.payload.units, "°C");
  EXPECT_EQ(t.payload.example, R"({"t": 21.5})");
  EXPECT_EQ(t.max_qos, 1);
  EXPECT_TRUE(t.retain);
  EXPECT_EQ(t.at.line, 13u);
  ASSERT_EQ(t.publish.size(), 1u);
  EXPECT_EQ(t.publish[0].role, "thermostat");
  ASSERT_EQ(t.publish[0].where.size(), 2u);
  EXPECT_EQ(t.publish[0].where[0].variable, "building");
  EXPECT_EQ(t.publish[0].where[0].source.text(), "attr.building");
  EXPECT_EQ(t.publish[0].at.line, 19u);
  ASSERT_EQ(t.subscribe.size(), 2u);
  EXPECT_EQ(t.subscribe[1].role, "dashboard");
  EXPECT_TRUE(t.subscribe[1].where.empty());

  ASSERT_EQ(file.denies.size(), 1u);
  EXPECT_EQ(file.denies[0].roles, std::vector<std::string>{"*"});
  EXPECT_TRUE(file.denies[0].publish);
  EXPECT_FALSE(file.denies[0].subscribe);
  EXPECT_EQ(file.denies[0].description, "Back-end only");
}

TEST(topics_file, defaults_are_least_privilege) {
  const auto result = load(R"(
[[topic]]
pattern = "a/b"
description = "x"
subscribe = ["dashboard"]
publish = ["thermostat", "hvac-controller"]
)");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  EXPECT_EQ(result.topics->topics[0].max_qos, 2);
  EXPECT_FALSE(result.topics->topics[0].retain);
  EXPECT_FALSE(result.topics->anonymous_role);
}

TEST(topics_file, source_placeholders_are_bound_by_name) {
  const auto result = load(R"(
[[topic]]
pattern = "devices/{client_id}/{cert.cn}/{claim.site}/{attr.x}/{username}"
description = "x"
publish = ["thermostat"]
subscribe = ["hvac-controller", "dashboard"]
)");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  const auto& levels = result.topics->topics[0].pattern.levels;
  ASSERT_EQ(levels.size(), 6u);
  EXPECT_EQ(levels[1].source->type, identity_source::kind::client_id);
  EXPECT_EQ(levels[2].source->type, identity_source::kind::cert_cn);
  EXPECT_EQ(levels[3].source->type, identity_source::kind::claim);
  EXPECT_EQ(levels[3].source->name, "site");
  EXPECT_EQ(levels[4].source->type, identity_source::kind::attribute);
  EXPECT_EQ(levels[5].source->type, identity_source::kind::username);
}

TEST(topics_file, syntax_error_names_file_and_line) {
  const auto d = only_error(load_topics_string("[[topic]\npattern = 1\n", "t.toml"));
  EXPECT_EQ(d.file, "t.toml");
  EXPECT_EQ(d.line, 1u);
}

TEST(topics_file, unknown_role_in_a_grant) {
  const auto d = only_error(load(R"(
[[topic]]
pattern = "a/b"
description = "x"
publish = ["thermostats"]
)"));
  EXPECT_EQ(d.key, "topic[0].publish[0]");
  EXPECT_EQ(d.line, 13u);
  EXPECT_THAT(d.message, HasSubstr("unknown role \"thermostats\" (did you mean 'thermostat'?)"));
  EXPECT_THAT(d.to_string(), HasSubstr("topics.toml:13:"));
}

TEST(topics_file, unknown_role_in_a_deny_and_anonymous) {
  const auto result = load(R"(
[anonymous]
role = "guest"
[[deny]]
pattern = "internal/#"
roles = ["dashbord"]
)");
  EXPECT_FALSE(result.ok());
  const std::string all = all_diagnostics(result);
  EXPECT_THAT(all, HasSubstr("anonymous.role: unknown role \"guest\""));
  EXPECT_THAT(all, HasSubstr("deny[0].roles[0]: unknown role \"dashbord\" (did you mean 'dashboard'?)"));
}

TEST(topics_file, invalid_patterns) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"a/#/b", "'#' must be the last level"},
      {"a/b+", "'+' and '#' must be a whole level"},
      {"a/x{b}", "a placeholder is a whole level"},
      {"a/{b}/{b}", "placeholder {b} appears twice"},
      {"", "must not be empty"},
      {"$share/g/a", "shared subscription"},
  };
  for (const auto& [pattern, message] : cases) {
    const auto d = only_error(load("[[topic]]\npattern = \"" + std::string(pattern) +
                                   "\"\ndescription = \"x\"\npublish = [\"thermostat\"]\n"
                                   "subscribe = [\"hvac-controller\", \"dashboard\"]\n"));
    EXPECT_EQ(d.key, "topic[0].pattern") << pattern;
    EXPECT_THAT(d.message, HasSubstr(message)) << pattern;
  }
}

TEST(topics_file, placeholder_no_identity_source_provides) {
  auto d = only_error(load(R"(
[[topic]]
pattern = "a/{cert.serial}"
description = "x"
)"));
  EXPECT_EQ(d.key, "topic[0].pattern");
  EXPECT_THAT(d.message, HasSubstr("placeholder {cert.serial}: no identity source provides it"));

  d = only_error(load(R"(
[[topic]]
pattern = "a/{room}"
description = "x"
publish = [{ role = "thermostat", where = { room = "attr" } }]
)"));
  EXPECT_EQ(d.key, "topic[0].publish[0].where.room");
  EXPECT_THAT(d.message, HasSubstr("no identity source provides \"attr\""));
}

TEST(topics_file, where_must_name_a_variable_of_the_pattern) {
  auto d = only_error(load(R"(
[[topic]]
pattern = "a/{room}"
description = "x"
publish = [{ role = "thermostat", where = { rom = "attr.room" } }]
)"));
  EXPECT_EQ(d.key, "topic[0].publish[0].where.rom");
  EXPECT_THAT(d.message, HasSubstr("has no placeholder {rom} (did you mean 'room'?)"));

  d = only_error(load(R"(
[[topic]]
pattern = "a/{client_id}"
description = "x"
publish = [{ role = "thermostat", where = { client_id = "attr.room" } }]
)"));
  EXPECT_THAT(d.message, HasSubstr("{client_id} is always bound to client_id"));
}

TEST(topics_file, unknown_keys_everywhere) {
  const auto result = load(R"(
colour = "blue"
[anonymous]
rol = "dashboard"
[[topic]]
pattern = "a/b"
description = "x"
max_qoss = 1
payload = { unit = "C" }
publish = [{ role = "thermostat", were = { a = "attr.a" } }]
subscribe = ["hvac-controller", "dashboard"]
[[deny]]
pattern = "x/#"
roles = ["*"]
onli = "publish"
)");
  EXPECT_FALSE(result.ok());
  const std::string all = all_diagnostics(result);
  EXPECT_THAT(all, HasSubstr("colour: unknown key"));
  EXPECT_THAT(all, HasSubstr("anonymous.rol: unknown key (did you mean 'role'?)"));
  EXPECT_THAT(all, HasSubstr("topic[0].max_qoss: unknown key (did you mean 'max_qos'?)"));
  EXPECT_THAT(all, HasSubstr("topic[0].payload.unit: unknown key (did you mean 'units'?)"));
  EXPECT_THAT(all, HasSubstr("topic[0].publish[0].were: unknown key (did you mean 'where'?)"));
  EXPECT_THAT(all, HasSubstr("deny[0].onli: unknown key (did you mean 'only'?)"));
}

TEST(topics_file, values_out_of_range_and_wrong_types) {
  const auto result = load(R"(
[[topic]]
pattern = "a/b"
description = "x"
max_qos = 3
retain = "yes"
publish = "thermostat"
[[deny]]
pattern = "a/{x}"
roles = []
only = "read"
)");
  const std::string all = all_diagnostics(result);
  EXPECT_THAT(all, HasSubstr("topic[0].max_qos: must be 0, 1 or 2 (got 3)"));
  EXPECT_THAT(all, HasSubstr("topic[0].retain: must be a boolean"));
  EXPECT_THAT(all, HasSubstr("topic[0].publish: must be an array"));
  EXPECT_THAT(all, HasSubstr("deny[0].pattern: level \"{x}\": a deny binds nothing"));
  EXPECT_THAT(all, HasSubstr("deny[0].roles: is empty"));
  EXPECT_THAT(all, HasSubstr("deny[0].only: must be \"publish\" or \"subscribe\""));
}

TEST(topics_file, a_role_may_give_rates) {
  const auto ok = load_topics_string(R"(
[roles.gateway]
rate_limits = { publish_rate = 20000, publish_burst = 40000, subscribe_rate = 0 }
[roles.sensor]
)");
  ASSERT_TRUE(ok.ok()) << all_diagnostics(ok);
  const auto& gateway = ok.topics->find_role("gateway")->rates;
  EXPECT_EQ(gateway.publish_rate, 20000U);
  EXPECT_EQ(gateway.publish_burst, 40000U);
  EXPECT_EQ(gateway.subscribe_rate, 0U);
  EXPECT_FALSE(gateway.publish_bytes_rate); // the listener's
  EXPECT_TRUE(ok.topics->find_role("sensor")->rates.empty());

  const std::string all = all_diagnostics(load_topics_string(R"(
[roles.a]
rate_limits = { publish_burst = 0, publish_rat = 5, subscribe_rate = -1 }
[roles.b]
rate_limits = 7
)"));
  EXPECT_THAT(all, HasSubstr("roles.a.rate_limits.publish_burst: must be between 1 and 4294967295 (got 0)"));
  EXPECT_THAT(all, HasSubstr("roles.a.rate_limits.publish_rat: unknown key"));
  EXPECT_THAT(all, HasSubstr("roles.a.rate_limits.subscribe_rate: must be between 0 and 4294967295 (got -1)"));
  EXPECT_THAT(all, HasSubstr("roles.b.rate_limits: must be a table"));
}

TEST(topics_file, role_conditions) {
  const auto result = load_topics_string(R"(
[roles.a]
from = ["cert.ou thermostats", "client_id = x", "cert.colour = red", "claim.site = "]
)");
  const std::string all = all_diagnostics(result);
  EXPECT_THAT(all, HasSubstr("roles.a.from[0]: must read \"<source> = <value>\""));
  EXPECT_THAT(all, HasSubstr("roles.a.from[1]: client_id is chosen by the client"));
  EXPECT_THAT(all, HasSubstr("roles.a.from[2]: no identity source provides \"cert.colour\""));
  EXPECT_THAT(all, HasSubstr("roles.a.from[3]: needs a value"));
}

TEST(topics_file, duplicate_topic) {
  const auto d = only_error(load(R"(
[[topic]]
pattern = "a/b"
description = "x"
publish = ["thermostat"]
subscribe = ["hvac-controller", "dashboard"]
[[topic]]
pattern = "a/b"
description = "y"
)"));
  EXPECT_EQ(d.line, 16u); // the second pattern
  EXPECT_THAT(d.message, HasSubstr("already defined on line 10"));
}

TEST(topics_file, warns_about_broad_grants_to_device_roles) {
  const auto result = load(R"(
[[topic]]
pattern = "#"
description = "everything"
subscribe = ["thermostat", "dashboard"]
[[topic]]
pattern = "{building}/status"
description = "x"
publish = ["hvac-controller", { role = "thermostat", where = { building = "attr.building" } }]
[[topic]]
pattern = "+/alarm"
description = "x"
publish = ["thermostat"]
)");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  const auto w = warnings(result);
  ASSERT_EQ(w.size(), 3u) << all_diagnostics(result);
  EXPECT_EQ(w[0].key, "topic[0].subscribe[0]");
  EXPECT_THAT(w[0].message, HasSubstr("grants role 'thermostat' the whole topic tree ('#')"));
  EXPECT_THAT(w[0].to_string(), HasSubstr("topics.toml:13:"));
  EXPECT_THAT(w[0].to_string(), HasSubstr("warning:"));
  // The service role "dashboard" is not warned about, nor the bound {building}.
  EXPECT_EQ(w[1].key, "topic[1].publish[0]");
  EXPECT_THAT(w[1].message, HasSubstr("grants role 'hvac-controller' a wildcard over the first level"));
  EXPECT_EQ(w[2].key, "topic[2].publish[0]");
}

TEST(topics_file, warns_about_undocumented_topics_and_unused_roles) {
  const auto result = load(R"(
[[topic]]
pattern = "a/b"
publish = ["thermostat"]
)");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  const std::string all = all_diagnostics(result);
  EXPECT_THAT(all, HasSubstr("warning: topic[0]: topic \"a/b\" has no description"));
  EXPECT_THAT(all,
              HasSubstr("warning: roles.hvac-controller: role 'hvac-controller' is declared but nothing"));
  EXPECT_THAT(all, HasSubstr("warning: roles.dashboard:"));
  EXPECT_THAT(all, ::testing::Not(HasSubstr("roles.thermostat:")));
}

TEST(topics_file, unreadable_file) {
  const auto result = load_topics_file("/nonexistent/topics.toml");
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.diagnostics[0].to_string(), HasSubstr("/nonexistent/topics.toml: cannot open"));
}

TEST(topics_file, warns_about_client_id_grants_that_unbound_identities_cannot_use) {
  const auto topics = load_topics_string(R"([roles.device]
[roles.app]
[[topic]]
pattern = "devices/{client_id}/status"
description = "x"
publish = ["device"]
subscribe = ["app"]
[[topic]]
pattern = "apps/{id}/inbox"
description = "x"
subscribe = [{ role = "app", where = { id = "client_id" } }]
[[topic]]
pattern = "devices/{id}/config"
description = "x"
subscribe = [{ role = "device", where = { id = "cert.cn" } }]
)",
                                         "topics.toml");
  ASSERT_TRUE(topics.ok()) << all_diagnostics(topics);

  // Only certificates that must match: every client id is bound, nothing to warn about.
  auto cfg = load_string(R"([[listener]]
name = "devices"
auth = ["certificate"]
)",
                         "firehook.toml");
  ASSERT_TRUE(cfg.ok());
  EXPECT_TRUE(client_id_grant_warnings(*cfg.cfg, *topics.topics).empty());

  // A password listener beside it: both grants that bind {client_id} are warned about, by position.
  cfg = load_string(R"([[listener]]
name = "devices"
auth = ["certificate"]
[[listener]]
name = "apps"
port = 1884
auth = ["password"]
)",
                    "firehook.toml");
  ASSERT_TRUE(cfg.ok());
  const auto w = client_id_grant_warnings(*cfg.cfg, *topics.topics);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].to_string().substr(0, 33), "topics.toml:6:12: warning: topic[");
  EXPECT_EQ(w[0].key, "topic[0].publish[0]");
  EXPECT_EQ(w[1].key, "topic[0].subscribe[0]");
  EXPECT_EQ(w[2].key, "topic[1].subscribe[0]");
  EXPECT_THAT(w[0].message, HasSubstr("listener \"apps\""));
  EXPECT_THAT(w[0].message, ::testing::Not(HasSubstr("\"devices\"")));

  // Certificates whose client id is free count as unbound too.
  cfg = load_string(R"([[listener]]
name = "devices"
auth = ["certificate"]
[auth.certificate]
client_id = "any"
)",
                    "firehook.toml");
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(client_id_grant_warnings(*cfg.cfg, *topics.topics).size(), 3u);
}

TEST(topics_file, deny_rules_that_deny_nothing_are_warned_about) {
  const auto topics = load_topics_string(R"([roles.device]
[roles.app]
[[topic]]
pattern = "sites/{site}/telemetry"
description = "x"
publish = ["device"]
subscribe = ["app"]
[[topic]]
pattern = "internal/#"
description = "x"
subscribe = ["app"]
[[deny]]
pattern = "sites/+/telemetry"
roles = ["app"]
only = "subscribe"
[[deny]]
pattern = "interal/#"
roles = ["*"]
[[deny]]
pattern = "internal/secrets"
roles = ["device"]
[[deny]]
pattern = "sites/a/telemetry/#"
roles = ["device"]
only = "publish"
[[deny]]
pattern = "internal/+/x"
roles = ["app"]
only = "publish"
)",
                                         "topics.toml");
  ASSERT_TRUE(topics.ok()) << all_diagnostics(topics);
  const auto w = idle_deny_warnings(*topics.topics);
  // deny[0] (apps reading telemetry) and deny[3] ('#' meets the topic's end) deny what is granted;
  // deny[1] is a typo, deny[2] names a role granted nothing there, deny[4] an action not granted.
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].key, "deny[1]");
  EXPECT_EQ(w[0].to_string().substr(0, 27), "topics.toml:16:1: warning: ");
  EXPECT_THAT(w[0].message, HasSubstr("\"interal/#\" has no effect"));
  EXPECT_EQ(w[1].key, "deny[2]");
  EXPECT_EQ(w[2].key, "deny[4]");
}

TEST(identity_source, round_trips) {
  for (std::string_view text : {"client_id", "username", "cert.cn", "cert.ou", "cert.san_dns", "cert.san_uri",
                                "cert.san_email", "claim.site", "attr.building"}) {
    const auto source = parse_identity_source(text);
    ASSERT_TRUE(source) << text;
    EXPECT_EQ(source->text(), text);
  }
  for (std::string_view text : {"", "cert", "cert.serial", "claim.", "attr.a/b", "attr.a b", "Client_id"}) {
    EXPECT_FALSE(parse_identity_source(text)) << text;
  }
}

} // namespace
} // namespace firehook::config

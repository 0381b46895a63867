#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "config/config.hpp"

namespace firehook::config {
namespace {

using ::testing::HasSubstr;

// The one error a snippet must produce; fails the test (with every diagnostic shown) otherwise.
diagnostic only_error(const load_result& result) {
  std::string all;
  for (const auto& d : result.diagnostics) {
    all += d.to_string() + "\n";
  }
  EXPECT_FALSE(result.ok()) << all;
  EXPECT_EQ(result.cfg, nullptr);
  EXPECT_EQ(result.diagnostics.size(), 1u) << all;
  return result.diagnostics.empty() ? diagnostic{} : result.diagnostics.front();
}

std::string all_diagnostics(const load_result& result) {
  std::string all;
  for (const auto& d : result.diagnostics) {
    all += d.to_string() + "\n";
  }
  return all;
}

TEST(config_defaults, empty_file_gives_documented_defaults) {
  const load_result result = load_string("");
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result.diagnostics.empty());
  const config& cfg = *result.cfg;

  EXPECT_EQ(cfg.broker.shards, 0);
  EXPECT_EQ(cfg.broker.sys_interval, std::chrono::seconds{10});
  EXPECT_EQ(cfg.broker.state_dir, "state");
  EXPECT_EQ(cfg.log.level, log_level::info);
  EXPECT_EQ(cfg.log.format, log_format::text);

  EXPECT_EQ(cfg.limits.max_connections, 100'000u);
  EXPECT_EQ(cfg.limits.connect_timeout, std::chrono::seconds{5});
  EXPECT_EQ(cfg.limits.max_packet_size, 1'048'576u);
  EXPECT_EQ(cfg.limits.max_inflight, 64);
  EXPECT_EQ(cfg.limits.max_queued_messages, 1000u);
  EXPECT_EQ(cfg.limits.max_queued_bytes, 16'777'216u);
  EXPECT_EQ(cfg.limits.max_subscriptions_per_client, 1000u);
  EXPECT_EQ(cfg.limits.max_topic_levels, 32);
  EXPECT_EQ(cfg.limits.max_topic_length, 4096);
  EXPECT_EQ(cfg.limits.max_client_id_length, 128);
  EXPECT_EQ(cfg.limits.max_keep_alive, 3600);
  EXPECT_EQ(cfg.limits.max_session_expiry, 86'400u);
  EXPECT_EQ(cfg.limits.topic_alias_maximum, 64);
  EXPECT_EQ(cfg.limits.max_qos, 2);
  EXPECT_TRUE(cfg.limits.retain_available);
  EXPECT_EQ(cfg.limits.max_retained_messages, 100'000u);
  EXPECT_EQ(cfg.limits.max_retained_bytes, 134'217'728u);
  EXPECT_EQ(cfg.limits.max_retained_message_bytes, 262'144u);
  EXPECT_EQ(cfg.limits.max_message_expiry, 0u);
  EXPECT_EQ(cfg.limits.max_sessions_per_identity, 100u);
  EXPECT_EQ(cfg.limits.max_connections_per_identity, 100u);
  EXPECT_EQ(cfg.limits.max_pending_auth, 4096u);
  EXPECT_EQ(cfg.limits.max_pending_auth_per_address, 32u);

  ASSERT_EQ(cfg.listeners.size(), 1u);
  const listener_settings& listener = cfg.listeners[0];
  EXPECT_EQ(listener.name, "default");
  EXPECT_EQ(listener.address, "127.0.0.1");
  EXPECT_EQ(listener.port, 1883);
  EXPECT_EQ(listener.protocol, listener_protocol::mqtt);
  EXPECT_FALSE(listener.allow_plaintext);
  EXPECT_FALSE(listener.allow_anonymous);
}

TEST(config_defaults, defaults_function_matches_an_empty_file) {
  const config built = defaults();
  const config loaded = *load_string("").cfg;
  EXPECT_EQ(built.limits.max_inflight, loaded.limits.max_inflight);
  EXPECT_EQ(built.broker.state_dir, loaded.broker.state_dir);
  ASSERT_EQ(built.listeners.size(), 1u);
  EXPECT_EQ(built.listeners[0].name, loaded.listeners[0].name);
  EXPECT_EQ(built.listeners[0].port, loaded.listeners[0].port);
}

TEST(config_values, every_key_is_read) {
  const load_result result = load_string(R"(
[broker]
shards = 4
sys_interval = 0
state_dir = "/var/lib/firehook"

[log]
level = "debug"
format = "json"

[limits]
max_connections = 10
connect_timeout = 30
max_packet_size = 2048
max_inflight = 10
max_queued_messages = 0
max_queued_bytes = 4096
slow_subscriber_timeout = 5
queue_overflow = "drop_oldest"
duplicate = "refuse_new"
max_subscriptions_per_client = 7
max_topic_levels = 8
max_topic_length = 256
max_client_id_length = 23
max_keep_alive = 0
max_session_expiry = 4294967295
topic_alias_maximum = 0
max_qos = 1
retain_available = false
max_retained_messages = 0
max_message_expiry = 600

[[listener]]
name = "local-v6"
address = "::1"
port = 0
protocol = "mqtt"
allow_anonymous = true
)");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  EXPECT_TRUE(result.diagnostics.empty()) << all_diagnostics(result);
  const config& cfg = *result.cfg;
  EXPECT_EQ(cfg.broker.shards, 4);
  EXPECT_EQ(cfg.broker.sys_interval, std::chrono::seconds{0});
  EXPECT_EQ(cfg.broker.state_dir, "/var/lib/firehook");
  EXPECT_EQ(cfg.log.level, log_level::debug);
  EXPECT_EQ(cfg.log.format, log_format::json);
  EXPECT_EQ(cfg.limits.max_connections, 10u);
  EXPECT_EQ(cfg.limits.connect_timeout, std::chrono::seconds{30});
  EXPECT_EQ(cfg.limits.max_packet_size, 2048u);
  EXPECT_EQ(cfg.limits.max_inflight, 10);
  EXPECT_EQ(cfg.limits.max_queued_messages, 0u);
  EXPECT_EQ(cfg.limits.slow_subscriber_timeout, std::chrono::seconds(5));
  EXPECT_EQ(cfg.limits.queue_overflow, 1u);
  EXPECT_EQ(cfg.limits.duplicate, 1u);
  EXPECT_EQ(cfg.limits.max_queued_bytes, 4096u);
  EXPECT_EQ(cfg.limits.max_subscriptions_per_client, 7u);
  EXPECT_EQ(cfg.limits.max_topic_levels, 8);
  EXPECT_EQ(cfg.limits.max_topic_length, 256);
  EXPECT_EQ(cfg.limits.max_client_id_length, 23);
  EXPECT_EQ(cfg.limits.max_keep_alive, 0);
  EXPECT_EQ(cfg.limits.max_session_expiry, 4'294'967'295u);
  EXPECT_EQ(cfg.limits.topic_alias_maximum, 0);
  EXPECT_EQ(cfg.limits.max_qos, 1);
  EXPECT_FALSE(cfg.limits.retain_available);
  EXPECT_EQ(cfg.limits.max_retained_messages, 0u);
  EXPECT_EQ(cfg.limits.max_message_expiry, 600u);
  ASSERT_EQ(cfg.listeners.size(), 1u);
  EXPECT_EQ(cfg.listeners[0].name, "local-v6");
  EXPECT_EQ(cfg.listeners[0].address, "::1");
  EXPECT_EQ(cfg.listeners[0].port, 0);
  EXPECT_TRUE(cfg.listeners[0].allow_anonymous);
}

// One key's valid range: both ends load, one step beyond either end is an error naming
// the key and the range, and the value is not clamped into range.
struct range_case {
  const char* section;
  const char* key;
  std::int64_t min;
  std::int64_t max;
};

class config_range : public ::testing::TestWithParam<range_case> {
protected:
  load_result load_value(std::int64_t value) const {
    const range_case& c = GetParam();
    const std::string header =
        std::string(c.section) == "listener" ? "[[listener]]" : "[" + std::string(c.section) + "]";
    return load_string(header + "\n" + c.key + " = " + std::to_string(value) + "\n", "firehook.toml");
  }
  std::string expected_message(std::int64_t got) const {
    const range_case& c = GetParam();
    return "must be between " + std::to_string(c.min) + " and " + std::to_string(c.max) + " (got " +
           std::to_string(got) + ")";
  }
  std::string expected_key() const {
    const range_case& c = GetParam();
    return (std::string(c.section) == "listener" ? "listener[0]" : std::string(c.section)) + "." + c.key;
  }
};

TEST_P(config_range, bounds_are_accepted) {
  const range_case& c = GetParam();
  for (const std::int64_t value : {c.min, c.max}) {
    const load_result result = load_value(value);
    EXPECT_TRUE(result.ok()) << c.key << " = " << value << "\n" << all_diagnostics(result);
    EXPECT_TRUE(result.diagnostics.empty()) << all_diagnostics(result);
  }
}

TEST_P(config_range, one_below_minimum_is_an_error) {
  const range_case& c = GetParam();
  const diagnostic d = only_error(load_value(c.min - 1));
  EXPECT_EQ(d.key, expected_key());
  EXPECT_EQ(d.message, expected_message(c.min - 1));
  EXPECT_EQ(d.file, "firehook.toml");
  EXPECT_EQ(d.line, 2u);
  EXPECT_EQ(d.column, std::string(c.key).size() + 4); // the value, after "key = "
  EXPECT_FALSE(d.warning);
}

TEST_P(config_range, one_above_maximum_is_an_error) {
  const range_case& c = GetParam();
  const diagnostic d = only_error(load_value(c.max + 1));
  EXPECT_EQ(d.key, expected_key());
  EXPECT_EQ(d.message, expected_message(c.max + 1));
  EXPECT_EQ(d.line, 2u);
}

INSTANTIATE_TEST_SUITE_P(
    keys, config_range,
    ::testing::Values(range_case{"broker", "shards", 0, 256}, range_case{"broker", "sys_interval", 0, 3600},
                      range_case{"limits", "max_connections", 1, 10'000'000},
                      range_case{"limits", "connect_timeout", 1, 300},
                      range_case{"limits", "tls_handshake_timeout", 1, 300},
                      range_case{"limits", "max_packet_size", 64, 268'435'455},
                      range_case{"limits", "max_inflight", 1, 65535},
                      range_case{"limits", "max_queued_bytes", 0, std::int64_t{1} << 40},
                      range_case{"limits", "max_topic_levels", 1, 1024},
                      range_case{"limits", "max_keep_alive", 0, 65535},
                      range_case{"limits", "max_session_expiry", 0, 4'294'967'295},
                      range_case{"limits", "max_qos", 0, 2},
                      range_case{"limits", "max_retained_messages", 0, 100'000'000},
                      range_case{"limits", "max_retained_bytes", 0, std::int64_t{1} << 40},
                      range_case{"limits", "max_retained_message_bytes", 1, std::int64_t{1} << 31},
                      range_case{"limits", "max_sessions_per_identity", 0, 10'000'000},
                      range_case{"limits", "max_connections_per_identity", 0, 10'000'000},
                      range_case{"limits", "max_pending_auth", 1, 1'000'000},
                      range_case{"limits", "max_pending_auth_per_address", 1, 1'000'000},
                      range_case{"limits", "publish_rate", 0, 4'294'967'295},
                      range_case{"limits", "subscribe_rate", 0, 4'294'967'295},
                      range_case{"limits", "rate_limit_timeout", 1, 86'400},
                      range_case{"abuse", "max_connections_per_address", 1, 10'000'000},
                      range_case{"abuse", "connection_rate_per_address", 1, 1'000'000},
                      range_case{"abuse", "connection_burst_per_address", 1, 10'000'000},
                      range_case{"abuse", "max_pending_per_address", 1, 10'000'000},
                      range_case{"abuse", "max_pending_connections", 1, 10'000'000},
                      range_case{"abuse", "network_prefix_ipv4", 0, 32},
                      range_case{"abuse", "network_prefix_ipv6", 0, 128},
                      range_case{"abuse", "max_connections_per_network", 1, 10'000'000},
                      range_case{"abuse", "connection_rate_per_network", 1, 1'000'000},
                      range_case{"abuse", "connection_burst_per_network", 1, 10'000'000},
                      range_case{"abuse", "max_pending_per_network", 1, 10'000'000},
                      range_case{"abuse", "login_failures", 0, 1'000'000},
                      range_case{"abuse", "login_window", 1, 86'400},
                      range_case{"abuse", "ban_after_failures", 0, 1'000'000},
                      range_case{"abuse", "flapping_connects", 0, 1'000'000},
                      range_case{"abuse", "flapping_window", 1, 86'400},
                      range_case{"abuse", "flapping_ban_time", 1, 31'536'000},
                      range_case{"abuse", "max_tracked_keys", 100, 10'000'000},
                      range_case{"listener", "port", 0, 65535}),
    [](const ::testing::TestParamInfo<range_case>& param_info) {
      return std::string(param_info.param.section) + "_" + param_info.param.key;
    });

TEST(config_diagnostics, to_string_names_file_line_column_and_key) {
  const diagnostic d =
      only_error(load_string("\n\n\n\n\n\n\n\n\n\n[limits]\n  max_inflight = 0\n", "firehook.toml"));
  EXPECT_EQ(d.to_string(), "firehook.toml:12:18: limits.max_inflight: must be between 1 and 65535 (got 0)");
}

TEST(config_diagnostics, unknown_key_is_reported_at_the_key_with_a_suggestion) {
  const diagnostic d = only_error(load_string("[limits]\nmax_inflight = 8\n   max_inflght = 5\n", "f.toml"));
  EXPECT_EQ(d.key, "limits.max_inflght");
  EXPECT_EQ(d.line, 3u);
  EXPECT_EQ(d.column, 4u);
  EXPECT_THAT(d.message, HasSubstr("unknown key"));
  EXPECT_THAT(d.message, HasSubstr("did you mean 'max_inflight'"));
}

TEST(config_diagnostics, unknown_table_and_unknown_listener_key_are_errors) {
  const load_result result =
      load_string("[tls]\ncert = \"x\"\n\n[[listener]]\nname = \"a\"\nbind = \"0.0.0.0\"\n");
  EXPECT_FALSE(result.ok());
  ASSERT_EQ(result.diagnostics.size(), 2u) << all_diagnostics(result);
  EXPECT_EQ(result.diagnostics[0].key, "tls");
  EXPECT_EQ(result.diagnostics[0].line, 1u);
  EXPECT_THAT(result.diagnostics[0].message, HasSubstr("unknown key"));
  EXPECT_EQ(result.diagnostics[1].key, "listener[0].bind");
  EXPECT_EQ(result.diagnostics[1].line, 6u);
  EXPECT_EQ(result.diagnostics[1].column, 1u);
}

TEST(config_diagnostics, unknown_nested_table_inside_a_section_is_an_error) {
  const diagnostic d = only_error(load_string("[limits.per_client]\nmax_inflight = 1\n"));
  EXPECT_EQ(d.key, "limits.per_client");
  EXPECT_THAT(d.message, HasSubstr("unknown key"));
}

TEST(config_diagnostics, wrong_types_are_errors) {
  EXPECT_EQ(only_error(load_string("[limits]\nmax_inflight = \"64\"\n")).message,
            "must be an integer (got string)");
  EXPECT_EQ(only_error(load_string("[limits]\nmax_inflight = 64.0\n")).message,
            "must be an integer (got floating-point number)");
  EXPECT_EQ(only_error(load_string("[limits]\nretain_available = 1\n")).message,
            "must be a boolean (true or false) (got integer)");
  EXPECT_EQ(only_error(load_string("[log]\nlevel = 3\n")).message, "must be a string (got integer)");
  const diagnostic section = only_error(load_string("broker = 5\n"));
  EXPECT_EQ(section.key, "broker");
  EXPECT_EQ(section.message, "must be a table (got integer)");
  const diagnostic address = only_error(load_string("[[listener]]\naddress = [127, 0, 0, 1]\n"));
  EXPECT_EQ(address.key, "listener[0].address");
  EXPECT_EQ(address.message, "must be a string (got array)");
}

TEST(config_diagnostics, listener_written_as_a_single_table_is_explained) {
  const diagnostic d = only_error(load_string("[listener]\nport = 1883\n"));
  EXPECT_EQ(d.key, "listener");
  EXPECT_THAT(d.message, HasSubstr("write [[listener]]"));
}

TEST(config_diagnostics, bad_enum_strings_list_the_choices) {
  const diagnostic level = only_error(load_string("[log]\nlevel = \"verbose\"\n"));
  EXPECT_EQ(level.key, "log.level");
  EXPECT_EQ(level.message, "must be one of trace, debug, info, warn, error, off (got \"verbose\")");
  const diagnostic format = only_error(load_string("[log]\nformat = \"JSON\"\n"));
  EXPECT_EQ(format.message, "must be one of text, json (got \"JSON\")");
}

TEST(config_diagnostics, syntax_error_has_file_line_and_column) {
  const load_result result = load_string("[limits]\nmax_inflight = 8\nmax_qos = = 1\n", "conf/firehook.toml");
  const diagnostic d = only_error(result);
  EXPECT_EQ(d.file, "conf/firehook.toml");
  EXPECT_EQ(d.line, 3u);
  EXPECT_GT(d.column, 0u);
  EXPECT_THAT(d.to_string(), ::testing::StartsWith("conf/firehook.toml:3:"));
}

TEST(config_diagnostics, duplicate_toml_key_is_a_syntax_error) {
  const diagnostic d = only_error(load_string("[limits]\nmax_qos = 1\nmax_qos = 2\n"));
  EXPECT_EQ(d.line, 3u);
}

TEST(config_diagnostics, all_errors_are_reported_in_file_order) {
  const load_result result =
      load_string("[log]\nlevel = \"loud\"\n[broker]\nshards = 999\n[limits]\nmax_qos = 3\n");
  EXPECT_FALSE(result.ok());
  ASSERT_EQ(result.diagnostics.size(), 3u) << all_diagnostics(result);
  EXPECT_EQ(result.diagnostics[0].key, "log.level");
  EXPECT_EQ(result.diagnostics[1].key, "broker.shards");
  EXPECT_EQ(result.diagnostics[2].key, "limits.max_qos");
}

TEST(config_diagnostics, control_characters_in_echoed_values_stay_on_one_line) {
  const diagnostic d = only_error(load_string("[log]\nlevel = \"in\\nfo\"\n"));
  EXPECT_EQ(d.message.find('\n'), std::string::npos);
  EXPECT_THAT(d.message, HasSubstr("\"in\\x0afo\""));
}

TEST(config_listeners, several_listeners_are_kept_in_order) {
  const load_result result = load_string(R"(
[[listener]]
name = "v4"
[[listener]]
name = "v6"
address = "::1"
)");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  ASSERT_EQ(result.cfg->listeners.size(), 2u);
  EXPECT_EQ(result.cfg->listeners[0].name, "v4");
  EXPECT_EQ(result.cfg->listeners[1].name, "v6");
}

TEST(config_listeners, duplicate_names_are_an_error_at_the_second) {
  const load_result result = load_string(R"([[listener]]
name = "edge"
port = 1883
[[listener]]
name = "edge"
port = 1884
)");
  const diagnostic d = only_error(result);
  EXPECT_EQ(d.key, "listener[1].name");
  EXPECT_EQ(d.line, 5u);
  EXPECT_THAT(d.message, HasSubstr("duplicate listener name 'edge'"));
  EXPECT_THAT(d.message, HasSubstr("line 2"));
}

TEST(config_listeners, two_unnamed_listeners_collide_on_the_default_name) {
  const diagnostic d = only_error(load_string("[[listener]]\nport = 1\n[[listener]]\nport = 2\n"));
  EXPECT_THAT(d.message, HasSubstr("duplicate listener name 'default'"));
}

TEST(config_listeners, same_address_and_port_is_an_error) {
  const diagnostic d = only_error(load_string(R"([[listener]]
name = "a"
address = "::1"
[[listener]]
name = "b"
address = "0:0:0:0:0:0:0:1"
)"));
  EXPECT_EQ(d.key, "listener[1].address");
  EXPECT_THAT(d.message, HasSubstr("[0:0:0:0:0:0:0:1]:1883"));
  EXPECT_THAT(d.message, HasSubstr("listener 'a'"));
}

TEST(config_listeners, same_address_with_port_zero_is_fine) {
  const load_result result =
      load_string("[[listener]]\nname = \"a\"\nport = 0\n[[listener]]\nname = \"b\"\nport = 0\n");
  EXPECT_TRUE(result.ok()) << all_diagnostics(result);
}

TEST(config_listeners, same_port_on_different_addresses_is_fine) {
  const load_result result =
      load_string("[[listener]]\nname = \"a\"\naddress = \"127.0.0.1\"\n[[listener]]\nname = \"b\"\naddress "
                  "= \"127.0.0.2\"\n");
  EXPECT_TRUE(result.ok()) << all_diagnostics(result);
}

TEST(config_listeners, plaintext_on_a_public_address_is_refused) {
  const diagnostic d =
      only_error(load_string("[[listener]]\nname = \"x\"\naddress = \"0.0.0.0\"\n", "f.toml"));
  EXPECT_EQ(d.message, "plaintext listener 'x' on 0.0.0.0 needs allow_plaintext = true");
  EXPECT_EQ(d.key, "listener[0].address");
  EXPECT_EQ(d.line, 3u);
}

TEST(config_listeners, plaintext_on_a_public_address_with_allow_plaintext_is_a_warning) {
  const load_result result =
      load_string("[[listener]]\nname = \"x\"\naddress = \"::\"\nallow_plaintext = true\n", "f.toml");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  ASSERT_EQ(result.diagnostics.size(), 1u);
  const diagnostic& d = result.diagnostics[0];
  EXPECT_TRUE(d.warning);
  EXPECT_EQ(d.key, "listener[0].allow_plaintext");
  EXPECT_EQ(d.line, 4u);
  EXPECT_THAT(d.to_string(), ::testing::StartsWith("f.toml:4:19: warning: listener[0].allow_plaintext: "));
  EXPECT_THAT(d.message, HasSubstr("unencrypted"));
}

TEST(config_listeners, plaintext_on_loopback_needs_nothing) {
  for (const char* address : {"127.0.0.1", "127.8.9.10", "::1", "localhost"}) {
    const load_result result = load_string(std::string("[[listener]]\naddress = \"") + address + "\"\n");
    EXPECT_TRUE(result.ok()) << address << "\n" << all_diagnostics(result);
    EXPECT_TRUE(result.diagnostics.empty()) << address;
  }
}

TEST(config_listeners, websocket_protocols_are_not_supported_yet) {
  for (const char* protocol : {"ws", "wss"}) {
    const diagnostic d =
        only_error(load_string(std::string("[[listener]]\nprotocol = \"") + protocol + "\"\n"));
    EXPECT_EQ(d.key, "listener[0].protocol");
    EXPECT_THAT(d.message, HasSubstr("not supported yet")) << protocol;
  }
  // Only the protocol is wrong: it must not also be reported as a plaintext listener.
  const diagnostic ws = only_error(load_string("[[listener]]\naddress = \"0.0.0.0\"\nprotocol = \"ws\"\n"));
  EXPECT_EQ(ws.key, "listener[0].protocol");
  const diagnostic other = only_error(load_string("[[listener]]\nprotocol = \"http\"\n"));
  EXPECT_EQ(other.message, "must be \"mqtt\" or \"mqtts\" (got \"http\")");
}

TEST(config_listeners, bad_address_and_name_are_errors) {
  const diagnostic host = only_error(load_string("[[listener]]\naddress = \"broker.example.com\"\n"));
  EXPECT_EQ(host.key, "listener[0].address");
  EXPECT_THAT(host.message, HasSubstr("IPv4 or IPv6"));
  EXPECT_FALSE(load_string("[[listener]]\naddress = \"127.1\"\n").ok());
  EXPECT_FALSE(load_string("[[listener]]\naddress = \"127.0.0.1\\u0000x\"\n").ok());
  const diagnostic name = only_error(load_string("[[listener]]\nname = \"my listener\"\n"));
  EXPECT_EQ(name.key, "listener[0].name");
  EXPECT_FALSE(load_string("[[listener]]\nname = \"\"\n").ok());
}

TEST(config_listeners, empty_listener_array_gets_the_default_listener) {
  const load_result result = load_string("listener = []\n");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  ASSERT_EQ(result.cfg->listeners.size(), 1u);
  EXPECT_EQ(result.cfg->listeners[0].name, "default");
}

TEST(config_is_loopback, recognises_loopback_addresses_only) {
  EXPECT_TRUE(is_loopback("127.0.0.1"));
  EXPECT_TRUE(is_loopback("127.255.255.254"));
  EXPECT_TRUE(is_loopback("::1"));
  EXPECT_TRUE(is_loopback("0:0:0:0:0:0:0:1"));
  EXPECT_TRUE(is_loopback("::ffff:127.0.0.1"));
  EXPECT_TRUE(is_loopback("localhost"));
  EXPECT_FALSE(is_loopback("0.0.0.0"));
  EXPECT_FALSE(is_loopback("::"));
  EXPECT_FALSE(is_loopback("128.0.0.1"));
  EXPECT_FALSE(is_loopback("::2"));
  EXPECT_FALSE(is_loopback("::ffff:10.0.0.1"));
  EXPECT_FALSE(is_loopback("localhost.example.com"));
  EXPECT_FALSE(is_loopback(""));
  EXPECT_FALSE(is_loopback(std::string_view("127.0.0.1\0x", 11)));
}

TEST(config_state_dir, relative_path_is_resolved_against_the_config_folder) {
  EXPECT_EQ(
      load_string("[broker]\nstate_dir = \"data\"\n", "etc/firehook/firehook.toml").cfg->broker.state_dir,
      "etc/firehook/data");
  EXPECT_EQ(load_string("[broker]\nstate_dir = \"../state\"\n", "examples/dev.toml").cfg->broker.state_dir,
            "state");
  EXPECT_EQ(load_string("[broker]\nstate_dir = \"/srv/fh\"\n", "etc/firehook.toml").cfg->broker.state_dir,
            "/srv/fh");
  EXPECT_EQ(load_string("", "/etc/firehook/firehook.toml").cfg->broker.state_dir, "/etc/firehook/state");
  EXPECT_EQ(only_error(load_string("[broker]\nstate_dir = \"\"\n")).message, "must not be empty");
}

TEST(config_files, missing_file_is_a_diagnostic_without_position) {
  const load_result result = load_file("/nonexistent/firehook.toml");
  const diagnostic d = only_error(result);
  EXPECT_EQ(d.file, "/nonexistent/firehook.toml");
  EXPECT_EQ(d.line, 0u);
  EXPECT_THAT(d.to_string(), ::testing::StartsWith("/nonexistent/firehook.toml: cannot open: "));
}

TEST(config_files, a_directory_is_not_a_config_file) {
  EXPECT_THAT(only_error(load_file(FIREHOOK_SOURCE_DIR "/examples")).message, HasSubstr("is a directory"));
}

TEST(config_files, production_example_loads_without_diagnostics) {
  const std::string path = FIREHOOK_SOURCE_DIR "/examples/firehook.toml";
  const load_result result = load_file(path);
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  EXPECT_TRUE(result.diagnostics.empty()) << all_diagnostics(result);
  EXPECT_FALSE(result.cfg->listeners.empty());
}

TEST(config_files, production_example_uses_tls_and_the_documented_chains) {
  const load_result result = load_file(FIREHOOK_SOURCE_DIR "/examples/firehook.toml");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  const config& cfg = *result.cfg;
  ASSERT_EQ(cfg.listeners.size(), 2u);
  for (const listener_settings& listener : cfg.listeners) {
    EXPECT_EQ(listener.protocol, listener_protocol::mqtts) << listener.name;
    ASSERT_TRUE(listener.tls.has_value()) << listener.name;
  }
  EXPECT_EQ(cfg.listeners[0].tls->client_certs, client_certificates::required);
  EXPECT_EQ(cfg.listeners[0].auth, (std::vector{auth_method::certificate}));
  EXPECT_EQ(cfg.listeners[1].auth, (std::vector{auth_method::jwt, auth_method::password}));
  ASSERT_TRUE(cfg.auth.jwt.has_value());
  EXPECT_EQ(cfg.auth.certificate.client_id, client_id_binding::must_match);
  EXPECT_FALSE(cfg.topics.empty());
}

// scripts/dev-run creates the files this names and prints commands that use them.
TEST(config_files, dev_example_is_one_tls_loopback_listener_with_client_certificates) {
  const std::filesystem::path root = FIREHOOK_SOURCE_DIR;
  const load_result result = load_file(root / "examples/dev.toml");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  EXPECT_TRUE(result.diagnostics.empty()) << all_diagnostics(result);
  const config& cfg = *result.cfg;
  const std::filesystem::path state = (root / "state").lexically_normal();
  EXPECT_EQ(cfg.broker.state_dir, state);
  EXPECT_EQ(cfg.log.level, log_level::debug);
  ASSERT_EQ(cfg.listeners.size(), 1u);
  const listener_settings& listener = cfg.listeners[0];
  EXPECT_EQ(listener.name, "dev");
  EXPECT_EQ(listener.address, "127.0.0.1");
  EXPECT_EQ(listener.port, 8883);
  EXPECT_EQ(listener.protocol, listener_protocol::mqtts);
  EXPECT_FALSE(listener.allow_anonymous);
  EXPECT_EQ(listener.auth, (std::vector{auth_method::certificate}));
  ASSERT_TRUE(listener.tls.has_value());
  EXPECT_EQ(listener.tls->cert, state / "dev/server.crt");
  EXPECT_EQ(listener.tls->key, state / "dev/server.key");
  EXPECT_EQ(listener.tls->ca, state / "dev/ca.crt");
  EXPECT_EQ(listener.tls->client_certs, client_certificates::required);
  EXPECT_EQ(cfg.auth.certificate.identity, certificate_identity::cn);
  EXPECT_EQ(cfg.auth.certificate.client_id, client_id_binding::any);
}

// ---- TLS listeners, authentication, topics file ----

constexpr const char* full_example = R"(topics = "topics.toml"

[broker]
state_dir = "/var/lib/firehook"

[[listener]]
name = "devices"
address = "0.0.0.0"
port = 8883
protocol = "mqtts"
auth = ["certificate", "password", "jwt"]
  [listener.tls]
  cert = "certs/server.crt"
  key = "/etc/ssl/private/server.key"
  ca = "certs/ca.crt"
  crl = "certs/../certs/ca.crl"
  client_certificates = "required"
  min_version = "1.3"
  ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384"
  ciphersuites = "TLS_AES_256_GCM_SHA384"

[[listener]]
name = "apps"
address = "::"
port = 8884
protocol = "mqtts"
auth = ["jwt"]
  [listener.tls]
  cert = "certs/server.crt"
  key = "certs/server.key"

[auth.certificate]
identity = "san_uri"
client_id = "assign"

[auth.password]
database = "db/users.db"

[auth.jwt]
public_keys = ["keys/issuer.pem", "/etc/firehook/other.pem"]
jwks = "keys/jwks.json"
hmac_secret_file = "keys/hs256.secret"
algorithms = ["RS256", "ES256", "HS512"]
issuer = "https://auth.example.com"
audience = "firehook"
leeway = 0
required_claims = ["exp", "jti"]
identity_claim = "device_id"
roles_claim = "groups"
)";

TEST(config_tls_auth, every_new_key_is_read_and_paths_are_resolved) {
  const load_result result = load_string(full_example, "etc/firehook/firehook.toml");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  EXPECT_TRUE(result.diagnostics.empty()) << all_diagnostics(result);
  const config& cfg = *result.cfg;
  EXPECT_EQ(cfg.topics, "etc/firehook/topics.toml");

  ASSERT_EQ(cfg.listeners.size(), 2u);
  const listener_settings& devices = cfg.listeners[0];
  EXPECT_EQ(devices.protocol, listener_protocol::mqtts);
  EXPECT_FALSE(devices.allow_plaintext);
  EXPECT_EQ(devices.auth, (std::vector{auth_method::certificate, auth_method::password, auth_method::jwt}));
  ASSERT_TRUE(devices.tls.has_value());
  const tls_settings& tls = *devices.tls;
  EXPECT_EQ(tls.cert, "etc/firehook/certs/server.crt");
  EXPECT_EQ(tls.key, "/etc/ssl/private/server.key");
  EXPECT_EQ(tls.ca, "etc/firehook/certs/ca.crt");
  EXPECT_EQ(tls.crl, "etc/firehook/certs/ca.crl");
  EXPECT_EQ(tls.client_certs, client_certificates::required);
  EXPECT_EQ(tls.min_version, tls_version::tls1_3);
  EXPECT_EQ(tls.ciphers, "ECDHE-ECDSA-AES256-GCM-SHA384");
  EXPECT_EQ(tls.ciphersuites, "TLS_AES_256_GCM_SHA384");

  const listener_settings& apps = cfg.listeners[1];
  EXPECT_EQ(apps.auth, (std::vector{auth_method::jwt}));
  ASSERT_TRUE(apps.tls.has_value());
  EXPECT_EQ(apps.tls->client_certs, client_certificates::none);
  EXPECT_TRUE(apps.tls->ca.empty());
  EXPECT_TRUE(apps.tls->crl.empty());
  EXPECT_EQ(apps.tls->min_version, tls_version::tls1_2);
  EXPECT_EQ(apps.tls->ciphers, tls_settings{}.ciphers);
  EXPECT_EQ(apps.tls->ciphersuites, tls_settings{}.ciphersuites);

  EXPECT_EQ(cfg.auth.certificate.identity, certificate_identity::san_uri);
  EXPECT_EQ(cfg.auth.certificate.client_id, client_id_binding::assign);
  EXPECT_EQ(cfg.auth.password.database, "etc/firehook/db/users.db");
  ASSERT_TRUE(cfg.auth.jwt.has_value());
  const jwt_auth_settings& jwt = *cfg.auth.jwt;
  EXPECT_EQ(jwt.public_keys,
            (std::vector<std::filesystem::path>{"etc/firehook/keys/issuer.pem", "/etc/firehook/other.pem"}));
  EXPECT_EQ(jwt.jwks, "etc/firehook/keys/jwks.json");
  EXPECT_EQ(jwt.hmac_secret_file, "etc/firehook/keys/hs256.secret");
  EXPECT_EQ(jwt.algorithms, (std::vector<std::string>{"RS256", "ES256", "HS512"}));
  EXPECT_EQ(jwt.issuer, "https://auth.example.com");
  EXPECT_EQ(jwt.audience, "firehook");
  EXPECT_EQ(jwt.leeway, std::chrono::seconds{0});
  EXPECT_EQ(jwt.required_claims, (std::vector<std::string>{"exp", "jti"}));
  EXPECT_EQ(jwt.identity_claim, "device_id");
  EXPECT_EQ(jwt.roles_claim, "groups");
}

TEST(config_tls_auth, empty_file_gives_the_documented_auth_defaults) {
  const load_result result = load_string("");
  ASSERT_TRUE(result.ok());
  const config& cfg = *result.cfg;
  EXPECT_FALSE(cfg.listeners[0].tls.has_value());
  EXPECT_EQ(cfg.listeners[0].auth, (std::vector{auth_method::certificate, auth_method::password}));
  EXPECT_EQ(cfg.auth.certificate.identity, certificate_identity::cn);
  EXPECT_EQ(cfg.auth.certificate.client_id, client_id_binding::must_match);
  EXPECT_EQ(cfg.auth.password.database, "state/firehook.db");
  EXPECT_FALSE(cfg.auth.jwt.has_value());
  EXPECT_TRUE(cfg.topics.empty());
  EXPECT_EQ(defaults().auth.password.database, cfg.auth.password.database);
}

TEST(config_tls_auth, password_database_follows_state_dir_unless_given) {
  EXPECT_EQ(load_string("[broker]\nstate_dir = \"data\"\n", "etc/fh.toml").cfg->auth.password.database,
            "etc/data/firehook.db");
  EXPECT_EQ(
      load_string("[broker]\nstate_dir = \"data\"\n[auth.password]\ndatabase = \"users.db\"\n", "etc/fh.toml")
          .cfg->auth.password.database,
      "etc/users.db");
  const diagnostic d = only_error(load_string("[auth.password]\ndatabase = \"\"\n"));
  EXPECT_EQ(d.key, "auth.password.database");
  EXPECT_EQ(d.message, "must not be empty");
}

TEST(config_tls_auth, tls_defaults_with_only_cert_and_key) {
  const load_result result = load_string("[[listener]]\naddress = \"0.0.0.0\"\nport = 8883\nprotocol = "
                                         "\"mqtts\"\n[listener.tls]\ncert = \"c\"\nkey "
                                         "= \"k\"\n");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  // TLS beyond loopback needs no allow_plaintext, and the default chain (which contains
  // "certificate") is not blamed for the missing client certificates: only an explicit one is.
  EXPECT_TRUE(result.diagnostics.empty()) << all_diagnostics(result);
  const tls_settings& tls = *result.cfg->listeners[0].tls;
  EXPECT_EQ(tls.client_certs, client_certificates::none);
  EXPECT_EQ(tls.min_version, tls_version::tls1_2);
  EXPECT_EQ(tls.cert, "c");
}

TEST(config_tls_auth, mqtts_without_a_tls_table_is_an_error) {
  const diagnostic d =
      only_error(load_string("[[listener]]\nname = \"x\"\nprotocol = \"mqtts\"\n", "f.toml"));
  EXPECT_EQ(d.key, "listener[0].tls");
  EXPECT_EQ(d.line, 3u);
  EXPECT_EQ(d.column, 12u);
  EXPECT_THAT(d.message, HasSubstr("needs a [listener.tls] table"));
}

TEST(config_tls_auth, tls_table_on_a_plain_listener_is_an_error) {
  for (const char* protocol : {"", "protocol = \"mqtt\"\n"}) {
    const diagnostic d = only_error(load_string(std::string("[[listener]]\nname = \"x\"\n") + protocol +
                                                "[listener.tls]\ncert = \"c\"\nkey = \"k\"\n"));
    EXPECT_EQ(d.key, "listener[0].tls");
    EXPECT_THAT(d.message, HasSubstr("uses protocol \"mqtt\" (plain TCP)"));
    EXPECT_FALSE(d.warning);
  }
}

TEST(config_tls_auth, tls_written_as_a_value_is_a_type_error_only) {
  const diagnostic d = only_error(load_string("[[listener]]\nprotocol = \"mqtts\"\ntls = \"server.crt\"\n"));
  EXPECT_EQ(d.key, "listener[0].tls");
  EXPECT_EQ(d.message, "must be a table (got string)");
}

TEST(config_tls_auth, missing_cert_and_key_are_errors) {
  const load_result result = load_string(
      "[[listener]]\nprotocol = \"mqtts\"\n[listener.tls]\nca = \"ca.crt\"\nclient_certificates = "
      "\"optional\"\n");
  EXPECT_FALSE(result.ok());
  ASSERT_EQ(result.diagnostics.size(), 2u) << all_diagnostics(result);
  EXPECT_EQ(result.diagnostics[0].key, "listener[0].tls.cert");
  EXPECT_THAT(result.diagnostics[0].message, HasSubstr("required"));
  EXPECT_EQ(result.diagnostics[0].line, 3u);
  EXPECT_EQ(result.diagnostics[1].key, "listener[0].tls.key");
  EXPECT_EQ(only_error(load_string("[[listener]]\nprotocol = \"mqtts\"\n[listener.tls]\ncert = \"c\"\n")).key,
            "listener[0].tls.key");
  EXPECT_EQ(only_error(
                load_string("[[listener]]\nprotocol = \"mqtts\"\n[listener.tls]\ncert = \"\"\nkey = \"k\"\n"))
                .message,
            "must not be empty");
}

TEST(config_tls_auth, client_certificates_need_a_ca) {
  for (const char* mode : {"optional", "required"}) {
    const diagnostic d = only_error(
        load_string(std::string("[[listener]]\nprotocol = \"mqtts\"\n[listener.tls]\ncert = \"c\"\nkey = "
                                "\"k\"\nclient_certificates = \"") +
                    mode + "\"\n"));
    EXPECT_EQ(d.key, "listener[0].tls.ca");
    EXPECT_EQ(d.line, 6u); // at client_certificates, the key that asks for the CA
    EXPECT_THAT(d.message, HasSubstr(std::string("required when client_certificates = \"") + mode));
  }
  const diagnostic bad = only_error(load_string(
      "[[listener]]\nprotocol = \"mqtts\"\n[listener.tls]\ncert = \"c\"\nkey = \"k\"\nclient_certificates = "
      "\"yes\"\n"));
  EXPECT_EQ(bad.message, "must be one of none, optional, required (got \"yes\")");
}

TEST(config_tls_auth, ca_and_crl_without_client_certificates_are_warnings) {
  const load_result result = load_string(
      "[[listener]]\nprotocol = \"mqtts\"\n[listener.tls]\ncert = \"c\"\nkey = \"k\"\nca = \"ca\"\ncrl = "
      "\"crl\"\n");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  ASSERT_EQ(result.diagnostics.size(), 2u) << all_diagnostics(result);
  EXPECT_TRUE(result.diagnostics[0].warning);
  EXPECT_EQ(result.diagnostics[0].key, "listener[0].tls.ca");
  EXPECT_EQ(result.diagnostics[1].key, "listener[0].tls.crl");
  EXPECT_THAT(result.diagnostics[1].message, HasSubstr("has no effect"));
}

TEST(config_tls_auth, min_version_must_be_a_quoted_known_version) {
  const std::string head = "[[listener]]\nprotocol = \"mqtts\"\n[listener.tls]\ncert = \"c\"\nkey = \"k\"\n";
  const diagnostic number = only_error(load_string(head + "min_version = 1.2\n"));
  EXPECT_EQ(number.key, "listener[0].tls.min_version");
  EXPECT_THAT(number.message, HasSubstr("in quotes"));
  EXPECT_EQ(only_error(load_string(head + "min_version = \"1.1\"\n")).message,
            "must be one of 1.2, 1.3 (got \"1.1\")");
  EXPECT_EQ(only_error(load_string(head + "ciphers = \"\"\n")).key, "listener[0].tls.ciphers");
  EXPECT_EQ(only_error(load_string(head + "ciphersuites = \"\"\n")).message, "must not be empty");
}

TEST(config_tls_auth, unknown_keys_in_the_new_tables_are_errors) {
  const diagnostic tls = only_error(load_string(
      "[[listener]]\nprotocol = \"mqtts\"\n[listener.tls]\ncert = \"c\"\nkey = \"k\"\nverify_peer = true\n"));
  EXPECT_EQ(tls.key, "listener[0].tls.verify_peer");
  EXPECT_THAT(tls.message, HasSubstr("unknown key"));
  EXPECT_EQ(only_error(load_string("[auth.ldap]\nurl = \"x\"\n")).key, "auth.ldap");
  const diagnostic certificate = only_error(load_string("[auth.certificate]\nidentty = \"cn\"\n"));
  EXPECT_EQ(certificate.key, "auth.certificate.identty");
  EXPECT_THAT(certificate.message, HasSubstr("did you mean 'identity'"));
  EXPECT_EQ(only_error(load_string("[auth.password]\npath = \"x\"\n")).key, "auth.password.path");
  EXPECT_EQ(only_error(load_string("[auth.jwt]\njwks = \"j\"\nissuers = \"x\"\n")).key, "auth.jwt.issuers");
}

TEST(config_tls_auth, certificate_settings_are_choices) {
  EXPECT_EQ(only_error(load_string("[auth.certificate]\nidentity = \"subject\"\n")).message,
            "must be one of cn, san_dns, san_uri, san_email (got \"subject\")");
  EXPECT_EQ(only_error(load_string("[auth.certificate]\nclient_id = \"match\"\n")).message,
            "must be one of any, must_match, assign (got \"match\")");
  const load_result dns = load_string("[auth.certificate]\nidentity = \"san_dns\"\n");
  ASSERT_TRUE(dns.ok()) << all_diagnostics(dns);
  EXPECT_EQ(dns.cfg->auth.certificate.identity, certificate_identity::san_dns);
  EXPECT_EQ(dns.cfg->auth.certificate.client_id, client_id_binding::must_match);
  EXPECT_EQ(load_string("[auth.certificate]\nidentity = \"san_email\"\nclient_id = \"any\"\n")
                .cfg->auth.certificate.client_id,
            client_id_binding::any);
}

TEST(config_tls_auth, certificate_method_without_client_certificates_is_a_warning) {
  // A plain listener.
  const load_result plain =
      load_string("[[listener]]\nname = \"x\"\nauth = [\"password\", \"certificate\"]\n");
  ASSERT_TRUE(plain.ok()) << all_diagnostics(plain);
  ASSERT_EQ(plain.diagnostics.size(), 1u) << all_diagnostics(plain);
  EXPECT_TRUE(plain.diagnostics[0].warning);
  EXPECT_EQ(plain.diagnostics[0].key, "listener[0].auth[1]");
  EXPECT_EQ(plain.diagnostics[0].column, 21u);
  EXPECT_THAT(plain.diagnostics[0].message, HasSubstr("can never allow a client"));
  EXPECT_EQ(plain.cfg->listeners[0].auth, (std::vector{auth_method::password, auth_method::certificate}));
  // A TLS listener that does not ask for client certificates.
  const load_result tls = load_string("[[listener]]\nprotocol = \"mqtts\"\nauth = "
                                      "[\"certificate\"]\n[listener.tls]\ncert = \"c\"\nkey = \"k\"\n");
  ASSERT_TRUE(tls.ok()) << all_diagnostics(tls);
  ASSERT_EQ(tls.diagnostics.size(), 1u) << all_diagnostics(tls);
  EXPECT_TRUE(tls.diagnostics[0].warning);
  EXPECT_THAT(tls.diagnostics[0].message, HasSubstr("client_certificates is \"none\""));
  // Optional client certificates can allow: no warning.
  const load_result optional = load_string(
      "[[listener]]\nprotocol = \"mqtts\"\nauth = [\"certificate\"]\n[listener.tls]\ncert = \"c\"\nkey = "
      "\"k\"\nca = \"ca\"\nclient_certificates = \"optional\"\n");
  ASSERT_TRUE(optional.ok()) << all_diagnostics(optional);
  EXPECT_TRUE(optional.diagnostics.empty()) << all_diagnostics(optional);
}

TEST(config_tls_auth, jwt_in_a_chain_needs_an_auth_jwt_table) {
  const diagnostic d = only_error(load_string("[[listener]]\nauth = [\"password\", \"jwt\"]\n", "f.toml"));
  EXPECT_EQ(d.key, "listener[0].auth[1]");
  EXPECT_EQ(d.line, 2u);
  EXPECT_EQ(d.column, 21u);
  EXPECT_THAT(d.message, HasSubstr("needs an [auth.jwt] table"));
}

TEST(config_tls_auth, duplicate_methods_in_a_chain_are_errors) {
  const diagnostic d = only_error(
      load_string("[[listener]]\nauth = [\"password\", \"jwt\", \"password\"]\n[auth.jwt]\njwks = \"j\"\n"));
  EXPECT_EQ(d.key, "listener[0].auth[2]");
  EXPECT_THAT(d.message, HasSubstr("already in the chain at listener[0].auth[0]"));
}

TEST(config_tls_auth, unknown_methods_are_errors) {
  const diagnostic d = only_error(load_string("[[listener]]\nauth = [\"ldap\"]\n"));
  EXPECT_EQ(d.key, "listener[0].auth[0]");
  EXPECT_EQ(d.message, "unknown authentication method \"ldap\" (must be one of certificate, password, jwt, enrollment)");
  EXPECT_THAT(only_error(load_string("[[listener]]\nauth = [\"anonymous\"]\n")).message,
              HasSubstr("allow_anonymous = true"));
  EXPECT_EQ(only_error(load_string("[[listener]]\nauth = [\"password\", 3]\n")).message,
            "must be a string (got integer)");
  EXPECT_EQ(only_error(load_string("[[listener]]\nauth = \"password\"\n")).message,
            "must be an array of strings (got string)");
}

TEST(config_tls_auth, an_empty_chain_needs_anonymous_access) {
  const diagnostic d = only_error(load_string("[[listener]]\nauth = []\n"));
  EXPECT_EQ(d.key, "listener[0].auth");
  EXPECT_THAT(d.message, HasSubstr("no client could connect"));
  const load_result open = load_string("[[listener]]\nauth = []\nallow_anonymous = true\n");
  ASSERT_TRUE(open.ok()) << all_diagnostics(open);
  EXPECT_TRUE(open.cfg->listeners[0].auth.empty());
}

TEST(config_tls_auth, default_chain_adds_jwt_when_auth_jwt_exists) {
  const load_result result = load_string("[[listener]]\nname = \"a\"\n[auth.jwt]\njwks = \"jwks.json\"\n");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  EXPECT_EQ(result.cfg->listeners[0].auth,
            (std::vector{auth_method::certificate, auth_method::jwt, auth_method::password}));
  // The default listener too.
  const load_result no_listener = load_string("[auth.jwt]\njwks = \"jwks.json\"\n");
  ASSERT_TRUE(no_listener.ok()) << all_diagnostics(no_listener);
  EXPECT_EQ(no_listener.cfg->listeners[0].auth,
            (std::vector{auth_method::certificate, auth_method::jwt, auth_method::password}));
  // An explicit chain is kept as written.
  EXPECT_EQ(
      load_string("[[listener]]\nauth = [\"password\"]\n[auth.jwt]\njwks = \"j\"\n").cfg->listeners[0].auth,
      (std::vector{auth_method::password}));
}

TEST(config_tls_auth, jwt_needs_a_key_source) {
  const diagnostic d = only_error(load_string("[auth.jwt]\nissuer = \"x\"\n", "f.toml"));
  EXPECT_EQ(d.key, "auth.jwt");
  EXPECT_EQ(d.line, 1u);
  EXPECT_THAT(d.message, HasSubstr("public_keys, jwks or hmac_secret_file"));
  EXPECT_EQ(only_error(load_string("[auth.jwt]\npublic_keys = []\n")).key, "auth.jwt");
  for (const char* source : {"public_keys = [\"k.pem\"]", "jwks = \"j.json\"", "hmac_secret_file = \"s\""}) {
    const load_result result = load_string(std::string("[auth.jwt]\n") + source + "\n");
    EXPECT_TRUE(result.ok()) << source << "\n" << all_diagnostics(result);
  }
  EXPECT_EQ(only_error(load_string("[auth.jwt]\npublic_keys = [\"\"]\n")).key, "auth.jwt.public_keys[0]");
}

TEST(config_tls_auth, jwt_default_algorithms) {
  const load_result asymmetric = load_string("[auth.jwt]\npublic_keys = [\"k.pem\"]\n");
  ASSERT_TRUE(asymmetric.ok()) << all_diagnostics(asymmetric);
  EXPECT_EQ(asymmetric.cfg->auth.jwt->algorithms,
            (std::vector<std::string>{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}));
  const load_result with_secret = load_string("[auth.jwt]\nhmac_secret_file = \"s\"\n");
  ASSERT_TRUE(with_secret.ok()) << all_diagnostics(with_secret);
  EXPECT_EQ(
      with_secret.cfg->auth.jwt->algorithms,
      (std::vector<std::string>{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA", "HS256"}));
  const jwt_auth_settings& jwt = *asymmetric.cfg->auth.jwt;
  EXPECT_EQ(jwt.leeway, std::chrono::seconds{30});
  EXPECT_EQ(jwt.identity_claim, "sub");
  EXPECT_EQ(jwt.roles_claim, "roles");
  EXPECT_TRUE(jwt.issuer.empty());
  EXPECT_TRUE(jwt.audience.empty());
  EXPECT_TRUE(jwt.required_claims.empty());
}

TEST(config_tls_auth, every_supported_algorithm_is_accepted) {
  const load_result result = load_string(
      "[auth.jwt]\njwks = \"j\"\nhmac_secret_file = \"s\"\nalgorithms = [\"RS256\", \"RS384\", \"RS512\", "
      "\"PS256\", \"PS384\", \"PS512\", \"ES256\", \"ES384\", \"EdDSA\", \"HS256\", \"HS384\", \"HS512\"]\n");
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  EXPECT_EQ(result.cfg->auth.jwt->algorithms.size(), 12u);
}

TEST(config_tls_auth, alg_none_has_its_own_error) {
  for (const char* none : {"none", "None", "NONE"}) {
    const diagnostic d = only_error(
        load_string(std::string("[auth.jwt]\njwks = \"j\"\nalgorithms = [\"RS256\", \"") + none + "\"]\n"));
    EXPECT_EQ(d.key, "auth.jwt.algorithms[1]");
    EXPECT_THAT(d.message, HasSubstr("never accepted")) << none;
  }
}

TEST(config_tls_auth, unknown_algorithms_are_errors) {
  const diagnostic d = only_error(load_string("[auth.jwt]\njwks = \"j\"\nalgorithms = [\"ES512\"]\n"));
  EXPECT_EQ(d.key, "auth.jwt.algorithms[0]");
  EXPECT_THAT(d.message, HasSubstr("unknown algorithm \"ES512\" (must be one of RS256 RS384"));
  EXPECT_THAT(only_error(load_string("[auth.jwt]\njwks = \"j\"\nalgorithms = [\"rs256\"]\n")).message,
              HasSubstr("did you mean 'RS256'"));
  EXPECT_THAT(
      only_error(load_string("[auth.jwt]\njwks = \"j\"\nalgorithms = [\"RS256\", \"RS256\"]\n")).message,
      HasSubstr("already listed at auth.jwt.algorithms[0]"));
  EXPECT_THAT(only_error(load_string("[auth.jwt]\njwks = \"j\"\nalgorithms = []\n")).message,
              HasSubstr("at least one algorithm"));
}

TEST(config_tls_auth, hmac_algorithms_need_a_secret) {
  for (const char* alg : {"HS256", "HS384", "HS512"}) {
    const diagnostic d =
        only_error(load_string(std::string("[auth.jwt]\njwks = \"j\"\nalgorithms = [\"") + alg + "\"]\n"));
    EXPECT_EQ(d.key, "auth.jwt.algorithms[0]");
    EXPECT_THAT(d.message, HasSubstr("needs hmac_secret_file")) << alg;
  }
}

TEST(config_tls_auth, jwt_leeway_range_and_claims) {
  EXPECT_EQ(only_error(load_string("[auth.jwt]\njwks = \"j\"\nleeway = 601\n")).message,
            "must be between 0 and 600 (got 601)");
  EXPECT_EQ(only_error(load_string("[auth.jwt]\njwks = \"j\"\nleeway = -1\n")).key, "auth.jwt.leeway");
  EXPECT_EQ(load_string("[auth.jwt]\njwks = \"j\"\nleeway = 600\n").cfg->auth.jwt->leeway,
            std::chrono::seconds{600});
  EXPECT_EQ(only_error(load_string("[auth.jwt]\njwks = \"j\"\nidentity_claim = \"\"\n")).key,
            "auth.jwt.identity_claim");
  EXPECT_EQ(only_error(load_string("[auth.jwt]\njwks = \"j\"\nroles_claim = \"\"\n")).key,
            "auth.jwt.roles_claim");
  EXPECT_EQ(only_error(load_string("[auth.jwt]\njwks = \"j\"\nrequired_claims = [\"exp\", \"\"]\n")).key,
            "auth.jwt.required_claims[1]");
}

TEST(config_tls_auth, topics_path_is_resolved_and_must_not_be_empty) {
  EXPECT_EQ(load_string("topics = \"topics.toml\"\n", "/etc/firehook/firehook.toml").cfg->topics,
            "/etc/firehook/topics.toml");
  EXPECT_EQ(load_string("topics = \"/srv/topics.toml\"\n", "etc/firehook.toml").cfg->topics,
            "/srv/topics.toml");
  const diagnostic d = only_error(load_string("topics = \"\"\n"));
  EXPECT_EQ(d.key, "topics");
  EXPECT_EQ(d.message, "must not be empty");
  EXPECT_EQ(only_error(load_string("topics = [\"a.toml\"]\n")).message, "must be a string (got array)");
}

} // namespace
} // namespace firehook::config

namespace firehook::config {
namespace {

TEST(config_authorization, denied_publish_defaults_to_acknowledge_and_reads_disconnect) {
  EXPECT_EQ(load_string("").cfg->authorization.on_denied_publish, denied_publish::acknowledge);
  const auto r = load_string("[authorization]\ndenied_publish = \"disconnect\"\n");
  ASSERT_TRUE(r.ok()) << all_diagnostics(r);
  EXPECT_EQ(r.cfg->authorization.on_denied_publish, denied_publish::disconnect);
}

TEST(config_authorization, unknown_denied_publish_names_the_key) {
  const auto d = only_error(load_string("[authorization]\ndenied_publish = \"drop\"\n", "f.toml"));
  EXPECT_EQ(d.key, "authorization.denied_publish");
  EXPECT_EQ(d.line, 2u);
}

TEST(config_alerts, on_by_default_and_every_key_is_read) {
  EXPECT_TRUE(load_string("").cfg->alerts.enabled);
  EXPECT_EQ(load_string("").cfg->alerts.rate_limited, 3u);
  const auto r = load_string("[alerts]\nenabled = false\nauth_failures = 0\nprobing = 3\nflapping = 4\n"
                             "shared_credential = false\nwindow = 30\nmax_tracked = 500\nrate_limited = 7\n"
                             "address_changes = 9\n");
  ASSERT_TRUE(r.ok()) << all_diagnostics(r);
  const auto& a = r.cfg->alerts;
  EXPECT_FALSE(a.enabled);
  EXPECT_EQ(a.auth_failures, 0u);
  EXPECT_EQ(a.probing, 3u);
  EXPECT_EQ(a.flapping, 4u);
  EXPECT_EQ(a.rate_limited, 7u);
  EXPECT_EQ(a.address_changes, 9u);
  EXPECT_EQ(load_string("").cfg->alerts.address_changes, 5u);
  EXPECT_FALSE(a.shared_credential);
  EXPECT_EQ(a.window, std::chrono::seconds{30});
  EXPECT_EQ(a.max_tracked, 500u);
  EXPECT_EQ(only_error(load_string("[alerts]\nwindow = 0\n")).key, "alerts.window");
}

TEST(config_alerts, certificate_expiry_days_defaults_to_30_and_0_turns_it_off) {
  EXPECT_EQ(load_string("").cfg->alerts.certificate_expiry_days, 30u);
  EXPECT_EQ(load_string("[alerts]\ncertificate_expiry_days = 0\n").cfg->alerts.certificate_expiry_days, 0u);
  EXPECT_EQ(only_error(load_string("[alerts]\ncertificate_expiry_days = 4000\n")).key,
            "alerts.certificate_expiry_days");
}

TEST(config_alerts, rate_baseline_keys_have_defaults_ranges_and_0_turns_checks_off) {
  const auto keys = [](const load_result& r) {
    const auto& a = r.cfg->alerts;
    return std::tuple{a.baseline_interval.count(), a.baseline_warmup, a.baseline_factor, a.baseline_min_rate,
                      a.fleet_publish_ceiling};
  };
  EXPECT_EQ(keys(load_string("")), std::tuple(10, 30u, 10u, 10u, 0u));
  const auto r = load_string("[alerts]\nbaseline_interval = 1\nbaseline_warmup = 3\nbaseline_factor = 0\n"
                             "baseline_min_rate = 0\nfleet_publish_ceiling = 5000\n");
  ASSERT_TRUE(r.ok()) << all_diagnostics(r);
  EXPECT_EQ(keys(r), std::tuple(1, 3u, 0u, 0u, 5000u));
  const auto e = only_error(load_string("[alerts]\nbaseline_interval = 0\n", "f.toml"));
  EXPECT_EQ(e.key, "alerts.baseline_interval");
  EXPECT_EQ(e.line, 2u);
  EXPECT_EQ(only_error(load_string("[alerts]\nbaseline_warmup = 0\n")).key, "alerts.baseline_warmup");
  EXPECT_EQ(only_error(load_string("[alerts]\nbaseline_factor = -1\n")).key, "alerts.baseline_factor");
  EXPECT_EQ(only_error(load_string("[alerts]\nbaseline_min_rate = 100000001\n")).key,
            "alerts.baseline_min_rate");
  EXPECT_EQ(only_error(load_string("[alerts]\nfleet_publish_ceiling = \"many\"\n")).key,
            "alerts.fleet_publish_ceiling");
}

TEST(config_alerts, webhook_is_off_by_default_and_read_with_its_keys) {
  EXPECT_FALSE(load_string("").cfg->alerts.webhook);
  const auto r = load_string("[alerts]\nwebhook = \"https://hooks.example.com:8443/alerts?team=ops\"\n"
                             "webhook_ca = \"ca.pem\"\nwebhook_token_file = \"/etc/fh/token\"\n"
                             "webhook_retries = 3\nwebhook_timeout = 4\n",
                             "/etc/fh/firehook.toml");
  ASSERT_TRUE(r.ok()) << all_diagnostics(r);
  const auto& w = *r.cfg->alerts.webhook;
  EXPECT_TRUE(w.url.tls);
  EXPECT_EQ(w.url.host, "hooks.example.com");
  EXPECT_EQ(w.url.port, 8443);
  EXPECT_EQ(w.url.target, "/alerts?team=ops");
  EXPECT_EQ(w.ca, "/etc/fh/ca.pem");
  EXPECT_EQ(w.token_file, "/etc/fh/token");
  EXPECT_EQ(w.retries, 3u);
  EXPECT_EQ(w.timeout, std::chrono::seconds{4});
}

TEST(config_alerts, webhook_urls) {
  webhook_url u;
  ASSERT_FALSE(parse_webhook_url("http://127.0.0.1:8080", u));
  EXPECT_EQ((u.tls ? 1 : 0), 0);
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.target, "/");
  ASSERT_FALSE(parse_webhook_url("https://[::1]/a/b", u));
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.target, "/a/b");
  ASSERT_FALSE(parse_webhook_url("http://localhost?x=1", u));
  EXPECT_EQ(u.target, "/?x=1");
  for (const char* bad :
       {"ftp://h/", "https://", "https://user:pw@h/", "https://h:0/", "https://h:70000/", "https://h:/",
        "https://h/a b", "https://h/#frag", "https://[::1/", "https://h o/", "https://[zz]/"}) {
    EXPECT_TRUE(parse_webhook_url(bad, u)) << bad;
  }
}

TEST(config_alerts, a_bad_webhook_is_an_error_naming_the_key_and_line) {
  const auto plain =
      only_error(load_string("[alerts]\nwebhook = \"http://hooks.example.com/x\"\n", "f.toml"));
  EXPECT_EQ(plain.key, "alerts.webhook");
  EXPECT_EQ(plain.line, 2u);
  EXPECT_THAT(plain.message, HasSubstr("loopback"));
  const auto bad = only_error(load_string("[alerts]\nwebhook = \"https://u:p@h/\"\n"));
  EXPECT_EQ(bad.key, "alerts.webhook");
  EXPECT_THAT(bad.message, HasSubstr("webhook_token_file"));
  EXPECT_EQ(only_error(load_string("[alerts]\nwebhook_retries = 3\n")).key, "alerts.webhook_retries");
  EXPECT_EQ(only_error(load_string("[alerts]\nwebhook = \"https://h/\"\nwebhook_retries = 0\n")).key,
            "alerts.webhook_retries");
  EXPECT_EQ(
      only_error(load_string("[alerts]\nwebhook = \"http://127.0.0.1/\"\nwebhook_ca = \"ca.pem\"\n")).key,
      "alerts.webhook_ca");
}

TEST(config_audit, on_by_default_under_state_dir) {
  const auto r = load_string("[broker]\nstate_dir = \"/var/lib/fh\"\n");
  ASSERT_TRUE(r.ok()) << all_diagnostics(r);
  const auto& a = r.cfg->audit;
  EXPECT_TRUE(a.enabled);
  EXPECT_EQ(a.file, "/var/lib/fh/audit/audit.log");
  EXPECT_EQ(a.key_file, "/var/lib/fh/audit/audit.key");
  EXPECT_EQ(a.on_failure, audit_failure::serve);
  EXPECT_EQ(a.checkpoint_interval, std::chrono::seconds{60});
  EXPECT_EQ(defaults().audit.file, "state/audit/audit.log");
}

TEST(config_audit, every_key_is_read_and_a_bad_one_is_named) {
  const auto r = load_string("[audit]\nenabled = false\nfile = \"a/x.log\"\nkey_file = \"/k\"\n"
                             "max_file_bytes = 4096\nmax_file_age = 0\nkeep_files = 3\n"
                             "checkpoint_interval = 5\non_failure = \"refuse\"\n",
                             "/etc/fh/f.toml");
  ASSERT_TRUE(r.ok()) << all_diagnostics(r);
  const auto& a = r.cfg->audit;
  EXPECT_FALSE(a.enabled);
  EXPECT_EQ(a.file, "/etc/fh/a/x.log");
  EXPECT_EQ(a.key_file, "/k");
  EXPECT_EQ(a.max_file_bytes, 4096u);
  EXPECT_EQ(a.max_file_age, std::chrono::seconds{0});
  EXPECT_EQ(a.keep_files, 3u);
  EXPECT_EQ(a.checkpoint_interval, std::chrono::seconds{5});
  EXPECT_EQ(a.on_failure, audit_failure::refuse);
  const auto d = only_error(load_string("[audit]\non_failure = \"ignore\"\n", "f.toml"));
  EXPECT_EQ(d.key, "audit.on_failure");
  EXPECT_EQ(d.line, 2u);
  EXPECT_EQ(only_error(load_string("[audit]\nmax_file_bytes = 10\n")).key, "audit.max_file_bytes");
}

TEST(config_abuse, allowlist_of_networks) {
  EXPECT_TRUE(load_string("").cfg->abuse.allowlist.empty());
  const auto r = load_string("[abuse]\nallowlist = [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\"]\n");
  ASSERT_TRUE(r.ok());
  const auto& allow = r.cfg->abuse.allowlist;
  EXPECT_EQ(allow.ranges().size(), 3U);
  EXPECT_TRUE(allow.contains("10.1.2.3"));
  EXPECT_TRUE(allow.contains("192.0.2.7"));
  EXPECT_FALSE(allow.contains("192.0.2.8"));
  const auto bad = only_error(load_string("[abuse]\nallowlist = [\"10.0.0.0/8\", \"10.0.0.0/40\"]\n"));
  EXPECT_EQ(bad.key, "abuse.allowlist[1]");
  EXPECT_EQ(bad.message, "prefix length must be 0..32 (got \"10.0.0.0/40\")");
  EXPECT_EQ(bad.line, 2U);
}

TEST(config_abuse, login_tarpit_bans_and_flapping_defaults_and_values) {
  const auto defaults = load_string("");
  ASSERT_TRUE(defaults.ok());
  const auto& d = defaults.cfg->abuse;
  EXPECT_EQ(d.login_failures, 10U);
  EXPECT_EQ(d.login_window, std::chrono::seconds{600});
  EXPECT_EQ(d.login_delay, std::chrono::milliseconds{500});
  EXPECT_EQ(d.login_delay_max, std::chrono::milliseconds{4000});
  EXPECT_EQ(d.ban_after_failures, 20U);
  EXPECT_EQ(d.ban_time, std::chrono::seconds{600});
  EXPECT_EQ(d.ban_time_max, std::chrono::seconds{86'400});
  EXPECT_EQ(d.flapping_connects, 20U);
  EXPECT_EQ(d.flapping_window, std::chrono::seconds{60});
  EXPECT_EQ(d.flapping_ban_time, std::chrono::seconds{300});
  EXPECT_EQ(d.max_tracked_keys, 100'000U);
  const auto r =
      load_string("[abuse]\nlogin_failures = 0\nlogin_delay_ms = 100\nlogin_delay_max_ms = 200\n"
                  "ban_after_failures = 3\nban_time = 2\nban_time_max = 8\nflapping_connects = 0\n");
  ASSERT_TRUE(r.ok()) << all_diagnostics(r);
  EXPECT_EQ(r.cfg->abuse.login_failures, 0U);
  EXPECT_EQ(r.cfg->abuse.login_delay_max, std::chrono::milliseconds{200});
  EXPECT_EQ(r.cfg->abuse.ban_time_max, std::chrono::seconds{8});
}

TEST(config_abuse, maxima_below_their_start_are_errors) {
  const auto delay =
      only_error(load_string("[abuse]\nlogin_delay_ms = 900\nlogin_delay_max_ms = 800\n", "f.toml"));
  EXPECT_EQ(delay.key, "abuse.login_delay_max_ms");
  EXPECT_EQ(delay.line, 3U);
  EXPECT_EQ(delay.message, "must be at least login_delay_ms (900)");
  const auto ban = only_error(load_string("[abuse]\nban_time = 60\nban_time_max = 30\n"));
  EXPECT_EQ(ban.key, "abuse.ban_time_max");
  EXPECT_EQ(ban.message, "must be at least ban_time (60)");
  const auto range = only_error(load_string("[abuse]\nlogin_delay_ms = 0\n"));
  EXPECT_EQ(range.key, "abuse.login_delay_ms");
  EXPECT_EQ(range.message, "must be between 1 and 60000 (got 0)");
}

TEST(config_rates, limits_give_every_listener_its_rates_and_a_listener_may_change_them) {
  const auto defaults = load_string("");
  EXPECT_EQ(defaults.cfg->limits.rates.publish_rate, 1000u);
  EXPECT_EQ(defaults.cfg->listeners.at(0).rates, defaults.cfg->limits.rates);
  const auto r = load_string("[limits]\npublish_rate = 50\nsubscribe_rate = 5\nrate_limit_timeout = 9\n"
                             "[[listener]]\nname = \"devices\"\n"
                             "[[listener]]\nname = \"gateways\"\nport = 1884\n"
                             "[listener.rate_limits]\npublish_rate = 0\npublish_bytes_burst = 7\n");
  ASSERT_TRUE(r.ok()) << all_diagnostics(r);
  EXPECT_EQ(r.cfg->limits.rate_limit_timeout, std::chrono::seconds{9});
  const auto& devices = r.cfg->listeners.at(0).rates;
  EXPECT_EQ(devices.publish_rate, 50u);
  EXPECT_EQ(devices.subscribe_rate, 5u);
  const auto& gateways = r.cfg->listeners.at(1).rates;
  EXPECT_EQ(gateways.publish_rate, 0u); // not limited
  EXPECT_EQ(gateways.publish_bytes_burst, 7u);
  EXPECT_EQ(gateways.subscribe_rate, 5u); // from [limits]
  EXPECT_EQ(only_error(load_string("[[listener]]\n[listener.rate_limits]\npublish_rat = 1\n")).key,
            "listener[0].rate_limits.publish_rat");
  EXPECT_EQ(only_error(load_string("[limits]\npublish_burst = 0\n")).message,
            "must be at least 1 while publish_rate is set");
}

TEST(config_abuse, budgets_per_address_defaults_and_values) {
  const auto defaults = load_string("");
  ASSERT_TRUE(defaults.ok());
  const abuse_settings& d = defaults.cfg->abuse;
  EXPECT_EQ(d.max_connections_per_address, 1000U);
  EXPECT_EQ(d.connection_rate_per_address, 100U);
  EXPECT_EQ(d.connection_burst_per_address, 1000U);
  EXPECT_EQ(d.max_pending_per_address, 500U);
  EXPECT_EQ(d.max_pending_connections, 10'000U);
  EXPECT_EQ(d.network_prefix_ipv4, 24U);
  EXPECT_EQ(d.network_prefix_ipv6, 64U);
  EXPECT_EQ(d.max_connections_per_network, 10'000U);
  EXPECT_EQ(d.connection_rate_per_network, 1000U);
  EXPECT_EQ(d.connection_burst_per_network, 10'000U);
  EXPECT_EQ(d.max_pending_per_network, 5000U);
  EXPECT_EQ(defaults.cfg->limits.tls_handshake_timeout, std::chrono::seconds{10});

  const auto r = load_string("[limits]\ntls_handshake_timeout = 3\n[abuse]\nmax_connections_per_address = 7\n"
                             "connection_rate_per_address = 2\nconnection_burst_per_address = 5\n"
                             "max_pending_per_address = 4\nmax_pending_connections = 9\n"
                             "network_prefix_ipv4 = 16\nnetwork_prefix_ipv6 = 48\nmax_connections_per_network = 70\n"
                             "connection_rate_per_network = 20\nconnection_burst_per_network = 50\n"
                             "max_pending_per_network = 40\n");
  ASSERT_TRUE(r.ok()) << all_diagnostics(r);
  const abuse_settings& a = r.cfg->abuse;
  EXPECT_EQ(a.max_connections_per_address, 7U);
  EXPECT_EQ(a.connection_rate_per_address, 2U);
  EXPECT_EQ(a.connection_burst_per_address, 5U);
  EXPECT_EQ(a.max_pending_per_address, 4U);
  EXPECT_EQ(a.max_pending_connections, 9U);
  EXPECT_EQ(a.network_prefix_ipv4, 16U);
  EXPECT_EQ(a.network_prefix_ipv6, 48U);
  EXPECT_EQ(a.max_connections_per_network, 70U);
  EXPECT_EQ(a.connection_rate_per_network, 20U);
  EXPECT_EQ(a.connection_burst_per_network, 50U);
  EXPECT_EQ(a.max_pending_per_network, 40U);
  EXPECT_EQ(r.cfg->limits.tls_handshake_timeout, std::chrono::seconds{3});

  const diagnostic bad =
      only_error(load_string("[abuse]\nallowlist = []\n\nmax_pending_per_address = 0\n", "f.toml"));
  EXPECT_EQ(bad.to_string(),
            "f.toml:4:27: abuse.max_pending_per_address: must be between 1 and 10000000 (got 0)");
}

TEST(config_admin, loopback_plain_by_default_and_every_tls_key_is_read) {
  const auto plain = load_string("[admin]\nport = 0\n");
  ASSERT_TRUE(plain.ok()) << all_diagnostics(plain);
  EXPECT_EQ(plain.cfg->admin->address, "127.0.0.1");
  EXPECT_FALSE(plain.cfg->admin->tls);
  EXPECT_TRUE(plain.cfg->admin->client_subjects.empty());

  const auto r =
      load_string("[admin]\naddress = \"0.0.0.0\"\nclient_subjects = [\"CN=ops-1\", "
                  "\"CN=ops-2,O=Example\"]\n[admin.tls]\ncert = \"s.crt\"\nkey = \"s.key\"\n"
                  "client_ca = \"ca.crt\"\ncrl = \"ca.crl\"\nmin_version = \"1.3\"\n"
                  "ciphers = \"ECDHE-ECDSA-AES128-GCM-SHA256\"\nciphersuites = \"TLS_AES_128_GCM_SHA256\"\n",
                  "/etc/fh/f.toml");
  ASSERT_TRUE(r.ok()) << all_diagnostics(r);
  EXPECT_TRUE(r.diagnostics.empty()) << all_diagnostics(r);
  const admin_settings& a = *r.cfg->admin;
  EXPECT_EQ(a.address, "0.0.0.0");
  EXPECT_EQ(a.client_subjects, (std::vector<std::string>{"CN=ops-1", "CN=ops-2,O=Example"}));
  ASSERT_TRUE(a.tls);
  EXPECT_EQ(a.tls->cert, "/etc/fh/s.crt");
  EXPECT_EQ(a.tls->key, "/etc/fh/s.key");
  EXPECT_EQ(a.tls->ca, "/etc/fh/ca.crt");
  EXPECT_EQ(a.tls->crl, "/etc/fh/ca.crl");
  // A certificate is asked for and verified, but a request may come with a token instead.
  EXPECT_EQ(a.tls->client_certs, client_certificates::optional);
  EXPECT_EQ(a.tls->min_version, tls_version::tls1_3);
  EXPECT_EQ(a.tls->ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(a.tls->ciphersuites, "TLS_AES_128_GCM_SHA256");

  const auto no_ca = load_string("[admin]\n[admin.tls]\ncert = \"c\"\nkey = \"k\"\n");
  ASSERT_TRUE(no_ca.ok()) << all_diagnostics(no_ca);
  EXPECT_EQ(no_ca.cfg->admin->tls->client_certs, client_certificates::none);
  EXPECT_EQ(no_ca.cfg->admin->tls->min_version, tls_version::tls1_2);
}

TEST(config_admin, a_non_loopback_address_without_tls_is_an_error_at_the_address) {
  for (const char* address : {"0.0.0.0", "192.0.2.1", "::"}) {
    const diagnostic d = only_error(
        load_string(std::string("[admin]\nport = 9883\naddress = \"") + address + "\"\n", "f.toml"));
    EXPECT_EQ(d.key, "admin.address");
    EXPECT_EQ(d.line, 3u);
    EXPECT_THAT(d.message, HasSubstr("needs [admin.tls]"));
  }
  for (const char* address : {"127.0.0.1", "::1", "localhost"}) {
    const auto r = load_string(std::string("[admin]\naddress = \"") + address + "\"\n");
    EXPECT_TRUE(r.ok()) << address << ": " << all_diagnostics(r);
  }
  EXPECT_THAT(only_error(load_string("[admin]\naddress = \"example.org\"\n")).message,
              HasSubstr("must be an IPv4 or IPv6 address"));
}

TEST(config_admin, tls_keys_are_checked_as_a_listener_s) {
  const diagnostic key = only_error(load_string("[admin]\n[admin.tls]\ncert = \"c\"\n"));
  EXPECT_EQ(key.key, "admin.tls.key");
  EXPECT_THAT(key.message, HasSubstr("required"));
  EXPECT_EQ(
      only_error(load_string("[admin]\n[admin.tls]\ncert = \"c\"\nkey = \"k\"\nmin_version = 1.2\n")).key,
      "admin.tls.min_version");
  // The listener's names for the client CA are not the admin endpoint's.
  const diagnostic ca =
      only_error(load_string("[admin]\n[admin.tls]\ncert = \"c\"\nkey = \"k\"\nca = \"x\"\n"));
  EXPECT_EQ(ca.key, "admin.tls.ca");
  EXPECT_THAT(ca.message, HasSubstr("unknown"));
}

TEST(config_admin, client_subjects_must_be_subjects_and_need_a_client_ca) {
  const diagnostic bare = only_error(load_string("[admin]\nclient_subjects = [\"ops-1\"]\n[admin.tls]\ncert "
                                                 "= \"c\"\nkey = \"k\"\nclient_ca = \"ca\"\n"));
  EXPECT_EQ(bare.key, "admin.client_subjects[0]");
  EXPECT_THAT(bare.message, HasSubstr("RFC 2253"));

  // Deny by default, said as warnings: a list nothing is verified against, a CA nobody is listed for.
  const auto no_ca = load_string("[admin]\nclient_subjects = [\"CN=ops-1\"]\n");
  ASSERT_TRUE(no_ca.ok()) << all_diagnostics(no_ca);
  ASSERT_EQ(no_ca.diagnostics.size(), 1u) << all_diagnostics(no_ca);
  EXPECT_EQ(no_ca.diagnostics[0].key, "admin.client_subjects");
  EXPECT_THAT(no_ca.diagnostics[0].message, HasSubstr("has no effect"));
  const auto nobody = load_string("[admin]\n[admin.tls]\ncert = \"c\"\nkey = \"k\"\nclient_ca = \"ca\"\n");
  ASSERT_TRUE(nobody.ok()) << all_diagnostics(nobody);
  ASSERT_EQ(nobody.diagnostics.size(), 1u) << all_diagnostics(nobody);
  EXPECT_EQ(nobody.diagnostics[0].key, "admin.tls.client_ca");
  EXPECT_THAT(nobody.diagnostics[0].message, HasSubstr("lists none"));
  const auto crl = load_string("[admin]\n[admin.tls]\ncert = \"c\"\nkey = \"k\"\ncrl = \"x.crl\"\n");
  ASSERT_TRUE(crl.ok()) << all_diagnostics(crl);
  ASSERT_EQ(crl.diagnostics.size(), 1u) << all_diagnostics(crl);
  EXPECT_EQ(crl.diagnostics[0].key, "admin.tls.crl");
}

} // namespace
} // namespace firehook::config

namespace firehook::config {
namespace {

constexpr std::string_view enrollment_listener = R"(
[[listener]]
name = "enroll"
protocol = "mqtts"
port = 8884
auth = ["enrollment", "password"]
[listener.tls]
cert = "c"
key = "k"
)";

TEST(config_enrollment, templates_are_read_in_order) {
  const load_result result = load_string(std::string(R"(
[[enrollment.template]]
name = "thermostat"
roles = ["thermostats", "readers"]
attributes = { building = "b1", floor = "3" }
days = 30

[[enrollment.template]]
name = "gateway"
roles = ["gateways"]
)") + std::string(enrollment_listener));
  ASSERT_TRUE(result.ok()) << all_diagnostics(result);
  const auto& e = result.cfg->enrollment;
  ASSERT_EQ(e.templates.size(), 2u);
  EXPECT_EQ(e.templates[0].name, "thermostat");
  EXPECT_EQ(e.templates[0].roles, (std::vector<std::string>{"thermostats", "readers"}));
  EXPECT_EQ(e.templates[0].attributes.at("floor"), "3");
  EXPECT_EQ(e.templates[0].days, 30u);
  EXPECT_EQ(e.templates[1].days, 365u);
  EXPECT_EQ(e.find("gateway"), &e.templates[1]);
  EXPECT_EQ(e.find("nope"), nullptr);
  EXPECT_EQ(result.cfg->listeners[0].auth, (std::vector{auth_method::enrollment, auth_method::password}));
}

TEST(config_enrollment, bad_templates_are_errors_at_their_keys) {
  const load_result result = load_string(R"([[enrollment.template]]
name = "a b"
roles = []
days = 0
colour = "red"

[[enrollment.template]]
name = "t"
roles = ["r", "r"]
attributes = { k = 1 }

[[enrollment.template]]
name = "t"
roles = ["r"]
)",
                                         "f.toml");
  EXPECT_FALSE(result.ok());
  const std::string all = all_diagnostics(result);
  EXPECT_THAT(all, HasSubstr("f.toml:2:8: enrollment.template[0].name: must be 1 to 64 characters"));
  EXPECT_THAT(all, HasSubstr("f.toml:3:9: enrollment.template[0].roles: must name at least one role"));
  EXPECT_THAT(all, HasSubstr("enrollment.template[0].days: must be between 1 and 3650 (got 0)"));
  EXPECT_THAT(all, HasSubstr("enrollment.template[0].colour: unknown key"));
  EXPECT_THAT(all, HasSubstr("f.toml:9:15: enrollment.template[1].roles[1]: \"r\" is listed twice"));
  EXPECT_THAT(all, HasSubstr("enrollment.template[1].attributes.k: must be a string (got integer)"));
  EXPECT_THAT(all, HasSubstr("f.toml:13:8: enrollment.template[2].name: \"t\" is already the name"));
}

TEST(config_enrollment, the_method_needs_a_template_and_tls) {
  const diagnostic d = only_error(load_string(enrollment_listener, "f.toml"));
  EXPECT_EQ(d.key, "listener[0].auth");
  EXPECT_EQ(d.line, 6u);
  EXPECT_THAT(d.message, HasSubstr("needs at least one [[enrollment.template]]"));
  const diagnostic plain = only_error(load_string(R"([[enrollment.template]]
name = "t"
roles = ["r"]
[[listener]]
port = 1883
auth = ["enrollment"]
)",
                                                  "f.toml"));
  EXPECT_EQ(plain.line, 6u);
  EXPECT_THAT(plain.message, HasSubstr("needs a TLS listener"));
}

} // namespace
} // namespace firehook::config

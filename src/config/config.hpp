#pragma once

// The broker's configuration: a TOML file parsed once into the typed structs below and
// validated, never clamped. A value out of range, of the wrong type, or a key the broker
// does not know is an error naming file, line, column and key; start-up stops on it.
//
// Ownership: the broker holds a std::shared_ptr<const config>. A reload builds and
// validates a new one and swaps the pointer, so readers never see a half-applied change
// and a bad reload leaves the running configuration untouched.
//
// Every field below has the default documented in docs/configuration.md; `defaults()` and
// a value-initialised `config{}` are the same except that the latter has no listener.
//
// The functions below share no state and may be called from any thread; toml++ is used only
// inside config.cpp, so including this header stays cheap.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace firehook::config {

enum class log_level : std::uint8_t { trace, debug, info, warn, error, off };
enum class log_format : std::uint8_t { text, json };

// Only plain TCP for now; "mqtts", "ws" and "wss" are rejected as "not supported yet" until
// the net/ folder can serve them, rather than accepted and silently served as plaintext.
enum class listener_protocol : std::uint8_t { mqtt };

struct broker_settings {
  std::uint16_t shards = 0;                 // threads; 0 = one per CPU core. 0..256
  std::chrono::seconds sys_interval{10};    // between $SYS/broker/... updates; 0 disables. 0..3600
  std::filesystem::path state_dir{"state"}; // already resolved against the config file's folder
};

struct log_settings {
  log_level level = log_level::info;
  log_format format = log_format::text;
};

// Types are the MQTT wire types where the value is advertised to clients, so the session
// can copy them into CONNACK properties without a narrowing cast.
struct limit_settings {
  std::uint32_t max_connections = 100'000;     // whole broker. 1..10'000'000
  std::chrono::seconds connect_timeout{5};     // accept to CONNECT. 1..300
  std::uint32_t max_packet_size = 1'048'576;   // incoming; CONNACK Maximum Packet Size. 64..268'435'455
  std::uint16_t max_inflight = 64;             // CONNACK Receive Maximum, and unacked QoS 1/2 sent per client
  std::uint32_t max_queued_messages = 1000;    // per session; 0 = none queued. 0..10'000'000
  std::uint64_t max_queued_bytes = 16'777'216; // per session. 0..2^40
  std::uint32_t max_subscriptions_per_client = 1000; // 1..1'000'000
  std::uint16_t max_topic_levels = 32;               // topics and filters. 1..1024
  std::uint16_t max_topic_length = 4096;             // bytes. 1..65535
  std::uint16_t max_client_id_length = 128;          // bytes. 1..65535
  std::uint16_t max_keep_alive = 3600;               // seconds; 0 = no cap. Server Keep Alive when exceeded
  std::uint32_t max_session_expiry = 86'400;         // seconds; larger requests are capped to this
  std::uint16_t topic_alias_maximum = 64;            // CONNACK Topic Alias Maximum; 0 = no aliases
  std::uint8_t max_qos = 2;                          // 0..2
  bool retain_available = true;
  std::uint32_t max_retained_messages = 100'000; // 0..100'000'000
  std::uint32_t max_message_expiry = 0;          // seconds; 0 = no cap
};

struct listener_settings {
  std::string name = "default";      // unique, [A-Za-z0-9_-]+
  std::string address = "127.0.0.1"; // IPv4 or IPv6 literal, or "localhost"
  std::uint16_t port = 1883;         // 0 = any free port
  listener_protocol protocol = listener_protocol::mqtt;
  bool allow_plaintext = false; // required for plaintext on a non-loopback address
  bool allow_anonymous = false;
};

struct config {
  broker_settings broker;
  log_settings log;
  limit_settings limits;
  std::vector<listener_settings> listeners; // never empty once loaded: absent means the default one
};

struct diagnostic {
  std::string file;  // as given to load_file / load_string
  unsigned line = 0; // 1-based; 0 when the problem has no position (e.g. the file cannot be read)
  unsigned column = 0;
  std::string key; // dotted path, e.g. "limits.max_inflight" or "listener[1].port"; may be empty
  std::string message;
  bool warning = false;

  // "firehook.toml:12:3: limits.max_inflight: must be between 1 and 65535 (got 0)";
  // a warning reads "firehook.toml:4:19: warning: listener[0].allow_plaintext: ...".
  std::string to_string() const;
};

struct load_result {
  std::shared_ptr<const config> cfg;   // set exactly when there is no error (warnings allowed)
  std::vector<diagnostic> diagnostics; // errors and warnings, in file order

  bool ok() const;
};

// Reads and validates a configuration file. Never throws for a bad or unreadable file:
// every problem is a diagnostic. A relative broker.state_dir is resolved against the folder
// of `path` as given (not made absolute), so "../state" in examples/dev.toml becomes "state".
load_result load_file(const std::filesystem::path& path);

// As load_file, for text already in memory. `file_name` appears in diagnostics and its
// folder is the base for a relative state_dir; the default "<string>" has none, so a
// relative state_dir stays relative to the working directory.
load_result load_string(std::string_view toml, std::string_view file_name = "<string>");

// The configuration an empty file gives: every documented default and the default listener.
config defaults();

// 127.0.0.0/8, ::1 (and its IPv4-mapped form ::ffff:127.x.y.z), and "localhost".
// Anything else, including text that is not an address, is not loopback.
bool is_loopback(std::string_view address);

} // namespace firehook::config

#include "config/config.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

// Debian's libtomlplusplus is a compiled library that exports only the exception-mode ABI
// (toml::v3::ex): parse() throws toml::parse_error. Fail here, not at link time, if a
// compiler flag ever turns that off.
#if !TOML_EXCEPTIONS
#error "firehook config expects toml++ with TOML_EXCEPTIONS=1 (the ABI Debian's libtomlplusplus exports)"
#endif

namespace firehook::config {
namespace {

std::string_view type_name(toml::node_type type) {
  switch (type) {
  case toml::node_type::table:
    return "table";
  case toml::node_type::array:
    return "array";
  case toml::node_type::string:
    return "string";
  case toml::node_type::integer:
    return "integer";
  case toml::node_type::floating_point:
    return "floating-point number";
  case toml::node_type::boolean:
    return "boolean";
  case toml::node_type::date:
    return "date";
  case toml::node_type::time:
    return "time";
  case toml::node_type::date_time:
    return "date-time";
  case toml::node_type::none:
    break;
  }
  return "nothing";
}

// A user's string echoed in a message: quoted, control bytes escaped so a diagnostic stays
// on one line, and shortened so a pasted blob does not drown the message.
std::string quoted_value(std::string_view text) {
  constexpr std::size_t max_shown = 64;
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < max_shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      std::array<char, 8> hex{};
      std::snprintf(hex.data(), hex.size(), "\\x%02x", c);
      out += hex.data();
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > max_shown) {
    out += "...";
  }
  out += '"';
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// An address in its binary form, so "::1" and "0:0:0:0:0:0:0:1" compare equal.
struct binary_address {
  int family = AF_UNSPEC;
  std::array<unsigned char, 16> bytes{};
  bool operator==(const binary_address&) const = default;
};

std::optional<binary_address> parse_ip(std::string_view text) {
  // inet_pton reads a C string: an embedded NUL would hide whatever follows it.
  if (text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  const std::string c_text(text);
  binary_address parsed;
  if (inet_pton(AF_INET, c_text.c_str(), parsed.bytes.data()) == 1) {
    parsed.family = AF_INET;
    return parsed;
  }
  if (inet_pton(AF_INET6, c_text.c_str(), parsed.bytes.data()) == 1) {
    parsed.family = AF_INET6;
    return parsed;
  }
  return std::nullopt;
}

bool valid_listener_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

class diagnostics_sink {
public:
  explicit diagnostics_sink(std::string file) : file_(std::move(file)) {}

  void error(const toml::source_region& where, std::string key, std::string message) {
    add(where, std::move(key), std::move(message), false);
  }
  void warning(const toml::source_region& where, std::string key, std::string message) {
    add(where, std::move(key), std::move(message), true);
  }

  bool has_errors() const {
    return std::any_of(list_.begin(), list_.end(), [](const diagnostic& d) { return !d.warning; });
  }

  // In file order, so a user fixing them top to bottom never scrolls back; stable so that
  // several findings on one line keep the order they were found in.
  std::vector<diagnostic> take() {
    std::stable_sort(list_.begin(), list_.end(), [](const diagnostic& a, const diagnostic& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    return std::move(list_);
  }

private:
  void add(const toml::source_region& where, std::string key, std::string message, bool warning) {
    list_.push_back(diagnostic{.file = file_,
                               .line = where.begin.line,
                               .column = where.begin.column,
                               .key = std::move(key),
                               .message = std::move(message),
                               .warning = warning});
  }

  std::string file_;
  std::vector<diagnostic> list_;
};

// Reads one TOML table into typed fields. Every accessor records its key as known, so that
// finish() can report all other keys as unknown: a misspelt key would otherwise be ignored
// and its setting silently left at the default.
class table_reader {
public:
  table_reader(diagnostics_sink& sink, const toml::table& table, std::string path)
      : sink_(sink), table_(table), path_(std::move(path)) {}

  std::string key_path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  const toml::node* find(std::string_view key) {
    known_.push_back(key);
    return table_.get(key);
  }

  // A sub-table; reports a value of another type. Null when absent or wrong.
  const toml::table* table(std::string_view key) {
    const toml::node* node = find(key);
    if (node == nullptr) {
      return nullptr;
    }
    if (!node->is_table()) {
      wrong_type(*node, key, "a table");
      return nullptr;
    }
    return node->as_table();
  }

  // T is an integer type or std::chrono::seconds; [min, max] must fit in T. `out` keeps its
  // default when the key is absent or wrong.
  template <class T>
  void integer(std::string_view key, T& out, std::int64_t min, std::int64_t max) {
    const toml::node* node = find(key);
    if (node == nullptr) {
      return;
    }
    const auto* value = node->as_integer();
    if (value == nullptr) {
      wrong_type(*node, key, "an integer");
      return;
    }
    const std::int64_t got = value->get();
    if (got < min || got > max) {
      sink_.error(node->source(), key_path(key),
                  "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (got " +
                      std::to_string(got) + ")");
      return;
    }
    if constexpr (std::is_same_v<T, std::chrono::seconds>) {
      out = std::chrono::seconds{got};
    } else {
      out = static_cast<T>(got);
    }
  }

  void boolean(std::string_view key, bool& out) {
    const toml::node* node = find(key);
    if (node == nullptr) {
      return;
    }
    if (const auto* value = node->as_boolean()) {
      out = value->get();
    } else {
      wrong_type(*node, key, "a boolean (true or false)");
    }
  }

  // Null when absent or not a string (the latter reported).
  const toml::value<std::string>* string(std::string_view key) {
    const toml::node* node = find(key);
    if (node == nullptr) {
      return nullptr;
    }
    const auto* value = node->as_string();
    if (value == nullptr) {
      wrong_type(*node, key, "a string");
    }
    return value;
  }

  template <class E>
  void choice(std::string_view key, E& out, std::initializer_list<std::pair<std::string_view, E>> options) {
    const auto* value = string(key);
    if (value == nullptr) {
      return;
    }
    for (const auto& [text, option] : options) {
      if (value->get() == text) {
        out = option;
        return;
      }
    }
    std::string allowed;
    for (const auto& option : options) {
      allowed += (allowed.empty() ? "" : ", ") + std::string(option.first);
    }
    error(*value, key, "must be one of " + allowed + " (got " + quoted_value(value->get()) + ")");
  }

  void error(const toml::node& node, std::string_view key, std::string message) {
    sink_.error(node.source(), key_path(key), std::move(message));
  }

  void wrong_type(const toml::node& node, std::string_view key, std::string_view expected) {
    error(node, key,
          "must be " + std::string(expected) + " (got " + std::string(type_name(node.type())) + ")");
  }

  void finish() {
    for (const auto& [key, node] : table_) {
      const std::string_view name = key.str();
      if (std::find(known_.begin(), known_.end(), name) != known_.end()) {
        continue;
      }
      std::string message = "unknown key";
      std::string_view closest;
      std::size_t closest_distance = 3; // suggest only near misses: a typo, not a different word
      for (const std::string_view candidate : known_) {
        const std::size_t distance = edit_distance(name, candidate);
        if (distance < closest_distance) {
          closest = candidate;
          closest_distance = distance;
        }
      }
      if (!closest.empty()) {
        message += " (did you mean '" + std::string(closest) + "'?)";
      }
      sink_.error(key.source(), key_path(name), std::move(message));
    }
  }

private:
  diagnostics_sink& sink_;
  const toml::table& table_;
  std::string path_;
  std::vector<std::string_view> known_;
};

// A listener as read, with the positions the cross-listener checks need to point at.
struct listener_entry {
  listener_settings settings;
  std::string path; // "listener[2]"
  toml::source_region table_at;
  toml::source_region name_at;
  toml::source_region address_at;
  toml::source_region allow_plaintext_at;
  std::optional<binary_address> binary; // absent for "localhost" or an invalid address
  bool address_valid = false;
  bool protocol_valid = false; // an unsupported protocol must not also be blamed for plaintext
};

void read_broker(table_reader& section, broker_settings& out) {
  section.integer("shards", out.shards, 0, 256);
  section.integer("sys_interval", out.sys_interval, 0, 3600);
  if (const auto* dir = section.string("state_dir")) {
    const std::string& text = dir->get();
    if (text.empty()) {
      section.error(*dir, "state_dir", "must not be empty");
    } else if (text.find('\0') != std::string::npos) {
      section.error(*dir, "state_dir", "must not contain a NUL character");
    } else {
      out.state_dir = text;
    }
  }
  section.finish();
}

void read_log(table_reader& section, log_settings& out) {
  section.choice("level", out.level,
                 {{"trace", log_level::trace},
                  {"debug", log_level::debug},
                  {"info", log_level::info},
                  {"warn", log_level::warn},
                  {"error", log_level::error},
                  {"off", log_level::off}});
  section.choice("format", out.format, {{"text", log_format::text}, {"json", log_format::json}});
  section.finish();
}

void read_limits(table_reader& section, limit_settings& out) {
  section.integer("max_connections", out.max_connections, 1, 10'000'000);
  section.integer("connect_timeout", out.connect_timeout, 1, 300);
  // 268'435'455 is the largest Variable Byte Integer, so the largest Remaining Length (MQTT 5.0 §1.5.5).
  section.integer("max_packet_size", out.max_packet_size, 64, 268'435'455);
  // A Receive Maximum of 0 is a Protocol Error (MQTT 5.0 §3.2.2.3.3), hence the minimum of 1.
  section.integer("max_inflight", out.max_inflight, 1, 65535);
  section.integer("max_queued_messages", out.max_queued_messages, 0, 10'000'000);
  section.integer("max_queued_bytes", out.max_queued_bytes, 0, std::int64_t{1} << 40);
  section.integer("max_subscriptions_per_client", out.max_subscriptions_per_client, 1, 1'000'000);
  section.integer("max_topic_levels", out.max_topic_levels, 1, 1024);
  section.integer("max_topic_length", out.max_topic_length, 1, 65535);
  section.integer("max_client_id_length", out.max_client_id_length, 1, 65535);
  section.integer("max_keep_alive", out.max_keep_alive, 0, 65535);
  section.integer("max_session_expiry", out.max_session_expiry, 0, 4'294'967'295);
  section.integer("topic_alias_maximum", out.topic_alias_maximum, 0, 65535);
  section.integer("max_qos", out.max_qos, 0, 2);
  section.boolean("retain_available", out.retain_available);
  section.integer("max_retained_messages", out.max_retained_messages, 0, 100'000'000);
  // A Message Expiry Interval is a Four Byte Integer (MQTT 5.0 §3.3.2.3.3).
  section.integer("max_message_expiry", out.max_message_expiry, 0, 4'294'967'295);
  section.finish();
}

// False when the key is present but unusable (already reported).
bool read_protocol(table_reader& section, listener_protocol& out) {
  const auto* value = section.string("protocol");
  if (value == nullptr) {
    return section.find("protocol") == nullptr;
  }
  const std::string& text = value->get();
  if (text == "mqtt") {
    out = listener_protocol::mqtt;
    return true;
  }
  if (text == "mqtts" || text == "ws" || text == "wss") {
    section.error(*value, "protocol",
                  quoted_value(text) + " is not supported yet (only \"mqtt\", plain TCP, for now)");
  } else {
    section.error(*value, "protocol", "must be \"mqtt\" (got " + quoted_value(text) + ")");
  }
  return false;
}

listener_entry read_listener(diagnostics_sink& sink, const toml::table& table, std::string path) {
  listener_entry entry;
  entry.path = std::move(path);
  entry.table_at = table.source();
  entry.name_at = entry.address_at = entry.allow_plaintext_at = entry.table_at;
  listener_settings& out = entry.settings;
  table_reader section(sink, table, entry.path);

  if (const auto* name = section.string("name")) {
    entry.name_at = name->source();
    if (valid_listener_name(name->get())) {
      out.name = name->get();
    } else {
      section.error(*name, "name",
                    "must be letters, digits, '_' or '-' (got " + quoted_value(name->get()) + ")");
      out.name.clear(); // keeps an invalid name out of the duplicate check
    }
  }

  entry.address_valid = true;
  if (const auto* address = section.string("address")) {
    entry.address_at = address->source();
    out.address = address->get();
  } else if (section.find("address") != nullptr) {
    entry.address_valid = false; // wrong type, already reported
  }
  if (entry.address_valid && out.address != "localhost") {
    entry.binary = parse_ip(out.address);
    if (!entry.binary) {
      entry.address_valid = false;
      sink.error(entry.address_at, section.key_path("address"),
                 "must be an IPv4 or IPv6 address or \"localhost\" (got " + quoted_value(out.address) + ")");
    }
  }

  section.integer("port", out.port, 0, 65535);
  entry.protocol_valid = read_protocol(section, out.protocol);
  if (const toml::node* node = section.find("allow_plaintext")) {
    entry.allow_plaintext_at = node->source();
  }
  section.boolean("allow_plaintext", out.allow_plaintext);
  section.boolean("allow_anonymous", out.allow_anonymous);
  section.finish();
  return entry;
}

// IPv6 in brackets, as in a URL, so "::" stays readable next to the ':' of a message.
std::string shown_address(const listener_settings& listener) {
  const bool ipv6 = listener.address.find(':') != std::string::npos;
  return ipv6 ? "[" + listener.address + "]" : listener.address;
}

std::string host_port(const listener_settings& listener) {
  return shown_address(listener) + ":" + std::to_string(listener.port);
}

// Checks that need several listeners, or several keys of one listener, at once.
void check_listeners(diagnostics_sink& sink, const std::vector<listener_entry>& entries) {
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const listener_entry& entry = entries[i];
    const listener_settings& listener = entry.settings;
    for (std::size_t j = 0; j < i; ++j) {
      const listener_entry& earlier = entries[j];
      if (!listener.name.empty() && listener.name == earlier.settings.name) {
        sink.error(entry.name_at, entry.path + ".name",
                   "duplicate listener name '" + listener.name + "' (first used on line " +
                       std::to_string(earlier.name_at.begin.line) + ")");
      }
      // Port 0 asks the kernel for a free port, so two of those never collide.
      const bool same_address =
          entry.address_valid && earlier.address_valid &&
          (entry.binary ? entry.binary == earlier.binary : !earlier.binary); // both "localhost"
      if (same_address && listener.port != 0 && listener.port == earlier.settings.port) {
        sink.error(entry.address_at, entry.path + ".address",
                   "listener '" + listener.name + "' uses " + host_port(listener) + ", as does listener '" +
                       earlier.settings.name + "' on line " + std::to_string(earlier.table_at.begin.line));
      }
    }

    if (!entry.address_valid || !entry.protocol_valid || listener.protocol != listener_protocol::mqtt ||
        is_loopback(listener.address)) {
      continue;
    }
    // Plaintext beyond this machine exposes credentials and messages to the network, so it has
    // to be asked for by name (DESIGN.md: "a plaintext listener must be asked for by name").
    if (!listener.allow_plaintext) {
      sink.error(entry.address_at, entry.path + ".address",
                 "plaintext listener '" + listener.name + "' on " + shown_address(listener) +
                     " needs allow_plaintext = true");
    } else {
      sink.warning(entry.allow_plaintext_at, entry.path + ".allow_plaintext",
                   "plaintext listener '" + listener.name + "' on " + shown_address(listener) +
                       ": credentials and messages cross the network unencrypted");
    }
  }
}

void read_listeners(diagnostics_sink& sink, table_reader& root, config& out) {
  std::vector<listener_entry> entries;
  if (const toml::node* node = root.find("listener")) {
    if (const auto* list = node->as_array()) {
      for (std::size_t i = 0; i < list->size(); ++i) {
        const toml::node& element = *list->get(i);
        const std::string path = "listener[" + std::to_string(i) + "]";
        if (const auto* table = element.as_table()) {
          entries.push_back(read_listener(sink, *table, path));
        } else {
          sink.error(element.source(), path,
                     "must be a table (got " + std::string(type_name(element.type())) + ")");
        }
      }
    } else if (node->is_table()) {
      root.error(*node, "listener", "must be an array of tables: write [[listener]], not [listener]");
    } else {
      root.wrong_type(*node, "listener", "an array of tables ([[listener]])");
    }
  }
  check_listeners(sink, entries);
  for (listener_entry& entry : entries) {
    out.listeners.push_back(std::move(entry.settings));
  }
}

} // namespace

std::string diagnostic::to_string() const {
  std::string out = file + ":";
  if (line != 0) {
    out += std::to_string(line) + ":" + std::to_string(column) + ":";
  }
  out += warning ? " warning: " : " ";
  if (!key.empty()) {
    out += key + ": ";
  }
  return out + message;
}

bool load_result::ok() const {
  return cfg != nullptr &&
         std::none_of(diagnostics.begin(), diagnostics.end(), [](const diagnostic& d) { return !d.warning; });
}

config defaults() {
  config out;
  out.listeners.emplace_back();
  return out;
}

bool is_loopback(std::string_view address) {
  if (address == "localhost") {
    return true;
  }
  const auto parsed = parse_ip(address);
  if (!parsed) {
    return false;
  }
  const auto& b = parsed->bytes;
  if (parsed->family == AF_INET) {
    return b[0] == 127;
  }
  const bool v4_mapped = std::all_of(b.begin(), b.begin() + 10, [](unsigned char x) { return x == 0; }) &&
                         b[10] == 0xff && b[11] == 0xff;
  if (v4_mapped) {
    return b[12] == 127;
  }
  return std::all_of(b.begin(), b.begin() + 15, [](unsigned char x) { return x == 0; }) && b[15] == 1;
}

load_result load_string(std::string_view toml_text, std::string_view file_name) {
  diagnostics_sink sink{std::string(file_name)};
  toml::table document;
  try {
    document = toml::parse(toml_text, file_name);
  } catch (const toml::parse_error& e) {
    // A syntax error leaves no document to validate; toml++ stops at the first one.
    sink.error(e.source(), "", std::string(e.description()));
    return load_result{.cfg = nullptr, .diagnostics = sink.take()};
  }

  config out;
  table_reader root(sink, document, "");
  if (const auto* table = root.table("broker")) {
    table_reader section(sink, *table, "broker");
    read_broker(section, out.broker);
  }
  if (const auto* table = root.table("log")) {
    table_reader section(sink, *table, "log");
    read_log(section, out.log);
  }
  if (const auto* table = root.table("limits")) {
    table_reader section(sink, *table, "limits");
    read_limits(section, out.limits);
  }
  read_listeners(sink, root, out);
  root.finish();

  if (out.listeners.empty()) {
    out.listeners.emplace_back();
  }
  // Relative to the configuration file, not to wherever the broker happens to be started.
  if (out.broker.state_dir.is_relative()) {
    out.broker.state_dir =
        (std::filesystem::path(file_name).parent_path() / out.broker.state_dir).lexically_normal();
  }

  load_result result;
  if (!sink.has_errors()) {
    result.cfg = std::make_shared<const config>(std::move(out));
  }
  result.diagnostics = sink.take();
  return result;
}

load_result load_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  const auto unreadable = [&](std::string message) {
    diagnostic d;
    d.file = name;
    d.message = std::move(message);
    return load_result{.cfg = nullptr, .diagnostics = {std::move(d)}};
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return unreadable("cannot read: is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return unreadable("cannot open: " + std::generic_category().message(errno));
  }
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) {
    return unreadable("cannot read: " + std::generic_category().message(errno));
  }
  return load_string(text, name);
}

} // namespace firehook::config

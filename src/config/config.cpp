#include "config/config.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <optional>
#include <utility>

#include "config/toml_reader.hpp"

namespace firehook::config {
namespace {

using detail::diagnostics_sink;
using detail::quoted_value;
using detail::read_rate_overrides;
using detail::string_element;
using detail::table_reader;
using detail::type_name;

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
  toml::source_region protocol_at;
};

// Why `text` cannot name a file, or nullopt when it can. The check is on the text only: whether
// the file exists is for whoever opens it (the TLS layer, the credential store) to report, since
// it may legitimately appear later (a certificate deployed after the configuration).
std::optional<std::string> path_problem(std::string_view text) {
  if (text.empty()) {
    return "must not be empty";
  }
  if (text.find('\0') != std::string_view::npos) {
    return "must not contain a NUL character";
  }
  return std::nullopt;
}

// Relative to the configuration file's folder, not to wherever the broker happens to be started.
std::filesystem::path resolve(const std::filesystem::path& base, const std::filesystem::path& path) {
  return path.is_relative() ? (base / path).lexically_normal() : path;
}

// A file path, resolved against `base`. False when absent or unusable (the latter reported).
bool read_path(table_reader& section, std::string_view key, std::filesystem::path& out,
               const std::filesystem::path& base) {
  const auto* value = section.string(key);
  if (value == nullptr) {
    return false;
  }
  if (const auto problem = path_problem(value->get())) {
    section.error(*value, key, *problem);
    return false;
  }
  out = resolve(base, value->get());
  return true;
}

// A string that must say something (a claim name, an OpenSSL cipher list). OpenSSL reads the
// cipher lists as C strings, where a NUL would silently cut the list short.
void read_text(table_reader& section, std::string_view key, std::string& out) {
  const auto* value = section.string(key);
  if (value == nullptr) {
    return;
  }
  if (value->get().empty()) {
    section.error(*value, key, "must not be empty");
  } else if (value->get().find('\0') != std::string::npos) {
    section.error(*value, key, "must not contain a NUL character");
  } else {
    out = value->get();
  }
}

void read_broker(table_reader& section, broker_settings& out) {
  section.integer("shards", out.shards, 0, 256);
  section.integer("sys_interval", out.sys_interval, 0, 3600);
  if (const auto* dir = section.string("state_dir")) {
    if (const auto problem = path_problem(dir->get())) {
      section.error(*dir, "state_dir", *problem);
    } else {
      out.state_dir = dir->get(); // resolved by load_string, once the whole file is read
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
  section.integer("repeat_window", out.repeat_window, 1, 3600);
  section.integer("max_event_lines_per_second", out.max_event_lines_per_second, 0, 1'000'000);
  section.finish();
}

void read_audit(table_reader& section, audit_settings& out, const std::filesystem::path& base) {
  section.boolean("enabled", out.enabled);
  read_path(section, "file", out.file, base);
  read_path(section, "key_file", out.key_file, base);
  section.integer("max_file_bytes", out.max_file_bytes, 4096, std::int64_t{1} << 40);
  section.integer("max_file_age", out.max_file_age, 0, 31'536'000);
  section.integer("keep_files", out.keep_files, 1, 100'000);
  section.integer("checkpoint_interval", out.checkpoint_interval, 1, 86'400);
  section.choice("on_failure", out.on_failure,
                 {{"serve", audit_failure::serve}, {"refuse", audit_failure::refuse}});
  section.finish();
}

// webhook and the webhook_* keys of [alerts]; the latter only with the former.
void read_webhook(table_reader& section, alert_settings& out, const std::filesystem::path& base) {
  webhook_settings w;
  const auto* url = section.string("webhook");
  bool url_ok = false;
  if (url != nullptr) {
    if (const auto problem = parse_webhook_url(url->get(), w.url)) {
      section.error(*url, "webhook", *problem + " (got " + quoted_value(url->get()) + ")");
    } else if (!w.url.tls && !is_loopback(w.url.host)) {
      section.error(*url, "webhook",
                    "plain http only to a loopback host (127.0.0.1, ::1, localhost): alerts name clients and "
                    "addresses; use https (got " +
                        quoted_value(url->get()) + ")");
    } else {
      url_ok = true;
    }
  }
  const bool ca = read_path(section, "webhook_ca", w.ca, base);
  const bool token = read_path(section, "webhook_token_file", w.token_file, base);
  const bool retries = section.integer("webhook_retries", w.retries, 1, 100);
  const bool timeout = section.integer("webhook_timeout", w.timeout, 1, 300);
  for (const auto& [key, given] :
       {std::pair{"webhook_ca", ca}, std::pair{"webhook_token_file", token},
        std::pair{"webhook_retries", retries}, std::pair{"webhook_timeout", timeout}}) {
    section.require(key, !given || url != nullptr, "needs alerts.webhook");
  }
  section.require("webhook_ca", !ca || !url_ok || w.url.tls, "a CA for an http:// webhook, which has no TLS");
  if (url_ok) {
    out.webhook = std::move(w);
  }
}

// A duration written in milliseconds (a key ending in _ms).
void read_milliseconds(table_reader& section, std::string_view key, std::chrono::milliseconds& out,
                       std::int64_t min, std::int64_t max) {
  std::int64_t ms = out.count();
  section.integer(key, ms, min, max);
  out = std::chrono::milliseconds(ms);
}

void read_abuse(diagnostics_sink& sink, table_reader& section, abuse_settings& out) {
  if (const auto networks = section.strings("allowlist")) {
    std::vector<base::address_range> ranges;
    for (const string_element& network : *networks) {
      std::string error;
      if (auto range = base::address_range::parse(network.text(), error)) {
        ranges.push_back(std::move(*range));
      } else {
        sink.error(network.value->source(), network.path,
                   error + " (got " + quoted_value(network.text()) + ")");
      }
    }
    out.allowlist = base::address_set(std::move(ranges));
  }
  section.integer("max_connections_per_address", out.max_connections_per_address, 1, 10'000'000);
  section.integer("connection_rate_per_address", out.connection_rate_per_address, 1, 1'000'000);
  section.integer("connection_burst_per_address", out.connection_burst_per_address, 1, 10'000'000);
  section.integer("max_pending_per_address", out.max_pending_per_address, 1, 10'000'000);
  section.integer("network_prefix_ipv4", out.network_prefix_ipv4, 0, 32);
  section.integer("network_prefix_ipv6", out.network_prefix_ipv6, 0, 128);
  section.integer("max_connections_per_network", out.max_connections_per_network, 1, 10'000'000);
  section.integer("connection_rate_per_network", out.connection_rate_per_network, 1, 1'000'000);
  section.integer("connection_burst_per_network", out.connection_burst_per_network, 1, 10'000'000);
  section.integer("max_pending_per_network", out.max_pending_per_network, 1, 10'000'000);
  section.integer("max_pending_connections", out.max_pending_connections, 1, 10'000'000);
  section.integer("login_failures", out.login_failures, 0, 1'000'000);
  section.integer("login_window", out.login_window, 1, 86'400);
  read_milliseconds(section, "login_delay_ms", out.login_delay, 1, 60'000);
  read_milliseconds(section, "login_delay_max_ms", out.login_delay_max, 1, 60'000);
  section.integer("ban_after_failures", out.ban_after_failures, 0, 1'000'000);
  section.integer("ban_time", out.ban_time, 1, 31'536'000);
  section.integer("ban_time_max", out.ban_time_max, 1, 31'536'000);
  section.integer("flapping_connects", out.flapping_connects, 0, 1'000'000);
  section.integer("flapping_window", out.flapping_window, 1, 86'400);
  section.integer("flapping_ban_time", out.flapping_ban_time, 1, 31'536'000);
  section.integer("max_tracked_keys", out.max_tracked_keys, 100, 10'000'000);
  // Never clamped: a maximum below its start is an error, at the maximum's key.
  section.require("login_delay_max_ms", out.login_delay_max >= out.login_delay,
                  "must be at least login_delay_ms (" + std::to_string(out.login_delay.count()) + ")");
  section.require("ban_time_max", out.ban_time_max >= out.ban_time,
                  "must be at least ban_time (" + std::to_string(out.ban_time.count()) + ")");
  section.finish();
}

void read_rates(table_reader& section, rate_settings& out) {
  rate_overrides given;
  read_rate_overrides(section, given, 0);
  out = with_overrides(out, {&given});
  // A bucket that can never hold a whole token would hold its client back for ever.
  const auto burst_needed = [&](std::uint32_t rate, std::uint32_t burst, std::string_view burst_key,
                                std::string_view rate_key) {
    section.require(burst_key, rate == 0 || burst != 0,
                    "must be at least 1 while " + std::string(rate_key) + " is set");
  };
  burst_needed(out.publish_rate, out.publish_burst, "publish_burst", "publish_rate");
  burst_needed(out.publish_bytes_rate, out.publish_bytes_burst, "publish_bytes_burst", "publish_bytes_rate");
  burst_needed(out.subscribe_rate, out.subscribe_burst, "subscribe_burst", "subscribe_rate");
}

void read_limits(table_reader& section, limit_settings& out) {
  section.integer("max_connections", out.max_connections, 1, 10'000'000);
  section.integer("connect_timeout", out.connect_timeout, 1, 300);
  section.integer("tls_handshake_timeout", out.tls_handshake_timeout, 1, 300);
  // 268'435'455 is the largest Variable Byte Integer, so the largest Remaining Length (MQTT 5.0 §1.5.5).
  section.integer("max_packet_size", out.max_packet_size, 64, 268'435'455);
  // A Receive Maximum of 0 is a Protocol Error (MQTT 5.0 §3.2.2.3.3), hence the minimum of 1.
  section.integer("max_inflight", out.max_inflight, 1, 65535);
  section.integer("max_queued_messages", out.max_queued_messages, 0, 10'000'000);
  section.integer("max_queued_bytes", out.max_queued_bytes, 0, std::int64_t{1} << 40);
  section.integer("slow_subscriber_timeout", out.slow_subscriber_timeout, 1, 86'400);
  section.choice("queue_overflow", out.queue_overflow,
                 {{"drop_newest", std::uint8_t{0}}, {"drop_oldest", std::uint8_t{1}}});
  read_rates(section, out.rates);
  section.integer("rate_limit_timeout", out.rate_limit_timeout, 1, 86'400);
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
  section.integer("max_retained_bytes", out.max_retained_bytes, 0, std::int64_t{1} << 40);
  section.integer("max_retained_message_bytes", out.max_retained_message_bytes, 1, std::int64_t{1} << 31);
  section.integer("max_sessions_per_identity", out.max_sessions_per_identity, 0, 10'000'000);
  section.integer("max_connections_per_identity", out.max_connections_per_identity, 0, 10'000'000);
  section.choice("duplicate", out.duplicate, {{"takeover", std::uint8_t{0}}, {"refuse_new", std::uint8_t{1}}});
  section.integer("max_pending_auth", out.max_pending_auth, 1, 1'000'000);
  section.integer("max_pending_auth_per_address", out.max_pending_auth_per_address, 1, 1'000'000);
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
  if (text == "mqtts") {
    out = listener_protocol::mqtts;
    return true;
  }
  if (text == "ws" || text == "wss") {
    section.error(*value, "protocol",
                  quoted_value(text) + " is not supported yet (only \"mqtt\" and \"mqtts\" for now)");
  } else {
    section.error(*value, "protocol", "must be \"mqtt\" or \"mqtts\" (got " + quoted_value(text) + ")");
  }
  return false;
}

std::string_view client_certificates_name(client_certificates mode) {
  switch (mode) {
  case client_certificates::none:
    return "none";
  case client_certificates::optional:
    return "optional";
  case client_certificates::required:
    return "required";
  }
  return "?";
}

// What [listener.tls] and [admin.tls] share: the server's certificate and key (required), the
// protocol version and the cipher lists. Which files exist is not checked here: the TLS layer
// loads them (and reloads them on SIGHUP) and reports what it cannot read, with the reason OpenSSL
// gives.
void read_tls_server(diagnostics_sink& sink, table_reader& section, const toml::table& table,
                     tls_settings& out, const std::filesystem::path& base) {
  const auto required_path = [&](std::string_view key, std::filesystem::path& field, std::string_view what) {
    if (section.find(key) == nullptr) {
      sink.error(table.source(), section.key_path(key), "required: " + std::string(what));
    } else {
      read_path(section, key, field, base);
    }
  };
  required_path("cert", out.cert, "the server certificate file (PEM: the certificate, then its chain)");
  required_path("key", out.key, "the server's private key file (PEM)");
  // TOML reads an unquoted 1.2 as a number; say how to write it rather than only "wrong type".
  const toml::node* version = section.find("min_version");
  if (version != nullptr && version->is_floating_point()) {
    section.error(*version, "min_version",
                  "must be a string: write \"1.2\" or \"1.3\", in quotes (got floating-point number)");
  } else {
    section.choice("min_version", out.min_version,
                   {{"1.2", tls_version::tls1_2}, {"1.3", tls_version::tls1_3}});
  }
  read_text(section, "ciphers", out.ciphers);
  read_text(section, "ciphersuites", out.ciphersuites);
}

// A CA or CRL that is never consulted reads as a check that is not made: a warning at each of
// `unused` that is in the table.
void warn_unused_client_checks(diagnostics_sink& sink, table_reader& section,
                               std::initializer_list<std::pair<const toml::node*, std::string_view>> unused,
                               std::string_view why) {
  for (const auto& [node, key] : unused) {
    if (node != nullptr) {
      sink.warning(node->source(), section.key_path(key), "has no effect: " + std::string(why));
    }
  }
}

// [listener.tls].
tls_settings read_tls(diagnostics_sink& sink, const toml::table& table, const std::string& path,
                      const std::filesystem::path& base) {
  tls_settings out;
  table_reader section(sink, table, path);
  read_tls_server(sink, section, table, out, base);
  const toml::node* ca = section.find("ca");
  read_path(section, "ca", out.ca, base);
  const toml::node* crl = section.find("crl");
  read_path(section, "crl", out.crl, base);

  const toml::node* mode = section.find("client_certificates");
  const bool mode_valid = section.choice("client_certificates", out.client_certs,
                                         {{"none", client_certificates::none},
                                          {"optional", client_certificates::optional},
                                          {"required", client_certificates::required}});
  if (mode != nullptr && mode_valid && out.client_certs != client_certificates::none && ca == nullptr) {
    sink.error(mode->source(), section.key_path("ca"),
               "required when client_certificates = \"" +
                   std::string(client_certificates_name(out.client_certs)) +
                   "\": the CA bundle (PEM) that client certificates must chain to");
  }
  if (mode_valid && out.client_certs == client_certificates::none) {
    warn_unused_client_checks(sink, section, {{ca, "ca"}, {crl, "crl"}},
                              "client_certificates is \"none\", so no client certificate is asked for");
  }
  section.finish();
  return out;
}

// [admin.tls]: as [listener.tls], but the client certificates' CA is `client_ca`, and with it a
// client certificate is asked for and optional (a request without one needs a bearer token). A
// certificate that does not verify against it fails the handshake.
tls_settings read_admin_tls(diagnostics_sink& sink, const toml::table& table,
                            const std::filesystem::path& base) {
  tls_settings out;
  table_reader section(sink, table, "admin.tls");
  read_tls_server(sink, section, table, out, base);
  const toml::node* client_ca = section.find("client_ca");
  if (read_path(section, "client_ca", out.ca, base)) {
    out.client_certs = client_certificates::optional;
  }
  const toml::node* crl = section.find("crl");
  read_path(section, "crl", out.crl, base);
  if (client_ca == nullptr) {
    warn_unused_client_checks(sink, section, {{crl, "crl"}},
                              "client_ca is not set, so no client certificate is asked for");
  }
  section.finish();
  return out;
}

// [admin] and [admin.tls]. Plain HTTP is for a loopback address only: anywhere else its bearer
// tokens would cross the network readable, so another address needs [admin.tls].
void read_admin(diagnostics_sink& sink, table_reader& section, admin_settings& out,
                const std::filesystem::path& base) {
  const toml::node* tls_node = section.find("tls");
  if (const toml::table* tls = section.table("tls")) {
    out.tls = read_admin_tls(sink, *tls, base);
  }
  if (const auto* address = section.string("address")) {
    const std::string& text = address->get();
    if (text != "localhost" && !parse_ip(text)) {
      section.error(*address, "address",
                    "must be an IPv4 or IPv6 address or \"localhost\" (got " + quoted_value(text) + ")");
    } else if (!is_loopback(text) && tls_node == nullptr) {
      section.error(*address, "address",
                    quoted_value(text) +
                        " is not a loopback address: the admin endpoint needs [admin.tls] there, or its "
                        "bearer tokens would cross the network readable (plain HTTP is for 127.0.0.1, ::1, "
                        "localhost)");
    } else {
      out.address = text;
    }
  }
  section.integer("port", out.port, 0, 65535);
  read_path(section, "tokens_file", out.tokens_file, base);
  section.integer("max_connections", out.max_connections, 1, 10'000);
  section.integer("max_request_bytes", out.max_request_bytes, 512, 1'048'576);
  const toml::node* subjects_node = section.find("client_subjects");
  if (const auto subjects = section.strings("client_subjects")) {
    for (const string_element& subject : *subjects) {
      if (subject.text().find('=') == std::string::npos || subject.text().find('\0') != std::string::npos) {
        sink.error(subject.value->source(), subject.path,
                   "must be a certificate subject in RFC 2253 form, such as \"CN=ops-1,O=Example\" (got " +
                       quoted_value(subject.text()) + ")");
      } else {
        out.client_subjects.push_back(subject.text());
      }
    }
  }
  // Deny by default: a subject list without a CA to verify certificates against, or a CA without a
  // list, lets no certificate in. Warnings, as a CA that is never consulted is for the listeners.
  const toml::table* tls_table = tls_node != nullptr ? tls_node->as_table() : nullptr;
  const toml::node* client_ca = tls_table != nullptr ? tls_table->get("client_ca") : nullptr;
  const bool no_subjects =
      subjects_node == nullptr || (subjects_node->is_array() && subjects_node->as_array()->empty());
  if (subjects_node != nullptr && client_ca == nullptr) {
    sink.warning(subjects_node->source(), section.key_path("client_subjects"),
                 "has no effect: [admin.tls] has no client_ca, so no client certificate is asked for");
  } else if (client_ca != nullptr && no_subjects) {
    sink.warning(client_ca->source(), "admin.tls.client_ca",
                 "no client certificate is accepted: admin.client_subjects lists none (deny by default)");
  }
  section.finish();
}

// The default chain gains "jwt" before "password": the token method abstains on a password that is
// not a token, while the password method refuses every user name it does not know, so the other
// order would refuse every token client that also sends a user name (mosquitto_pub -u needs one).
void add_default_jwt(std::vector<auth_method>& chain) {
  const auto password = std::find(chain.begin(), chain.end(), auth_method::password);
  chain.insert(password, auth_method::jwt);
}

// The listener's `auth` chain. Absent: the default from config.hpp, plus "jwt" when [auth.jwt]
// is configured. Returns where "certificate" is named, for the check that needs the TLS settings.
std::optional<string_element> read_auth_chain(diagnostics_sink& sink, table_reader& section,
                                              listener_settings& out, bool jwt_configured) {
  const toml::node* node = section.find("auth");
  const auto list = section.strings("auth");
  if (!list) {
    if (node == nullptr && jwt_configured) {
      add_default_jwt(out.auth);
    }
    return std::nullopt;
  }
  out.auth.clear();
  std::optional<string_element> certificate;
  std::vector<const string_element*> seen;
  for (const string_element& element : *list) {
    const std::string& text = element.text();
    const auto earlier =
        std::find_if(seen.begin(), seen.end(), [&](const string_element* e) { return e->text() == text; });
    auth_method method{};
    if (text == "certificate") {
      method = auth_method::certificate;
    } else if (text == "password") {
      method = auth_method::password;
    } else if (text == "jwt") {
      method = auth_method::jwt;
    } else if (text == "enrollment") {
      method = auth_method::enrollment;
    } else {
      std::string message = "unknown authentication method " + quoted_value(text) +
                            " (must be one of certificate, password, jwt, enrollment)";
      if (text == "anonymous") {
        message += "; clients without credentials are let in by allow_anonymous = true";
      }
      sink.error(element.value->source(), element.path, std::move(message));
      continue;
    }
    if (earlier != seen.end()) {
      sink.error(element.value->source(), element.path,
                 quoted_value(text) + " is already in the chain at " + (*earlier)->path +
                     "; each method is asked once");
      continue;
    }
    seen.push_back(&element);
    if (method == auth_method::jwt && !jwt_configured) {
      sink.error(
          element.value->source(), element.path,
          "\"jwt\" needs an [auth.jwt] table saying which keys and algorithms tokens are checked with");
      continue;
    }
    if (method == auth_method::certificate) {
      certificate = element;
    }
    out.auth.push_back(method);
  }
  // All methods abstaining means deny, so an empty chain without anonymous access lets no one in.
  if (node->as_array()->empty() && !out.allow_anonymous) {
    section.error(*node, "auth",
                  "is empty and allow_anonymous is false, so no client could connect (name a method, or set "
                  "allow_anonymous = true)");
  }
  return certificate;
}

listener_entry read_listener(diagnostics_sink& sink, const toml::table& table, std::string path,
                             bool jwt_configured, const std::filesystem::path& base,
                             const rate_settings& rates) {
  listener_entry entry;
  entry.settings.rates = rates;
  entry.path = std::move(path);
  entry.table_at = table.source();
  entry.name_at = entry.address_at = entry.allow_plaintext_at = entry.protocol_at = entry.table_at;
  listener_settings& out = entry.settings;
  table_reader section(sink, table, entry.path);

  if (const auto* name = section.string("name")) {
    entry.name_at = name->source();
    if (detail::valid_name(name->get())) {
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
  if (const toml::node* node = section.find("protocol")) {
    entry.protocol_at = node->source();
  }
  entry.protocol_valid = read_protocol(section, out.protocol);
  if (const toml::node* node = section.find("allow_plaintext")) {
    entry.allow_plaintext_at = node->source();
  }
  section.boolean("allow_plaintext", out.allow_plaintext);
  section.boolean("allow_anonymous", out.allow_anonymous);
  if (const toml::table* limits = section.table("rate_limits")) {
    table_reader rate_section(sink, *limits, section.key_path("rate_limits"));
    read_rates(rate_section, out.rates);
    rate_section.finish();
  }

  // [listener.tls] goes with "mqtts" and only with it: TLS settings on a plain listener would
  // read as protection that is not there.
  const toml::table* tls = section.table("tls");
  if (tls != nullptr) {
    out.tls = read_tls(sink, *tls, section.key_path("tls"), base);
  }
  const bool tls_wrong_type = tls == nullptr && section.find("tls") != nullptr;
  bool tls_consistent = entry.protocol_valid && !tls_wrong_type;
  if (entry.protocol_valid && out.protocol == listener_protocol::mqtts && tls == nullptr && !tls_wrong_type) {
    sink.error(entry.protocol_at, section.key_path("tls"),
               "listener '" + out.name +
                   "' uses protocol \"mqtts\" and needs a [listener.tls] table with at "
                   "least cert and key");
    tls_consistent = false;
  }
  if (entry.protocol_valid && out.protocol == listener_protocol::mqtt && tls != nullptr) {
    sink.error(
        tls->source(), section.key_path("tls"),
        "listener '" + out.name +
            "' uses protocol \"mqtt\" (plain TCP), which has no TLS: set protocol = \"mqtts\" or remove "
            "[listener.tls]");
    tls_consistent = false;
  }

  const auto certificate = read_auth_chain(sink, section, out, jwt_configured);
  const bool asks_for_certificates = out.tls && out.tls->client_certs != client_certificates::none;
  if (certificate && tls_consistent && !asks_for_certificates) {
    const std::string why = out.tls ? "tls.client_certificates is \"none\"" : "it has no TLS";
    sink.warning(certificate->value->source(), certificate->path,
                 "listener '" + out.name + "' never asks clients for a certificate (" + why +
                     "), so \"certificate\" can never allow a client");
  }
  section.finish();
  return entry;
}

// JWS "alg" values a token may be checked with (RFC 7518 §3.1, RFC 8037 §3.1). Names are
// case-sensitive, as in the token header.
constexpr std::array<std::string_view, 12> jwt_algorithms{"RS256", "RS384", "RS512", "PS256",
                                                          "PS384", "PS512", "ES256", "ES384",
                                                          "EdDSA", "HS256", "HS384", "HS512"};

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) {
             return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
           };
           return lower(x) == lower(y);
         });
}

void read_jwt_algorithms(diagnostics_sink& sink, table_reader& section, jwt_auth_settings& out,
                         bool secret_given) {
  const toml::node* node = section.find("algorithms");
  const auto list = section.strings("algorithms");
  if (node == nullptr) {
    // The default of config.hpp: every asymmetric algorithm, and HMAC only with a secret.
    out.algorithms = {"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"};
    if (secret_given) {
      out.algorithms.emplace_back("HS256");
    }
    return;
  }
  if (!list) {
    return; // wrong type, reported
  }
  std::vector<const string_element*> seen;
  for (const string_element& element : *list) {
    const std::string& text = element.text();
    const auto report = [&](std::string message) {
      sink.error(element.value->source(), element.path, std::move(message));
    };
    if (equal_ignoring_case(text, "none")) {
      report("\"none\" is never accepted: an unsigned token would let anyone claim any identity");
      continue;
    }
    if (std::find(jwt_algorithms.begin(), jwt_algorithms.end(), text) == jwt_algorithms.end()) {
      std::string message = "unknown algorithm " + quoted_value(text) + " (must be one of";
      std::string_view suggestion;
      for (const std::string_view known : jwt_algorithms) {
        message += " " + std::string(known);
        if (equal_ignoring_case(known, text)) {
          suggestion = known;
        }
      }
      message += ")";
      if (!suggestion.empty()) {
        message += "; names are case-sensitive: did you mean '" + std::string(suggestion) + "'?";
      }
      report(std::move(message));
      continue;
    }
    const auto earlier =
        std::find_if(seen.begin(), seen.end(), [&](const string_element* e) { return e->text() == text; });
    if (earlier != seen.end()) {
      report(quoted_value(text) + " is already listed at " + (*earlier)->path);
      continue;
    }
    seen.push_back(&element);
    // An HMAC key must never be a public key: that is the algorithm-confusion attack.
    if (text.starts_with("HS") && !secret_given) {
      report(
          quoted_value(text) +
          " needs hmac_secret_file: HMAC tokens are checked with a shared secret, never with a public key");
      continue;
    }
    out.algorithms.push_back(text);
  }
  if (node->as_array()->empty()) {
    section.error(*node, "algorithms",
                  "must name at least one algorithm (leave the key out for the default list)");
  }
}

// [auth.jwt]. As for TLS, key files are read (and reloaded) by the token checker, not here.
jwt_auth_settings read_jwt(diagnostics_sink& sink, const toml::table& table,
                           const std::filesystem::path& base) {
  jwt_auth_settings out;
  table_reader section(sink, table, "auth.jwt");

  const toml::node* keys_node = section.find("public_keys");
  if (const auto keys = section.strings("public_keys")) {
    for (const string_element& key : *keys) {
      if (const auto problem = path_problem(key.text())) {
        sink.error(key.value->source(), key.path, *problem);
      } else {
        out.public_keys.push_back(resolve(base, key.text()));
      }
    }
  }
  const bool keys_given = keys_node != nullptr && (!keys_node->is_array() || !keys_node->as_array()->empty());
  const bool jwks_given = section.find("jwks") != nullptr;
  read_path(section, "jwks", out.jwks, base);
  // Present counts, even when unusable (reported), so a typo in the path is not also blamed
  // on every HS algorithm.
  const bool secret_given = section.find("hmac_secret_file") != nullptr;
  read_path(section, "hmac_secret_file", out.hmac_secret_file, base);
  if (!keys_given && !jwks_given && !secret_given) {
    sink.error(table.source(), "auth.jwt",
               "needs at least one of public_keys, jwks or hmac_secret_file: without a key no token can be "
               "checked");
  }

  read_jwt_algorithms(sink, section, out, secret_given);
  if (const auto* issuer = section.string("issuer")) {
    out.issuer = issuer->get();
  }
  if (const auto* audience = section.string("audience")) {
    out.audience = audience->get();
  }
  section.integer("leeway", out.leeway, 0, 600);
  section.integer("max_lifetime", out.max_lifetime, 0, 31'536'000);
  if (const auto claims = section.strings("required_claims")) {
    for (const string_element& claim : *claims) {
      if (claim.text().empty()) {
        sink.error(claim.value->source(), claim.path, "must not be empty");
      } else {
        out.required_claims.push_back(claim.text());
      }
    }
  }
  read_text(section, "identity_claim", out.identity_claim);
  read_text(section, "roles_claim", out.roles_claim);
  read_text(section, "client_id_claim", out.client_id_claim);
  section.finish();
  return out;
}

// [auth]: settings of the methods that listeners name in their chains. Returns whether
// [auth.jwt] is there, even with errors, so a listener naming "jwt" is not also blamed for them.
bool read_auth(diagnostics_sink& sink, table_reader& root, auth_settings& out,
               const std::filesystem::path& base) {
  const toml::table* table = root.table("auth");
  if (table == nullptr) {
    return false;
  }
  table_reader section(sink, *table, "auth");
  if (const toml::table* certificate = section.table("certificate")) {
    table_reader sub(sink, *certificate, "auth.certificate");
    sub.choice("identity", out.certificate.identity,
               {{"cn", certificate_identity::cn},
                {"san_dns", certificate_identity::san_dns},
                {"san_uri", certificate_identity::san_uri},
                {"san_email", certificate_identity::san_email}});
    sub.choice("client_id", out.certificate.client_id,
               {{"any", client_id_binding::any},
                {"must_match", client_id_binding::must_match},
                {"assign", client_id_binding::assign}});
    sub.finish();
  }
  if (const toml::table* password = section.table("password")) {
    table_reader sub(sink, *password, "auth.password");
    read_path(sub, "database", out.password.database, base);
    sub.finish();
  }
  const bool jwt_present = section.find("jwt") != nullptr;
  if (const toml::table* jwt = section.table("jwt")) {
    out.jwt = read_jwt(sink, *jwt, base);
  }
  section.finish();
  return jwt_present;
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

bool template_name_ok(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// One [[enrollment.template]]. Roles and attribute values are checked again by the device
// registry when a device is enrolled; here the shape, so that a mistake stops start-up.
enrollment_template read_enrollment_template(diagnostics_sink& sink, const toml::table& table,
                                             const std::string& path) {
  enrollment_template out;
  table_reader section(sink, table, path);
  if (const auto* name = section.string("name")) {
    if (template_name_ok(name->get())) {
      out.name = name->get();
    } else {
      section.error(*name, "name",
                    "must be 1 to 64 characters of A-Z a-z 0-9 _ - (got " + quoted_value(name->get()) + ")");
    }
  } else if (table.get("name") == nullptr) {
    sink.error(table.source(), path + ".name", "is required: tokens name their template by it");
  }
  const toml::node* roles_node = section.find("roles");
  if (const auto roles = section.strings("roles")) {
    for (const string_element& role : *roles) {
      if (role.text().empty()) {
        sink.error(role.value->source(), role.path, "must not be empty");
      } else if (std::find(out.roles.begin(), out.roles.end(), role.text()) != out.roles.end()) {
        sink.error(role.value->source(), role.path, quoted_value(role.text()) + " is listed twice");
      } else {
        out.roles.push_back(role.text());
      }
    }
  }
  if (roles_node == nullptr || (roles_node->is_array() && roles_node->as_array()->empty())) {
    // A device without a role would get no right at all: almost certainly a mistake.
    sink.error(roles_node != nullptr ? roles_node->source() : table.source(), path + ".roles",
               "must name at least one role of the topics file");
  }
  if (const auto* attributes = section.table("attributes")) {
    for (const auto& [key, value] : *attributes) {
      const std::string key_path = path + ".attributes." + std::string(key.str());
      if (const auto* text = value.as_string()) {
        out.attributes.emplace(std::string(key.str()), text->get());
      } else {
        sink.error(value.source(), key_path,
                   "must be a string (got " + std::string(type_name(value.type())) + ")");
      }
    }
  }
  section.integer("days", out.days, 1, 3650);
  section.finish();
  return out;
}

// [enrollment] with its [[enrollment.template]] entries.
void read_enrollment(diagnostics_sink& sink, table_reader& section, enrollment_settings& out) {
  const toml::node* node = section.find("template");
  if (node == nullptr) {
    section.finish();
    return;
  }
  const auto* list = node->as_array();
  if (list == nullptr) {
    section.error(*node, "template",
                  "must be an array of tables: write [[enrollment.template]], not [enrollment.template]");
    section.finish();
    return;
  }
  for (std::size_t i = 0; i < list->size(); ++i) {
    const toml::node& element = *list->get(i);
    const std::string path = "enrollment.template[" + std::to_string(i) + "]";
    const auto* table = element.as_table();
    if (table == nullptr) {
      sink.error(element.source(), path,
                 "must be a table (got " + std::string(type_name(element.type())) + ")");
      continue;
    }
    auto t = read_enrollment_template(sink, *table, path);
    if (!t.name.empty() && out.find(t.name) != nullptr) {
      sink.error(table->get("name")->source(), path + ".name",
                 quoted_value(t.name) + " is already the name of another template");
      continue;
    }
    out.templates.push_back(std::move(t));
  }
  section.finish();
}

void read_listeners(diagnostics_sink& sink, table_reader& root, config& out, bool jwt_configured,
                    const std::filesystem::path& base) {
  std::vector<listener_entry> entries;
  if (const toml::node* node = root.find("listener")) {
    if (const auto* list = node->as_array()) {
      for (std::size_t i = 0; i < list->size(); ++i) {
        const toml::node& element = *list->get(i);
        const std::string path = "listener[" + std::to_string(i) + "]";
        if (const auto* table = element.as_table()) {
          entries.push_back(read_listener(sink, *table, path, jwt_configured, base, out.limits.rates));
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

// A listener whose chain has "enrollment" needs a template for its tokens to name, and TLS: the
// token is a bearer secret sent in the CONNECT password.
void check_enrollment_listeners(diagnostics_sink& sink, const toml::table& document, const config& out) {
  for (std::size_t i = 0; i < out.listeners.size(); ++i) {
    const auto& l = out.listeners[i];
    if (std::find(l.auth.begin(), l.auth.end(), auth_method::enrollment) == l.auth.end()) {
      continue;
    }
    const std::string path = "listener[" + std::to_string(i) + "].auth";
    const toml::node* node = document.at_path(path).node();
    const toml::source_region where = node != nullptr ? node->source() : document.source();
    if (out.enrollment.templates.empty()) {
      sink.error(
          where, path,
          "\"enrollment\" needs at least one [[enrollment.template]] saying what an enrolled device gets");
    }
    if (!l.tls) {
      sink.error(where, path,
                 "\"enrollment\" needs a TLS listener (protocol = \"mqtts\"): the enrollment token is a "
                 "secret sent in the CONNECT password");
    }
  }
}

// Files under state_dir that were not given a path of their own.
void fill_state_dir_defaults(config& out) {
  const auto& dir = out.broker.state_dir;
  if (out.auth.password.database.empty()) {
    out.auth.password.database = dir / "firehook.db";
  }
  if (out.audit.file.empty()) {
    out.audit.file = dir / "audit" / "audit.log";
  }
  if (out.audit.key_file.empty()) {
    out.audit.key_file = dir / "audit" / "audit.key";
  }
  if (out.admin && out.admin->tokens_file.empty()) {
    out.admin->tokens_file = dir / "admin-tokens";
  }
}

} // namespace

void detail::read_rate_overrides(table_reader& section, rate_overrides& out, std::int64_t least_burst) {
  constexpr std::int64_t most = 4'294'967'295;
  section.integer("publish_rate", out.publish_rate, 0, most);
  section.integer("publish_burst", out.publish_burst, least_burst, most);
  section.integer("publish_bytes_rate", out.publish_bytes_rate, 0, most);
  section.integer("publish_bytes_burst", out.publish_bytes_burst, least_burst, most);
  section.integer("subscribe_rate", out.subscribe_rate, 0, most);
  section.integer("subscribe_burst", out.subscribe_burst, least_burst, most);
}

rate_settings with_overrides(rate_settings base, const std::vector<const rate_overrides*>& roles) {
  using value = std::optional<std::uint32_t>;
  const auto apply = [&](std::uint32_t rate_settings::*to, value rate_overrides::*from) {
    value best;
    for (const rate_overrides* r : roles) {
      const value& v = r->*from;
      if (v && (!best || (*best != 0 && (*v == 0 || *v > *best)))) {
        best = v;
      }
    }
    if (best) {
      base.*to = *best;
    }
  };
  apply(&rate_settings::publish_rate, &rate_overrides::publish_rate);
  apply(&rate_settings::publish_burst, &rate_overrides::publish_burst);
  apply(&rate_settings::publish_bytes_rate, &rate_overrides::publish_bytes_rate);
  apply(&rate_settings::publish_bytes_burst, &rate_overrides::publish_bytes_burst);
  apply(&rate_settings::subscribe_rate, &rate_overrides::subscribe_rate);
  apply(&rate_settings::subscribe_burst, &rate_overrides::subscribe_burst);
  return base;
}

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
  fill_state_dir_defaults(out);
  return out;
}

std::optional<std::string> parse_webhook_url(std::string_view text, webhook_url& out) {
  webhook_url u;
  u.text = std::string(text);
  std::string_view rest = text;
  if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    u.tls = false;
    u.port = 80;
    rest.remove_prefix(7);
  } else {
    return "must start with https:// (or http:// to a loopback host)";
  }
  if (rest.find('#') != std::string_view::npos) {
    return "must not have a fragment (#...)";
  }
  const std::size_t path_at = std::min(rest.find('/'), rest.find('?'));
  std::string_view authority = rest.substr(0, path_at);
  const std::string_view target =
      path_at == std::string_view::npos ? std::string_view() : rest.substr(path_at);
  if (authority.find('@') != std::string_view::npos) {
    return "must not carry a user or password (put a bearer token in webhook_token_file)";
  }
  std::optional<std::string_view> port;
  if (authority.starts_with('[')) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return "has an IPv6 address without its closing ']'";
    }
    u.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) {
      return "has text after the IPv6 address";
    }
    if (!after.empty()) {
      port = after.substr(1);
    }
    if (!parse_ip(u.host)) {
      return "has an invalid IPv6 address";
    }
  } else {
    const std::size_t colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
    }
    const bool name_chars = std::all_of(u.host.begin(), u.host.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_';
    });
    if (!name_chars) {
      return "has a character a host name cannot have";
    }
  }
  if (u.host.empty()) {
    return "has no host";
  }
  if (port) {
    std::uint32_t n = 0;
    const auto [end, ec] = std::from_chars(port->data(), port->data() + port->size(), n);
    if (port->empty() || ec != std::errc{} || end != port->data() + port->size() || n == 0 || n > 65535) {
      return "has an invalid port (1..65535)";
    }
    u.port = static_cast<std::uint16_t>(n);
  }
  for (const char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return "has a space or control character in its path (percent-encode it)";
    }
  }
  u.target = target.empty() ? "/" : target.starts_with('?') ? "/" + std::string(target) : std::string(target);
  out = std::move(u);
  return std::nullopt;
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
  if (!detail::parse_document(sink, toml_text, file_name, document)) {
    return load_result{.cfg = nullptr, .diagnostics = sink.take()};
  }

  config out;
  // Relative paths in the file are relative to its folder, not to wherever the broker happens
  // to be started.
  const std::filesystem::path base = std::filesystem::path(file_name).parent_path();
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
  if (const auto* table = root.table("authorization")) {
    table_reader section(sink, *table, "authorization");
    section.choice(
        "denied_publish", out.authorization.on_denied_publish,
        {{"acknowledge", denied_publish::acknowledge}, {"disconnect", denied_publish::disconnect}});
    section.finish();
  }
  if (const auto* table = root.table("alerts")) {
    table_reader section(sink, *table, "alerts");
    auto& a = out.alerts;
    section.boolean("enabled", a.enabled);
    section.integer("auth_failures", a.auth_failures, 0, 1'000'000);
    section.integer("probing", a.probing, 0, 1'000'000);
    section.integer("flapping", a.flapping, 0, 1'000'000);
    section.integer("rate_limited", a.rate_limited, 0, 1'000'000);
    section.integer("address_changes", a.address_changes, 0, 1'000'000);
    section.boolean("shared_credential", a.shared_credential);
    section.integer("window", a.window, 1, 86'400);
    section.integer("max_tracked", a.max_tracked, 100, 10'000'000);
    section.integer("certificate_expiry_days", a.certificate_expiry_days, 0, 3650);
    section.integer("baseline_interval", a.baseline_interval, 1, 3600);
    section.integer("baseline_warmup", a.baseline_warmup, 1, 100'000);
    section.integer("baseline_factor", a.baseline_factor, 0, 1'000'000);
    section.integer("baseline_min_rate", a.baseline_min_rate, 0, 100'000'000);
    section.integer("fleet_publish_ceiling", a.fleet_publish_ceiling, 0, 1'000'000'000);
    read_webhook(section, a, base);
    section.finish();
  }
  if (const auto* table = root.table("abuse")) {
    table_reader section(sink, *table, "abuse");
    read_abuse(sink, section, out.abuse);
  }
  if (const auto* table = root.table("store")) {
    table_reader section(sink, *table, "store");
    auto& st = out.store;
    section.boolean("enabled", st.enabled);
    section.choice("durability", st.durability,
                   {{"sync", store_durability::sync}, {"interval", store_durability::interval}});
    std::int64_t interval_ms = st.flush_interval.count();
    section.integer("flush_interval_ms", interval_ms, 1, 10'000);
    st.flush_interval = std::chrono::milliseconds(interval_ms);
    section.integer("max_bytes", st.max_bytes, 0, std::int64_t{1} << 48);
    section.finish();
  }
  if (const auto* table = root.table("admin")) {
    table_reader section(sink, *table, "admin");
    out.admin.emplace();
    read_admin(sink, section, *out.admin, base);
  }
  if (const auto* table = root.table("audit")) {
    table_reader section(sink, *table, "audit");
    read_audit(section, out.audit, base);
  }
  if (const auto* table = root.table("enrollment")) {
    table_reader section(sink, *table, "enrollment");
    read_enrollment(sink, section, out.enrollment);
  }
  // Before the listeners: whether [auth.jwt] exists decides their default chain.
  const bool jwt_configured = read_auth(sink, root, out.auth, base);
  read_listeners(sink, root, out, jwt_configured, base);
  read_path(root, "topics", out.topics, base);
  root.finish();

  if (out.listeners.empty()) {
    out.listeners.emplace_back();
    out.listeners.back().rates = out.limits.rates;
    if (jwt_configured) {
      add_default_jwt(out.listeners.back().auth);
    }
  }
  out.broker.state_dir = resolve(base, out.broker.state_dir);
  fill_state_dir_defaults(out);
  check_enrollment_listeners(sink, document, out);

  load_result result;
  if (!sink.has_errors()) {
    result.cfg = std::make_shared<const config>(std::move(out));
  }
  result.diagnostics = sink.take();
  return result;
}

load_result load_file(const std::filesystem::path& path) {
  std::string text;
  if (auto unreadable = detail::read_file(path, text)) {
    return load_result{.cfg = nullptr, .diagnostics = {std::move(*unreadable)}};
  }
  return load_string(text, path.string());
}

const enrollment_template* enrollment_settings::find(std::string_view name) const {
  for (const auto& t : templates) {
    if (t.name == name) {
      return &t;
    }
  }
  return nullptr;
}

diagnostic diagnostic_at(const std::filesystem::path& path, std::string_view key, std::string message) {
  diagnostic d;
  d.file = path.string();
  d.key = std::string(key);
  d.message = std::move(message);
  std::string text;
  if (detail::read_file(path, text)) {
    return d; // unreadable: no position
  }
  try {
    const toml::table parsed = toml::parse(text, path.string());
    if (const auto node = parsed.at_path(key)) {
      d.line = static_cast<unsigned>(node.node()->source().begin.line);
      d.column = static_cast<unsigned>(node.node()->source().begin.column);
    }
  } catch (const std::exception&) {
    // loaded once already, so this does not happen; without a position then
  }
  return d;
}

} // namespace firehook::config

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
// a value-initialised `config{}` are the same except that the latter has no listener and an
// empty auth.password.database (the loader and `defaults()` fill in <state_dir>/firehook.db).
//
// The functions below share no state and may be called from any thread; toml++ is used only
// inside config.cpp, so including this header stays cheap.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/address_range.hpp"

namespace firehook::config {

enum class log_level : std::uint8_t { trace, debug, info, warn, error, off };
enum class log_format : std::uint8_t { text, json };

// "mqtt" is plain TCP, "mqtts" is TLS. "ws" and "wss" are rejected as "not supported yet"
// rather than accepted and silently served as something else.
enum class listener_protocol : std::uint8_t { mqtt, mqtts };

enum class tls_version : std::uint8_t { tls1_2, tls1_3 };
enum class client_certificates : std::uint8_t { none, optional, required };

// A TLS listener's material and policy. Paths are resolved against the config file's folder.
// The files are read when the listener starts and again on SIGHUP or when they change on disk.
struct tls_settings {
  std::filesystem::path cert; // PEM: server certificate first, then its chain. Required.
  std::filesystem::path key;  // PEM private key. Required.
  std::filesystem::path ca;   // PEM CA bundle that client certificates must chain to; required
                              // unless client_certificates = "none"
  std::filesystem::path crl;  // PEM file of CRLs checked for client certificates; optional
  client_certificates client_certs = client_certificates::none;
  tls_version min_version = tls_version::tls1_2; // "1.2" or "1.3"
  // TLS 1.2 cipher list (OpenSSL syntax): ECDHE key exchange with AEAD ciphers only by default.
  std::string ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
  // TLS 1.3 cipher suites (OpenSSL syntax); all of them are AEAD.
  std::string ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
};

// The authentication methods a listener's chain may name, asked in the listener's order.
// "enrollment": a one-time enrollment token (user name = the wanted device name, password = the
// token) gives a claim identity that may only ask for its certificate (docs/provisioning.md).
enum class auth_method : std::uint8_t { certificate, password, jwt, enrollment };

struct broker_settings {
  std::uint16_t shards = 0;                 // threads; 0 = one per CPU core. 0..256
  std::chrono::seconds sys_interval{10};    // between $SYS/broker/... updates; 0 disables. 0..3600
  std::filesystem::path state_dir{"state"}; // already resolved against the config file's folder
};

struct log_settings {
  log_level level = log_level::info;
  log_format format = log_format::text;
  // Identical events within this window are written once, then counted (docs/events.md). 1..3600
  std::chrono::seconds repeat_window{10};
  // Event lines written per second at most; what is over is counted. 0 = no cap. 0..1'000'000
  std::uint32_t max_event_lines_per_second = 1000;
};

// How fast one client may publish and subscribe (docs/hardening.md, "Rates per client"): token
// buckets of `rate` a second holding at most `burst`. 0 = not limited. Each 0..4'294'967'295.
// The defaults are far above what a device sends; a gateway or a back-end service gets more on a
// listener of its own ([listener.rate_limits]).
struct rate_settings {
  std::uint32_t publish_rate = 1000;             // PUBLISH packets a second
  std::uint32_t publish_burst = 2000;            // PUBLISH packets
  std::uint32_t publish_bytes_rate = 10'485'760; // bytes (topic and payload) a second
  std::uint32_t publish_bytes_burst = 20'971'520;
  std::uint32_t subscribe_rate = 100;  // SUBSCRIBE and UNSUBSCRIBE packets a second
  std::uint32_t subscribe_burst = 1000;

  bool operator==(const rate_settings&) const = default;
  bool limits_anything() const { return publish_rate != 0 || publish_bytes_rate != 0 || subscribe_rate != 0; }
};

// A role's `rate_limits` in the topics file (docs/topics.md, "Rates of a role"): only the keys it
// gives, each replacing the listener's value for the clients that have the role.
struct rate_overrides {
  std::optional<std::uint32_t> publish_rate, publish_burst, publish_bytes_rate, publish_bytes_burst,
      subscribe_rate, subscribe_burst;

  bool operator==(const rate_overrides&) const = default;
  bool empty() const { return *this == rate_overrides{}; }
};

// The rates of a client with the roles whose overrides are `roles`: `base` (its listener's), with
// each key that one of them gives replaced by the most generous value they give (0, not limited,
// beats every number). No overrides: `base`.
rate_settings with_overrides(rate_settings base, const std::vector<const rate_overrides*>& roles);

// Types are the MQTT wire types where the value is advertised to clients, so the session
// can copy them into CONNACK properties without a narrowing cast.
struct limit_settings {
  std::uint32_t max_connections = 100'000;     // whole broker. 1..10'000'000
  std::chrono::seconds connect_timeout{5};     // to CONNECT, from accept (TLS: handshake done). 1..300
  std::uint32_t max_packet_size = 1'048'576;   // incoming; CONNACK Maximum Packet Size. 64..268'435'455
  std::uint16_t max_inflight = 64;             // CONNACK Receive Maximum, and unacked QoS 1/2 sent per client
  std::uint32_t max_queued_messages = 1000;    // per session; 0 = none queued. 0..10'000'000
  std::uint64_t max_queued_bytes = 16'777'216; // per session. 0..2^40
  // A connected subscriber whose queue is over its bounds and that acknowledges nothing for this
  // long is disconnected (5.0: 0x97), so it cannot slow its publishers for ever. 1..86'400
  std::chrono::seconds slow_subscriber_timeout{30};
  // What an offline session's full queue gives up for a new message: 0 = the new one
  // ("drop_newest"), 1 = the oldest ("drop_oldest"). session::overflow_policy.
  std::uint8_t queue_overflow = 0;
  rate_settings rates; // the flat keys publish_rate ... subscribe_burst of [limits]
  // A client held back by its rates for this long without its buckets recovering (it keeps
  // sending faster than allowed) is disconnected (5.0: 0x96 Message rate too high). 1..86'400
  std::chrono::seconds rate_limit_timeout{30};
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
  // Memory of the retained messages (topic, payload, properties and bookkeeping, mqtt::footprint),
  // all together and each. 0..2^40; 0 stores none.
  std::uint64_t max_retained_bytes = 134'217'728;
  std::uint32_t max_retained_message_bytes = 262'144; // 1..2^31
  std::uint32_t max_message_expiry = 0;               // seconds; 0 = no cap
  // Accept to the end of the TLS handshake. 1..300
  std::chrono::seconds tls_handshake_timeout{10};
  // Per authenticated identity (anonymous clients excepted: they are one identity for everybody).
  // 0 = no limit. 0..10'000'000
  std::uint32_t max_sessions_per_identity = 100;    // sessions, connected or offline
  std::uint32_t max_connections_per_identity = 100; // connections
  // A CONNECT of an identity that is connected already: 0 = admitted ("takeover": with the same
  // client id it takes the session over), 1 = refused ("refuse_new", 0x97; 3.1.1: 0x03).
  std::uint8_t duplicate = 0;
  // CONNECTs waiting for a password or token check: in all, and from one peer address. 1..1'000'000
  std::uint32_t max_pending_auth = 4096;
  std::uint32_t max_pending_auth_per_address = 32;
};

struct listener_settings {
  std::string name = "default";      // unique, [A-Za-z0-9_-]+
  std::string address = "127.0.0.1"; // IPv4 or IPv6 literal, or "localhost"
  std::uint16_t port = 1883;         // 0 = any free port
  listener_protocol protocol = listener_protocol::mqtt;
  bool allow_plaintext = false; // required for plaintext on a non-loopback address
  bool allow_anonymous = false;
  std::optional<tls_settings> tls; // set exactly when protocol == mqtts ([listener.tls])
  // The authentication chain, in order. Default: ["certificate", "password"], or
  // ["certificate", "jwt", "password"] when [auth.jwt] is configured. Naming "jwt" without [auth.jwt] is an
  // error.
  std::vector<auth_method> auth{auth_method::certificate, auth_method::password};
  // [listener.rate_limits]: this listener's clients' rates; the keys not given are [limits]'.
  rate_settings rates;
};

// Which certificate field names the device.
enum class certificate_identity : std::uint8_t { cn, san_dns, san_uri, san_email };
// What the client id must be for a client that authenticated with a certificate:
// any client id; exactly the identity (else CONNACK 0x85 / 3.1.1 0x02); or replaced by it
// (5.0: sent back as Assigned Client Identifier).
enum class client_id_binding : std::uint8_t { any, must_match, assign };

struct certificate_auth_settings {
  certificate_identity identity = certificate_identity::cn;
  client_id_binding client_id = client_id_binding::must_match;
};

struct password_auth_settings {
  // The credential store (SQLite), shared with `firehook user`. Default: <state_dir>/firehook.db.
  // Never empty in a loaded configuration: the loader fills in the default, after resolving
  // state_dir; a relative path given in the file is relative to the config file's folder.
  std::filesystem::path database;
};

// JSON Web Tokens carried in the CONNECT password field. At least one of public_keys, jwks and
// hmac_secret_file is required. Paths are resolved against the config file's folder.
struct jwt_auth_settings {
  std::vector<std::filesystem::path> public_keys; // PEM public keys (RSA, EC P-256/P-384, Ed25519)
  std::filesystem::path jwks;                     // a JWKS file, reloaded when it changes
  std::filesystem::path hmac_secret_file;         // enables HS256/384/512; the file holds the secret
  // Allowed "alg" values. Default: every asymmetric one supported (RS256/384/512, PS256,
  // ES256/384, EdDSA), plus HS256 when hmac_secret_file is set. "none" is never accepted.
  std::vector<std::string> algorithms;
  std::string issuer;                       // required "iss" when not empty
  std::string audience;                     // required in "aud" when not empty
  std::chrono::seconds leeway{30};          // for exp, nbf and iat. 0..600
  // The longest a token may still be valid when it is presented: "exp" at most this far ahead
  // (plus leeway), and a token without "exp" is refused. 0 = no bound. 0..31'536'000 (a year)
  std::chrono::seconds max_lifetime{86'400};
  std::vector<std::string> required_claims; // must be present
  std::string identity_claim = "sub";       // the claim that names the identity
  std::string roles_claim = "roles";        // a string or array of strings: the identity's roles
  // A string claim: the one client id the token's holder may use (and {client_id} binds to it).
  std::string client_id_claim = "client_id";
};

// What happens to a PUBLISH the topics file does not allow: 5.0 clients always get PUBACK/PUBREC
// 0x87; "acknowledge" acknowledges and drops it for 3.1/3.1.1 clients (which cannot be told),
// "disconnect" ends the connection instead (5.0: DISCONNECT 0x87), whatever the version.
enum class denied_publish : std::uint8_t { acknowledge, disconnect };

struct authorization_settings {
  denied_publish on_denied_publish = denied_publish::acknowledge; // [authorization] denied_publish
};

// [audit]: the tamper-evident audit log (docs/audit.md). On by default.
enum class audit_failure : std::uint8_t { serve, refuse };
struct audit_settings {
  bool enabled = true;
  std::filesystem::path file; // the current file; empty: <state_dir>/audit/audit.log
  std::filesystem::path
      key_file; // Ed25519 signing key (made when missing); empty: <state_dir>/audit/audit.key
  std::uint64_t max_file_bytes = 64ULL << 20;   // rotate at this size. 4096..2^40
  std::chrono::seconds max_file_age{86'400};    // ... or age; 0 = never by age. 0..31'536'000
  std::uint32_t keep_files = 30;                // rotated files kept. 1..100'000
  std::chrono::seconds checkpoint_interval{60}; // between signed checkpoints. 1..86'400
  // While the file cannot be written: keep serving (the default), or refuse new connections.
  audit_failure on_failure = audit_failure::serve;
};

// [admin]: the HTTP admin endpoint (docs/admin.md). Off unless the section is there. Plain HTTP on
// a loopback address, or HTTPS ([admin.tls]) on any address. Every request needs a bearer token or,
// with [admin.tls] client_ca, a client certificate whose subject is in client_subjects.
struct admin_settings {
  std::string address = "127.0.0.1";      // IPv4 or IPv6 literal, or "localhost"; not loopback: needs tls
  std::uint16_t port = 9883;              // 0 = any free port
  std::filesystem::path tokens_file;      // hashed bearer tokens; empty: <state_dir>/admin-tokens
  std::uint32_t max_connections = 16;     // at once. 1..10'000
  std::uint32_t max_request_bytes = 8192; // request line, headers and body. 512..1'048'576
  // [admin.tls]: cert, key, min_version, ciphers, ciphersuites as a listener's; `client_ca` is read
  // into `ca` and makes client_certs `optional` (asked for, verified, not required); `crl` with it.
  std::optional<tls_settings> tls;
  // The client certificates that are admins, by their whole subject in RFC 2253 form, compared
  // exactly ("CN=ops-1,O=Example": what `openssl x509 -noout -subject -nameopt RFC2253` prints).
  // Empty: none, whatever the CA signed.
  std::vector<std::string> client_subjects;
};

// [store]: the durable store of sessions, their messages and retained messages (docs/store.md),
// in <state_dir>/store.
enum class store_durability : std::uint8_t {
  sync,     // a QoS 1/2 message kept for a persistent session, or retained, is acknowledged once on disk
  interval, // acknowledged at once, written within flush_interval: a crash may lose that much
};
struct store_settings {
  bool enabled = true;
  store_durability durability = store_durability::sync;
  std::chrono::milliseconds flush_interval{10}; // interval mode: most time before a write. 1..10'000 ms
  std::uint64_t max_bytes = 0; // most the store file may grow to; 0 = as the disk allows. 0..2^48
};

// [alerts] webhook = "https://host:port/path": parsed and checked (http only to a loopback host).
struct webhook_url {
  bool tls = true;  // https
  std::string host; // a name or an address (IPv6 without its brackets)
  std::uint16_t port = 443;
  std::string target = "/"; // path and query
  std::string text;         // as written, for messages
};

// [alerts] webhook_*: the alerts' webhook. Paths are resolved against the config file's folder.
struct webhook_settings {
  webhook_url url;
  std::filesystem::path ca;         // webhook_ca: PEM CA bundle; empty: the system's store
  std::filesystem::path token_file; // webhook_token_file: sent as "Authorization: Bearer <content>"
  std::uint32_t retries = 5;        // webhook_retries: attempts per alert at most. 1..100
  std::chrono::seconds timeout{10}; // webhook_timeout: per attempt (connect, TLS, request, answer). 1..300
};

// Parses an alerts webhook URL: "http" or "https", a host (IPv6 in brackets), an optional port, a
// path (default "/") with an optional query. No user information (a secret does not belong in the
// configuration: webhook_token_file) and no fragment. Returns the problem as text, or the URL.
std::optional<std::string> parse_webhook_url(std::string_view text, webhook_url& out);

// [alerts]: detectors of unusual activity (docs/audit.md#alerts). On by default; a threshold of 0
// turns its detector off.
struct alert_settings {
  bool enabled = true;
  std::uint32_t auth_failures =
      20;                        // refused CONNECTs per peer address or user name within window. 0..1'000'000
  std::uint32_t probing = 20;    // refused PUBLISH/SUBSCRIBE per identity within window. 0..1'000'000
  std::uint32_t flapping = 10;   // ended connections per client id within window. 0..1'000'000
  // Times one identity went over its publish or subscribe rate within window. 0..1'000'000
  std::uint32_t rate_limited = 3;
  bool shared_credential = true; // one identity connected from two addresses at once
  // Distinct peer addresses one identity connected from within window: faster than a device moves
  // (a copied credential used from many places in turn). 0 = off. 0..1'000'000
  std::uint32_t address_changes = 5;
  std::chrono::seconds window{60};     // 1..86'400
  std::uint32_t max_tracked = 100'000; // keys remembered per detector. 100..10'000'000
  // A server or CA certificate of a TLS listener that expires within this many days raises an
  // alert (at start-up, after a reload of the listener's files, once a day). 0 = off. 0..3650
  std::uint32_t certificate_expiry_days = 30;
  // Rate baselines (docs/audit.md#rate-baselines): every baseline_interval each client's publish
  // and receive rates are compared with the learned rate of its identity, and the broker's received
  // rate with fleet_publish_ceiling.
  std::chrono::seconds baseline_interval{10}; // 1..3600
  std::uint32_t baseline_warmup = 30;         // samples before an identity is judged. 1..100'000
  std::uint32_t baseline_factor = 10;         // times the learned rate that alerts; 0 = off. 0..1'000'000
  std::uint32_t baseline_min_rate = 10;       // messages/s below which nothing alerts. 0..100'000'000
  // Messages/s received by the broker from all clients together; 0 = off. 0..1'000'000'000
  std::uint32_t fleet_publish_ceiling = 0;
  // Where each alert is POSTed as JSON (docs/audit.md#webhook); absent: no webhook.
  std::optional<webhook_settings> webhook;
};

// [abuse]: what one peer address or network may cost the broker (docs/hardening.md). On by default.
struct abuse_settings {
  // Networks ("10.0.0.0/8", "2001:db8::/32", or one address) of gateways behind NAT: their
  // addresses are not held to per-address budgets, and a correct login from them is never delayed.
  base::address_set allowlist;
  // Budgets of one peer address, checked when its TCP connection is accepted, before any TLS: over
  // one, the socket is closed at once. High enough that a gateway of devices never reaches them.
  std::uint32_t max_connections_per_address = 1000;  // open at once, lingering ones too. 1..10'000'000
  std::uint32_t connection_rate_per_address = 100;   // new connections per second. 1..1'000'000
  std::uint32_t connection_burst_per_address = 1000; // new connections at once. 1..10'000'000
  std::uint32_t max_pending_per_address = 500;       // not yet authenticated. 1..10'000'000
  // The same budgets for a network: the addresses that share their first `network_prefix_ipv4`
  // (IPv4) or `network_prefix_ipv6` (IPv6) bits, all together. An IPv6 host picks its address from
  // a /64 or more, so the per-address budgets alone do not hold it.
  std::uint8_t network_prefix_ipv4 = 24;               // 0..32
  std::uint8_t network_prefix_ipv6 = 64;               // 0..128
  std::uint32_t max_connections_per_network = 10'000;  // 1..10'000'000
  std::uint32_t connection_rate_per_network = 1000;    // 1..1'000'000
  std::uint32_t connection_burst_per_network = 10'000; // 1..10'000'000
  std::uint32_t max_pending_per_network = 5000;        // 1..10'000'000
  // Connections not yet authenticated (TLS handshake, CONNECT not yet accepted), all addresses
  // together, allowlisted ones too. 1..10'000'000
  std::uint32_t max_pending_connections = 10'000;

  // Password guessing (docs/hardening.md, "Password guessing"): failed authentications are counted
  // per user name and per peer address (IPv6 by its /64) in a fixed window. Past `login_failures`
  // in the window, each further attempt of that name or address waits before it is checked:
  // `login_delay`, doubled per further failure, at most `login_delay_max`. 0 turns the delay off.
  std::uint32_t login_failures = 10;            // 0..1'000'000
  std::chrono::seconds login_window{600};       // 1..86'400
  std::chrono::milliseconds login_delay{500};   // 1..60'000 ms
  std::chrono::milliseconds login_delay_max{4000}; // login_delay..60'000 ms; keep it below limits.connect_timeout
  // Past `ban_after_failures` failures from one address in the window, it is banned for
  // `ban_time`, doubled per repeat offence, at most `ban_time_max`. 0 turns the bans off.
  std::uint32_t ban_after_failures = 20;      // 0..1'000'000
  std::chrono::seconds ban_time{600};         // 1..31'536'000
  std::chrono::seconds ban_time_max{86'400};  // ban_time..31'536'000
  // A client id that connects more than `flapping_connects` times in `flapping_window` is banned
  // for `flapping_ban_time`. 0 turns it off.
  std::uint32_t flapping_connects = 20;         // 0..1'000'000
  std::chrono::seconds flapping_window{60};     // 1..86'400
  std::chrono::seconds flapping_ban_time{300};  // 1..31'536'000
  // Keys (user names, addresses, client ids) each of those counters remembers at most; past it the
  // oldest are forgotten. 100..10'000'000
  std::uint32_t max_tracked_keys = 100'000;
};

struct auth_settings {
  certificate_auth_settings certificate;
  password_auth_settings password;
  std::optional<jwt_auth_settings> jwt; // [auth.jwt]
};

// [[enrollment.template]]: what a device enrolled over MQTT gets (docs/provisioning.md). An
// enrollment token names one template; the device gets exactly its roles, attributes and lifetime.
struct enrollment_template {
  std::string name;                                           // unique, [A-Za-z0-9_-]{1,64}
  std::vector<std::string> roles;                             // at least one, no duplicates
  std::map<std::string, std::string, std::less<>> attributes; // string values
  std::uint32_t days = 365;                                   // certificate lifetime, 1..3650
};

struct enrollment_settings {
  std::vector<enrollment_template> templates; // in file order
  const enrollment_template* find(std::string_view name) const;
};

struct config {
  broker_settings broker;
  log_settings log;
  limit_settings limits;
  std::vector<listener_settings> listeners; // never empty once loaded: absent means the default one
  auth_settings auth;
  authorization_settings authorization;
  audit_settings audit;
  std::optional<admin_settings> admin; // [admin]
  alert_settings alerts;
  store_settings store;
  abuse_settings abuse;
  enrollment_settings enrollment; // [enrollment]
  // The topics file (topic definitions and ACLs); resolved against the config file's folder.
  // Empty: no topic ACLs, every connected client may publish and subscribe to every topic
  // (as without an ACL file in other brokers); `firehook check` and start-up warn about it.
  std::filesystem::path topics;
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

// A diagnostic about the value of `key` ("listener[1].tls.cert") in the configuration file `path`,
// at the key's line and column; without a position when the key is not in the file (a default).
// For problems found after loading (`firehook check` opening the files a configuration names).
diagnostic diagnostic_at(const std::filesystem::path& path, std::string_view key, std::string message);

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

#pragma once

// The topics file: every topic the fleet uses, what its payload looks like, and who may publish
// and subscribe to it, in one TOML file referenced by `topics = "..."` in the main configuration.
// docs/topics.md explains the format; examples/topics.toml is a full example. In short:
//
//   [roles.thermostat]                       # a role, and how an identity gets it
//   from = ["cert.ou = thermostats"]         # besides the roles its credential or token lists
//   [anonymous]
//   role = "guest"                           # what anonymous clients get, where a listener admits them
//   [[topic]]
//   pattern = "buildings/{building}/rooms/{room}/temperature"
//   publish = [{ role = "thermostat", where = { building = "attr.building", room = "attr.room" } }]
//   subscribe = ["dashboard"]                # {building} and {room} unbound: any one level
//   [[deny]]                                 # wins over every grant
//   pattern = "internal/#"
//   roles = ["*"]
//
// This file only parses and validates; security/topic_policy.hpp evaluates. Like config.hpp, a
// problem is a diagnostic naming file:line:column and key, and the result is immutable: a reload
// loads a new topics_file and compiles a new policy from it.
//
// The functions below share no state and may be called from any thread; toml++ is used only in
// topics.cpp and toml_reader.cpp.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace firehook::config {

// Where something was written in the topics file (1-based).
struct source_position {
  unsigned line = 0;
  unsigned column = 0;
};

// A value the broker knows about an authenticated client, named in patterns ({cert.cn}), in
// `where` bindings ("attr.building") and in role conditions ("cert.ou = thermostats").
struct identity_source {
  enum class kind : std::uint8_t {
    client_id,      // "client_id": the session's client identifier (chosen by the client unless a
                    // certificate binding fixes it), so never usable in a role condition
    username,       // "username": the user name a password proved; absent for other methods
    cert_cn,        // "cert.cn": the client certificate's subject CN
    cert_ou,        // "cert.ou": its subject OUs (several values)
    cert_san_dns,   // "cert.san_dns", "cert.san_uri", "cert.san_email": its SANs (several values)
    cert_san_uri,   //
    cert_san_email, //
    claim,          // "claim.<name>": a claim of the client's token
    attribute,      // "attr.<name>": an attribute stored with the credential (credential store)
  };
  kind type = kind::client_id;
  std::string name; // the claim or attribute name; empty for the other kinds

  std::string text() const; // as written: "attr.building"
  bool operator==(const identity_source&) const = default;
};

// "cert.ou" -> cert_ou, "claim.site" -> claim; nullopt for anything no identity provides.
std::optional<identity_source> parse_identity_source(std::string_view text);

// One level of a pattern. `{name}` is a placeholder: when `name` is an identity source
// ({client_id}, {cert.cn}, {attr.site}) it is always bound to it; otherwise it is a variable that
// each grant may bind with `where`, and an unbound variable matches any one level, like '+'.
struct pattern_level {
  enum class kind : std::uint8_t { literal, single_wildcard, multi_wildcard, placeholder };
  kind type = kind::literal;
  std::string text;                      // literal text, or the placeholder's name without braces
  std::optional<identity_source> source; // a placeholder named after an identity source
};

struct topic_pattern {
  std::string text; // as written
  std::vector<pattern_level> levels;
};

// "where = { building = "attr.building" }": a variable of the pattern bound to an identity value.
struct binding {
  std::string variable;
  identity_source source;
};

// Who may publish or subscribe: one role, with the variables it binds.
struct grant {
  std::string role;
  std::vector<binding> where;
  source_position at;
};

struct payload_notes {
  std::string format; // free text for people: "JSON", "UTF-8 text", "CBOR"
  std::string units;
  std::string example;
  std::string schema; // a URL or path to a schema
};

struct topic_definition {
  topic_pattern pattern;
  std::string description;
  payload_notes payload;
  std::uint8_t max_qos = 2; // a PUBLISH above it is refused
  bool retain = false;      // whether a PUBLISH may carry the retain flag
  std::vector<grant> publish;
  std::vector<grant> subscribe;
  source_position at; // the [[topic]] header
};

struct deny_rule {
  topic_pattern pattern;          // placeholders act as '+': a deny binds nothing
  std::vector<std::string> roles; // declared roles, or the single entry "*": every client
  bool publish = true;
  bool subscribe = true;
  std::string description;
  source_position at;
};

// "cert.ou = thermostats": an identity whose source has that value gets the role.
struct role_condition {
  identity_source source;
  std::string value;
  source_position at;
};

struct role_definition {
  std::string name;
  std::string description;
  std::vector<role_condition> from;
  // A back-end service rather than a device: grants of '#' or of a first-level wildcard to it
  // are not warned about.
  bool service = false;
  // [roles.<name>.rate_limits]: the rates of its clients, where they differ from the listener's.
  rate_overrides rates;
  source_position at;
};

struct topics_file {
  std::string file;                   // as given to the loader; diagnostics and `explain` name it
  std::vector<role_definition> roles; // in file order
  std::optional<std::string> anonymous_role;
  source_position anonymous_at;
  std::vector<topic_definition> topics; // in file order
  std::vector<deny_rule> denies;        // in file order

  const role_definition* find_role(std::string_view name) const;
};

struct topics_load_result {
  std::shared_ptr<const topics_file> topics; // set exactly when there is no error (warnings allowed)
  std::vector<diagnostic> diagnostics;       // errors and warnings, in file order

  bool ok() const;
};

// Reads and validates a topics file. Never throws for a bad or unreadable file: every problem is a
// diagnostic. Errors: unknown keys, unknown roles, invalid patterns, placeholders and bindings that
// no identity source provides. Warnings: grants of '#' or of a first-level wildcard to a role that
// is not a service, topics without a description, roles that nothing grants.
topics_load_result load_topics_file(const std::filesystem::path& path);

// As load_topics_file, for text in memory; `file_name` appears in diagnostics.
topics_load_result load_topics_string(std::string_view toml, std::string_view file_name = "<string>");

// Warnings about the topics file as the configuration `cfg` uses it: a grant that binds {client_id}
// (a placeholder or a `where` binding) applies only to clients whose identity fixes their client id
// (a certificate with auth.certificate.client_id = "must_match" or "assign"); one warning per such
// grant, naming the listeners whose clients it never applies to (password, token, anonymous, or
// certificates with client_id = "any"). None when no listener admits such clients.
std::vector<diagnostic> client_id_grant_warnings(const config& cfg, const topics_file& topics);

// Warnings about deny rules that deny nothing: no grant of the rule's action (publish, subscribe)
// to one of its roles (any role for "*") is on a topic pattern that can match a topic the rule
// matches. What nothing grants is denied already, so such a rule is dead, and most likely a typo
// in its pattern or roles that leaves what it was meant to deny granted. One warning per rule.
std::vector<diagnostic> idle_deny_warnings(const topics_file& topics);

} // namespace firehook::config

#pragma once
// The typed security and lifecycle events (DESIGN.md, Events). Every decision the broker makes
// about a client, and every change of its own state that an operator must be able to trace, is one
// `event`, produced once where it is made and handed to the sinks (the log, the statistics, later
// the audit log and the anomaly detectors) through an events::emitter (emitter.hpp).
// docs/events.md lists every type with its fields and an example line.
//
// An event is a plain value: its type, when it happened, who it concerns (the same fields for
// every type, empty when unknown), the decision with its reason code and a short reason, and the
// fields its type uses. Text a client chose (client id, topic, filter, user name) is kept as it was
// received; format_text and format_json escape it, so it cannot forge a line or break the JSON.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "mqtt/reason_code.hpp"

namespace firehook::events {

// Every event type, declared once: name, log level, what it records. docs/events.md follows this
// list; an end-to-end test triggers each.
#define FIREHOOK_EVENT_TYPES(X)                                                                              \
  X(connection_accepted, info, "a TCP connection was accepted (and its TLS handshake done), before CONNECT") \
  X(connection_refused, warn,                                                                                \
    "a connection was closed before CONNECT: a limit, a timeout, a failed TLS "                              \
    "handshake")                                                                                             \
  X(auth_allowed, info, "a CONNECT was authenticated")                                                       \
  X(auth_denied, warn, "a CONNECT was refused: credentials, client id, will, session limits")                \
  X(client_disconnected, info, "a connected client's connection ended")                                      \
  X(session_taken_over, info, "a new connection took a session over from an older one")                      \
  X(publish_refused, warn, "a PUBLISH the client's rights do not allow")                                     \
  X(subscribe_granted, info, "a SUBSCRIBE filter was granted")                                               \
  X(subscribe_refused, warn, "a SUBSCRIBE filter was refused")                                               \
  X(subscription_revoked, warn,                                                                              \
    "a live subscription was removed because the topics file no longer grants it")                           \
  X(message_dropped, warn, "messages for a client were dropped")                                             \
  X(will_published, info, "a client's will was published")                                                   \
  X(will_refused, warn, "a client's will was not published: its rights no longer allow it")                  \
  X(reload, info, "a watched file was reloaded, or its new version refused")                                 \
  X(limit_reached, warn, "a limit refused something")                                                        \
  X(events_lost, warn, "events were lost because a buffer was full")                                         \
  X(admin_request, info, "a request to the admin endpoint, answered or refused")                             \
  X(alert, warn, "a detector saw unusual activity (audit/detectors.hpp)")                                    \
  X(store, warn, "the durable store lost something to damage at start-up, or could not write")               \
  X(ban, warn, "a ban was made, removed or expired")                                                         \
  X(login_delayed, warn, "a CONNECT was held before its credentials were checked: failed logins (tarpit)")   \
  X(enrollment_issued, info, "a device enrolled with a one-time token and was issued its certificate")       \
  X(enrollment_refused, warn, "an enrollment request was refused: token, template, request")

enum class event_type : std::uint8_t {
#define FIREHOOK_EVENT_ENUM(name, level, what) name,
  FIREHOOK_EVENT_TYPES(FIREHOOK_EVENT_ENUM)
#undef FIREHOOK_EVENT_ENUM
};

inline constexpr std::size_t event_type_count = 0
#define FIREHOOK_EVENT_COUNT(name, level, what) +1
    FIREHOOK_EVENT_TYPES(FIREHOOK_EVENT_COUNT)
#undef FIREHOOK_EVENT_COUNT
    ;

enum class level : std::uint8_t { debug, info, warn, error };

std::string_view to_string(event_type t);
std::string_view description(event_type t);
level level_of(event_type t);
// All types, in declaration order (for documentation and tests).
std::span<const event_type> all_event_types();

enum class decision : std::uint8_t { none, allow, deny };

struct event {
  event_type type = event_type::limit_reached;
  std::chrono::system_clock::time_point time = std::chrono::system_clock::now();

  // Who it concerns; empty when unknown or not applicable.
  std::string listener;
  std::string peer; // address
  std::uint16_t peer_port = 0;
  std::string client_id;
  std::string method;   // identity method: certificate, password, jwt, anonymous
  std::string identity; // identity name
  std::string username; // as sent in CONNECT (auth events)

  // The decision.
  decision verdict = decision::none;
  std::optional<mqtt::reason_code> reason_code;
  std::string reason; // short, for people: "wrong password", "no grant", "session full"

  // The fields of its type.
  std::string topic; // PUBLISH / will / dropped message topic, or a SUBSCRIBE filter
  std::optional<std::uint8_t> qos;
  std::optional<bool> retain;
  std::string rule;      // the topics-file rule that decided: "topics.toml:12:3 publish grant of ..."
  std::string initiator; // client_disconnected: "client" or "server"
  std::string packet;    // client_disconnected: the packet that caused it, where one did
  std::string old_peer; // session_taken_over: the connection it was taken from ("addr:port"; none if offline)
  std::string new_peer; // session_taken_over: the connection that took it
  std::string subject;  // reload: what was reloaded; limit_reached: which limit
  std::uint64_t count = 0; // how many it stands for (messages dropped, events lost, repeats)
  // ban: what is banned ("address", "client_id", "username"), what happened to the ban ("added",
  // "removed", "expired"), who or what made it, and until when (ISO 8601 UTC, or "permanent").
  std::string ban_kind;
  std::string change;
  std::string source;
  std::string until;
  std::optional<std::uint32_t> delay_ms; // login_delayed: how long the CONNECT is held
};

// One line for people: "event=publish_refused listener=devices peer=10.0.0.7:51234 ...". Only
// fields that are set appear; text a client chose is quoted and escaped (base::quoted).
std::string format_text(const event& e);

// The members of a JSON object, without the braces: "\"event\":\"publish_refused\",\"listener\":...".
// Only fields that are set appear; every string is escaped (base::append_json_string).
std::string format_json_members(const event& e);

} // namespace firehook::events

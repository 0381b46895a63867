#include "events/event.hpp"

#include <array>
#include <cstdio>

#include "base/json_text.hpp"
#include "base/quoted.hpp"

namespace firehook::events {

namespace {

struct type_info {
  std::string_view name;
  level lvl;
  std::string_view what;
};

constexpr std::array types{
#define FIREHOOK_EVENT_INFO(name, lvl, what) type_info{#name, level::lvl, what},
    FIREHOOK_EVENT_TYPES(FIREHOOK_EVENT_INFO)
#undef FIREHOOK_EVENT_INFO
};

constexpr std::array all{
#define FIREHOOK_EVENT_VALUE(name, lvl, what) event_type::name,
    FIREHOOK_EVENT_TYPES(FIREHOOK_EVENT_VALUE)
#undef FIREHOOK_EVENT_VALUE
};

std::string_view decision_name(decision d) {
  switch (d) {
  case decision::allow:
    return "allow";
  case decision::deny:
    return "deny";
  case decision::none:
    break;
  }
  return "";
}

std::string hex_code(mqtt::reason_code rc) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(rc));
  return buf;
}

// How a value is written: text (a string that may hold anything: quoted in both formats), a word
// (one of ours, without spaces: bare in text, a string in JSON), or a literal (a number or a
// boolean: bare in both).
enum class kind : std::uint8_t { text, word, literal };

// Visits every field that is set, in a fixed order, as (name, value, kind).
template <typename F>
void for_each_field(const event& e, F&& field) {
  field("event", to_string(e.type), kind::word);
  const auto text = [&](std::string_view name, const std::string& value) {
    if (!value.empty()) {
      field(name, value, kind::text);
    }
  };
  text("listener", e.listener);
  text("peer", e.peer);
  if (e.peer_port != 0) {
    field("peer_port", std::to_string(e.peer_port), kind::literal);
  }
  text("client_id", e.client_id);
  text("method", e.method);
  text("identity", e.identity);
  text("username", e.username);
  if (e.verdict != decision::none) {
    field("decision", decision_name(e.verdict), kind::word);
  }
  if (e.reason_code) {
    field("reason_code", hex_code(*e.reason_code), kind::word);
  }
  text("reason", e.reason);
  text("topic", e.topic);
  if (e.qos) {
    field("qos", std::to_string(*e.qos), kind::literal);
  }
  if (e.retain) {
    field("retain", *e.retain ? "true" : "false", kind::literal);
  }
  text("rule", e.rule);
  text("initiator", e.initiator);
  text("packet", e.packet);
  text("old_peer", e.old_peer);
  text("new_peer", e.new_peer);
  text("subject", e.subject);
  if (e.count != 0) {
    field("count", std::to_string(e.count), kind::literal);
  }
  text("kind", e.ban_kind);
  text("change", e.change);
  text("source", e.source);
  text("until", e.until);
  if (e.delay_ms) {
    field("delay_ms", std::to_string(*e.delay_ms), kind::literal);
  }
}

} // namespace

std::string_view to_string(event_type t) {
  return types[static_cast<std::size_t>(t)].name;
}

std::string_view description(event_type t) {
  return types[static_cast<std::size_t>(t)].what;
}

level level_of(event_type t) {
  return types[static_cast<std::size_t>(t)].lvl;
}

std::span<const event_type> all_event_types() {
  return all;
}

std::string format_text(const event& e) {
  std::string out;
  for_each_field(e, [&](std::string_view name, std::string_view value, kind k) {
    if (!out.empty()) {
      out += ' ';
    }
    out += name;
    out += '=';
    out += k == kind::text ? base::quoted(value) : std::string(value);
  });
  return out;
}

std::string format_json_members(const event& e) {
  std::string out;
  for_each_field(e, [&](std::string_view name, std::string_view value, kind k) {
    if (!out.empty()) {
      out += ',';
    }
    base::append_json_string(out, name);
    out += ':';
    if (k == kind::literal) {
      out += value;
    } else {
      base::append_json_string(out, value);
    }
  });
  return out;
}

} // namespace firehook::events

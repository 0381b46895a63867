#include "audit/alert_outputs.hpp"

#include "audit/record.hpp"
#include "base/json_text.hpp"

namespace firehook::audit {

std::string alert_json(const events::event& alert) {
  std::string out = "{\"event\":\"alert\",\"time\":\"" + utc_time(alert.time) + "\",\"detector\":";
  base::append_json_string(out, alert.subject);
  const std::string members = events::format_json_members(alert);
  if (!members.empty()) {
    out += ',';
    out += members;
  }
  out += '}';
  return out;
}

std::string alert_topic(std::string_view detector) {
  return "$SYS/broker/alerts/" + std::string(detector);
}

void alert_forwarder::consume(const events::event& e) {
  if (e.type == events::event_type::alert) {
    deliver_(e.subject, alert_json(e));
  }
}

} // namespace firehook::audit

#pragma once
// Where an alert goes besides the log, the audit log and the metrics (docs/audit.md#alerts): the
// broker's topic $SYS/broker/alerts/<detector> and the webhook. Both carry the same JSON object:
//
//   {"event":"alert","time":"2026-12-07T10:00:00.123456Z","detector":"auth_failures",
//    "peer":"10.0.0.7","client_id":"c1","username":"alice","reason":"20 refused CONNECTs ...",
//    "subject":"auth_failures","count":20}
//
// "time" is when the alert was raised (UTC); the members after "detector" are those of the event's
// log line (events::format_json_members), each only when known: listener, peer, peer_port,
// client_id, method, identity, username, reason, subject (the detector again), count.

#include <functional>
#include <string>
#include <string_view>

#include "events/hub.hpp"

namespace firehook::audit {

// The JSON object above, for an `alert` event.
std::string alert_json(const events::event& alert);

// "$SYS/broker/alerts/<detector>".
std::string alert_topic(std::string_view detector);

// A sink handing every alert, as alert_json, to `deliver(detector, json)`, on the hub's thread:
// `deliver` must not block (it posts the message onto a shard).
class alert_forwarder final : public events::sink {
public:
  using deliver_fn = std::function<void(const std::string& detector, std::string json)>;
  explicit alert_forwarder(deliver_fn deliver) : deliver_(std::move(deliver)) {}

  void consume(const events::event& e) override;
  events::level min_level() const override { return events::level::warn; }

private:
  deliver_fn deliver_;
};

} // namespace firehook::audit

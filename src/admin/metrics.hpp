#pragma once
// The Prometheus text exposition (format 0.0.4) of the broker's figures, for GET /metrics:
//  - every statistic of events/statistics.hpp under its metric name (the one table, like $SYS);
//  - firehook_events_total{event}: every event emitted, by type (events::hub::count_of);
//  - firehook_auth_failures_total{method,reason_code}, firehook_disconnects_total{initiator,
//    reason_code} and firehook_alerts_total{detector}, from event_counts, a sink of the event stream;
//  - whatever `more` appends (process memory and descriptors, uptime, the audit log's counts).
// Reading it takes no shard lock: the statistics are relaxed atomics, the labelled counts a
// small map behind a mutex that only the event thread writes.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "events/hub.hpp"
#include "events/statistics.hpp"

namespace firehook::admin {

// Counts events by a few labels. Its keys are bounded: a handful of methods and initiators times
// the reason codes of the protocol.
class event_counts final : public events::sink {
public:
  void consume(const events::event& e) override;
  events::level min_level() const override { return events::level::info; }
  // Appends the two labelled families.
  void render(std::string& out) const;

private:
  using key = std::tuple<std::string, std::string>; // method or initiator, reason code
  mutable std::mutex mutex_;                        // guards both maps
  std::map<key, std::uint64_t> auth_failures_;
  std::map<key, std::uint64_t> disconnects_;
  std::map<std::string, std::uint64_t> alerts_; // by detector
};

// A label value: backslash, double quote and newline escaped (exposition format 0.0.4).
void append_label_value(std::string& out, std::string_view v);

// One metric family: # HELP, # TYPE and one sample without labels.
void append_metric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                   double value);
// One gauge family with one label: a sample per (label value, value).
void append_gauges(std::string& out, std::string_view name, std::string_view help, std::string_view label,
                   const std::vector<std::pair<std::string, double>>& samples);

std::string prometheus_text(const events::statistics& stats, const events::hub& hub, const event_counts& counts,
                            const std::function<void(std::string&)>& more);

} // namespace firehook::admin

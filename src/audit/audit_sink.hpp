#pragma once
// The audit log as a sink of the event stream (events/hub.hpp): every security event becomes one
// record of an audit_log (audit_log.hpp), written by the hub's thread, never by a shard. Records are
// handed to the kernel every hub interval; a signed checkpoint follows at `checkpoint_interval`
// when there are new records; at stop a signed "stop" record closes the chain.
//
// What is recorded: every event type (events/event.hpp). Unlike the log, nothing is aggregated or
// rate-capped: the audit log has every record. Events lost before they reach the
// hub (a full buffer) arrive as an events_lost event, which is recorded like any other.
//
// Threads: the hub's thread only; log() may be read (failing(), lost()) from any thread.

#include <chrono>
#include <functional>
#include <string>
#include <memory>

#include "audit/audit_log.hpp"
#include "events/hub.hpp"

namespace firehook::audit {

class audit_sink final : public events::sink {
public:
  // `on_state` is told when writing starts failing (true, with why) and when it works again.
  using state_change = std::function<void(bool failing, const std::string& why)>;
  audit_sink(std::unique_ptr<audit_log> log, std::chrono::seconds checkpoint_interval, state_change on_state = {});

  void consume(const events::event& e) override;
  void tick(std::chrono::steady_clock::time_point now) override;
  void flush() override;
  events::level min_level() const override { return events::level::info; }

  const audit_log& log() const { return *log_; }

private:
  std::unique_ptr<audit_log> log_;
  const std::chrono::seconds checkpoint_interval_;
  std::chrono::steady_clock::time_point next_checkpoint_;
  state_change on_state_;
  bool failing_reported_ = false;
};

} // namespace firehook::audit

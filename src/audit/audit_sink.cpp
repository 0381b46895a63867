#include "audit/audit_sink.hpp"

namespace firehook::audit {

audit_sink::audit_sink(std::unique_ptr<audit_log> log, std::chrono::seconds checkpoint_interval,
                       state_change on_state)
    : log_(std::move(log)), checkpoint_interval_(checkpoint_interval),
      next_checkpoint_(std::chrono::steady_clock::now() + checkpoint_interval), on_state_(std::move(on_state)) {}

void audit_sink::consume(const events::event& e) {
  log_->append(events::format_json_members(e), e.time);
}

void audit_sink::tick(std::chrono::steady_clock::time_point now) {
  const auto wall = std::chrono::system_clock::now();
  if (now >= next_checkpoint_) {
    next_checkpoint_ = now + checkpoint_interval_;
    log_->checkpoint(wall);
  }
  log_->write(wall);
  if (log_->failing() != failing_reported_) {
    failing_reported_ = log_->failing();
    if (on_state_) {
      on_state_(failing_reported_, failing_reported_ ? log_->last_error() : std::string());
    }
  }
}

void audit_sink::flush() {
  log_->close(std::chrono::system_clock::now());
}

} // namespace firehook::audit

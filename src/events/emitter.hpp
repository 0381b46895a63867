#pragma once
// Where a producer hands its events (hub.hpp has the stream behind it). emit() never blocks and
// never throws but std::bad_alloc: an event that cannot be taken is counted as lost.

#include <vector>

#include "events/event.hpp"

namespace firehook::events {

class emitter {
public:
  virtual ~emitter() = default;
  virtual void emit(event&& e) = 0;
};

// Keeps every event, for tests that look at what was decided.
class recording_emitter final : public emitter {
public:
  void emit(event&& e) override { events.push_back(std::move(e)); }
  std::vector<event> events;
};

} // namespace firehook::events

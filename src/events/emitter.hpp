#pragma once
// Where a producer hands its events (hub.hpp has the stream behind it). Never blocks and never
// throws but std::bad_alloc: an event that cannot be taken is counted as lost.
//
// Every event is counted by type whether or not a sink wants it (the statistics); an event no sink
// wants (below every sink's level) is not kept. record() builds the event only when one does, so
// that a frequent event (a connection accepted) costs a counter when nobody logs it.

#include <vector>

#include "events/event.hpp"

namespace firehook::events {

class emitter {
public:
  virtual ~emitter() = default;

  void emit(event&& e) {
    const event_type t = e.type;
    count(t);
    if (wants(t)) {
      take(std::move(e));
    }
  }

  // `build()` returns the event of type `t`; it is called only when a sink wants it.
  template <typename Build>
  void record(event_type t, Build&& build) {
    count(t);
    if (wants(t)) {
      take(build());
    }
  }

protected:
  virtual void count(event_type t) = 0;
  virtual bool wants(event_type t) const = 0;
  virtual void take(event&& e) = 0;
};

// Keeps every event, for tests that look at what was decided.
class recording_emitter final : public emitter {
public:
  std::vector<event> events;

protected:
  void count(event_type) override {}
  bool wants(event_type) const override { return true; }
  void take(event&& e) override { events.push_back(std::move(e)); }
};

} // namespace firehook::events

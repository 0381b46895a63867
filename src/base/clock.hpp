#pragma once
// The broker's notion of time. Code that needs the time takes a `const clock&` so tests can
// drive it with a manual_clock instead of sleeping.

#include <chrono>

namespace firehook::base {

using time_point = std::chrono::steady_clock::time_point;
using duration = std::chrono::steady_clock::duration;

class clock {
public:
  virtual ~clock() = default;
  virtual time_point now() const = 0;
};

// The real monotonic clock. Stateless; safe to share between threads.
class steady_clock final : public clock {
public:
  time_point now() const override;
};

// A clock that moves only when told to. Not thread safe: for single-threaded tests.
class manual_clock final : public clock {
public:
  explicit manual_clock(time_point start = time_point{}) : now_(start) {}
  time_point now() const override { return now_; }
  void advance(duration d) { now_ += d; }
  void set(time_point t) { now_ = t; }

private:
  time_point now_;
};

} // namespace firehook::base

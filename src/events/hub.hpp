#pragma once
// The event stream: producers emit events, a thread of the hub's own drains them and hands them to
// the sinks (DESIGN.md, Events). A producer never waits on a sink: each producing thread has a
// bounded buffer of its own (a single-producer queue) and an event that does not fit is counted as
// lost, never silently: the hub reports losses as an events_lost event.
//
// Threads: producer(i) belongs to one thread (a shard); shared() may be used by any thread and
// serialises its callers with a mutex (the control thread's reloads, the authentication workers'
// key reloads: rare). Sinks are called on the hub's thread only, one event at a time, in the order
// each producer emitted them (events of different producers may interleave).
//
// Lifetime: add sinks, then start(); stop() (or the destructor) drains what is queued, flushes the
// sinks and joins. Before start() events are counted and not kept.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "events/emitter.hpp"

namespace firehook::events {

class sink {
public:
  virtual ~sink() = default;
  // One event, on the hub's thread.
  virtual void consume(const event& e) = 0;
  // About every drain interval and once more at stop, on the hub's thread: for what a sink does
  // by time (aggregation windows, flushing).
  virtual void tick(std::chrono::steady_clock::time_point /*now*/) {}
  // The least severe event it looks at: less severe ones are counted but not even made.
  virtual level min_level() const { return level::debug; }
  // Once, at stop, after the last events: write out whatever is held back.
  virtual void flush() {}
};

class hub {
public:
  // `producers` single-thread emitters, each buffering at most `capacity` events.
  hub(unsigned producers, std::size_t capacity = 8192,
      std::chrono::milliseconds interval = std::chrono::milliseconds(20));
  hub(const hub&) = delete;
  hub& operator=(const hub&) = delete;
  ~hub();

  void add_sink(std::shared_ptr<sink> s); // before start()
  void start();
  void stop();

  emitter& producer(unsigned index);
  emitter& shared();

  // Events lost to full buffers, since start.
  std::uint64_t lost() const { return lost_.load(std::memory_order_relaxed); }
  // Events of type `t` emitted, since start, whether or not a sink took them. Any thread.
  std::uint64_t count_of(event_type t) const;

private:
  class queue;
  class locked_queue;

  void run();
  void drain();

  std::vector<std::unique_ptr<queue>> queues_; // producers, then the shared one's
  std::unique_ptr<locked_queue> shared_;
  std::vector<std::shared_ptr<sink>> sinks_;
  std::atomic<level> min_level_{level::error}; // of the sinks: nothing is kept before start()
  std::atomic<std::uint64_t> lost_{0};
  std::uint64_t lost_reported_ = 0; // hub thread only
  const std::chrono::milliseconds interval_;
  std::mutex mutex_; // guards stopping_ (with wake_)
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace firehook::events

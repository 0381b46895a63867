#include "events/hub.hpp"

#include <algorithm>
#include <array>

#include <boost/lockfree/spsc_queue.hpp>

namespace firehook::events {

// One producer's buffer: a lock-free single-producer, single-consumer ring of owned events, and
// the producer's counts by type (written by it alone, read by anyone).
class hub::queue : public emitter {
public:
  queue(std::size_t capacity, hub& owner) : ring_(capacity), hub_(owner) {}
  ~queue() override {
    event* e = nullptr;
    while (ring_.pop(e)) {
      delete e;
    }
  }

  // On the hub's thread.
  template <typename F>
  void drain(F&& consume) {
    event* e = nullptr;
    while (ring_.pop(e)) {
      const std::unique_ptr<event> owned(e);
      consume(*owned);
    }
  }

  std::uint64_t count_of(event_type t) const {
    return counts_[static_cast<std::size_t>(t)].load(std::memory_order_relaxed);
  }

  void count(event_type t) override {
    counts_[static_cast<std::size_t>(t)].fetch_add(1, std::memory_order_relaxed);
  }
  bool wants(event_type t) const override {
    return level_of(t) >= hub_.min_level_.load(std::memory_order_relaxed);
  }
  void take(event&& e) override {
    auto owned = std::make_unique<event>(std::move(e));
    if (ring_.push(owned.get())) {
      owned.release();
    } else {
      hub_.lost_.fetch_add(1, std::memory_order_relaxed);
    }
  }

private:
  boost::lockfree::spsc_queue<event*> ring_;
  hub& hub_;
  std::array<std::atomic<std::uint64_t>, event_type_count> counts_{};
};

// The shared producer: one ring, its producers serialised.
class hub::locked_queue final : public emitter {
public:
  explicit locked_queue(queue& q) : q_(q) {}

protected:
  void count(event_type t) override {
    const std::lock_guard lock(mutex_);
    q_.count(t);
  }
  bool wants(event_type t) const override { return q_.wants(t); }
  void take(event&& e) override {
    const std::lock_guard lock(mutex_);
    q_.take(std::move(e));
  }

private:
  queue& q_;
  std::mutex mutex_; // guards q_'s producer side
};

hub::hub(unsigned producers, std::size_t capacity, std::chrono::milliseconds interval) : interval_(interval) {
  for (unsigned i = 0; i <= producers; ++i) {
    queues_.push_back(std::make_unique<queue>(capacity, *this));
  }
  shared_ = std::make_unique<locked_queue>(*queues_.back());
}

hub::~hub() {
  stop();
}

void hub::add_sink(std::shared_ptr<sink> s) {
  sinks_.push_back(std::move(s));
}

void hub::start() {
  level least = level::error;
  for (const auto& s : sinks_) {
    least = std::min(least, s->min_level());
  }
  min_level_.store(least, std::memory_order_relaxed);
  thread_ = std::thread([this] { run(); });
}

std::uint64_t hub::count_of(event_type t) const {
  std::uint64_t n = 0;
  for (const auto& q : queues_) {
    n += q->count_of(t);
  }
  return n;
}

void hub::stop() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

emitter& hub::producer(unsigned index) {
  return *queues_.at(index);
}

emitter& hub::shared() {
  return *shared_;
}

void hub::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
    lock.unlock();
    drain();
    lock.lock();
  }
  lock.unlock();
  drain(); // what was emitted before stop()
  for (auto& s : sinks_) {
    s->flush();
  }
}

void hub::drain() {
  for (auto& q : queues_) {
    q->drain([this](const event& e) {
      for (auto& s : sinks_) {
        s->consume(e);
      }
    });
  }
  const std::uint64_t lost = lost_.load(std::memory_order_relaxed);
  if (lost != lost_reported_) {
    event e;
    e.type = event_type::events_lost;
    e.count = lost - lost_reported_;
    e.reason = "an event buffer was full";
    lost_reported_ = lost;
    for (auto& s : sinks_) {
      s->consume(e);
    }
  }
  const auto now = std::chrono::steady_clock::now();
  for (auto& s : sinks_) {
    s->tick(now);
  }
}

} // namespace firehook::events

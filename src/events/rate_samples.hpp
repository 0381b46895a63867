#pragma once
// How many messages each client published and received in one interval, handed from the shards to
// the rate-baseline detector (audit/baselines.hpp) without an event per message: each shard counts
// per session (two integers on the data path) and, every [alerts] baseline_interval, hands over one
// batch of samples of the sessions that had traffic. The detector takes what has arrived on its own
// thread.
//
// Bounded: at most `capacity` samples wait; when the detector falls behind, what does not fit is
// dropped and counted (dropped()), never queued without bound.
//
// Threads: add() from any shard thread, take() from the detector's (the event hub's) thread; both
// take mutex_, which guards waiting_ and dropped_: held for a vector swap or append, once per shard
// per interval.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <mutex>
#include <string>
#include <vector>

namespace firehook::events {

struct rate_sample {
  std::string method;   // of the identity: "certificate", "password", "jwt", "anonymous"
  std::string identity; // its name ("anonymous" for anonymous clients, judged by client id)
  std::string client_id;
  std::uint32_t published = 0;           // PUBLISH packets received from the client in the interval
  std::uint32_t received = 0;            // PUBLISH packets sent to it in the interval
  std::chrono::milliseconds interval{0}; // how long the interval was (the counts were kept)
};

class rate_samples {
public:
  explicit rate_samples(std::size_t capacity) : capacity_(capacity) {}
  rate_samples(const rate_samples&) = delete;
  rate_samples& operator=(const rate_samples&) = delete;

  // Appends what fits of `batch`; the rest is counted in dropped().
  void add(std::vector<rate_sample>&& batch) {
    const std::lock_guard lock(mutex_);
    const std::size_t room = capacity_ - std::min(capacity_, waiting_.size());
    if (batch.size() > room) {
      dropped_ += batch.size() - room;
      batch.resize(room);
    }
    if (waiting_.empty()) {
      waiting_ = std::move(batch);
    } else {
      waiting_.insert(waiting_.end(), std::make_move_iterator(batch.begin()),
                      std::make_move_iterator(batch.end()));
    }
  }

  // What has arrived since the last call, oldest first.
  std::vector<rate_sample> take() {
    std::vector<rate_sample> out;
    const std::lock_guard lock(mutex_);
    out.swap(waiting_);
    return out;
  }

  // Samples dropped since start because `capacity` were already waiting.
  std::uint64_t dropped() const {
    const std::lock_guard lock(mutex_);
    return dropped_;
  }

private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::vector<rate_sample> waiting_;
  std::uint64_t dropped_ = 0;
};

} // namespace firehook::events

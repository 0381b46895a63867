#pragma once
// The generator's threads: one io_context per thread, so each thread runs its own connections
// without sharing a queue (the shape of the broker's shards). A scenario creates the pool, builds
// its clients on the io_contexts, then calls run(); from then on it touches a client only by
// posting to that client's io_context. stop() stops and joins every thread; clients are destroyed
// after that, never while a thread runs.

#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace firehook::bench {

class worker_pool {
public:
  explicit worker_pool(unsigned threads);
  ~worker_pool() { stop(); }
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  unsigned size() const { return static_cast<unsigned>(workers_.size()); }
  boost::asio::io_context& io(unsigned i) { return workers_[i % workers_.size()]->io; }

  void run();
  void stop();

private:
  struct worker {
    // Concurrency hint 1: one thread runs this context, so the scheduler keeps its fast private
    // queues; posting to it from other threads stays safe (locking is still on).
    boost::asio::io_context io{1};
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{io.get_executor()};
    std::thread thread;
  };
  std::vector<std::unique_ptr<worker>> workers_;
};

// Polls `done` every millisecond until it is true or `timeout` passes; returns the last value.
bool wait_until(const std::function<bool()>& done, std::chrono::steady_clock::duration timeout);

} // namespace firehook::bench

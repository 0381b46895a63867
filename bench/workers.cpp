#include "workers.hpp"

#include <sys/prctl.h>

#include <algorithm>

namespace firehook::bench {

worker_pool::worker_pool(unsigned threads) {
  for (unsigned i = 0; i < std::max(threads, 1u); ++i) {
    workers_.push_back(std::make_unique<worker>());
  }
}

void worker_pool::run() {
  for (auto& w : workers_) {
    w->thread = std::thread([&io = w->io] {
      // The kernel's default 50 us timer slack would delay every open-loop send by up to that much,
      // and the delay would be counted as broker latency.
      prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
      io.run();
    });
  }
}

void worker_pool::stop() {
  for (auto& w : workers_) {
    w->guard.reset();
    w->io.stop();
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) {
      w->thread.join();
    }
  }
}

bool wait_until(const std::function<bool()>& done, std::chrono::steady_clock::duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return done();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

} // namespace firehook::bench

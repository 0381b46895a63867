#pragma once
// Runs enrollment requests (registry::enroll: parse, sign the CSR, consume the token and register
// the device in one SQLite transaction) off the shard threads: a write to the database waits for
// the disk (synchronous = FULL) and may wait up to 5 s for another process's lock, which a shard
// must never do. Like the authentication pool (authentication.hpp), a shard submits and goes on;
// the outcome comes back through the callback, which must post it to the shard's thread.
//
// Bounds: one worker thread (enrollment is rare: a factory batch at most), at most `max_pending`
// requests waiting; beyond that submit() returns false and the shard refuses the request with
// "server busy". Each connection sends at most one request (the shard keeps to that), so a flood
// needs a flood of valid tokens.
//
// Threads: submit() and stop() from any thread. Lifetime: stop() (or the destructor) finishes the
// request being run, drops those waiting without calling their callbacks, and joins the worker.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "registry/certificate_authority.hpp"
#include "registry/enrollment.hpp"

namespace firehook::broker {

struct enrollment_job {
  std::string device;       // the claim identity's name
  std::string token_sha256; // its token, by hash (identity claim)
  std::string payload;      // the request, at most registry::max_enrollment_request bytes
};

class enrollment_worker {
public:
  using callback = std::function<void(registry::enrollment_outcome)>;

  // Reads the CA from `ca` at each request, so that `firehook ca init` after start-up is seen.
  enrollment_worker(std::shared_ptr<registry::enrollment_tokens> tokens,
                    config::enrollment_settings templates, registry::ca_files ca,
                    std::size_t max_pending = 64);
  enrollment_worker(const enrollment_worker&) = delete;
  enrollment_worker& operator=(const enrollment_worker&) = delete;
  ~enrollment_worker();

  // False when the queue is full (then `done` is not called).
  bool submit(enrollment_job job, callback done);
  void stop();

private:
  void work();

  const std::shared_ptr<registry::enrollment_tokens> tokens_;
  const config::enrollment_settings templates_;
  const registry::ca_files ca_;
  const std::size_t max_pending_;
  std::mutex mutex_; // guards queue_ and stopping_
  std::condition_variable ready_;
  std::deque<std::pair<enrollment_job, callback>> queue_;
  bool stopping_ = false;
  std::thread worker_; // last: starts once the members above exist
};

} // namespace firehook::broker

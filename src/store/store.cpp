#include "store/store.hpp"

#include <utility>

#include "store/engine.hpp"

namespace firehook::store {

open_result store::open(const std::filesystem::path& state_dir, const options& opts) {
  if (opts.mode == durability::interval && opts.interval <= std::chrono::milliseconds::zero()) {
    return {nullptr, store_errc::invalid_options,
            "store interval must be above 0 ms, not " + std::to_string(opts.interval.count())};
  }
  if (state_dir.empty()) {
    return {nullptr, store_errc::invalid_options, "store folder not set"};
  }
  if (auto error = detail::create_private_dir(state_dir); !error.empty()) {
    return {nullptr, store_errc::cannot_open, std::move(error)};
  }
  detail::engine_open e = detail::open_sqlite(state_dir, opts);
  if (!e.opened) {
    return {nullptr, e.error, std::move(e.message)};
  }
  return {std::unique_ptr<store>(new store(std::move(e.opened), opts)), {}, std::move(e.message)};
}

store::store(std::unique_ptr<detail::engine> engine, const options& opts)
    : options_(opts), engine_(std::move(engine)) {
  writer_ = std::thread([this] { run(); });
}

store::~store() {
  close();
}

std::error_code store::submit(batch b, completion done) {
  {
    std::lock_guard lock(queue_mutex_);
    if (stopping_) {
      return store_errc::closed;
    }
    queue_.push_back(pending{std::move(b), std::move(done)});
  }
  queue_changed_.notify_one();
  return {};
}

std::error_code store::load(record_visitor& visitor) {
  std::lock_guard lock(engine_mutex_);
  if (!engine_) {
    return store_errc::closed;
  }
  return engine_->load(visitor);
}

void store::close() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_changed_.notify_one();
  if (writer_.joinable()) {
    writer_.join();
  }
  std::lock_guard lock(engine_mutex_);
  engine_.reset();
}

store::counters store::stats() const {
  std::lock_guard lock(queue_mutex_);
  return stats_;
}

void store::run() {
  std::vector<pending> group;
  auto next_commit = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock lock(queue_mutex_);
      queue_changed_.wait(lock, [&] { return !queue_.empty() || stopping_; });
      if (options_.mode == durability::interval) {
        // Let batches gather until the interval since the last commit has passed; close() cuts
        // the wait short.
        queue_changed_.wait_until(lock, next_commit, [&] { return stopping_; });
      }
      if (queue_.empty()) {
        return; // stopping, and nothing left
      }
      group.swap(queue_); // queue_ gets the empty vector back, with its capacity
    }
    next_commit = std::chrono::steady_clock::now() + options_.interval;
    commit(group);
    group.clear();
  }
}

void store::commit(std::vector<pending>& group) {
  std::vector<const batch*> batches;
  batches.reserve(group.size());
  for (const pending& p : group) {
    batches.push_back(&p.what);
  }
  std::error_code result;
  {
    std::lock_guard lock(engine_mutex_);
    result = engine_->apply(batches);
  }
  {
    std::lock_guard lock(queue_mutex_);
    ++stats_.commits;
    stats_.batches += group.size();
    stats_.failed_commits += result ? 1 : 0;
  }
  for (pending& p : group) {
    if (p.done) {
      p.done(result);
    }
  }
}

} // namespace firehook::store

#include "broker/enrollment_worker.hpp"

namespace firehook::broker {

enrollment_worker::enrollment_worker(std::shared_ptr<registry::enrollment_tokens> tokens,
                                     config::enrollment_settings templates, registry::ca_files ca,
                                     std::size_t max_pending)
    : tokens_(std::move(tokens)), templates_(std::move(templates)), ca_(std::move(ca)),
      max_pending_(max_pending), worker_([this] { work(); }) {}

enrollment_worker::~enrollment_worker() {
  stop();
}

bool enrollment_worker::submit(enrollment_job job, callback done) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= max_pending_) {
      return false;
    }
    queue_.emplace_back(std::move(job), std::move(done));
  }
  ready_.notify_one();
  return true;
}

void enrollment_worker::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  ready_.notify_all();
  if (worker_.joinable()) {
    worker_.join();
  }
}

void enrollment_worker::work() {
  for (;;) {
    std::pair<enrollment_job, callback> next;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) {
        return;
      }
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    const auto& job = next.first;
    // enroll() never throws: every failure is a refusal with its reason.
    next.second(registry::enroll(*tokens_, templates_, ca_, job.device, job.token_sha256, job.payload,
                                 registry::unix_now()));
  }
}

} // namespace firehook::broker

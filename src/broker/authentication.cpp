#include "broker/authentication.hpp"

#include <exception>

namespace firehook::broker {

authentication::authentication(chains by_listener, unsigned workers, std::size_t max_pending)
    : chains_(std::move(by_listener)), max_pending_(max_pending) {
  for (unsigned i = 0; i < (workers == 0 ? 1 : workers); ++i) {
    workers_.emplace_back([this] { work(); });
  }
}

authentication::~authentication() {
  stop();
}

void authentication::submit(credentials who, callback done) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && queue_.size() < max_pending_) {
      queue_.push_back(request{std::move(who), std::move(done)});
      ready_.notify_one();
      return;
    }
  }
  done(security::auth_result::deny("", mqtt::reason_code::server_busy,
                                   "too many connections being authenticated"));
}

void authentication::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && workers_.empty()) {
      return;
    }
    stopping_ = true;
    queue_.clear();
  }
  ready_.notify_all();
  for (auto& t : workers_) {
    t.join();
  }
  workers_.clear();
}

void authentication::work() {
  while (true) {
    request r;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) {
        return;
      }
      r = std::move(queue_.front());
      queue_.pop_front();
    }
    r.done(run(r.who));
  }
}

security::auth_result authentication::run(const credentials& who) const {
  const auto chain = chains_.find(who.listener);
  if (chain == chains_.end()) {
    return security::auth_result::deny("", mqtt::reason_code::not_authorized,
                                       "listener has no authentication chain");
  }
  security::connect_request req;
  req.listener = who.listener;
  req.peer_address = who.peer_address;
  req.client_id = who.client_id;
  if (who.username) {
    req.username = *who.username;
  }
  if (who.password) {
    req.password = *who.password;
  }
  req.certificate = who.certificate ? &*who.certificate : nullptr;
  try {
    return chain->second->authenticate(req);
  } catch (const std::exception& e) {
    // Fail closed (STYLE.md): a method that throws (store unreadable, ...) denies.
    return security::auth_result::deny("", mqtt::reason_code::not_authorized, e.what());
  }
}

} // namespace firehook::broker

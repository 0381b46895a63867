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

namespace {

// The chain reads views into `who`, which outlives the call.
security::connect_request request_of(const credentials& who) {
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
  return req;
}

// Runs `run_chain` on the listener's chain, failing closed (STYLE.md): no chain, or a method that
// throws (store unreadable, ...), denies.
template <typename F>
std::optional<security::auth_result> with_chain(const authentication::chains& chains, const credentials& who,
                                                F run_chain) {
  const auto chain = chains.find(who.listener);
  if (chain == chains.end()) {
    return security::auth_result::deny("", mqtt::reason_code::not_authorized,
                                       "listener has no authentication chain");
  }
  try {
    return run_chain(*chain->second, request_of(who));
  } catch (const std::exception& e) {
    return security::auth_result::deny("", mqtt::reason_code::not_authorized, e.what());
  }
}

} // namespace

std::optional<security::auth_result> authentication::try_quick(const credentials& who) const {
  return with_chain(chains_, who,
                    [](const security::auth_chain& chain, const security::connect_request& req) {
                      return chain.authenticate_quick(req);
                    });
}

security::auth_result authentication::run(const credentials& who) const {
  return *with_chain(chains_, who,
                     [](const security::auth_chain& chain, const security::connect_request& req) {
                       return std::optional(chain.authenticate(req));
                     });
}

} // namespace firehook::broker

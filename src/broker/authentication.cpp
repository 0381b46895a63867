#include "broker/authentication.hpp"

#include <exception>

namespace firehook::broker {

authentication::authentication(chains by_listener, unsigned workers, std::size_t max_pending,
                               std::size_t max_per_address)
    : chains_(std::move(by_listener)), max_pending_(max_pending), max_per_address_(max_per_address) {
  for (unsigned i = 0; i < (workers == 0 ? 1 : workers); ++i) {
    workers_.emplace_back([this] { work(); });
  }
}

authentication::~authentication() {
  stop();
}

authentication::ticket authentication::submit(credentials who, callback done) {
  const char* full = nullptr;
  {
    std::lock_guard lock(mutex_);
    auto queue = by_address_.find(who.peer_address);
    const std::size_t from_address = queue == by_address_.end() ? 0 : queue->second.size();
    if (stopping_ || pending_ >= max_pending_) {
      full = "too many connections being authenticated";
    } else if (from_address >= max_per_address_) {
      full = "too many connections from this address being authenticated";
    } else {
      if (queue == by_address_.end()) {
        queue = by_address_.try_emplace(who.peer_address).first;
        turns_.push_back(who.peer_address);
      }
      const ticket id = next_ticket_++;
      address_of_.emplace(id, who.peer_address);
      queue->second.push_back(request{id, std::move(who), std::move(done)});
      ++pending_;
      ready_.notify_one();
      return id;
    }
  }
  queue_full_.fetch_add(1, std::memory_order_relaxed);
  done(security::auth_result::deny("", mqtt::reason_code::server_busy, full));
  return 0;
}

void authentication::cancel(ticket t) {
  std::lock_guard lock(mutex_);
  const auto a = address_of_.find(t);
  if (a == address_of_.end()) {
    return; // running or done
  }
  auto& queue = by_address_.at(a->second);
  for (auto it = queue.begin(); it != queue.end(); ++it) {
    if (it->id == t) {
      queue.erase(it);
      --pending_;
      break;
    }
  }
  address_of_.erase(a);
}

std::size_t authentication::pending() const {
  std::lock_guard lock(mutex_);
  return pending_;
}

void authentication::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && workers_.empty()) {
      return;
    }
    stopping_ = true;
    by_address_.clear();
    turns_.clear();
    address_of_.clear();
    pending_ = 0;
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
      ready_.wait(lock, [this] { return stopping_ || pending_ > 0; });
      if (stopping_) {
        return;
      }
      // The next address in turn with a request; addresses emptied by cancel() leave the round.
      while (true) {
        const std::string address = std::move(turns_.front());
        turns_.pop_front();
        auto queue = by_address_.find(address);
        if (queue->second.empty()) {
          by_address_.erase(queue);
          continue;
        }
        r = std::move(queue->second.front());
        queue->second.pop_front();
        if (queue->second.empty()) {
          by_address_.erase(queue);
        } else {
          turns_.push_back(address);
        }
        break;
      }
      address_of_.erase(r.id);
      --pending_;
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

#pragma once
// Runs the listeners' authentication chains off the shard threads. Password hashing is slow on
// purpose (Argon2id) and token checks read key files, so a shard hands each CONNECT here and goes
// on serving its other connections; the verdict comes back through the callback.
//
// Threads: `submit` may be called from any thread. Requests run on a small pool of worker threads
// in arrival order; the callback runs on a worker thread and must hand the result over to the
// thread that owns the connection (the shard posts it to itself).
//
// Bounds: at most `max_pending` requests wait; beyond that submit() answers at once with a deny
// 0x89 Server busy (3.1.1: 0x03 Server unavailable), so a CONNECT flood cannot grow memory or
// delay legitimate clients without limit.
//
// Lifetime: stop() (or the destructor) finishes the requests being run, drops those still
// waiting without calling their callbacks, and joins the workers. Call it before whatever the
// callbacks post to goes away.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "security/authenticator.hpp"

namespace firehook::broker {

// A CONNECT's credentials, owned (the connect_request the chain reads points into it).
struct credentials {
  std::string listener;
  std::string peer_address;
  std::string client_id;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::optional<security::certificate_info> certificate;
};

class authentication {
public:
  using chains = std::map<std::string, std::shared_ptr<const security::auth_chain>, std::less<>>;
  using callback = std::function<void(security::auth_result)>;

  // `by_listener`: the chain of each listener by name. A listener without one denies everyone.
  authentication(chains by_listener, unsigned workers, std::size_t max_pending);
  authentication(const authentication&) = delete;
  authentication& operator=(const authentication&) = delete;
  ~authentication();

  void submit(credentials who, callback done);

  // The verdict at once, on the calling thread, when the listener's chain decides before reaching
  // a slow method (anonymous access, client certificates: see security::authenticator::quick);
  // nullopt when the request must go through submit(). Any thread.
  std::optional<security::auth_result> try_quick(const credentials& who) const;
  void stop();

private:
  struct request {
    credentials who;
    callback done;
  };

  void work();
  security::auth_result run(const credentials& who) const;

  const chains chains_;
  const std::size_t max_pending_;
  std::mutex mutex_; // guards queue_ and stopping_
  std::condition_variable ready_;
  std::deque<request> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

} // namespace firehook::broker

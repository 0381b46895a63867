#pragma once
// Runs the listeners' authentication chains off the shard threads. Password hashing is slow on
// purpose (Argon2id) and token checks read key files, so a shard hands each CONNECT here and goes
// on serving its other connections; the verdict comes back through the callback. A CONNECT whose
// chain decides without a slow method (no credentials, a client certificate: try_quick) never
// comes here, so it never waits behind a password hash.
//
// Threads: `submit`, `cancel` and `try_quick` may be called from any thread. Requests run on a
// small pool of worker threads; the callback runs on a worker thread and must hand the result over
// to the thread that owns the connection (the shard posts it to itself).
//
// Fairness and bounds, so that a flood of CONNECTs from a few addresses (with wrong passwords, or
// closed right after sending) cannot starve everybody else:
//  - requests wait in one queue per peer address, and the workers serve the addresses in turn
//    (round-robin), oldest request first within each;
//  - at most `max_pending` requests wait in all, and at most `max_per_address` from one address;
//    beyond either, submit() answers at once with a deny 0x89 Server busy (3.1.1: 0x03 Server
//    unavailable), counted in queue_full();
//  - cancel() removes a request whose connection has gone, so no worker hashes a password for it.
//
// Lifetime: stop() (or the destructor) finishes the requests being run, drops those still
// waiting without calling their callbacks, and joins the workers. Call it before whatever the
// callbacks post to goes away.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "security/authenticator.hpp"
#include "security/keyed_hash.hpp"

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
  // Names a request for cancel(); 0 is never a ticket.
  using ticket = std::uint64_t;

  // `by_listener`: the chain of each listener by name. A listener without one denies everyone.
  authentication(chains by_listener, unsigned workers, std::size_t max_pending, std::size_t max_per_address);
  authentication(const authentication&) = delete;
  authentication& operator=(const authentication&) = delete;
  ~authentication();

  // Queues the request; returns its ticket, or 0 when it was refused at once (queue full: `done`
  // has been called with the deny, on this thread).
  ticket submit(credentials who, callback done);

  // Forgets request `t` if it still waits (its callback is never called). A request already
  // running, or done, is not affected. Any thread.
  void cancel(ticket t);

  // The verdict at once, on the calling thread, when the listener's chain decides before reaching
  // a slow method (anonymous access, client certificates: see security::authenticator::quick);
  // nullopt when the request must go through submit(). Any thread.
  std::optional<security::auth_result> try_quick(const credentials& who) const;
  void stop();

  // Requests refused because the queue (in all, or of their address) was full, since start.
  std::uint64_t queue_full() const { return queue_full_.load(std::memory_order_relaxed); }
  // Requests waiting now; for tests and metrics.
  std::size_t pending() const;

private:
  struct request {
    ticket id = 0;
    credentials who;
    callback done;
  };

  void work();
  security::auth_result run(const credentials& who) const;

  const chains chains_;
  const std::size_t max_pending_;
  const std::size_t max_per_address_;
  mutable std::mutex mutex_; // guards everything down to workers_
  std::condition_variable ready_;
  // Waiting requests by peer address; an address is in turns_ exactly when it has an entry here
  // (whose deque may have been emptied by cancel(): the worker drops it at its turn).
  // Keyed with SipHash: the peer addresses are the attacker's to choose (an IPv6 /64 holds many).
  std::unordered_map<std::string, std::deque<request>, security::keyed_hash> by_address_;
  std::deque<std::string> turns_;                      // addresses in the order they are served
  std::unordered_map<ticket, std::string> address_of_; // waiting tickets
  std::size_t pending_ = 0;
  ticket next_ticket_ = 1;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::atomic<std::uint64_t> queue_full_{0};
};

} // namespace firehook::broker

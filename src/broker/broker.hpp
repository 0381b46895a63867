#pragma once
// Process-wide broker state shared by every shard: the configuration, the session registry,
// the retained messages, the statistics, the shards themselves. No sockets here (DESIGN.md).
//
// Lifetime: the broker outlives its shards; a shard registers itself in its constructor and
// unregisters in its destructor, before any shard thread runs and after they all stopped.
//
// Thread safety: every const member and every member returning a thread-safe part (registry(),
// retained(), stats()) may be called from any shard thread. attach()/detach() are for start-up
// and shut-down only.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.hpp"
#include "broker/ban_list.hpp"
#include "broker/reloader.hpp"
#include "broker/session_registry.hpp"
#include "broker/transport.hpp"
#include "config/config.hpp"
#include "events/hub.hpp"
#include "events/rate_samples.hpp"
#include "events/statistics.hpp"
#include "router/retained_store.hpp"
#include "security/auth_factory.hpp"
#include "security/authenticator.hpp"
#include "security/login_guard.hpp"
#include "security/policy_file.hpp"
#include "security/topic_policy.hpp"
#include "session/limits.hpp"

namespace firehook::store {
class store;
}

namespace firehook::broker {

class shard;

struct connection_info {
  std::string listener;
  std::string peer_address;
  std::uint16_t peer_port = 0;
  bool allow_anonymous = false;
  // The client certificate the TLS handshake verified (chain, expiry and CRL checked by the TLS
  // layer); absent on plain TCP and when the client sent none.
  std::optional<security::certificate_info> certificate;
};

class authentication;
class enrollment_worker;
namespace persist {
struct instant;
}

class broker {
public:
  // `clock` must outlive the broker. `shard_count` >= 1 shards will attach themselves.
  // Throws std::runtime_error when an authentication method cannot start (a key file or the
  // credential store cannot be read), with a message naming the file.
  broker(std::shared_ptr<const config::config> cfg, unsigned shard_count, const base::clock& clock);
  broker(const broker&) = delete;
  broker& operator=(const broker&) = delete;
  ~broker();

  const config::config& cfg() const { return *cfg_; }
  const session::limits& session_limits() const { return limits_; }
  unsigned shard_count() const { return static_cast<unsigned>(shards_.size()); }
  const base::clock& clock() const { return clock_; }

  session_registry& registry() { return registry_; }
  router::retained_store& retained() { return retained_; }
  // The statistics table (events/statistics.hpp). Shards add their local counters about every
  // 100 ms; refresh() sets what is read from its owner (retained store, authentication queue,
  // event hub, uptime) just before the values are published.
  events::statistics& stats() { return stats_; }
  void refresh_statistics();
  std::uint64_t uptime_seconds() const;
  // Connected clients by listener (the admin endpoint's metrics): `listener` is an index into
  // cfg().listeners (listener_index). Any thread.
  std::size_t listener_index(std::string_view name) const;
  void count_client(std::size_t listener, int delta) {
    clients_by_listener_[listener].fetch_add(delta, std::memory_order_relaxed);
  }
  std::int64_t clients_on(std::size_t listener) const {
    return clients_by_listener_[listener].load(std::memory_order_relaxed);
  }

  // Unique for the life of the process: names a session in the subscription index.
  std::uint64_t next_subscriber_id() { return next_subscriber_.fetch_add(1, std::memory_order_relaxed); }
  // A client id for a client that sent none: "fh-" and 128 random bits in hex, unguessable.
  std::string assign_client_id();

  // The event stream (events/hub.hpp): the application adds its sinks and starts it before the
  // shards run. Shard i emits through shard_events(i), on its own thread only; any other thread
  // (reloads, the authentication workers) through shared_events().
  events::hub& events() { return events_; }
  events::emitter& shard_events(unsigned index) { return events_.producer(index); }
  events::emitter& shared_events() { return events_.shared(); }

  // Each client's message counts per [alerts] baseline_interval, from the shards to the rate-baseline
  // detector (audit/baselines.hpp); at most alerts.max_tracked wait. Any thread.
  events::rate_samples& rate_samples() { return rate_samples_; }

  // The bans in force (ban_list.hpp) and the counts of failed logins and connects that earn them
  // (security/login_guard.hpp). Any thread.
  ban_list& bans() { return bans_; }
  security::login_guard& login_guard() { return guard_; }

  // The authentication chains of the listeners, run off the shard threads.
  authentication& authenticator() { return *auth_; }
  // The compiled topics file; null when the configuration names none (every topic allowed).
  // Any thread: the pointer is swapped under a mutex on reload, never changed in place.
  std::shared_ptr<const security::topic_policy> policy() const;

  // Enrollment over MQTT (docs/provisioning.md): the worker that handles requests, null when no
  // listener's chain has "enrollment"; and the rights of every claim identity (method
  // "enrollment"), compiled once, which replace the topics file's for them.
  enrollment_worker* enrollment() { return enrollment_.get(); }
  const std::shared_ptr<const security::topic_policy>& enrollment_policy() const {
    return enrollment_policy_;
  }

  // Reloads (reloader.hpp): the one entry point, and what the broker reads from files. The server
  // watches these with its TLS material and says what each reload must be followed by. Null when
  // not configured (no topics file; no listener uses tokens).
  reloader& reloads() { return reloads_; }
  std::shared_ptr<security::policy_file> topics_file() const { return topics_; }
  std::shared_ptr<base::reloadable> token_keys() const;

  // While `refuse` is true new CONNECTs are refused with 0x88 Server unavailable (3.1.1: 0x03),
  // their auth_denied event saying `why` (audit.on_failure = "refuse": the audit log cannot be
  // written). Before the shards run; `refuse` must outlive the broker's use of it.
  void refuse_connections_while(const std::atomic<bool>& refuse, std::string why);
  // The reason while connections are refused that way, otherwise null. Any thread.
  const std::string* refusing_connections() const {
    return refuse_ != nullptr && refuse_->load(std::memory_order_relaxed) ? &refuse_why_ : nullptr;
  }
  // Stops the authentication workers and the enrollment worker; CONNECTs and enrollment requests
  // still waiting are dropped. Call before the shards stop.
  void stop_authentication();

  // The durable store (docs/store.md), opened by the constructor in <state_dir>/store; null when
  // [store] enabled = false. Shards submit to it; its completions come back through their queues.
  store::store* durable() const { return store_.get(); }
  // Whether a message kept in the store is acknowledged only once written ([store] durability).
  bool acknowledge_after_write() const;
  // Names a session message record in the store: increasing across shards and restarts.
  std::uint64_t next_stored_seq() { return next_stored_.fetch_add(1, std::memory_order_relaxed); }
  persist::instant now() const;
  // Reads the store back into the retained store and the shards (sessions offline, with their
  // subscriptions in every replica and their messages queued): once, after every shard attached and
  // before they run. Returns what it restored, for the start-up line.
  struct restored {
    std::size_t retained = 0, sessions = 0, messages = 0, unreadable = 0;
  };
  restored restore();
  // Writes what the shards submitted and closes the store: after the shards stopped.
  void close_store();
  // From the store's writer thread: shard `index`'s batch `generation` was committed (or not).
  // Handed to the shard through its queue, unless it has detached already (shut-down).
  void committed(unsigned index, std::uint64_t generation, std::error_code ec);

  // A message of the broker's own (an alert on $SYS/broker/alerts/<detector>), from any thread:
  // handed to shard 0's thread, which routes it as it routes its $SYS statistics, each delivery
  // checked against the subscriber's read right. Dropped while shard 0 is not attached (before
  // the shards exist, after they stopped).
  void publish(mqtt::message_ptr m);

  void attach(unsigned index, shard* s);
  void detach(unsigned index);
  shard& shard_at(unsigned index) const { return *shards_[index].load(std::memory_order_acquire); }

private:
  std::shared_ptr<const config::config> cfg_;
  events::hub events_; // first: everything below may emit, and it stops last
  session::limits limits_;
  const base::clock& clock_;
  base::time_point started_;
  session_registry registry_;
  router::retained_store retained_;
  events::statistics stats_;
  std::unique_ptr<std::atomic<std::int64_t>[]> clients_by_listener_; // one per listener
  events::rate_samples rate_samples_{cfg_->alerts.max_tracked};
  ban_list bans_{events_.shared(), stats_};
  security::login_guard guard_{cfg_->abuse, clock_};
  std::atomic<std::uint64_t> next_subscriber_{1};
  std::atomic<std::uint64_t> next_stored_{1};
  std::unique_ptr<store::store> store_;
  security::auth_methods methods_;
  std::shared_ptr<security::policy_file> topics_;
  reloader reloads_;
  std::unique_ptr<authentication> auth_;
  std::unique_ptr<enrollment_worker> enrollment_;
  std::shared_ptr<const security::topic_policy> enrollment_policy_;
  std::vector<std::atomic<shard*>> shards_;
  // Held by detach(), committed() and publish(): nothing reaches a shard that is gone.
  std::mutex attach_mutex_;
  const std::atomic<bool>* refuse_ = nullptr;
  std::string refuse_why_;
};

} // namespace firehook::broker

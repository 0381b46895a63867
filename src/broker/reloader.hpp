#pragma once
// The one entry point of every reload: the file watch (every second), SIGHUP and, later, the admin
// API call reload(). Each watched object (base/reload.hpp: TLS material, token keys, the topics
// file) is looked at, and each version applied or refused becomes one `reload` event, with the
// subject, allow (applied) or deny (refused), and what is in force now or why the new version was
// refused.
//
// Thread safety: watch() at start-up, before the first reload(). reload() from any thread; calls
// take turns (a mutex), so the `after` steps of two reloads never overlap.

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "base/reload.hpp"
#include "events/emitter.hpp"

namespace firehook::broker {

class reloader {
public:
  // `out` receives the reload events and must outlive the reloader.
  explicit reloader(events::emitter& out) : out_(out) {}

  // Watches `what`. `after` runs when a new version has been applied, before its event is
  // recorded, so that the event means the new version is in effect (the shards re-check live
  // subscriptions against a new topics file; clients a new CRL revokes are dropped).
  void watch(std::shared_ptr<base::reloadable> what, std::function<void()> after = {});

  // Looks at everything watched: reloads what changed, or everything when `force`. Returns one
  // result per watched object, in the order they were watched.
  std::vector<base::reload_result> reload(bool force);

  // What is watched, with what each holds now, in the order they were watched (the start-up log).
  std::vector<base::reload_result> in_force() const;

private:
  struct watched {
    std::shared_ptr<base::reloadable> what;
    std::function<void()> after;
  };

  events::emitter& out_;
  mutable std::mutex mutex_; // one reload at a time; guards nothing else (watched_ is fixed once running)
  std::vector<watched> watched_;
};

} // namespace firehook::broker

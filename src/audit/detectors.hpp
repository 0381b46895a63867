#pragma once
// Alerts on unusual activity: detectors that watch the event stream (a sink, on the event hub's
// thread) and raise an `alert` event when a pattern shows, which then reaches the log, the audit
// log and the metrics like any event. docs/audit.md#alerts has each detector and its settings.
//
//   auth_failures       auth_denied from one peer address, or for one user name, at least
//                       `auth_failures` times within `window` (password guessing, a fleet with a
//                       revoked credential retrying)
//   probing             publish_refused, subscribe_refused and will_refused of one identity at
//                       least `probing` times within `window` (a client trying topics it has no right to)
//   client_id_flapping  connections of one client id that ended, at least `flapping` times within
//                       `window` (two devices fighting over one client id, a crash loop); counted
//                       at the end of a connection, so a connected fleet costs nothing
//   rate_limited        limit_reached of a publish or subscribe rate for one identity (anonymous
//                       clients: per client id) at least `rate_limited` times within `window` (a
//                       flood that keeps coming back: a firmware loop, a stolen credential)
//   shared_credential   one identity (not anonymous) connected from two peer addresses at once for
//                       longer than a takeover takes (2 s: a device that moved and reconnected
//                       replaces its old connection by then), a copied certificate, password or token;
//                       with limits.duplicate = "refuse_new", at once when a second CONNECT of a
//                       connected identity is refused
//   address_hopping     one identity (not anonymous) connected from `address_changes` distinct peer
//                       addresses within `window`, one after the other: faster than a device moves
//                       (a copied credential used from many places in turn, so never twice at once)
//
// Each detector raises at most one alert per key per window. Memory is bounded: each detector
// remembers at most `max_tracked` keys (about 100 bytes each; 100,000 by default, ~10 MB per
// detector at most); keys whose window has passed are forgotten; past the bound new keys are not
// tracked and the alert says so once.
//
// Threads: the hub's thread only (consume, tick); alerts go out through `out` (the hub's shared,
// thread-safe emitter).

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "events/hub.hpp"

namespace firehook::audit {

struct detector_settings {
  std::uint32_t auth_failures = 20;
  std::uint32_t probing = 20;
  std::uint32_t flapping = 10;
  bool shared_credential = true;
  std::chrono::seconds window{60};
  std::size_t max_tracked = 100'000;
  std::uint32_t rate_limited = 3;
  std::uint32_t address_changes = 5;
};

class detectors final : public events::sink {
public:
  detectors(detector_settings s, events::emitter& out) : s_(s), out_(out) {}

  void consume(const events::event& e) override;
  void tick(std::chrono::steady_clock::time_point now) override;
  events::level min_level() const override { return events::level::info; }

private:
  struct window_count {
    std::chrono::system_clock::time_point started;
    std::uint32_t count = 0;
    bool alerted = false;
  };
  // One detector's counts by key, within windows.
  struct counter {
    std::unordered_map<std::string, window_count> keys;
    bool full_reported = false;
  };

  // Counts one occurrence for `key`; true when it reaches `threshold` in this window (once).
  bool count(counter& c, const std::string& key, std::uint32_t threshold, std::chrono::system_clock::time_point t);
  void raise(const events::event& about, std::string_view detector, std::string reason, std::uint64_t n);
  void shared(const events::event& e);
  void refused_duplicate(const events::event& e); // limits.duplicate = "refuse_new" refused a CONNECT
  void hopping(const events::event& e);

  const detector_settings s_;
  events::emitter& out_;
  counter by_address_, by_username_, probing_, flapping_, rate_limited_;
  // Identity ("method:name") -> peer address -> live connections from there.
  std::unordered_map<std::string, std::map<std::string, std::uint32_t>> live_;
  std::unordered_map<std::string, std::chrono::system_clock::time_point> shared_alerted_;
  // Identities seen at two addresses, with the event that showed it: judged at tick() after the grace.
  std::unordered_map<std::string, events::event> suspects_;
  // Identity -> the distinct addresses it connected from in its current window (at most
  // address_changes of them).
  struct address_window {
    std::chrono::system_clock::time_point started;
    std::vector<std::string> addresses;
    bool alerted = false;
  };
  std::unordered_map<std::string, address_window> hopping_;
  bool hopping_full_reported_ = false;
};

} // namespace firehook::audit

#pragma once
// The bans in force (docs/hardening.md, "Bans"): addresses and networks, client ids, user names,
// client certificates, each until a time or for ever. Read by every acceptor (an address banned is closed at accept,
// before TLS) and every CONNECT (0x8A Banned before any password check); added to by the shards
// (automatic bans: login failures, flapping), the admin endpoint and, through the database,
// `firehook ban` in another process.
//
// Storage: registry::ban_store (`<state_dir>/bans.db`) once open() is called (the broker process
// does it at start; unit tests work in memory). Nothing here writes SQLite on a shard thread: add()
// changes the bans in memory at once and queues the row; poll(), called every 500 ms off the
// shard threads (the server's control thread), writes what is queued, reads the database again
// when another process has changed it (PRAGMA data_version), and forgets expired bans. Each ban
// made, removed or expired is one `ban` event, and bans_active is kept up to date.
//
// Lookups: an immutable snapshot (shared_ptr<const snapshot>, swapped on change) indexed by kind:
// address bans by prefix length, then by masked network (one map lookup per distinct prefix
// length in force), client ids, user names and certificate fingerprints by hash. A lookup takes the mutex only to copy
// the pointer.
//
// Threads: every member is thread safe; mutex_ guards everything below it. Times are Unix seconds
// (bans outlive the process); callers pass `now`, so tests choose it.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/address_range.hpp"
#include "events/emitter.hpp"
#include "events/statistics.hpp"
#include "registry/ban_store.hpp"

namespace firehook::broker {

// The source of the bans `firehook device revoke` makes: the sessions of a client id banned so
// are ended too, not only its connections (docs/provisioning.md, "Revocation").
inline constexpr std::string_view revocation_source = "device revoke";

class ban_list {
public:
  // `events` (thread safe: the hub's shared emitter) and `stats` must outlive the list.
  ban_list(events::emitter& events, events::statistics& stats) : events_(events), stats_(stats) {}

  // Opens the database and takes its bans (start-up). Throws registry::store_error.
  void open(const std::filesystem::path& path);

  // The ban in force on this address (IPv4 as ::ffff:a.b.c.d), if any.
  std::optional<registry::ban> find_address(const base::address_bytes& address, std::int64_t now) const;
  // What a connection is known by; an empty field (or no user name) matches no ban of its kind.
  struct subjects {
    std::string_view peer_address;
    std::string_view client_id;
    std::optional<std::string_view> username;
    std::string_view fingerprint;   // of its client certificate: SHA-256, lower-case hex
    std::string_view token_subject; // of its token, once authenticated by one
  };
  // The ban in force on any of them, if any.
  std::optional<registry::ban> find(const subjects& of, std::int64_t now) const;

  // Adds (or replaces) a ban; in force at once, in the database by the next poll().
  void add(registry::ban b);
  // As add(), and in the database before it returns (the admin endpoint: its answer promises that
  // the ban survives a restart). Not for shard threads. Throws registry::store_error.
  void add_stored(registry::ban b);
  // Removes a ban from memory and the database at once (not for shard threads); false when none.
  bool remove(registry::ban_kind kind, std::string_view subject, std::string_view by);
  // The bans in force.
  std::vector<registry::ban> list(std::int64_t now) const;

  // See above. True when bans were added since the last poll: connected clients must be checked.
  bool poll(std::int64_t now);

  static std::int64_t now_seconds();
  // "2024-05-01T12:00:00Z", or "permanent".
  static std::string until_text(const registry::ban& b);

private:
  struct snapshot {
    std::vector<registry::ban> bans;
    std::map<unsigned, std::map<base::address_bytes, std::size_t>> networks; // prefix -> network -> ban
    std::unordered_map<std::string, std::size_t> client_ids, usernames, certificates, token_subjects;
  };
  static std::shared_ptr<const snapshot> index(std::vector<registry::ban> bans);
  std::shared_ptr<const snapshot> current() const;
  void publish(std::vector<registry::ban> bans); // mutex_ held
  void emit(const registry::ban& b, std::string_view change, std::string reason = {});

  events::emitter& events_;
  events::statistics& stats_;
  mutable std::mutex mutex_; // guards everything below
  std::unique_ptr<registry::ban_store> store_;
  std::shared_ptr<const snapshot> current_ = index({});
  std::vector<registry::ban> unwritten_;
  std::int64_t data_version_ = 0;
  bool grown_ = false;
};

} // namespace firehook::broker

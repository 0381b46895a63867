#pragma once
// Which shard holds the session of each client id, so that a CONNECT on any shard finds the
// session it takes over [MQTT-3.1.4-3].
//
// Every claim gets an epoch from one counter: the newest claim of a client id wins, and an older
// claim releasing the id (its session ended) does not remove a newer one.
//
// Thread safety: all members may be called from any shard. `mutex_` guards `entries_` and
// `next_epoch_`; it is taken on the CONNECT path and when a session ends, never per message.

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace firehook::broker {

class session_registry {
public:
  struct claim_result {
    std::uint64_t epoch = 0;                // this claim's; newer than every earlier one
    std::optional<unsigned> previous_shard; // where the client id's session was, if anywhere
  };

  // Records that `client_id`'s session now belongs to `shard` (a connection there claims it).
  claim_result claim(const std::string& client_id, unsigned shard);

  // Forgets `client_id` if its newest claim is still `epoch`.
  void release(const std::string& client_id, std::uint64_t epoch);

  // Number of client ids with a session (connected or not).
  std::size_t size() const;

private:
  struct entry {
    unsigned shard = 0;
    std::uint64_t epoch = 0;
  };

  mutable std::mutex mutex_;
  std::unordered_map<std::string, entry> entries_; // guarded by mutex_
  std::uint64_t next_epoch_ = 1;                   // guarded by mutex_
};

} // namespace firehook::broker

#pragma once
// Which shard holds the session of each client id, and which identity owns it: the one place
// every session operation (create, resume, take over, expire) is checked, so that a CONNECT on any
// shard finds the session it takes over [MQTT-3.1.4-3] and no identity can reach another's.
//
// Ownership: a session belongs to the identity that created it (identity::key(), e.g.
// "password:alice"). A claim of the same client id by another identity is refused and changes
// nothing: it neither resumes the session nor takes its connection over. Anonymous clients share
// one identity, so they can take over one another's sessions (docs/security.md).
//
// Except for an identity *entitled* to the client id (a certificate that fixes it,
// identity::client_id): a session another identity made under that client id is squatting, so the
// entitled claim wins. It evicts the squatter (`evicted`: the caller ends that session instead of
// resuming it) and owns the client id from then on.
//
// Limits per identity: at most `max_sessions` client ids with a session (connected or offline)
// and at most `max_connections` of them connected; 0 = no limit (the broker passes 0 for
// anonymous clients, who are one identity for everybody).
//
// Every claim gets an epoch from one counter: the newest claim of a client id wins, and an older
// claim releasing the id (its session ended) or going offline does not touch a newer one.
//
// Thread safety: all members may be called from any shard. `mutex_` guards everything below it;
// it is taken on the CONNECT path and when a session goes offline or ends, never per message.

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace firehook::broker {

class session_registry {
public:
  enum class claim_status : std::uint8_t {
    ok,
    owned_by_another,     // the client id's session belongs to another identity
    in_use,               // `fresh` was asked and the client id has a session
    too_many_sessions,    // the identity holds max_sessions sessions already
    too_many_connections, // the identity holds max_connections connections already
    already_connected,    // `refuse_new` and the identity has a connection already
  };

  struct claim_limits {
    std::uint32_t max_sessions = 0;    // 0: no limit
    std::uint32_t max_connections = 0; // 0: no limit
    // [limits] duplicate = "refuse_new": while the identity has a connection, it gets no other,
    // not even a takeover of its own session (a cloned device cannot push the real one off).
    bool refuse_new = false;
  };

  struct claim_result {
    claim_status status = claim_status::ok;
    std::uint64_t epoch = 0;                // when ok: this claim's, newer than every earlier one
    std::optional<unsigned> previous_shard; // when ok: where the client id's session was, if anywhere
    bool evicted = false; // when ok: that session was another identity's: end it, never resume it
  };

  // How a claim may take the client id.
  enum class claim_kind : std::uint8_t {
    chosen,   // the client chose it: its own session, or a new one
    entitled, // the identity is bound to it: also evicts another identity's session
    fresh,    // the broker assigned it: only a client id without a session
  };

  // A connection on `shard`, authenticated as `owner`, claims `client_id`'s session (new, resumed
  // or taken over). On success the session counts as connected.
  claim_result claim(const std::string& client_id, unsigned shard, std::string_view owner,
                     claim_limits limits, claim_kind kind = claim_kind::chosen);

  // The session of claim `epoch` has no connection any more (it stays, offline).
  void disconnected(const std::string& client_id, std::uint64_t epoch);

  // The session of claim `epoch` ended: the client id is free.
  void release(const std::string& client_id, std::uint64_t epoch);

  // Number of client ids with a session (connected or not).
  std::size_t size() const;

  // Sessions and connected sessions of `owner`, for tests and metrics.
  struct usage {
    std::uint32_t sessions = 0;
    std::uint32_t connections = 0;
  };
  usage usage_of(std::string_view owner) const;

private:
  struct owner_entry : usage {};
  using owner_map = std::unordered_map<std::string, owner_entry>;

  struct entry {
    unsigned shard = 0;
    std::uint64_t epoch = 0;
    owner_map::value_type* owner = nullptr; // stable: an unordered_map's elements never move
    bool connected = false;
  };

  void set_connected(entry& e, bool connected);
  void forget(std::unordered_map<std::string, entry>::iterator it); // the entry and its owner's counts

  mutable std::mutex mutex_;
  owner_map owners_;                               // guarded by mutex_; erased when it holds no session
  std::unordered_map<std::string, entry> entries_; // guarded by mutex_
  std::uint64_t next_epoch_ = 1;                   // guarded by mutex_
};

} // namespace firehook::broker

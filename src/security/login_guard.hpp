#pragma once
// Password guessing and client-id flapping, counted (docs/hardening.md, "Password guessing",
// "Flapping client ids"). Pure bookkeeping: the broker asks before a CONNECT's credentials are
// checked how long to hold it (`before_check`), tells it of each failed check (`failed`, which
// says when the address has earned a ban), of each connection that ended (`disconnected`), and of
// each admitted connection (`connected`, which says when its client id flaps). The bans themselves
// are broker::ban_list's.
//
// Counting. Failures are counted per user name and per peer address (IPv4 by its address, IPv6 by
// its /64: one host holds a whole /64), each in a fixed window of `login_window` that starts with
// its first failure. Past `login_failures` failures in the window, an attempt of that user name or
// from that address is held `login_delay` * 2^(failures - login_failures), at most
// `login_delay_max`. Past `ban_after_failures` from one address, the address has earned a ban of
// `ban_time` * 2^(offences - 1), at most `ban_time_max`, and its count starts again; an offence is
// remembered for 2 * ban_time_max. Addresses in the allowlist are never held and never banned
// (their failures still count toward the user name). User names are held, never banned: a ban
// would let an attacker lock the real device out.
//
// Memory: each counter (user names, addresses, offences, client ids) remembers at most
// `max_tracked_keys` keys, about 100 bytes each plus the key; past that the key whose window
// started first is forgotten, so an attacker spraying addresses or names cannot grow memory.
//
// Threads: every member may be called from any thread; one mutex guards the counters, held for a
// few hash lookups (once per failed CONNECT and once per admitted one, not on the data path).
// `settings` and `clock` must outlive the guard.

#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/clock.hpp"
#include "config/config.hpp"
#include "security/keyed_hash.hpp"

namespace firehook::security {

// Occurrences per key in a fixed window that starts with the key's first occurrence; at most
// `max_keys` keys. Not thread safe.
class windowed_counts {
public:
  windowed_counts(base::duration window, std::size_t max_keys) : window_(window), max_keys_(max_keys) {}

  // Counts one for `key`; returns its count in its current window.
  std::uint32_t add(const std::string& key, base::time_point now);
  // The count of `key` in its current window; 0 when it has none.
  std::uint32_t count(const std::string& key, base::time_point now) const;
  void reset(const std::string& key);
  std::size_t size() const { return entries_.size(); }

private:
  struct entry {
    base::time_point started;
    std::uint32_t count = 0;
    std::list<std::string>::iterator order;
  };
  void forget_expired(base::time_point now);

  const base::duration window_;
  const std::size_t max_keys_;
  std::unordered_map<std::string, entry, keyed_hash> entries_; // keys an attacker chooses
  std::list<std::string> order_; // by window start, oldest first
};

class login_guard {
public:
  login_guard(const config::abuse_settings& settings, const base::clock& clock);

  // How long to hold an attempt before its credentials are checked, and the failures behind it.
  struct hold {
    std::chrono::milliseconds delay{0};
    std::uint32_t failures = 0;
  };
  hold before_check(const std::optional<std::string>& username, std::string_view peer_address) const;

  // An address that has earned a ban: its subject ("192.0.2.7", "2001:db8:1:2::/64"), for how long.
  struct address_ban {
    std::string subject;
    std::chrono::seconds duration{0};
    std::uint32_t failures = 0;
    std::uint32_t offence = 1;
  };
  // A check of these credentials failed (wrong password, bad token, unknown user).
  std::optional<address_ban> failed(const std::optional<std::string>& username, std::string_view peer_address);

  // A connection of `client_id` ended. Counted when it ends, not when it starts, so that a fleet of
  // connected devices costs nothing here: only client ids that come and go are remembered.
  void disconnected(const std::string& client_id);
  // A connection of `client_id` was admitted; the ban time when `flapping_connects` of its
  // connections have ended within the window (it flaps), and its count starts again.
  std::optional<std::chrono::seconds> connected(const std::string& client_id);

  // The key an address is counted and banned by: IPv4 as itself, IPv6 as its /64 network;
  // the text as given when it is not an address.
  static std::string address_key(std::string_view peer_address);
  // Client ids whose ended connections are remembered now (tests).
  std::size_t tracked_client_ids() const;

private:
  bool allowlisted(std::string_view peer_address) const;

  const config::abuse_settings& settings_;
  const base::clock& clock_;
  mutable std::mutex mutex_; // guards the four counters
  windowed_counts by_username_;
  windowed_counts by_address_;
  windowed_counts offences_;
  windowed_counts connects_;
};

} // namespace firehook::security

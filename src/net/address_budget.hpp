#pragma once
// What one peer address, and one network, may cost the broker before it has proved who it is,
// checked when its TCP connection is accepted and before anything else is done for it (no TLS, no
// read): the `[abuse]` budgets of docs/hardening.md, "Connections per address".
//
// For the address, and again for its network (the addresses that share its first
// `network_prefix_ipv4` or `network_prefix_ipv6` bits, all together: an IPv6 client picks its
// address from a /64 or more, so per-address budgets alone do not hold it):
//  - connections open at once (lingering ones too: they still hold a socket);
//  - new connections per second: a token bucket of `connection_burst_per_...` tokens, refilled at
//    `connection_rate_per_...` per second; a refused attempt takes none;
//  - connections that are pending: accepted and not yet authenticated (TLS handshake, CONNECT not
//    yet answered with a successful CONNACK);
// and the pending connections of the whole broker, whatever their address. Addresses in the
// allowlist (gateways behind NAT) are held to the last one only, and do not count in their network.
//
// A connection admitted holds a `ticket`. The ticket stops counting as pending when it is told the
// connection was authenticated, and gives everything back once, when it is released or destroyed
// (when the socket is closed, after a lingering close too).
//
// Memory: one entry per address, and per network, that has a connection, or whose bucket is still
// refilling since its last connection ended (at most burst/rate seconds, 10 s by default); then it
// goes. About 100 bytes each (docs/hardening.md); none for an allowlisted address. The tables are keyed with
// SipHash (libsodium's crypto_shorthash) under a random key, so that addresses chosen by an
// attacker (an IPv6 /64 has many) cannot be made to collide.
//
// Threads: every acceptor (one per shard) admits, and every shard's connections release and
// authenticate their tickets; every member of address_budget is thread safe (mutex_ guards the
// table, the idle queue and the pending total). A ticket belongs to one connection, on its
// shard's thread. The budget must outlive its tickets.

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/address_range.hpp"
#include "base/clock.hpp"
#include "config/config.hpp"
#include "events/statistics.hpp"
#include "security/keyed_hash.hpp"

namespace firehook::net {

class address_budget {
  struct entry {
    base::time_point refilled; // when `tokens` was last brought up to date
    double tokens = 0;
    std::uint32_t connections = 0;
    std::uint32_t pending = 0;
    bool idle_queued = false; // it has a mark in its level's idle queue
  };
  using table = std::unordered_map<base::address_bytes, entry, security::keyed_hash>;

public:
  // Which budget refused a connection; `none` when it was admitted.
  enum class refusal : std::uint8_t {
    none,
    connections_per_address,
    rate_per_address,
    pending_per_address,
    connections_per_network,
    rate_per_network,
    pending_per_network,
    pending_connections,
  };

  // The configuration key of the budget, for the connection_refused event's subject.
  static std::string_view key_of(refusal r);
  // What the connection_refused event says: the same for every refusal of one budget, so that the
  // log folds an address's repeats into one line.
  std::string reason_of(refusal r) const;

  class ticket {
  public:
    ticket() = default;
    ticket(ticket&& other) noexcept;
    ticket& operator=(ticket&& other) noexcept;
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;
    ~ticket() { release(); }

    // The connection is authenticated: it no longer counts as pending. Harmless when it does not.
    void authenticated();
    bool pending() const { return pending_; }
    // Gives the connection's share back (its socket is closed). Later calls do nothing.
    void release();

  private:
    friend class address_budget;
    address_budget* owner_ = nullptr;
    // The address's entry and its network's; null for an allowlisted address.
    std::array<table::value_type*, 2> entries_{};
    bool pending_ = false;
  };

  struct decision {
    refusal refused = refusal::none;
    ticket admitted; // holds nothing when refused
  };

  // `settings`, `clock` and `stats` must outlive the budget. Throws std::runtime_error when
  // libsodium cannot be initialised.
  address_budget(const config::abuse_settings& settings, const base::clock& clock, events::statistics& stats);
  address_budget(const address_budget&) = delete;
  address_budget& operator=(const address_budget&) = delete;
  ~address_budget();

  // A connection from `peer` was accepted: admitted (with its ticket) or refused (counted in the
  // statistics as the refusal says).
  decision admit(const base::address_bytes& peer);

  // Addresses and networks with an entry now, and connections pending now (tests; the gauge has
  // the last).
  std::size_t tracked_addresses() const;
  std::size_t tracked_networks() const;
  std::uint32_t pending() const;

private:
  // An entry without connections, to look at again once its bucket should be full.
  struct idle_mark {
    base::time_point due;
    base::address_bytes key;
  };
  // The budgets of one kind of key, an address or a network, and the entries of its keys.
  struct level {
    std::uint32_t max_connections, rate, burst, max_pending;
    refusal over_connections, over_rate, over_pending;
    table entries;
    std::deque<idle_mark> idle; // in the order the entries went idle
  };
  static constexpr std::size_t address_level = 0, network_level = 1;

  // `peer` with every bit past its network's prefix cleared.
  base::address_bytes network_of(const base::address_bytes& peer) const;
  static void refill(const level& l, entry& e, base::time_point now);
  static base::duration time_to_full(const level& l, const entry& e);
  // An entry has no connection any more: it goes at once when its bucket is full, else later.
  static void went_idle(level& l, table::iterator it, base::time_point now);
  // Forgets the idle entries whose buckets have filled up.
  static void sweep(level& l, base::time_point now);
  void release(ticket& t);
  void authenticated(ticket& t);
  void pending_changed(); // the gauge

  const config::abuse_settings& settings_;
  const base::clock& clock_;
  events::statistics& stats_;

  mutable std::mutex mutex_; // guards everything below
  std::array<level, 2> levels_;
  std::uint32_t pending_ = 0; // every address, allowlisted ones too
};

} // namespace firehook::net

#pragma once
// What one peer address may cost the broker before it has proved who it is, checked when its TCP
// connection is accepted and before anything else is done for it (no TLS, no read): the
// `[abuse]` budgets of docs/hardening.md, "Connections per address".
//
//  - connections open at once from the address (lingering ones too: they still hold a socket);
//  - new connections per second from the address: a token bucket of `connection_burst_per_address`
//    tokens, refilled at `connection_rate_per_address` per second; a refused attempt takes none;
//  - connections of the address that are pending: accepted and not yet authenticated (TLS
//    handshake, CONNECT not yet answered with a successful CONNACK);
//  - pending connections of the whole broker, whatever their address.
// Addresses in the allowlist (gateways behind NAT) are held to the last one only.
//
// A connection admitted holds a `ticket`. The ticket stops counting as pending when it is told the
// connection was authenticated, and gives everything back once, when it is released or destroyed
// (when the socket is closed, after a lingering close too).
//
// Memory: one entry per address that has a connection, or whose bucket is still refilling since
// its last connection ended (at most burst/rate seconds, 10 s by default); then it goes. About
// 100 bytes each (docs/hardening.md); none for an allowlisted address. The table is keyed with
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
#include <string_view>
#include <unordered_map>

#include "base/address_range.hpp"
#include "base/clock.hpp"
#include "config/config.hpp"
#include "events/statistics.hpp"

namespace firehook::net {

class address_budget {
  struct entry {
    base::time_point refilled; // when `tokens` was last brought up to date
    double tokens = 0;
    std::uint32_t connections = 0;
    std::uint32_t pending = 0;
    bool idle_queued = false; // it has a mark in idle_
  };
  // SipHash-2-4 under a key drawn when the budget is made.
  struct keyed_hash {
    std::array<unsigned char, 16> key{};
    std::size_t operator()(const base::address_bytes& a) const noexcept;
  };
  using table = std::unordered_map<base::address_bytes, entry, keyed_hash>;

public:
  // Which budget refused a connection; `none` when it was admitted.
  enum class refusal : std::uint8_t {
    none,
    connections_per_address,
    rate_per_address,
    pending_per_address,
    pending_connections,
  };

  // The configuration key of the budget, for the connection_refused event's subject.
  static std::string_view key_of(refusal r);

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
    table::value_type* entry_ = nullptr; // null for an allowlisted address
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

  // Addresses with an entry now, and connections pending now (tests; the gauge has the latter).
  std::size_t tracked() const;
  std::uint32_t pending() const;

private:
  // An entry without connections, to look at again once its bucket should be full.
  struct idle_mark {
    base::time_point due;
    base::address_bytes address;
  };

  static keyed_hash make_hash();
  void refill(entry& e, base::time_point now) const;
  base::duration time_to_full(const entry& e) const;
  // An entry has no connection any more: it goes at once when its bucket is full, else later.
  void went_idle(table::iterator it, base::time_point now);
  // Forgets the idle entries whose buckets have filled up.
  void sweep(base::time_point now);
  void release(ticket& t);
  void authenticated(ticket& t);
  void pending_changed(); // the gauge

  const config::abuse_settings& settings_;
  const base::clock& clock_;
  events::statistics& stats_;

  mutable std::mutex mutex_; // guards everything below
  table table_;
  std::deque<idle_mark> idle_; // in the order the entries went idle
  std::uint32_t pending_ = 0;  // every address, allowlisted ones too
};

} // namespace firehook::net

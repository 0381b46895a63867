#include "net/address_budget.hpp"

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace firehook::net {

namespace {

using seconds_f = std::chrono::duration<double>;

// The configuration key and the counter of each refusal but `none`, in refusal order.
struct refusal_info {
  std::string_view key;
  events::stat counter;
};
constexpr std::array<refusal_info, 4> refusals{{
    {"abuse.max_connections_per_address", events::stat::refused_connections_per_address},
    {"abuse.connection_rate_per_address", events::stat::refused_connection_rate_per_address},
    {"abuse.max_pending_per_address", events::stat::refused_pending_per_address},
    {"abuse.max_pending_connections", events::stat::refused_pending_connections},
}};

const refusal_info& info_of(address_budget::refusal r) { // r is not none
  return refusals.at(static_cast<std::size_t>(r) - 1);
}

} // namespace

std::string_view address_budget::key_of(refusal r) {
  return r == refusal::none ? std::string_view{} : info_of(r).key;
}

std::size_t address_budget::keyed_hash::operator()(const base::address_bytes& a) const noexcept {
  std::array<unsigned char, crypto_shorthash_BYTES> out{};
  crypto_shorthash(out.data(), a.data(), a.size(), key.data());
  std::uint64_t h = 0;
  std::memcpy(&h, out.data(), sizeof h);
  return static_cast<std::size_t>(h);
}

address_budget::address_budget(const config::abuse_settings& settings, const base::clock& clock,
                               events::statistics& stats)
    : settings_(settings), clock_(clock), stats_(stats), table_(0, make_hash()) {}

address_budget::~address_budget() = default;

address_budget::keyed_hash address_budget::make_hash() {
  static_assert(sizeof(keyed_hash::key) == crypto_shorthash_KEYBYTES);
  if (sodium_init() < 0) {
    throw std::runtime_error("libsodium cannot be initialised");
  }
  keyed_hash h;
  crypto_shorthash_keygen(h.key.data());
  return h;
}

address_budget::decision address_budget::admit(const base::address_bytes& peer) {
  decision d;
  const bool allowed = settings_.allowlist.contains(peer); // outside the lock: it is immutable
  const std::lock_guard lock(mutex_);
  const base::time_point now = clock_.now();
  sweep(now);
  table::iterator it = table_.end();
  if (!allowed) {
    it = table_.find(peer);
    if (it != table_.end()) {
      entry& e = it->second;
      refill(e, now);
      if (e.connections >= settings_.max_connections_per_address) {
        d.refused = refusal::connections_per_address;
      } else if (e.pending >= settings_.max_pending_per_address) {
        d.refused = refusal::pending_per_address;
      } else if (e.tokens < 1) {
        d.refused = refusal::rate_per_address;
      }
    }
  }
  if (d.refused == refusal::none && pending_ >= settings_.max_pending_connections) {
    d.refused = refusal::pending_connections;
  }
  if (d.refused != refusal::none) {
    stats_.add(info_of(d.refused).counter, 1);
    return d;
  }
  if (!allowed) {
    if (it == table_.end()) {
      it =
          table_.emplace(peer, entry{now, static_cast<double>(settings_.connection_burst_per_address)}).first;
    }
    entry& e = it->second;
    e.tokens -= 1;
    ++e.connections;
    ++e.pending;
    d.admitted.entry_ = &*it;
  }
  ++pending_;
  pending_changed();
  d.admitted.owner_ = this;
  d.admitted.pending_ = true;
  return d;
}

std::size_t address_budget::tracked() const {
  const std::lock_guard lock(mutex_);
  return table_.size();
}

std::uint32_t address_budget::pending() const {
  const std::lock_guard lock(mutex_);
  return pending_;
}

void address_budget::refill(entry& e, base::time_point now) const {
  const double burst = settings_.connection_burst_per_address;
  if (e.tokens < burst && now > e.refilled) {
    const double earned = seconds_f(now - e.refilled).count() * settings_.connection_rate_per_address;
    e.tokens = std::min(burst, e.tokens + earned);
  }
  e.refilled = now;
}

base::duration address_budget::time_to_full(const entry& e) const {
  const double missing = settings_.connection_burst_per_address - e.tokens;
  const auto d = std::chrono::duration_cast<base::duration>(
      seconds_f(std::max(missing, 0.0) / settings_.connection_rate_per_address));
  return d + base::duration(1); // rounding down must not leave it a hair short of full
}

void address_budget::went_idle(table::iterator it, base::time_point now) {
  entry& e = it->second;
  refill(e, now);
  if (e.tokens >= settings_.connection_burst_per_address) {
    table_.erase(it);
    return;
  }
  if (!e.idle_queued) {
    e.idle_queued = true;
    idle_.push_back(idle_mark{now + time_to_full(e), it->first});
  }
}

void address_budget::sweep(base::time_point now) {
  while (!idle_.empty() && idle_.front().due <= now) {
    const idle_mark mark = idle_.front();
    idle_.pop_front();
    const auto it = table_.find(mark.address);
    if (it == table_.end()) {
      continue;
    }
    entry& e = it->second;
    e.idle_queued = false;
    if (e.connections == 0) {
      went_idle(it, now); // gone now, or looked at again once full (it connected meanwhile)
    }
  }
}

void address_budget::release(ticket& t) {
  const std::lock_guard lock(mutex_);
  if (t.pending_) {
    --pending_;
    pending_changed();
  }
  if (t.entry_ != nullptr) {
    entry& e = t.entry_->second;
    --e.connections;
    if (t.pending_) {
      --e.pending;
    }
    if (e.connections == 0) {
      went_idle(table_.find(t.entry_->first), clock_.now());
    }
  }
  sweep(clock_.now());
}

void address_budget::authenticated(ticket& t) {
  const std::lock_guard lock(mutex_);
  --pending_;
  pending_changed();
  if (t.entry_ != nullptr) {
    --t.entry_->second.pending;
  }
}

void address_budget::pending_changed() {
  stats_.set(events::stat::connections_pending, pending_);
}

address_budget::ticket::ticket(ticket&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), entry_(std::exchange(other.entry_, nullptr)),
      pending_(std::exchange(other.pending_, false)) {}

address_budget::ticket& address_budget::ticket::operator=(ticket&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = std::exchange(other.owner_, nullptr);
    entry_ = std::exchange(other.entry_, nullptr);
    pending_ = std::exchange(other.pending_, false);
  }
  return *this;
}

void address_budget::ticket::authenticated() {
  if (owner_ != nullptr && pending_) {
    owner_->authenticated(*this);
    pending_ = false;
  }
}

void address_budget::ticket::release() {
  if (owner_ != nullptr) {
    std::exchange(owner_, nullptr)->release(*this);
    entry_ = nullptr;
    pending_ = false;
  }
}

} // namespace firehook::net

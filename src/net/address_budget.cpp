#include "net/address_budget.hpp"

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
constexpr std::array<refusal_info, 7> refusals{{
    {"abuse.max_connections_per_address", events::stat::refused_connections_per_address},
    {"abuse.connection_rate_per_address", events::stat::refused_connection_rate_per_address},
    {"abuse.max_pending_per_address", events::stat::refused_pending_per_address},
    {"abuse.max_connections_per_network", events::stat::refused_connections_per_network},
    {"abuse.connection_rate_per_network", events::stat::refused_connection_rate_per_network},
    {"abuse.max_pending_per_network", events::stat::refused_pending_per_network},
    {"abuse.max_pending_connections", events::stat::refused_pending_connections},
}};

const refusal_info& info_of(address_budget::refusal r) { // r is not none
  return refusals.at(static_cast<std::size_t>(r) - 1);
}

} // namespace

std::string_view address_budget::key_of(refusal r) {
  return r == refusal::none ? std::string_view{} : info_of(r).key;
}

std::string address_budget::reason_of(refusal r) const {
  const auto& a = settings_;
  const auto n = [](std::uint32_t v) { return std::to_string(v); };
  switch (r) {
  case refusal::connections_per_address:
    return "limit reached: " + n(a.max_connections_per_address) + " connections from this address";
  case refusal::rate_per_address:
    return "limit reached: more than " + n(a.connection_rate_per_address) + " new connections per second (burst " +
           n(a.connection_burst_per_address) + ") from this address";
  case refusal::pending_per_address:
    return "limit reached: " + n(a.max_pending_per_address) + " connections from this address not yet authenticated";
  case refusal::connections_per_network:
    return "limit reached: " + n(a.max_connections_per_network) + " connections from this network";
  case refusal::rate_per_network:
    return "limit reached: more than " + n(a.connection_rate_per_network) + " new connections per second (burst " +
           n(a.connection_burst_per_network) + ") from this network";
  case refusal::pending_per_network:
    return "limit reached: " + n(a.max_pending_per_network) + " connections from this network not yet authenticated";
  case refusal::pending_connections:
    return "limit reached: " + n(a.max_pending_connections) + " connections not yet authenticated";
  case refusal::none:
    break;
  }
  return {};
}

address_budget::address_budget(const config::abuse_settings& settings, const base::clock& clock,
                               events::statistics& stats)
    : settings_(settings), clock_(clock), stats_(stats),
      levels_{level{settings.max_connections_per_address, settings.connection_rate_per_address,
                    settings.connection_burst_per_address, settings.max_pending_per_address,
                    refusal::connections_per_address, refusal::rate_per_address, refusal::pending_per_address,
                    table(), {}},
              level{settings.max_connections_per_network, settings.connection_rate_per_network,
                    settings.connection_burst_per_network, settings.max_pending_per_network,
                    refusal::connections_per_network, refusal::rate_per_network, refusal::pending_per_network,
                    table(), {}}} {}

address_budget::~address_budget() = default;

base::address_bytes address_budget::network_of(const base::address_bytes& peer) const {
  return base::masked(peer, base::is_ipv4(peer) ? 96U + settings_.network_prefix_ipv4
                                                : settings_.network_prefix_ipv6);
}

address_budget::decision address_budget::admit(const base::address_bytes& peer) {
  decision d;
  const bool allowed = settings_.allowlist.contains(peer); // outside the lock: it is immutable
  const std::array<base::address_bytes, 2> keys{peer, network_of(peer)};
  const std::lock_guard lock(mutex_);
  const base::time_point now = clock_.now();
  std::array<table::iterator, 2> found{};
  for (std::size_t i = 0; i < levels_.size(); ++i) {
    level& l = levels_[i];
    sweep(l, now);
    found[i] = l.entries.end();
    if (allowed || d.refused != refusal::none) {
      continue;
    }
    found[i] = l.entries.find(keys[i]);
    if (found[i] != l.entries.end()) {
      entry& e = found[i]->second;
      refill(l, e, now);
      if (e.connections >= l.max_connections) {
        d.refused = l.over_connections;
      } else if (e.pending >= l.max_pending) {
        d.refused = l.over_pending;
      } else if (e.tokens < 1) {
        d.refused = l.over_rate;
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
    for (std::size_t i = 0; i < levels_.size(); ++i) {
      level& l = levels_[i];
      if (found[i] == l.entries.end()) {
        found[i] = l.entries.emplace(keys[i], entry{now, static_cast<double>(l.burst)}).first;
      }
      entry& e = found[i]->second;
      e.tokens -= 1;
      ++e.connections;
      ++e.pending;
      d.admitted.entries_[i] = &*found[i];
    }
  }
  ++pending_;
  pending_changed();
  d.admitted.owner_ = this;
  d.admitted.pending_ = true;
  return d;
}

std::size_t address_budget::tracked_addresses() const {
  const std::lock_guard lock(mutex_);
  return levels_[address_level].entries.size();
}

std::size_t address_budget::tracked_networks() const {
  const std::lock_guard lock(mutex_);
  return levels_[network_level].entries.size();
}

std::uint32_t address_budget::pending() const {
  const std::lock_guard lock(mutex_);
  return pending_;
}

void address_budget::refill(const level& l, entry& e, base::time_point now) {
  const double burst = l.burst;
  if (e.tokens < burst && now > e.refilled) {
    const double earned = seconds_f(now - e.refilled).count() * l.rate;
    e.tokens = std::min(burst, e.tokens + earned);
  }
  e.refilled = now;
}

base::duration address_budget::time_to_full(const level& l, const entry& e) {
  const double missing = l.burst - e.tokens;
  const auto d = std::chrono::duration_cast<base::duration>(seconds_f(std::max(missing, 0.0) / l.rate));
  return d + base::duration(1); // rounding down must not leave it a hair short of full
}

void address_budget::went_idle(level& l, table::iterator it, base::time_point now) {
  entry& e = it->second;
  refill(l, e, now);
  if (e.tokens >= l.burst) {
    l.entries.erase(it);
    return;
  }
  if (!e.idle_queued) {
    e.idle_queued = true;
    l.idle.push_back(idle_mark{now + time_to_full(l, e), it->first});
  }
}

void address_budget::sweep(level& l, base::time_point now) {
  while (!l.idle.empty() && l.idle.front().due <= now) {
    const idle_mark mark = l.idle.front();
    l.idle.pop_front();
    const auto it = l.entries.find(mark.key);
    if (it == l.entries.end()) {
      continue;
    }
    entry& e = it->second;
    e.idle_queued = false;
    if (e.connections == 0) {
      went_idle(l, it, now); // gone now, or looked at again once full (it connected meanwhile)
    }
  }
}

void address_budget::release(ticket& t) {
  const std::lock_guard lock(mutex_);
  const base::time_point now = clock_.now();
  if (t.pending_) {
    --pending_;
    pending_changed();
  }
  for (std::size_t i = 0; i < levels_.size(); ++i) {
    level& l = levels_[i];
    if (auto* held = t.entries_[i]) {
      entry& e = held->second;
      --e.connections;
      if (t.pending_) {
        --e.pending;
      }
      if (e.connections == 0) {
        went_idle(l, l.entries.find(held->first), now);
      }
    }
    sweep(l, now);
  }
}

void address_budget::authenticated(ticket& t) {
  const std::lock_guard lock(mutex_);
  --pending_;
  pending_changed();
  for (auto* held : t.entries_) {
    if (held != nullptr) {
      --held->second.pending;
    }
  }
}

void address_budget::pending_changed() {
  stats_.set(events::stat::connections_pending, pending_);
}

address_budget::ticket::ticket(ticket&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), entries_(std::exchange(other.entries_, {})),
      pending_(std::exchange(other.pending_, false)) {}

address_budget::ticket& address_budget::ticket::operator=(ticket&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = std::exchange(other.owner_, nullptr);
    entries_ = std::exchange(other.entries_, {});
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
    entries_ = {};
    pending_ = false;
  }
}

} // namespace firehook::net

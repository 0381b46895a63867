#include "broker/session_registry.hpp"

namespace firehook::broker {

session_registry::claim_result session_registry::claim(const std::string& client_id, unsigned shard,
                                                       std::string_view owner, claim_limits limits,
                                                       claim_kind kind) {
  const std::lock_guard lock(mutex_);
  claim_result result;
  auto found = entries_.find(client_id);
  if (found != entries_.end() && kind == claim_kind::fresh) {
    result.status = claim_status::in_use;
    return result;
  }
  const bool squatted = found != entries_.end() && found->second.owner->first != owner;
  if (squatted && kind != claim_kind::entitled) {
    result.status = claim_status::owned_by_another;
    return result;
  }
  owner_map::value_type* who = nullptr;
  if (found != entries_.end() && !squatted) {
    who = found->second.owner;
  } else {
    const auto o = owners_.find(std::string(owner));
    who = o == owners_.end() ? nullptr : &*o;
    if (limits.max_sessions != 0 && who != nullptr && who->second.sessions >= limits.max_sessions) {
      result.status = claim_status::too_many_sessions;
      return result;
    }
  }
  if (limits.refuse_new && who != nullptr && who->second.connections > 0) {
    result.status = claim_status::already_connected;
    return result;
  }
  const bool connects = found == entries_.end() || squatted || !found->second.connected;
  if (connects && limits.max_connections != 0 && who != nullptr &&
      who->second.connections >= limits.max_connections) {
    result.status = claim_status::too_many_connections;
    return result;
  }
  result.epoch = next_epoch_++;
  if (found != entries_.end()) {
    result.previous_shard = found->second.shard;
  }
  if (squatted) {
    // The entitled identity takes the client id over; the squatter's session no longer counts as
    // its own, and the caller ends it.
    result.evicted = true;
    forget(found);
    found = entries_.end();
  }
  if (found != entries_.end()) {
    found->second.shard = shard;
    found->second.epoch = result.epoch;
    set_connected(found->second, true);
    return result;
  }
  if (who == nullptr) {
    who = &*owners_.try_emplace(std::string(owner)).first;
  }
  ++who->second.sessions;
  entry& e = entries_.emplace(client_id, entry{shard, result.epoch, who, false}).first->second;
  set_connected(e, true);
  return result;
}

void session_registry::set_connected(entry& e, bool connected) {
  if (e.connected != connected) {
    e.connected = connected;
    if (connected) {
      ++e.owner->second.connections;
    } else {
      --e.owner->second.connections;
    }
  }
}

void session_registry::disconnected(const std::string& client_id, std::uint64_t epoch) {
  const std::lock_guard lock(mutex_);
  const auto it = entries_.find(client_id);
  if (it != entries_.end() && it->second.epoch == epoch) {
    set_connected(it->second, false);
  }
}

void session_registry::release(const std::string& client_id, std::uint64_t epoch) {
  const std::lock_guard lock(mutex_);
  const auto it = entries_.find(client_id);
  if (it != entries_.end() && it->second.epoch == epoch) {
    forget(it);
  }
}

void session_registry::forget(std::unordered_map<std::string, entry>::iterator it) {
  set_connected(it->second, false);
  owner_map::value_type* who = it->second.owner;
  entries_.erase(it);
  if (--who->second.sessions == 0) {
    owners_.erase(owners_.find(who->first)); // by iterator: the key lives in the node erased
  }
}

std::size_t session_registry::size() const {
  const std::lock_guard lock(mutex_);
  return entries_.size();
}

session_registry::usage session_registry::usage_of(std::string_view owner) const {
  const std::lock_guard lock(mutex_);
  const auto it = owners_.find(std::string(owner));
  return it == owners_.end() ? usage{} : static_cast<const usage&>(it->second);
}

} // namespace firehook::broker

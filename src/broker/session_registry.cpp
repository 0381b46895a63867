#include "broker/session_registry.hpp"

namespace firehook::broker {

session_registry::claim_result session_registry::claim(const std::string& client_id, unsigned shard) {
  const std::lock_guard lock(mutex_);
  claim_result result;
  result.epoch = next_epoch_++;
  auto [it, inserted] = entries_.try_emplace(client_id, entry{shard, result.epoch});
  if (!inserted) {
    result.previous_shard = it->second.shard;
    it->second = entry{shard, result.epoch};
  }
  return result;
}

void session_registry::release(const std::string& client_id, std::uint64_t epoch) {
  const std::lock_guard lock(mutex_);
  const auto it = entries_.find(client_id);
  if (it != entries_.end() && it->second.epoch == epoch) {
    entries_.erase(it);
  }
}

std::size_t session_registry::size() const {
  const std::lock_guard lock(mutex_);
  return entries_.size();
}

} // namespace firehook::broker

#include "broker/replica.hpp"

namespace firehook::broker {

router::match_result& replica::match(std::string_view topic) {
  index_.match(topic, match_);
  return match_;
}

void replica::subscribe(subscriber_id sid, const replica_change& c) {
  index_.subscribe(sid, c.filter, c.options, c.identifier);
}

void replica::unsubscribe(subscriber_id sid, std::string_view filter) {
  index_.unsubscribe(sid, filter);
}

void replica::apply(subscriber_id sid, location where, const std::vector<replica_change>& changes) {
  set_location(sid, where);
  for (const auto& c : changes) {
    if (c.subscribe) {
      subscribe(sid, c);
    } else {
      unsubscribe(sid, c.filter);
    }
  }
}

void replica::forget(subscriber_id sid) {
  index_.remove_subscriber(sid);
  locations_.erase(sid);
  presence_.erase(sid);
  set_congested(sid, false, ~std::uint64_t{0});
  congestion_.erase(sid);
  durable_.erase(sid);
}

void replica::set_congested(subscriber_id sid, bool on, std::uint64_t epoch) {
  auto [it, inserted] = congestion_.try_emplace(sid, congestion{});
  if (!inserted && epoch < it->second.epoch) {
    return; // an update older than what we know (a takeover moved the session meanwhile)
  }
  if (it->second.on != on) {
    congested_count_ += on ? 1 : -1;
  }
  it->second = congestion{on, epoch};
}

void replica::set_location(subscriber_id sid, location where) {
  auto [it, inserted] = locations_.try_emplace(sid, where);
  if (!inserted && where.epoch >= it->second.epoch) {
    it->second = where;
  }
}

unsigned replica::shard_of(subscriber_id sid, unsigned here) const {
  const auto it = locations_.find(sid);
  return it == locations_.end() ? here : it->second.shard;
}

bool replica::online(subscriber_id sid) const {
  const auto it = presence_.find(sid);
  return it == presence_.end() || it->second.online;
}

void replica::set_presence(subscriber_id sid, bool is_online, std::uint64_t epoch) {
  auto [it, inserted] = presence_.try_emplace(sid, presence{is_online, epoch});
  if (!inserted && epoch >= it->second.epoch) {
    it->second = presence{is_online, epoch};
  }
}

std::uint64_t replica::begin_change(pending_change&& p, unsigned others) {
  const std::uint64_t id = next_change_++;
  p.remaining = others;
  changes_.emplace(id, std::move(p));
  return id;
}

std::optional<pending_change> replica::applied(std::uint64_t id) {
  const auto it = changes_.find(id);
  if (it == changes_.end() || --it->second.remaining > 0) {
    return std::nullopt;
  }
  pending_change p = std::move(it->second);
  changes_.erase(it);
  return p;
}

} // namespace firehook::broker

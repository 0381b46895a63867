#pragma once
// One shard's replica of the broker's subscription state: the subscription index, where each
// subscriber's session lives, whether subscribers with shared subscriptions are connected, and the
// local subscription changes still waiting for the other replicas to apply them
// (messages.hpp: subscription_changes / change_applied).
//
// Every shard has one and keeps it current from the messages of the others, so a PUBLISH is
// matched on the publisher's own shard with no lock. Locations and presence are ordered by registry
// epoch: an older update never overwrites a newer one, whatever order they arrive in.
//
// Threads: the owning shard's only.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/messages.hpp"
#include "router/subscription_index.hpp"
#include "session/action.hpp"

namespace firehook::broker {

// A local subscription change being applied by the other replicas; its SUBACK/UNSUBACK and
// retained messages wait for all of them.
struct pending_change {
  subscriber_id sid = 0;
  connection_id conn = 0;
  unsigned remaining = 0;                               // replicas still to answer
  std::optional<mqtt::packet> ack;                      // none for subscriptions the broker revoked
  std::vector<session::subscription_change> subscribed; // for retained messages
};

class replica {
public:
  const router::subscription_index& index() const { return index_; }
  std::size_t subscription_count() const { return index_.size(); }

  // What matches `topic`: scratch space the caller may reorder, valid until the next call.
  router::match_result& match(std::string_view topic);

  // A change of a local subscriber (the session already decided it).
  void subscribe(subscriber_id sid, const replica_change& c);
  void unsubscribe(subscriber_id sid, std::string_view filter);
  // Changes another shard made for its subscriber, which lives at `where`.
  void apply(subscriber_id sid, location where, const std::vector<replica_change>& changes);
  // The session ended: its subscriptions, location and presence go.
  void forget(subscriber_id sid);

  void set_location(subscriber_id sid, location where);
  // The shard the subscriber lives on; `here` when unknown (a local subscriber that never
  // subscribed is not announced).
  unsigned shard_of(subscriber_id sid, unsigned here) const;

  // Absent: connected (only subscribers with shared subscriptions are tracked).
  bool online(subscriber_id sid) const;
  void set_presence(subscriber_id sid, bool is_online, std::uint64_t epoch);

  // Backpressure: whether the subscriber's session is congested (session::congestion_changed), so
  // that publishers whose messages reach it are slowed. Ordered by epoch, as presence.
  bool congested(subscriber_id sid) const {
    if (congested_count_ == 0) {
      return false;
    }
    const auto it = congestion_.find(sid);
    return it != congestion_.end() && it->second.on;
  }
  void set_congested(subscriber_id sid, bool on, std::uint64_t epoch);

  // Subscribers whose session is persistent, by client id: their QoS 1/2 deliveries get a durable
  // record on the publisher's shard (shard_store.cpp). Learnt with their subscriptions.
  const std::string* durable_id(subscriber_id sid) const {
    const auto it = durable_.find(sid);
    return it == durable_.end() ? nullptr : &it->second;
  }
  void set_durable(subscriber_id sid, const std::string& client_id) {
    durable_.insert_or_assign(sid, client_id);
  }

  // Tracks a local change that `others` replicas must apply; returns its id.
  std::uint64_t begin_change(pending_change&& p, unsigned others);
  // One replica applied change `id`: the change once all have, nullopt before (or if unknown).
  std::optional<pending_change> applied(std::uint64_t id);

private:
  struct presence {
    bool online = true;
    std::uint64_t epoch = 0;
  };

  router::subscription_index index_;
  router::match_result match_;
  std::unordered_map<subscriber_id, location> locations_;
  std::unordered_map<subscriber_id, presence> presence_;
  struct congestion {
    bool on = false;
    std::uint64_t epoch = 0;
  };
  // Subscribers that were ever congested, until they end. The count of those congested now
  // spares the publish path a lookup while there is none.
  std::unordered_map<subscriber_id, congestion> congestion_;
  std::size_t congested_count_ = 0;
  std::unordered_map<subscriber_id, std::string> durable_;
  std::unordered_map<std::uint64_t, pending_change> changes_;
  std::uint64_t next_change_ = 1;
};

} // namespace firehook::broker

#pragma once
// What one shard asks of another: typed values, not closures reaching into the other shard's
// members (STYLE.md), so that the same messages can later cross to another node. Each travels
// through transport::post_to_shard to shard::receive on the target's thread, in order per pair of
// shards (FIFO), which the protocols below rely on.
//
// Cross-shard protocols (shard.hpp has the whole picture):
//  - Subscription changes: the subscriber's shard applies a SUBSCRIBE/UNSUBSCRIBE to its replica
//    and sends subscription_changes to every other shard, which apply it and answer
//    change_applied; the SUBACK goes out when all have.
//  - Takeover: the CONNECT's shard sends handover_request to the shard that had the client id's
//    session; that one answers handover_reply (with the session state when it is resumed).
//  - Every replica knows where each subscriber lives (location_update, subscriber_gone) and whether
//    subscribers with shared subscriptions are connected (presence_update).
//  - Deliveries to sessions of another shard travel in batches (deliveries), once per turn.
//  - Every replica knows which subscribers are congested (congestion_update), so that the shard of
//    a publisher feeding one slows it.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "broker/transport.hpp"
#include "mqtt/packet.hpp"
#include "router/subscription_index.hpp"
#include "session/state.hpp"

namespace firehook::broker {

using subscriber_id = router::subscriber_id;

// Where a subscriber's session lives, as of registry claim `epoch` (newer claims win).
struct location {
  unsigned shard = 0;
  std::uint64_t epoch = 0;
};

// A subscription change as the other replicas apply it.
struct replica_change {
  bool subscribe = true;
  std::string filter;
  mqtt::subscribe_options options;
  std::optional<std::uint32_t> identifier;
};

struct remote_delivery {
  subscriber_id to = 0;
  session::delivery what;
  unsigned hops = 0; // times it was forwarded after a takeover moved the session
};

namespace message {

struct subscription_changes {
  subscriber_id sid = 0;
  location where;
  std::shared_ptr<const std::vector<replica_change>> changes; // shared by every target
  unsigned origin = 0;                                        // the shard waiting for change_applied
  std::uint64_t change_id = 0;
  std::string durable_client_id; // the session is persistent (replica::durable_id); "" otherwise
};

struct change_applied {
  std::uint64_t change_id = 0;
};

struct location_update {
  subscriber_id sid = 0;
  location where;
};

// The session ended: its subscriptions and what is known of it go everywhere.
struct subscriber_gone {
  subscriber_id sid = 0;
};

struct presence_update {
  subscriber_id sid = 0;
  bool online = true;
  std::uint64_t epoch = 0;
};

// Backpressure: the subscriber's session became congested, or no longer is (replica::congested).
struct congestion_update {
  subscriber_id sid = 0;
  bool congested = false;
  std::uint64_t epoch = 0;
};

struct handover_request {
  std::string client_id;
  unsigned to_shard = 0;
  connection_id to_connection = 0;
  std::uint64_t epoch = 0;
  bool clean_start = true;
  std::string peer; // of the new connection, "address:port", for the session_taken_over event
};

struct handover_reply {
  std::string client_id;
  connection_id to_connection = 0;
  std::uint64_t epoch = 0;
  subscriber_id sid = 0;                 // 0: no session to resume
  std::shared_ptr<session::state> state; // set with sid
  bool moved = false;                    // the state comes from another shard
};

struct deliveries {
  std::vector<remote_delivery> batch;
};

} // namespace message

using shard_message =
    std::variant<message::subscription_changes, message::change_applied, message::location_update,
                 message::subscriber_gone, message::presence_update, message::congestion_update,
                 message::handover_request, message::handover_reply, message::deliveries>;

} // namespace firehook::broker

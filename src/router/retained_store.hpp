#pragma once
// Retained messages (MQTT 5.0 section 3.3.1.3): the last retained message of each topic, sent to
// new subscriptions whose filter matches.
//
// A trie keyed by topic level, so a filter with literal levels ("site/3/+/state") visits only the
// topics under "site/3" instead of every retained topic. Messages with an expiry also sit in a
// time-ordered index, so expire() touches only what is due.
//
// Thread safety: one instance is shared by all shards. All members are safe to call concurrently;
// `mutex_` (a shared_mutex) guards the whole trie, the expiry index and the counts. match() takes
// it shared, set() and expire() exclusive: retained publishes and new subscriptions are far rarer
// than plain publishes, which never come here.
//
// Ownership: the store holds a shared reference to each stored message; match() hands out more.
// Memory is bounded by retained_limits: the number of messages, the bytes of each, and the bytes
// of all of them with the trie nodes that hold them (bytes()).
//
// Input: topics are expected to be valid topic names and filters valid, non-shared topic filters;
// as in subscription_index, anything else is safe but matches only literally. Nothing recurses.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string_view>
#include <vector>

#include "mqtt/message.hpp"
#include "router/string_map.hpp"

namespace firehook::router {

enum class retain_status : std::uint8_t {
  stored,      // a new topic now has a retained message
  replaced,    // the topic's previous retained message was replaced
  deleted,     // an empty payload removed the topic's retained message [MQTT-3.3.1-6]
  not_present, // an empty payload for a topic with no retained message: nothing to do
  refused,     // the store is full (max_messages, or max_bytes with this message): not stored
  too_large,   // the message alone is over max_message_bytes: not stored
};

// The byte bounds of a retained_store; 0 = no bound.
struct retained_limits {
  std::size_t max_messages = 0;      // topics holding a retained message
  std::size_t max_bytes = 0;         // memory of all of them together (bytes())
  std::size_t max_message_bytes = 0; // memory of one message (mqtt::footprint)
};

class retained_store {
public:
  using time_point = std::chrono::steady_clock::time_point;

  // At most limits.max_messages topics hold a retained message (0 refuses every new one), each
  // message at most limits.max_message_bytes and all together at most limits.max_bytes (0: no bound).
  explicit retained_store(retained_limits limits);
  retained_store(const retained_store&) = delete;
  retained_store& operator=(const retained_store&) = delete;
  ~retained_store(); // iterative: a deep trie cannot overflow the stack

  // Stores `message` (not null) as the retained message of message->topic, replacing the previous
  // one [MQTT-3.3.1-5]; an empty payload deletes it instead and is not stored [MQTT-3.3.1-6],
  // [MQTT-3.3.1-7]. When the store is full, a new topic is refused but an existing one may still be
  // replaced or deleted. A message over max_message_bytes is never stored, and one that would take
  // the store past max_bytes is refused (a replacement counts the bytes it frees). Expired messages
  // count against the limits until expire() removes them. May throw std::bad_alloc.
  retain_status set(mqtt::message_ptr message);

  // Every retained message whose topic matches `filter`, into `out` (cleared first), skipping
  // those expired at `now` (expires_at <= now; 5.0 section 3.3.2.3.3). Topics starting with '$' are not
  // matched by a filter starting with '+' or '#' [MQTT-4.7.2-1]. Order is unspecified.
  void match(std::string_view filter, time_point now, std::vector<mqtt::message_ptr>& out) const;

  // Removes up to `max_removed` messages expired at `now`, earliest first; returns how many. Call
  // it from a timer; a bound keeps each call (and the time it holds the lock) short.
  std::size_t expire(time_point now, std::size_t max_removed = std::numeric_limits<std::size_t>::max());

  // Stored messages, expired ones not yet removed included.
  std::size_t size() const;
  std::size_t max_messages() const noexcept { return limits_.max_messages; }
  // Memory held now: every message's footprint and every trie node's.
  std::size_t bytes() const;
  // Trie nodes besides the root: 0 when the store is empty. For tests and memory metrics.
  std::size_t node_count() const;

private:
  struct node;
  using expiry_index = std::multimap<time_point, node*>;

  struct node {
    node* parent = nullptr;
    std::string_view key; // views the key of parent->children that owns this node
    detail::string_map<std::unique_ptr<node>> children;
    mqtt::message_ptr message;
    std::optional<expiry_index::iterator> expiry; // set when message has expires_at
  };

  node* find(std::string_view topic) const;
  void clear_message(node* n);
  void prune(node* n);
  // What a trie node for a level named `key` costs.
  static std::size_t node_bytes(std::string_view key);

  const retained_limits limits_;
  mutable std::shared_mutex mutex_;
  // Guarded by mutex_:
  std::unique_ptr<node> root_;
  expiry_index expiries_;
  std::size_t size_ = 0;
  std::size_t node_count_ = 0;
  std::size_t bytes_ = 0; // footprints of the messages and node_bytes of the nodes
};

} // namespace firehook::router

#pragma once
// The subscription index: which subscriptions match a topic name (MQTT 5.0 section 4.7, shared
// subscriptions section 4.8.2).
//
// A trie keyed by topic level. Each node has its literal children in a hash map (looked up by
// string_view, no temporary strings), and its '+' and '#' children apart, so a match walks at most
// three branches per level instead of scanning every filter. A subscription sits at the node where
// its filter ends; a shared subscription "$share/g/f" sits in group g of the node for f.
//
// Thread safety: none. The broker keeps one replica per shard and each replica is used by its
// shard's thread only (DESIGN.md, Threads); changes reach the other replicas through shard queues.
// That is also why shared_group's round-robin cursor may change under a const index.
//
// Ownership: the index owns copies of every filter. Views it hands out (subscription_entry::filter,
// shared_group pointers, filters passed to callbacks) are valid until the index is next changed.
//
// Input: filters are expected to be valid (mqtt::is_valid_topic_filter) and topics valid names;
// the broker checks both before they get here. The index does not re-validate, but any string is
// safe: an invalid filter is stored as its literal levels and a '#' that is not last matches
// nothing after it. No operation recurses, so a 65,535-byte filter of 65,536 empty levels costs
// memory in proportion, never stack.
//
// Neither copyable nor movable (nodes and entries point into each other); a replica that must move
// is held by unique_ptr.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mqtt/packet.hpp"
#include "router/string_map.hpp"

namespace firehook::router {

// Opaque to the index: the broker decides what it names (a session on some shard).
using subscriber_id = std::uint64_t;

// One subscription as a match reports it.
struct subscription_entry {
  subscriber_id subscriber = 0;
  mqtt::subscribe_options options;
  std::optional<std::uint32_t> subscription_identifier;
  // The topic filter, without any "$share/group/" prefix.
  std::string_view filter;
};

class shared_group;

namespace detail {

struct index_node;

// Where one subscription lives, kept in the subscriber's reverse map so unsubscribe and
// remove_subscriber go straight to it. `slot` is its position in the node's (or group's) entry
// vector; entries move on swap-removal and then update their ref.
struct subscription_ref {
  index_node* node = nullptr;
  shared_group* group = nullptr; // null for a non-shared subscription
  std::size_t slot = 0;
};

} // namespace detail

// A shared subscription group: the subscriptions "$share/<name>/<filter>" of any subscribers.
// A matching message goes to one member [MQTT-4.8.2-3]; pick() chooses it. Never empty: the index
// removes a group with its last member.
class shared_group {
public:
  shared_group(std::string_view name, std::string_view filter) : name_(name), filter_(filter) {}

  std::string_view name() const noexcept { return name_; }
  std::string_view filter() const noexcept { return filter_; }
  std::span<const subscription_entry> members() const noexcept { return members_; }

  // The next member, round robin, for which `eligible(const subscription_entry&)` holds (e.g. its
  // session is connected). When none is eligible, the next member in turn (the caller queues for
  // it or drops, as its session allows). Advances the cursor either way, so deliveries spread.
  template <class Predicate>
  const subscription_entry& pick(Predicate&& eligible) const {
    const std::size_t n = members_.size();
    const std::size_t start = cursor_ % n; // members may have left since the last pick
    for (std::size_t k = 0; k < n; ++k) {
      std::size_t i = start + k;
      if (i >= n) {
        i -= n;
      }
      if (eligible(members_[i])) {
        cursor_ = i + 1;
        return members_[i];
      }
    }
    cursor_ = start + 1;
    return members_[start];
  }

private:
  friend class subscription_index;
  std::string name_;
  std::string filter_;
  std::vector<subscription_entry> members_;
  std::vector<detail::subscription_ref*> refs_; // parallel to members_
  // Delivery state, not index content: it moves on const access (see Thread safety above), and
  // each replica, hence each shard, keeps its own.
  mutable std::size_t cursor_ = 0;
};

namespace detail {

struct index_node {
  enum class kind : std::uint8_t { root, literal, plus, hash };

  index_node* parent = nullptr;
  kind what = kind::root;
  std::string_view key; // literal nodes: views the key of parent->children that owns this node

  string_map<std::unique_ptr<index_node>> children;
  std::unique_ptr<index_node> plus;
  std::unique_ptr<index_node> hash;

  // Non-shared subscriptions whose filter ends here; refs parallel to entries.
  std::vector<subscription_entry> entries;
  std::vector<subscription_ref*> refs;
  // Shared groups whose filter ends here, by group name.
  string_map<shared_group> groups;

  bool empty() const noexcept {
    return children.empty() && !plus && !hash && entries.empty() && groups.empty();
  }
};

} // namespace detail

// What match() found. Reuse one across calls: match() clears it but keeps its capacity, so a
// steady stream of publishes does not allocate.
class match_result {
public:
  // Every matching non-shared subscription. One subscriber with several matching filters appears
  // once per filter; the broker merges them [MQTT-3.3.4-2], [MQTT-3.3.4-3].
  std::vector<subscription_entry> subscriptions;
  // Every shared group with a matching filter, once each; deliver to one member (shared_group::pick).
  std::vector<const shared_group*> shared_groups;

  void clear() noexcept {
    subscriptions.clear();
    shared_groups.clear();
  }

private:
  friend class subscription_index;
  // Scratch space for the walk.
  std::vector<std::string_view> levels_;
  std::vector<std::pair<const detail::index_node*, std::size_t>> stack_;
};

class subscription_index {
public:
  subscription_index();
  subscription_index(const subscription_index&) = delete;
  subscription_index& operator=(const subscription_index&) = delete;
  ~subscription_index(); // iterative: a deep trie cannot overflow the stack

  // Adds `filter` for `subscriber`, or replaces its options and identifier when the subscriber
  // already has this exact filter [MQTT-3.8.4-3]; returns true in that case. `filter` may be a
  // shared filter "$share/group/f" [MQTT-4.8.2]. A filter starting with "$share/" without a
  // group and a '/' after it is not a valid shared filter and is stored as a plain one.
  // Enforcing a per-client limit is the caller's job (count()). Like every change, may throw
  // std::bad_alloc; the index is then only safe to destroy.
  bool subscribe(subscriber_id subscriber, std::string_view filter, const mqtt::subscribe_options& options,
                 std::optional<std::uint32_t> subscription_identifier);

  // Removes `subscriber`'s subscription with exactly this filter (as it was subscribed, including
  // any "$share/group/"). Returns whether it existed. Frees trie nodes nobody uses any more.
  bool unsubscribe(subscriber_id subscriber, std::string_view filter);

  // Removes all of `subscriber`'s subscriptions; returns how many there were.
  std::size_t remove_subscriber(subscriber_id subscriber);

  // Everything that matches `topic` (a topic name, no wildcards), into `out` (cleared first).
  // Topics starting with '$' are not matched by filters whose first level is '+' or '#'
  // [MQTT-4.7.2-1]. Does not allocate once `out` has grown to fit.
  void match(std::string_view topic, match_result& out) const;

  // Calls `fn(std::string_view filter, const mqtt::subscribe_options&, std::optional<std::uint32_t>)`
  // for each subscription of `subscriber`, with the filter as it was subscribed (including any
  // "$share/group/"). `fn` must not change the index.
  template <class Fn>
  void for_each_subscription(subscriber_id subscriber, Fn&& fn) const {
    const auto it = subscribers_.find(subscriber);
    if (it == subscribers_.end()) {
      return;
    }
    for (const auto& [filter, ref] : it->second) {
      const subscription_entry& e = entry_of(ref);
      fn(std::string_view(filter), e.options, e.subscription_identifier);
    }
  }

  // Number of subscriptions, shared ones included.
  std::size_t size() const noexcept { return size_; }
  // Number of subscriptions of one subscriber, for the per-client limit.
  std::size_t count(subscriber_id subscriber) const;
  // Trie nodes besides the root: 0 when the index is empty. For tests and memory metrics.
  std::size_t node_count() const noexcept { return node_count_; }
  // Number of shared groups.
  std::size_t shared_group_count() const noexcept { return group_count_; }

private:
  using subscriber_record = detail::string_map<detail::subscription_ref>; // full filter -> where

  static const subscription_entry& entry_of(const detail::subscription_ref& ref);
  detail::index_node* find_or_add_path(std::string_view topic_filter);
  void erase(detail::subscription_ref& ref);
  void prune(detail::index_node* node);

  std::unique_ptr<detail::index_node> root_;
  std::unordered_map<subscriber_id, subscriber_record> subscribers_;
  std::size_t size_ = 0;
  std::size_t node_count_ = 0;
  std::size_t group_count_ = 0;
};

} // namespace firehook::router

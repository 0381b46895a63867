#include "router/retained_store.hpp"

#include <mutex>
#include <utility>

#include "mqtt/topic.hpp"

namespace firehook::router {

using mqtt::for_each_level;

namespace {

bool expired(const mqtt::message& m, retained_store::time_point now) {
  return m.expires_at && *m.expires_at <= now;
}

} // namespace

retained_store::retained_store(retained_limits limits) : limits_(limits), root_(std::make_unique<node>()) {}

std::size_t retained_store::node_bytes(std::string_view key) {
  // The node, its key, and about a hash-table slot and node of its parent's children map.
  return sizeof(node) + key.size() + 64;
}

retained_store::~retained_store() {
  // Depth first without recursion or allocation: go down to a leaf, unlink it, go back up.
  node* n = root_.get();
  while (n != nullptr) {
    if (!n->children.empty()) {
      n = n->children.begin()->second.get();
      continue;
    }
    node* parent = n->parent;
    if (parent != nullptr) {
      parent->children.erase(parent->children.find(n->key));
    }
    n = parent;
  }
}

retained_store::node* retained_store::find(std::string_view topic) const {
  node* n = root_.get();
  for_each_level(topic, [&](std::string_view level) {
    if (n == nullptr) {
      return;
    }
    const auto it = n->children.find(level);
    n = it == n->children.end() ? nullptr : it->second.get();
  });
  return n;
}

void retained_store::clear_message(node* n) {
  if (n->expiry) {
    expiries_.erase(*n->expiry);
    n->expiry.reset();
  }
  bytes_ -= mqtt::footprint(*n->message);
  n->message.reset();
  --size_;
}

void retained_store::prune(node* n) {
  // A deleted topic leaves no nodes behind, so memory follows the live retained messages.
  while (n != root_.get() && n->children.empty() && !n->message) {
    node* parent = n->parent;
    bytes_ -= node_bytes(n->key);
    parent->children.erase(parent->children.find(n->key));
    --node_count_;
    n = parent;
  }
}

retain_status retained_store::set(mqtt::message_ptr message) {
  const std::string_view topic = message->topic;
  std::unique_lock lock(mutex_);
  node* n = find(topic);
  const bool present = n != nullptr && n->message != nullptr;

  if (message->payload.empty()) {
    // [MQTT-3.3.1-6] removes the topic's retained message; [MQTT-3.3.1-7] is not stored itself.
    if (!present) {
      return retain_status::not_present;
    }
    clear_message(n);
    prune(n);
    return retain_status::deleted;
  }

  const std::size_t size = mqtt::footprint(*message);
  if (limits_.max_message_bytes != 0 && size > limits_.max_message_bytes) {
    return retain_status::too_large;
  }
  if (!present && size_ >= limits_.max_messages) {
    return retain_status::refused; // replacing stays allowed: it does not grow the store
  }
  if (limits_.max_bytes != 0) {
    // What the store would hold with this message: the one it replaces freed, the nodes still
    // missing for its topic added (counted for every level when the topic is new: at most that).
    std::size_t grown = size;
    if (!present) {
      for_each_level(topic, [&](std::string_view level) { grown += node_bytes(level); });
    }
    const std::size_t freed = present ? mqtt::footprint(*n->message) : 0;
    if (bytes_ - freed + grown > limits_.max_bytes) {
      return retain_status::refused;
    }
  }
  if (n == nullptr) {
    n = root_.get();
    for_each_level(topic, [&](std::string_view level) {
      auto it = n->children.find(level);
      if (it == n->children.end()) {
        auto child = std::make_unique<node>();
        child->parent = n;
        it = n->children.emplace(std::string(level), std::move(child)).first;
        it->second->key = it->first;
        ++node_count_;
        bytes_ += node_bytes(level);
      }
      n = it->second.get();
    });
  }

  // [MQTT-3.3.1-5] the new message replaces the old one. Add the new expiry before dropping the
  // old one, so an allocation failure leaves the old message with its expiry intact.
  std::optional<expiry_index::iterator> expiry;
  if (message->expires_at) {
    expiry = expiries_.emplace(*message->expires_at, n);
  }
  if (n->expiry) {
    expiries_.erase(*n->expiry);
  }
  n->expiry = expiry;
  if (present) {
    bytes_ -= mqtt::footprint(*n->message);
  }
  bytes_ += size;
  n->message = std::move(message);
  if (present) {
    return retain_status::replaced;
  }
  ++size_;
  return retain_status::stored;
}

void retained_store::match(std::string_view filter, time_point now,
                           std::vector<mqtt::message_ptr>& out) const {
  out.clear();
  std::vector<std::string_view> levels;
  for_each_level(filter, [&](std::string_view level) { levels.push_back(level); });

  // Work items: a node and the index of the filter level to match below it, or `whole_subtree`
  // for everything under a '#'.
  constexpr std::size_t whole_subtree = std::numeric_limits<std::size_t>::max();
  std::vector<std::pair<const node*, std::size_t>> stack;

  const auto emit = [&](const node& n) {
    if (n.message && !expired(*n.message, now)) {
      out.push_back(n.message);
    }
  };
  // [MQTT-4.7.2-1] A wildcard in the first filter level does not match a topic starting with '$'.
  const auto skip = [](std::size_t depth, std::string_view key) {
    return depth == 0 && key.starts_with('$');
  };

  std::shared_lock lock(mutex_);
  stack.emplace_back(root_.get(), 0);
  while (!stack.empty()) {
    const auto [n, depth] = stack.back();
    stack.pop_back();
    if (depth == whole_subtree) {
      emit(*n);
      for (const auto& [key, child] : n->children) {
        stack.emplace_back(child.get(), whole_subtree);
      }
      continue;
    }
    if (depth == levels.size()) {
      emit(*n);
      continue;
    }
    const std::string_view level = levels[depth];
    if (level == "#" && depth + 1 == levels.size()) {
      emit(*n); // '#' also matches the parent level: "a/#" matches "a" [MQTT-4.7.1-2]
      for (const auto& [key, child] : n->children) {
        if (!skip(depth, key)) {
          stack.emplace_back(child.get(), whole_subtree);
        }
      }
    } else if (level == "+") {
      for (const auto& [key, child] : n->children) {
        if (!skip(depth, key)) {
          stack.emplace_back(child.get(), depth + 1);
        }
      }
    } else if (const auto it = n->children.find(level); it != n->children.end()) {
      stack.emplace_back(it->second.get(), depth + 1);
    }
  }
}

std::size_t retained_store::expire(time_point now, std::size_t max_removed) {
  std::unique_lock lock(mutex_);
  std::size_t removed = 0;
  while (removed < max_removed && !expiries_.empty() && expiries_.begin()->first <= now) {
    node* n = expiries_.begin()->second;
    clear_message(n);
    prune(n);
    ++removed;
  }
  return removed;
}

std::size_t retained_store::size() const {
  std::shared_lock lock(mutex_);
  return size_;
}

std::size_t retained_store::bytes() const {
  std::shared_lock lock(mutex_);
  return bytes_;
}

std::size_t retained_store::node_count() const {
  std::shared_lock lock(mutex_);
  return node_count_;
}

} // namespace firehook::router

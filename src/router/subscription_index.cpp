#include "router/subscription_index.hpp"

#include <tuple>

#include "mqtt/topic.hpp"

namespace firehook::router {

using mqtt::for_each_level;

using detail::index_node;
using detail::subscription_ref;

namespace {

struct parsed_filter {
  bool shared = false;
  std::string_view group;
  std::string_view topic_filter;
};

// "$share/group/f" -> {true, group, f} [MQTT-4.8.2]; anything else is a plain filter.
parsed_filter parse_filter(std::string_view filter) {
  constexpr std::string_view prefix = "$share/";
  if (filter.starts_with(prefix)) {
    const std::string_view rest = filter.substr(prefix.size());
    const std::size_t slash = rest.find('/');
    if (slash != std::string_view::npos && slash > 0) {
      return {true, rest.substr(0, slash), rest.substr(slash + 1)};
    }
  }
  return {false, {}, filter};
}

// Removes slot `slot` from an entry vector and its parallel ref vector by moving the last one
// into it: O(1) however many subscribers share the filter.
void remove_slot(std::vector<subscription_entry>& entries, std::vector<subscription_ref*>& refs,
                 std::size_t slot) {
  const std::size_t last = entries.size() - 1;
  if (slot != last) {
    entries[slot] = entries[last];
    refs[slot] = refs[last];
    refs[slot]->slot = slot;
  }
  entries.pop_back();
  refs.pop_back();
}

// Unlinks `node` from its parent, which destroys it (and whatever it still holds).
void unlink(index_node* node) {
  index_node* parent = node->parent;
  switch (node->what) {
  case index_node::kind::plus:
    parent->plus.reset();
    break;
  case index_node::kind::hash:
    parent->hash.reset();
    break;
  case index_node::kind::literal:
    parent->children.erase(parent->children.find(node->key));
    break;
  case index_node::kind::root:
    break;
  }
}

std::unique_ptr<index_node> make_node(index_node* parent, index_node::kind what) {
  auto node = std::make_unique<index_node>();
  node->parent = parent;
  node->what = what;
  return node;
}

} // namespace

subscription_index::subscription_index() : root_(std::make_unique<index_node>()) {}

subscription_index::~subscription_index() {
  // Depth first without recursion or allocation: go down to a leaf, unlink it, go back up.
  index_node* node = root_.get();
  while (node != nullptr) {
    if (!node->children.empty()) {
      node = node->children.begin()->second.get();
    } else if (node->plus) {
      node = node->plus.get();
    } else if (node->hash) {
      node = node->hash.get();
    } else {
      index_node* parent = node->parent;
      unlink(node);
      node = parent;
    }
  }
}

const subscription_entry& subscription_index::entry_of(const subscription_ref& ref) {
  return ref.group != nullptr ? ref.group->members_[ref.slot] : ref.node->entries[ref.slot];
}

index_node* subscription_index::find_or_add_path(std::string_view topic_filter) {
  index_node* node = root_.get();
  for_each_level(topic_filter, [&](std::string_view level) {
    if (level == "+") {
      if (!node->plus) {
        node->plus = make_node(node, index_node::kind::plus);
        ++node_count_;
      }
      node = node->plus.get();
    } else if (level == "#") {
      if (!node->hash) {
        node->hash = make_node(node, index_node::kind::hash);
        ++node_count_;
      }
      node = node->hash.get();
    } else {
      auto it = node->children.find(level);
      if (it == node->children.end()) {
        it = node->children.emplace(std::string(level), make_node(node, index_node::kind::literal)).first;
        it->second->key = it->first;
        ++node_count_;
      }
      node = it->second.get();
    }
  });
  return node;
}

bool subscription_index::subscribe(subscriber_id subscriber, std::string_view filter,
                                   const mqtt::subscribe_options& options,
                                   std::optional<std::uint32_t> subscription_identifier) {
  subscriber_record& record = subscribers_[subscriber];
  if (const auto it = record.find(filter); it != record.end()) {
    // [MQTT-3.8.4-3] A repeated filter replaces the subscription; it keeps its place, so a
    // shared member keeps its turn.
    const subscription_ref& ref = it->second;
    subscription_entry& entry =
        ref.group != nullptr ? ref.group->members_[ref.slot] : ref.node->entries[ref.slot];
    entry.options = options;
    entry.subscription_identifier = subscription_identifier;
    return true;
  }

  const parsed_filter parsed = parse_filter(filter);
  index_node* node = find_or_add_path(parsed.topic_filter);
  const auto it = record.emplace(std::string(filter), subscription_ref{}).first;
  subscription_ref& ref = it->second;
  ref.node = node;
  // The entry views the record's copy of the filter, which lives as long as the subscription.
  const std::string_view stored_filter =
      std::string_view(it->first).substr(filter.size() - parsed.topic_filter.size());
  const subscription_entry entry{subscriber, options, subscription_identifier, stored_filter};

  if (parsed.shared) {
    auto group = node->groups.find(parsed.group);
    if (group == node->groups.end()) {
      group = node->groups
                  .emplace(std::piecewise_construct, std::forward_as_tuple(parsed.group),
                           std::forward_as_tuple(parsed.group, parsed.topic_filter))
                  .first;
      ++group_count_;
    }
    shared_group& g = group->second;
    ref.group = &g;
    ref.slot = g.members_.size();
    g.members_.push_back(entry);
    g.refs_.push_back(&ref);
  } else {
    ref.slot = node->entries.size();
    node->entries.push_back(entry);
    node->refs.push_back(&ref);
  }
  ++size_;
  return false;
}

void subscription_index::erase(subscription_ref& ref) {
  index_node* node = ref.node;
  if (ref.group != nullptr) {
    shared_group& g = *ref.group;
    remove_slot(g.members_, g.refs_, ref.slot);
    if (g.members_.empty()) {
      node->groups.erase(node->groups.find(g.name_));
      --group_count_;
    }
  } else {
    remove_slot(node->entries, node->refs, ref.slot);
  }
  --size_;
  prune(node);
}

void subscription_index::prune(index_node* node) {
  // Nodes left without subscriptions or children go, so memory follows the live subscriptions
  // rather than every filter ever seen.
  while (node != root_.get() && node->empty()) {
    index_node* parent = node->parent;
    unlink(node);
    --node_count_;
    node = parent;
  }
}

bool subscription_index::unsubscribe(subscriber_id subscriber, std::string_view filter) {
  const auto record = subscribers_.find(subscriber);
  if (record == subscribers_.end()) {
    return false;
  }
  const auto it = record->second.find(filter);
  if (it == record->second.end()) {
    return false;
  }
  erase(it->second); // first: the entry views the key erased next
  record->second.erase(it);
  if (record->second.empty()) {
    subscribers_.erase(record);
  }
  return true;
}

std::size_t subscription_index::remove_subscriber(subscriber_id subscriber) {
  const auto record = subscribers_.find(subscriber);
  if (record == subscribers_.end()) {
    return 0;
  }
  const std::size_t removed = record->second.size();
  for (auto& [filter, ref] : record->second) {
    erase(ref);
  }
  subscribers_.erase(record);
  return removed;
}

std::size_t subscription_index::count(subscriber_id subscriber) const {
  const auto record = subscribers_.find(subscriber);
  return record == subscribers_.end() ? 0 : record->second.size();
}

void subscription_index::match(std::string_view topic, match_result& out) const {
  out.clear();
  auto& levels = out.levels_;
  levels.clear();
  for_each_level(topic, [&](std::string_view level) { levels.push_back(level); });

  const auto report = [&out](const index_node& node) {
    out.subscriptions.insert(out.subscriptions.end(), node.entries.begin(), node.entries.end());
    for (const auto& [name, group] : node.groups) {
      out.shared_groups.push_back(&group);
    }
  };

  // Each trie node is reached by one path only, so nothing is reported twice.
  const bool dollar_topic = !topic.empty() && topic.front() == '$';
  auto& stack = out.stack_;
  stack.clear();
  stack.emplace_back(root_.get(), 0);
  while (!stack.empty()) {
    const auto [node, depth] = stack.back();
    stack.pop_back();
    // [MQTT-4.7.2-1] A '$' topic is not matched by a filter starting with a wildcard.
    const bool wildcards = !(dollar_topic && depth == 0);
    if (node->hash && wildcards) {
      // '#' matches the remaining levels, and also the parent level itself: "a/#" matches "a"
      // [MQTT-4.7.1-2].
      report(*node->hash);
    }
    if (depth == levels.size()) {
      report(*node);
      continue;
    }
    if (node->plus && wildcards) {
      stack.emplace_back(node->plus.get(), depth + 1);
    }
    if (!node->children.empty()) {
      const auto child = node->children.find(levels[depth]);
      if (child != node->children.end()) {
        stack.emplace_back(child->second.get(), depth + 1);
      }
    }
  }
}

} // namespace firehook::router

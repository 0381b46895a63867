#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <new>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "router/subscription_index.hpp"

// Counts allocations made by this test binary, so a test can show that match() does not allocate.
namespace {
std::atomic<std::size_t> allocations{0};
} // namespace

void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) {
    return p;
  }
  throw std::bad_alloc();
}
// GCC takes the free() in a replacement operator delete for a mismatch once new is inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
#pragma GCC diagnostic pop

namespace firehook::router {
namespace {

using mqtt::qos;

mqtt::subscribe_options with_qos(qos q) {
  mqtt::subscribe_options o;
  o.max_qos = q;
  return o;
}

// What a user of match() sees, flattened and sorted: (subscriber, filter) for plain subscriptions.
using hit = std::pair<subscriber_id, std::string>;

std::vector<hit> plain_hits(const subscription_index& index, std::string_view topic) {
  match_result r;
  index.match(topic, r);
  std::vector<hit> hits;
  for (const auto& e : r.subscriptions) {
    hits.emplace_back(e.subscriber, std::string(e.filter));
  }
  std::sort(hits.begin(), hits.end());
  return hits;
}

bool matches(std::string_view filter, std::string_view topic) {
  subscription_index index;
  index.subscribe(1, filter, {}, std::nullopt);
  return !plain_hits(index, topic).empty();
}

std::vector<std::string> split(std::string_view s) {
  std::vector<std::string> levels;
  std::size_t begin = 0;
  for (;;) {
    const auto end = s.find('/', begin);
    levels.emplace_back(
        s.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    if (end == std::string_view::npos) {
      return levels;
    }
    begin = end + 1;
  }
}

// The matching rules written out level by level, independent of the trie.
bool brute_force_matches(std::string_view filter, std::string_view topic) {
  const auto f = split(filter);
  const auto t = split(topic);
  if (topic.starts_with('$') && (f[0] == "+" || f[0] == "#")) {
    return false;
  }
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") {
      return true;
    }
    if (i >= t.size() || (f[i] != "+" && f[i] != t[i])) {
      return false;
    }
  }
  return f.size() == t.size();
}

TEST(SubscriptionIndexMatch, PlusMatchesExactlyOneLevel) {
  EXPECT_TRUE(matches("a/+/c", "a/b/c"));
  EXPECT_TRUE(matches("a/+/c", "a//c")); // an empty level is a level
  EXPECT_FALSE(matches("a/+/c", "a/c"));
  EXPECT_FALSE(matches("a/+/c", "a/b/x/c"));
  EXPECT_TRUE(matches("+", "a"));
  EXPECT_FALSE(matches("+", "a/b"));
  EXPECT_TRUE(matches("a/+", "a/"));
  EXPECT_FALSE(matches("a/+", "a"));
}

TEST(SubscriptionIndexMatch, HashMatchesParentAndAllBelow) {
  EXPECT_TRUE(matches("a/#", "a")); // [MQTT-4.7.1-2]
  EXPECT_TRUE(matches("a/#", "a/"));
  EXPECT_TRUE(matches("a/#", "a/b"));
  EXPECT_TRUE(matches("a/#", "a/b/c/d"));
  EXPECT_FALSE(matches("a/#", "ab"));
  EXPECT_FALSE(matches("a/#", "b/a"));
  EXPECT_TRUE(matches("#", "a"));
  EXPECT_TRUE(matches("#", "a/b/c"));
  EXPECT_TRUE(matches("#", "/"));
  EXPECT_TRUE(matches("a/+/#", "a/b"));
  EXPECT_FALSE(matches("a/+/#", "a"));
}

TEST(SubscriptionIndexMatch, LiteralNeedsEveryLevel) {
  EXPECT_TRUE(matches("a/b", "a/b"));
  EXPECT_FALSE(matches("a/b", "a"));
  EXPECT_FALSE(matches("a/b", "a/b/c"));
  EXPECT_FALSE(matches("a/b", "A/b")); // case sensitive
}

TEST(SubscriptionIndexMatch, DollarTopicsNeedALiteralFirstLevel) {
  // [MQTT-4.7.2-1]
  EXPECT_FALSE(matches("#", "$SYS/broker/uptime"));
  EXPECT_FALSE(matches("#", "$SYS"));
  EXPECT_FALSE(matches("+/broker/uptime", "$SYS/broker/uptime"));
  EXPECT_FALSE(matches("+/#", "$SYS/broker"));
  EXPECT_TRUE(matches("$SYS/#", "$SYS/broker/uptime"));
  EXPECT_TRUE(matches("$SYS/#", "$SYS"));
  EXPECT_TRUE(matches("$SYS/+/uptime", "$SYS/broker/uptime"));
  // Only the first level counts.
  EXPECT_TRUE(matches("a/+", "a/$x"));
  EXPECT_TRUE(matches("#", "a/$x"));
}

TEST(SubscriptionIndexMatch, EmptyLevelsAreRealLevels) {
  EXPECT_TRUE(matches("a//b", "a//b"));
  EXPECT_FALSE(matches("a//b", "a/b"));
  EXPECT_FALSE(matches("a/b", "a//b"));
  EXPECT_TRUE(matches("/a", "/a"));
  EXPECT_FALSE(matches("/a", "a"));
  EXPECT_FALSE(matches("a", "/a"));
  EXPECT_TRUE(matches("+/a", "/a"));
  EXPECT_TRUE(matches("/+", "/a"));
  EXPECT_TRUE(matches("+/+", "/a"));
  EXPECT_TRUE(matches("/#", "/"));
  EXPECT_TRUE(matches("+/#", "/a/b"));
}

TEST(SubscriptionIndex, OverlappingFiltersOfOneSubscriberAreAllReported) {
  subscription_index index;
  index.subscribe(1, "a/+", with_qos(qos::at_least_once), 5);
  index.subscribe(1, "a/#", with_qos(qos::exactly_once), 7);
  index.subscribe(1, "a/b", with_qos(qos::at_most_once), std::nullopt);
  index.subscribe(2, "a/c", with_qos(qos::exactly_once), 9);

  match_result r;
  index.match("a/b", r);
  ASSERT_EQ(r.subscriptions.size(), 3u);
  EXPECT_TRUE(r.shared_groups.empty());
  std::map<std::string, subscription_entry> by_filter;
  for (const auto& e : r.subscriptions) {
    EXPECT_EQ(e.subscriber, 1u);
    by_filter[std::string(e.filter)] = e;
  }
  EXPECT_EQ(by_filter.at("a/+").options.max_qos, qos::at_least_once);
  EXPECT_EQ(by_filter.at("a/+").subscription_identifier, 5u);
  EXPECT_EQ(by_filter.at("a/#").options.max_qos, qos::exactly_once);
  EXPECT_EQ(by_filter.at("a/#").subscription_identifier, 7u);
  EXPECT_EQ(by_filter.at("a/b").options.max_qos, qos::at_most_once);
  EXPECT_EQ(by_filter.at("a/b").subscription_identifier, std::nullopt);
}

TEST(SubscriptionIndex, ResubscribeReplacesOptionsAndIdentifier) {
  subscription_index index;
  EXPECT_FALSE(index.subscribe(1, "a/b", with_qos(qos::at_most_once), 1));
  mqtt::subscribe_options options = with_qos(qos::exactly_once);
  options.no_local = true;
  options.retain_handling = mqtt::retain_handling::do_not_send;
  EXPECT_TRUE(index.subscribe(1, "a/b", options, std::nullopt)); // [MQTT-3.8.4-3]
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.count(1), 1u);

  match_result r;
  index.match("a/b", r);
  ASSERT_EQ(r.subscriptions.size(), 1u);
  EXPECT_EQ(r.subscriptions[0].options, options);
  EXPECT_EQ(r.subscriptions[0].subscription_identifier, std::nullopt);
}

TEST(SubscriptionIndex, ResubscribeToSharedFilterReplacesMember) {
  subscription_index index;
  EXPECT_FALSE(index.subscribe(1, "$share/g/a", with_qos(qos::at_most_once), 1));
  EXPECT_TRUE(index.subscribe(1, "$share/g/a", with_qos(qos::at_least_once), 2));
  EXPECT_EQ(index.size(), 1u);
  match_result r;
  index.match("a", r);
  ASSERT_EQ(r.shared_groups.size(), 1u);
  ASSERT_EQ(r.shared_groups[0]->members().size(), 1u);
  EXPECT_EQ(r.shared_groups[0]->members()[0].options.max_qos, qos::at_least_once);
  EXPECT_EQ(r.shared_groups[0]->members()[0].subscription_identifier, 2u);
}

TEST(SubscriptionIndex, SameFilterForManySubscribers) {
  subscription_index index;
  for (subscriber_id s = 1; s <= 50; ++s) {
    index.subscribe(s, "x/+", {}, std::nullopt);
  }
  EXPECT_EQ(plain_hits(index, "x/y").size(), 50u);
  for (subscriber_id s = 1; s <= 50; s += 2) {
    EXPECT_TRUE(index.unsubscribe(s, "x/+"));
  }
  const auto hits = plain_hits(index, "x/y");
  ASSERT_EQ(hits.size(), 25u);
  for (const auto& [s, f] : hits) {
    EXPECT_EQ(s % 2, 0u);
    EXPECT_EQ(f, "x/+");
  }
}

TEST(SubscriptionIndex, UnsubscribeRemovesOnlyThatFilterAndFreesNodes) {
  subscription_index index;
  index.subscribe(1, "a/b/c", {}, std::nullopt);
  index.subscribe(1, "a/b", {}, std::nullopt);
  index.subscribe(2, "a/b/c", {}, std::nullopt);
  index.subscribe(2, "+/#", {}, std::nullopt);
  EXPECT_EQ(index.node_count(), 5u); // a, a/b, a/b/c, +, +/#

  EXPECT_FALSE(index.unsubscribe(1, "a/b/d"));
  EXPECT_FALSE(index.unsubscribe(3, "a/b"));
  EXPECT_FALSE(index.unsubscribe(1, "+/#")); // someone else's

  EXPECT_TRUE(index.unsubscribe(1, "a/b/c"));
  EXPECT_FALSE(index.unsubscribe(1, "a/b/c"));
  EXPECT_EQ(plain_hits(index, "a/b/c"), (std::vector<hit>{{2, "+/#"}, {2, "a/b/c"}}));
  EXPECT_EQ(index.node_count(), 5u); // still used by subscriber 2

  EXPECT_TRUE(index.unsubscribe(2, "a/b/c"));
  EXPECT_EQ(index.node_count(), 4u); // a/b/c freed, a/b still holds subscriber 1
  EXPECT_EQ(plain_hits(index, "a/b"), (std::vector<hit>{{1, "a/b"}, {2, "+/#"}}));

  EXPECT_TRUE(index.unsubscribe(2, "+/#"));
  EXPECT_TRUE(index.unsubscribe(1, "a/b"));
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.node_count(), 0u);
  EXPECT_EQ(index.count(1), 0u);
  EXPECT_TRUE(plain_hits(index, "a/b").empty());
}

TEST(SubscriptionIndex, RemoveSubscriberRemovesAllItsSubscriptions) {
  subscription_index index;
  index.subscribe(1, "a/#", {}, std::nullopt);
  index.subscribe(1, "a/b", {}, std::nullopt);
  index.subscribe(1, "$share/g/a/b", {}, std::nullopt);
  index.subscribe(1, "x/y/z", {}, std::nullopt);
  index.subscribe(2, "a/b", {}, std::nullopt);
  index.subscribe(2, "$share/g/a/b", {}, std::nullopt);
  EXPECT_EQ(index.count(1), 4u);
  EXPECT_EQ(index.size(), 6u);

  EXPECT_EQ(index.remove_subscriber(1), 4u);
  EXPECT_EQ(index.remove_subscriber(1), 0u);
  EXPECT_EQ(index.count(1), 0u);
  EXPECT_EQ(index.size(), 2u);
  EXPECT_EQ(index.node_count(), 2u); // a, a/b
  match_result r;
  index.match("a/b", r);
  ASSERT_EQ(r.subscriptions.size(), 1u);
  EXPECT_EQ(r.subscriptions[0].subscriber, 2u);
  ASSERT_EQ(r.shared_groups.size(), 1u);
  ASSERT_EQ(r.shared_groups[0]->members().size(), 1u);
  EXPECT_EQ(r.shared_groups[0]->members()[0].subscriber, 2u);

  EXPECT_EQ(index.remove_subscriber(2), 2u);
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.node_count(), 0u);
  EXPECT_EQ(index.shared_group_count(), 0u);
}

TEST(SubscriptionIndex, ForEachSubscriptionListsFiltersAsSubscribed) {
  subscription_index index;
  index.subscribe(7, "a/+", with_qos(qos::at_least_once), 3);
  index.subscribe(7, "$share/grp/s/#", with_qos(qos::exactly_once), std::nullopt);
  index.subscribe(8, "other", {}, std::nullopt);

  std::map<std::string, std::pair<mqtt::subscribe_options, std::optional<std::uint32_t>>> seen;
  index.for_each_subscription(7, [&](std::string_view filter, const mqtt::subscribe_options& options,
                                     std::optional<std::uint32_t> id) {
    seen[std::string(filter)] = {options, id};
  });
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen.at("a/+").first.max_qos, qos::at_least_once);
  EXPECT_EQ(seen.at("a/+").second, 3u);
  EXPECT_EQ(seen.at("$share/grp/s/#").first.max_qos, qos::exactly_once);
  EXPECT_EQ(seen.at("$share/grp/s/#").second, std::nullopt);

  int calls = 0;
  index.for_each_subscription(99, [&](auto&&...) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(SubscriptionIndexShared, EachGroupOnAFilterIsReportedOnceWithItsMembers) {
  subscription_index index;
  index.subscribe(1, "$share/g1/a/+", {}, std::nullopt);
  index.subscribe(2, "$share/g1/a/+", {}, std::nullopt);
  index.subscribe(3, "$share/g2/a/+", {}, std::nullopt);
  index.subscribe(4, "$share/g2/a/+", {}, std::nullopt);
  index.subscribe(5, "a/+", {}, std::nullopt);
  EXPECT_EQ(index.shared_group_count(), 2u);

  match_result r;
  index.match("a/x", r);
  ASSERT_EQ(r.subscriptions.size(), 1u); // only the plain one
  EXPECT_EQ(r.subscriptions[0].subscriber, 5u);
  ASSERT_EQ(r.shared_groups.size(), 2u);
  std::map<std::string, std::set<subscriber_id>> groups;
  for (const shared_group* g : r.shared_groups) {
    EXPECT_EQ(g->filter(), "a/+");
    for (const auto& m : g->members()) {
      EXPECT_EQ(m.filter, "a/+");
      groups[std::string(g->name())].insert(m.subscriber);
    }
  }
  EXPECT_EQ(groups["g1"], (std::set<subscriber_id>{1, 2}));
  EXPECT_EQ(groups["g2"], (std::set<subscriber_id>{3, 4}));

  index.match("b/x", r);
  EXPECT_TRUE(r.shared_groups.empty());
}

TEST(SubscriptionIndexShared, OneGroupNameOnTwoFiltersIsTwoGroups) {
  // A shared subscription is identified by group and filter together [MQTT-4.8.2].
  subscription_index index;
  index.subscribe(1, "$share/g/a/+", {}, std::nullopt);
  index.subscribe(2, "$share/g/a/#", {}, std::nullopt);
  match_result r;
  index.match("a/b", r);
  ASSERT_EQ(r.shared_groups.size(), 2u);
  std::set<std::string> filters;
  for (const shared_group* g : r.shared_groups) {
    EXPECT_EQ(g->name(), "g");
    ASSERT_EQ(g->members().size(), 1u);
    filters.emplace(g->filter());
  }
  EXPECT_EQ(filters, (std::set<std::string>{"a/+", "a/#"}));
}

TEST(SubscriptionIndexShared, SharedFilterFollowsTheMatchingRules) {
  subscription_index index;
  index.subscribe(1, "$share/g/#", {}, std::nullopt);
  index.subscribe(2, "$share/g/$SYS/#", {}, std::nullopt);
  match_result r;
  index.match("$SYS/x", r); // [MQTT-4.7.2-1] applies to the filter after the group
  ASSERT_EQ(r.shared_groups.size(), 1u);
  EXPECT_EQ(r.shared_groups[0]->filter(), "$SYS/#");
  index.match("x", r);
  ASSERT_EQ(r.shared_groups.size(), 1u);
  EXPECT_EQ(r.shared_groups[0]->filter(), "#");
  // "$share/g/x" is not a topic subscribers of "$share/g/#" receive literally.
  index.match("$share/g/x", r);
  EXPECT_TRUE(r.shared_groups.empty());
}

TEST(SubscriptionIndexShared, MalformedShareFilterIsStoredAsPlain) {
  subscription_index index;
  index.subscribe(1, "$share/nogroupfilter", {}, std::nullopt);
  index.subscribe(1, "$share//a", {}, std::nullopt);
  EXPECT_EQ(index.shared_group_count(), 0u);
  EXPECT_EQ(plain_hits(index, "$share/nogroupfilter"), (std::vector<hit>{{1, "$share/nogroupfilter"}}));
  EXPECT_TRUE(index.unsubscribe(1, "$share//a"));
}

std::map<subscriber_id, int> pick_many(const shared_group& g, int n, auto eligible) {
  std::map<subscriber_id, int> picks;
  for (int i = 0; i < n; ++i) {
    ++picks[g.pick(eligible).subscriber];
  }
  return picks;
}

const shared_group& only_group(const subscription_index& index, std::string_view topic, match_result& r) {
  index.match(topic, r);
  EXPECT_EQ(r.shared_groups.size(), 1u);
  return *r.shared_groups.at(0);
}

TEST(SubscriptionIndexShared, RoundRobinSpreadsEvenly) {
  subscription_index index;
  for (subscriber_id s = 1; s <= 3; ++s) {
    index.subscribe(s, "$share/g/t", {}, std::nullopt);
  }
  match_result r;
  const shared_group& g = only_group(index, "t", r);
  const auto picks = pick_many(g, 300, [](const subscription_entry&) { return true; });
  EXPECT_EQ(picks, (std::map<subscriber_id, int>{{1, 100}, {2, 100}, {3, 100}}));

  // Consecutive picks never repeat a member while others are eligible.
  subscriber_id last = g.pick([](const auto&) { return true; }).subscriber;
  for (int i = 0; i < 10; ++i) {
    const subscriber_id next = g.pick([](const auto&) { return true; }).subscriber;
    EXPECT_NE(next, last);
    last = next;
  }
}

TEST(SubscriptionIndexShared, PickSkipsIneligibleMembers) {
  subscription_index index;
  for (subscriber_id s = 1; s <= 4; ++s) {
    index.subscribe(s, "$share/g/t", {}, std::nullopt);
  }
  match_result r;
  const shared_group& g = only_group(index, "t", r);
  const auto picks = pick_many(g, 300, [](const subscription_entry& e) { return e.subscriber != 2; });
  EXPECT_EQ(picks, (std::map<subscriber_id, int>{{1, 100}, {3, 100}, {4, 100}}));

  // None eligible: still one member each time, and still spread.
  const auto fallback = pick_many(g, 400, [](const subscription_entry&) { return false; });
  EXPECT_EQ(fallback, (std::map<subscriber_id, int>{{1, 100}, {2, 100}, {3, 100}, {4, 100}}));
}

TEST(SubscriptionIndexShared, PickStaysValidWhenMembersLeave) {
  subscription_index index;
  for (subscriber_id s = 1; s <= 5; ++s) {
    index.subscribe(s, "$share/g/t", {}, std::nullopt);
  }
  match_result r;
  for (int i = 0; i < 4; ++i) {
    only_group(index, "t", r).pick([](const auto&) { return true; }); // cursor past the end soon
  }
  index.remove_subscriber(5);
  index.remove_subscriber(1);
  const shared_group& g = only_group(index, "t", r);
  const auto picks = pick_many(g, 30, [](const subscription_entry&) { return true; });
  EXPECT_EQ(picks, (std::map<subscriber_id, int>{{2, 10}, {3, 10}, {4, 10}}));
  EXPECT_EQ(g.members().size(), 3u);

  index.remove_subscriber(2);
  index.remove_subscriber(3);
  index.remove_subscriber(4);
  index.match("t", r);
  EXPECT_TRUE(r.shared_groups.empty());
  EXPECT_EQ(index.shared_group_count(), 0u);
  EXPECT_EQ(index.node_count(), 0u);
}

TEST(SubscriptionIndex, MatchResultIsReusedAcrossCalls) {
  subscription_index index;
  index.subscribe(1, "a/#", {}, std::nullopt);
  index.subscribe(2, "$share/g/a/#", {}, std::nullopt);
  match_result r;
  index.match("a/b/c/d/e/f", r);
  EXPECT_EQ(r.subscriptions.size(), 1u);
  EXPECT_EQ(r.shared_groups.size(), 1u);
  index.match("b", r);
  EXPECT_TRUE(r.subscriptions.empty());
  EXPECT_TRUE(r.shared_groups.empty());
  index.match("a", r);
  EXPECT_EQ(r.subscriptions.size(), 1u);
}

TEST(SubscriptionIndex, MatchDoesNotAllocateOnceTheResultHasGrown) {
  subscription_index index;
  for (subscriber_id s = 1; s <= 200; ++s) {
    const std::string room = std::to_string(s % 20);
    index.subscribe(s, "b/" + room + "/#", {}, std::nullopt);
    index.subscribe(s, "b/+/" + room + "/t", {}, s);
    index.subscribe(s, "$share/g" + std::to_string(s % 3) + "/b/+/+/t", {}, std::nullopt);
  }
  std::vector<std::string> topics;
  for (int i = 0; i < 20; ++i) {
    topics.push_back("b/" + std::to_string(i) + "/" + std::to_string(19 - i) + "/t");
  }
  match_result r;
  for (const auto& t : topics) { // grow r to fit
    index.match(t, r);
  }
  const std::size_t before = allocations.load();
  std::size_t hits = 0;
  for (int round = 0; round < 10; ++round) {
    for (const auto& t : topics) {
      index.match(t, r);
      hits += r.subscriptions.size() + r.shared_groups.size();
    }
  }
  EXPECT_EQ(allocations.load(), before);
  EXPECT_EQ(hits, 10u * 20u * (10 + 10 + 3));
}

TEST(SubscriptionIndex, DeepFiltersDoNotRecurse) {
  // 65,535 bytes of '/' is 65,536 empty levels: a valid filter and topic name. Matching, pruning
  // and destruction must not recurse per level (this would overflow the stack under ASan).
  const std::string deep(65535, '/');
  {
    subscription_index index;
    index.subscribe(1, deep, {}, std::nullopt);
    index.subscribe(2, deep.substr(0, 1000) + "#", {}, std::nullopt);
    EXPECT_EQ(index.node_count(), 65537u); // 65,536 levels and the "#" below level 1,000
    EXPECT_EQ(plain_hits(index, deep).size(), 2u);
    EXPECT_TRUE(index.unsubscribe(1, deep));
    EXPECT_EQ(index.node_count(), 1001u);
  }
  {
    subscription_index index;
    index.subscribe(1, deep, {}, std::nullopt);
  } // destroyed while deep
}

std::string random_path(std::mt19937& rng, const std::vector<std::string>& alphabet, std::size_t max_levels) {
  std::uniform_int_distribution<std::size_t> levels(1, max_levels);
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::string out;
  const std::size_t n = levels(rng);
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) {
      out += '/';
    }
    out += alphabet[pick(rng)];
  }
  return out;
}

std::string random_filter(std::mt19937& rng) {
  static const std::vector<std::string> levels = {"a", "b", "c", "", "$s", "+", "+"};
  std::string f = random_path(rng, levels, 4);
  if (std::bernoulli_distribution(0.25)(rng)) {
    f += f.empty() ? "#" : "/#";
  }
  return f.empty() ? "a" : f; // "" is not a filter
}

std::string random_topic(std::mt19937& rng) {
  static const std::vector<std::string> levels = {"a", "b", "c", "", "$s", "d"};
  std::string t = random_path(rng, levels, 5);
  return t.empty() ? "d" : t; // "" is not a topic name
}

TEST(SubscriptionIndex, AgreesWithBruteForceOnRandomFilters) {
  std::mt19937 rng(20240611);
  subscription_index index;
  // What the index should hold: subscriber -> full filter -> subscription id.
  std::map<subscriber_id, std::map<std::string, std::uint32_t>> model;
  std::uint32_t next_id = 1;
  for (subscriber_id s = 1; s <= 1000; ++s) {
    const int n = std::uniform_int_distribution<int>(1, 4)(rng);
    for (int i = 0; i < n; ++i) {
      std::string f = random_filter(rng);
      if (std::bernoulli_distribution(0.2)(rng)) {
        f = "$share/g" + std::to_string(s % 3) + "/" + f;
      }
      const bool existed = model[s].contains(f);
      EXPECT_EQ(index.subscribe(s, f, {}, next_id), existed) << f;
      model[s][f] = next_id++;
    }
  }

  const auto check = [&](int topics) {
    std::size_t total = 0;
    for (const auto& [s, filters] : model) {
      total += filters.size();
      EXPECT_EQ(index.count(s), filters.size());
    }
    ASSERT_EQ(index.size(), total);
    match_result r;
    for (int i = 0; i < topics; ++i) {
      const std::string topic = random_topic(rng);
      // Expected: plain (subscriber, filter, id) and shared (group, filter) -> members.
      std::set<std::tuple<subscriber_id, std::string, std::uint32_t>> want_plain;
      std::map<std::pair<std::string, std::string>, std::set<std::pair<subscriber_id, std::uint32_t>>>
          want_shared;
      for (const auto& [s, filters] : model) {
        for (const auto& [full, id] : filters) {
          std::string_view f = full;
          std::string group;
          if (f.starts_with("$share/")) {
            f.remove_prefix(7);
            group = std::string(f.substr(0, f.find('/')));
            f.remove_prefix(group.size() + 1);
          }
          if (!brute_force_matches(f, topic)) {
            continue;
          }
          if (group.empty()) {
            want_plain.emplace(s, std::string(f), id);
          } else {
            want_shared[{group, std::string(f)}].emplace(s, id);
          }
        }
      }
      index.match(topic, r);
      std::set<std::tuple<subscriber_id, std::string, std::uint32_t>> got_plain;
      for (const auto& e : r.subscriptions) {
        EXPECT_TRUE(got_plain.emplace(e.subscriber, std::string(e.filter), *e.subscription_identifier).second)
            << "reported twice";
      }
      std::map<std::pair<std::string, std::string>, std::set<std::pair<subscriber_id, std::uint32_t>>>
          got_shared;
      for (const shared_group* g : r.shared_groups) {
        auto& members = got_shared[{std::string(g->name()), std::string(g->filter())}];
        EXPECT_TRUE(members.empty()) << "group reported twice";
        for (const auto& m : g->members()) {
          members.emplace(m.subscriber, *m.subscription_identifier);
        }
      }
      EXPECT_EQ(got_plain, want_plain) << topic;
      EXPECT_EQ(got_shared, want_shared) << topic;
    }
  };
  check(500);

  // Churn: drop about half, by filter or whole subscribers, then check again.
  for (subscriber_id s = 1; s <= 1000; ++s) {
    auto& filters = model[s];
    if (s % 4 == 0) {
      EXPECT_EQ(index.remove_subscriber(s), filters.size());
      model.erase(s);
      continue;
    }
    for (auto it = filters.begin(); it != filters.end();) {
      if (std::bernoulli_distribution(0.4)(rng)) {
        EXPECT_TRUE(index.unsubscribe(s, it->first));
        it = filters.erase(it);
      } else {
        ++it;
      }
    }
    if (filters.empty()) {
      model.erase(s);
    }
  }
  check(500);

  for (const auto& [s, filters] : model) {
    index.remove_subscriber(s);
  }
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.node_count(), 0u);
  EXPECT_EQ(index.shared_group_count(), 0u);
}

} // namespace
} // namespace firehook::router

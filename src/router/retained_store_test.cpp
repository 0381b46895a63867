#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "router/retained_store.hpp"

namespace firehook::router {
namespace {

using namespace std::chrono_literals;
using time_point = retained_store::time_point;

const time_point t0 = time_point{} + 1000s;

mqtt::message_ptr msg(std::string topic, std::string payload = "x",
                      std::optional<time_point> expires_at = std::nullopt) {
  auto m = std::make_shared<mqtt::message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->retain = true;
  m->expires_at = expires_at;
  return m;
}

// Topics of the messages matching `filter`, sorted.
std::vector<std::string> topics(const retained_store& store, std::string_view filter, time_point now = t0) {
  std::vector<mqtt::message_ptr> out;
  store.match(filter, now, out);
  std::vector<std::string> result;
  for (const auto& m : out) {
    result.push_back(m->topic);
  }
  std::sort(result.begin(), result.end());
  return result;
}

using strings = std::vector<std::string>;

TEST(RetainedStore, SetReplaceAndMatchExactTopic) {
  retained_store store({10});
  EXPECT_EQ(store.set(msg("a/b", "one")), retain_status::stored);
  EXPECT_EQ(store.set(msg("a/b", "two")), retain_status::replaced); // [MQTT-3.3.1-5]
  EXPECT_EQ(store.size(), 1u);
  std::vector<mqtt::message_ptr> out;
  store.match("a/b", t0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->payload, "two");
  EXPECT_EQ(topics(store, "a"), strings{});
  EXPECT_EQ(topics(store, "a/b/c"), strings{});
}

TEST(RetainedStore, EmptyPayloadDeletesAndIsNotStored) {
  retained_store store({10});
  store.set(msg("a/b/c"));
  store.set(msg("a/b"));
  EXPECT_EQ(store.node_count(), 3u);
  EXPECT_EQ(store.set(msg("a/b/c", "")), retain_status::deleted); // [MQTT-3.3.1-6]
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.node_count(), 2u);
  EXPECT_EQ(topics(store, "#"), strings{"a/b"});
  EXPECT_EQ(store.set(msg("a/b/c", "")), retain_status::not_present); // [MQTT-3.3.1-7]
  EXPECT_EQ(store.set(msg("a", "")), retain_status::not_present);     // an inner node, no message
  EXPECT_EQ(store.set(msg("zz", "")), retain_status::not_present);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.set(msg("a/b", "")), retain_status::deleted);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.node_count(), 0u);
  EXPECT_EQ(topics(store, "#"), strings{});
}

TEST(RetainedStore, WildcardFilters) {
  retained_store store({100});
  for (const char* t : {"a", "a/b", "a/c", "a/b/c", "b/b", "a//c", "/a", "$SYS/x", "$SYS/x/y", "c/$x"}) {
    store.set(msg(t));
  }
  EXPECT_EQ(topics(store, "a/+"), (strings{"a/b", "a/c"}));
  EXPECT_EQ(topics(store, "a/#"), (strings{"a", "a//c", "a/b", "a/b/c", "a/c"})); // [MQTT-4.7.1-2]
  EXPECT_EQ(topics(store, "+/b"), (strings{"a/b", "b/b"}));
  EXPECT_EQ(topics(store, "a/+/c"), (strings{"a//c", "a/b/c"}));
  EXPECT_EQ(topics(store, "+"), (strings{"a"}));
  EXPECT_EQ(topics(store, "+/a"), (strings{"/a"}));
  EXPECT_EQ(topics(store, "/#"), (strings{"/a"}));
  EXPECT_EQ(topics(store, "c/+"), (strings{"c/$x"})); // '$' only counts in the first level
  // [MQTT-4.7.2-1]
  EXPECT_EQ(topics(store, "#"), (strings{"/a", "a", "a//c", "a/b", "a/b/c", "a/c", "b/b", "c/$x"}));
  EXPECT_EQ(topics(store, "+/x"), strings{});
  EXPECT_EQ(topics(store, "+/#"), (strings{"/a", "a", "a//c", "a/b", "a/b/c", "a/c", "b/b", "c/$x"}));
  EXPECT_EQ(topics(store, "$SYS/#"), (strings{"$SYS/x", "$SYS/x/y"}));
  EXPECT_EQ(topics(store, "$SYS/+"), (strings{"$SYS/x"}));
}

TEST(RetainedStore, MatchSkipsExpiredAndExpireRemovesThem) {
  retained_store store({10});
  store.set(msg("a/1", "x", t0 + 10s));
  store.set(msg("a/2", "x", t0 + 20s));
  store.set(msg("a/3", "x", t0 + 20s));
  store.set(msg("a/4"));
  EXPECT_EQ(topics(store, "a/+", t0), (strings{"a/1", "a/2", "a/3", "a/4"}));
  EXPECT_EQ(topics(store, "a/+", t0 + 10s), (strings{"a/2", "a/3", "a/4"})); // expires_at <= now
  EXPECT_EQ(topics(store, "a/1", t0 + 10s), strings{});

  EXPECT_EQ(store.expire(t0 + 5s), 0u);
  EXPECT_EQ(store.expire(t0 + 10s), 1u);
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.node_count(), 4u);       // a, a/2, a/3, a/4
  EXPECT_EQ(store.expire(t0 + 1h, 1), 1u); // bounded
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.expire(t0 + 1h), 1u);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(topics(store, "#", t0 + 1h), (strings{"a/4"}));
  EXPECT_EQ(store.expire(time_point::max()), 0u); // never expires
}

TEST(RetainedStore, ReplacingChangesTheExpiry) {
  retained_store store({10});
  store.set(msg("t", "old", t0 + 10s));
  store.set(msg("t", "new")); // no expiry any more
  EXPECT_EQ(store.expire(t0 + 1h), 0u);
  EXPECT_EQ(topics(store, "t", t0 + 1h), strings{"t"});

  store.set(msg("t", "newer", t0 + 30s));
  store.set(msg("t", "newest", t0 + 60s));
  EXPECT_EQ(store.expire(t0 + 30s), 0u); // the replaced message's expiry is gone
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.expire(t0 + 60s), 1u);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.node_count(), 0u);

  store.set(msg("u", "x", t0 + 10s));
  store.set(msg("u", "")); // deleting drops its expiry as well
  EXPECT_EQ(store.expire(time_point::max()), 0u);
}

TEST(RetainedStore, LimitRefusesNewTopicsButAllowsReplaceAndDelete) {
  retained_store store({2});
  EXPECT_EQ(store.max_messages(), 2u);
  EXPECT_EQ(store.set(msg("a")), retain_status::stored);
  EXPECT_EQ(store.set(msg("b/c")), retain_status::stored);
  EXPECT_EQ(store.set(msg("b")), retain_status::refused); // an inner node is still a new topic
  EXPECT_EQ(store.set(msg("d/e")), retain_status::refused);
  EXPECT_EQ(store.node_count(), 3u); // nothing left behind by refusals
  EXPECT_EQ(store.set(msg("a", "again")), retain_status::replaced);
  EXPECT_EQ(store.set(msg("a", "")), retain_status::deleted);
  EXPECT_EQ(store.set(msg("d/e")), retain_status::stored);
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(topics(store, "#"), (strings{"b/c", "d/e"}));

  retained_store none({0});
  EXPECT_EQ(none.set(msg("a")), retain_status::refused);
  EXPECT_EQ(none.size(), 0u);
}

TEST(RetainedStore, BytesBoundTheStoreAndEachMessage) {
  const auto one = mqtt::footprint(*msg("t/0", std::string(1000, 'x')));
  // Room for three such messages with their nodes, not four.
  retained_store store({100, 3 * one + 3 * 400, one + 10});
  EXPECT_EQ(store.set(msg("big", std::string(1011, 'x'))), retain_status::too_large);
  EXPECT_EQ(store.set(msg("t/0", std::string(1000, 'x'))), retain_status::stored);
  EXPECT_EQ(store.set(msg("t/1", std::string(1000, 'x'))), retain_status::stored);
  EXPECT_EQ(store.set(msg("t/2", std::string(1000, 'x'))), retain_status::stored);
  EXPECT_EQ(store.set(msg("t/3", std::string(1000, 'x'))), retain_status::refused);
  EXPECT_EQ(store.size(), 3u);
  EXPECT_LE(store.bytes(), 3 * one + 3 * 400);
  // A replacement counts the bytes it frees.
  EXPECT_EQ(store.set(msg("t/0", std::string(900, 'y'))), retain_status::replaced);
  EXPECT_EQ(store.set(msg("t/0", std::string(1000, 'z'))), retain_status::replaced);
  // Deleting frees its message and nodes: then a new topic fits again.
  const auto before = store.bytes();
  EXPECT_EQ(store.set(msg("t/1", "")), retain_status::deleted);
  EXPECT_LT(store.bytes(), before - one + 1);
  EXPECT_EQ(store.set(msg("t/3", std::string(1000, 'x'))), retain_status::stored);
  // Everything gone: nothing counted.
  for (const char* t : {"t/0", "t/2", "t/3"}) {
    EXPECT_EQ(store.set(msg(t, "")), retain_status::deleted);
  }
  EXPECT_EQ(store.bytes(), 0u);
  EXPECT_EQ(store.node_count(), 0u);
}

TEST(RetainedStore, ManySmallMessagesCountTheirBookkeepingNotOnlyTheirPayload) {
  // 0.8 KB of message object and a node or two each: 1000 one-byte messages do not fit in 100 KB.
  retained_store store({100000, 100 * 1024, 0});
  int stored = 0;
  for (int i = 0; i < 1000; ++i) {
    stored += store.set(msg("s/" + std::to_string(i), "x")) == retain_status::stored ? 1 : 0;
  }
  EXPECT_LT(stored, 150);
  EXPECT_GT(stored, 50);
  EXPECT_LE(store.bytes(), 100u * 1024);
}

TEST(RetainedStore, ExpiredMessagesCountUntilExpired) {
  retained_store store({1});
  store.set(msg("a", "x", t0));
  EXPECT_EQ(store.set(msg("b")), retain_status::refused);
  store.expire(t0);
  EXPECT_EQ(store.set(msg("b")), retain_status::stored);
}

bool brute_force_matches(std::string_view filter, std::string_view topic) {
  const auto split = [](std::string_view s) {
    std::vector<std::string_view> levels;
    std::size_t begin = 0;
    for (std::size_t end; (end = s.find('/', begin)) != std::string_view::npos; begin = end + 1) {
      levels.push_back(s.substr(begin, end - begin));
    }
    levels.push_back(s.substr(begin));
    return levels;
  };
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

std::string random_path(std::mt19937& rng, const std::vector<std::string>& alphabet, std::size_t max_levels) {
  const std::size_t n = std::uniform_int_distribution<std::size_t>(1, max_levels)(rng);
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += (i > 0 ? "/" : "") +
           alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng)];
  }
  return out;
}

TEST(RetainedStore, AgreesWithBruteForceOnRandomTopics) {
  std::mt19937 rng(7);
  const std::vector<std::string> topic_levels = {"a", "b", "c", "", "$s"};
  const std::vector<std::string> filter_levels = {"a", "b", "", "$s", "+", "+"};
  retained_store store({100000});
  std::set<std::string> model;
  for (int i = 0; i < 3000; ++i) {
    std::string t = random_path(rng, topic_levels, 5);
    if (t.empty()) {
      continue;
    }
    if (std::bernoulli_distribution(0.3)(rng)) {
      store.set(msg(t, ""));
      model.erase(t);
    } else {
      store.set(msg(t));
      model.insert(t);
    }
  }
  ASSERT_EQ(store.size(), model.size());
  for (int i = 0; i < 1000; ++i) {
    std::string f = random_path(rng, filter_levels, 4);
    if (std::bernoulli_distribution(0.3)(rng)) {
      f += "/#";
    }
    strings want;
    for (const auto& t : model) {
      if (brute_force_matches(f, t)) {
        want.push_back(t);
      }
    }
    EXPECT_EQ(topics(store, f), want) << f;
  }
  for (const auto& t : model) {
    EXPECT_EQ(store.set(msg(t, "")), retain_status::deleted);
  }
  EXPECT_EQ(store.node_count(), 0u);
}

TEST(RetainedStore, DeepTopicsDoNotRecurse) {
  const std::string deep(65535, '/');
  retained_store store({10});
  store.set(msg(deep));
  EXPECT_EQ(topics(store, "#").size(), 1u);
  EXPECT_EQ(topics(store, deep).size(), 1u);
  store.set(msg(deep + "a"));
  EXPECT_EQ(store.set(msg(deep, "")), retain_status::deleted);
  EXPECT_EQ(store.node_count(), 65536u); // still used by the second topic
} // destroyed while deep

TEST(RetainedStore, ConcurrentSetMatchAndExpire) {
  retained_store store({1000});
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&store, w] {
      for (int i = 0; i < 5000; ++i) {
        const std::string topic = "w" + std::to_string(w) + "/" + std::to_string(i % 50);
        store.set(msg(topic, i % 3 == 0 ? "" : "x", t0 + std::chrono::seconds(i % 7)));
      }
    });
  }
  threads.emplace_back([&] {
    std::vector<mqtt::message_ptr> out;
    while (!stop) {
      store.match("+/#", t0, out);
      for (const auto& m : out) {
        ASSERT_FALSE(m->payload.empty());
      }
      store.expire(t0 + 3s, 10);
    }
  });
  threads[0].join();
  threads[1].join();
  stop = true;
  threads[2].join();
  EXPECT_LE(store.size(), 100u);
  store.expire(time_point::max());
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.node_count(), 0u);
}

} // namespace
} // namespace firehook::router

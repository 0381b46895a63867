// Match and churn cost of the subscription index and the retained store with device-fleet
// filters. Prints items/s; a timing never fails a build (STYLE.md).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "router/retained_store.hpp"
#include "router/subscription_index.hpp"

namespace firehook::router {
namespace {

constexpr int rooms_per_building = 100;

std::string room_topic(int building, int room, const char* leaf) {
  return "buildings/" + std::to_string(building) + "/rooms/" + std::to_string(room) + "/" + leaf;
}

// `n` subscriptions shaped like a fleet: most watch one room ("buildings/b/rooms/r/#"), some a
// measurement across buildings ("buildings/+/rooms/r/temperature", each room alike), some an alarm anywhere
// ("+/b/rooms/+/alarm"), plus a shared ingest group and a few monitors on "#".
void add_fleet(subscription_index& index, int n) {
  const int buildings = std::max(1, n / rooms_per_building);
  subscriber_id id = 1;
  for (int i = 0; i < n; ++i, ++id) {
    const int b = i / rooms_per_building % buildings;
    const int r = i % rooms_per_building;
    switch (i % 20) {
    case 0:
      index.subscribe(id, "buildings/+/rooms/" + std::to_string(i / 20 % rooms_per_building) + "/temperature",
                      {}, std::nullopt);
      break;
    case 1:
      index.subscribe(id, "+/" + std::to_string(b) + "/rooms/+/alarm", {}, std::nullopt);
      break;
    case 2:
      index.subscribe(
          id, "$share/ingest/buildings/+/rooms/+/" + std::string(i % 40 == 2 ? "temperature" : "humidity"),
          {}, std::nullopt);
      break;
    default:
      index.subscribe(id, "buildings/" + std::to_string(b) + "/rooms/" + std::to_string(r) + "/#", {}, 1);
    }
  }
  for (int m = 0; m < 3; ++m, ++id) {
    index.subscribe(id, "#", {}, std::nullopt);
  }
}

std::vector<std::string> fleet_topics(int n, std::size_t count) {
  std::mt19937 rng(1);
  const int buildings = std::max(1, n / rooms_per_building);
  std::uniform_int_distribution<int> building(0, buildings - 1);
  std::uniform_int_distribution<int> room(0, rooms_per_building - 1);
  const char* leaves[] = {"temperature", "humidity", "alarm", "occupancy"};
  std::vector<std::string> topics;
  for (std::size_t i = 0; i < count; ++i) {
    topics.push_back(room_topic(building(rng), room(rng), leaves[i % 4]));
  }
  return topics;
}

void bm_match(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  subscription_index index;
  add_fleet(index, n);
  const std::vector<std::string> topics = fleet_topics(n, 4096);
  match_result result;
  std::size_t i = 0;
  std::size_t hits = 0;
  for (auto _ : state) {
    index.match(topics[i++ & 4095], result);
    hits += result.subscriptions.size() + result.shared_groups.size();
    benchmark::DoNotOptimize(result.subscriptions.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["hits/match"] = static_cast<double>(hits) / static_cast<double>(state.iterations());
  state.counters["nodes"] = static_cast<double>(index.node_count());
}
BENCHMARK(bm_match)->Arg(10'000)->Arg(100'000);

void bm_match_no_subscriber(benchmark::State& state) {
  subscription_index index;
  add_fleet(index, static_cast<int>(state.range(0)));
  match_result result;
  for (auto _ : state) {
    index.match("factories/7/lines/3/speed", result); // only the "#" monitors
    benchmark::DoNotOptimize(result.subscriptions.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(bm_match_no_subscriber)->Arg(100'000);

// A device connects and subscribes to its own command topic, then goes away: one subscribe and one
// unsubscribe per item, in an index that already holds `n` subscriptions.
void bm_subscribe_unsubscribe(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  subscription_index index;
  add_fleet(index, n);
  std::vector<std::string> filters;
  for (int i = 0; i < 4096; ++i) {
    filters.push_back("devices/" + std::to_string(i) + "/commands/#");
  }
  subscriber_id id = 10'000'000;
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string& f = filters[i++ & 4095];
    index.subscribe(id, f, {}, std::nullopt);
    index.unsubscribe(id, f);
    ++id;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(bm_subscribe_unsubscribe)->Arg(10'000)->Arg(100'000);

// A device session ends: remove_subscriber of a device with 5 subscriptions, then it comes back.
void bm_remove_subscriber(benchmark::State& state) {
  subscription_index index;
  add_fleet(index, static_cast<int>(state.range(0)));
  const subscriber_id id = 10'000'000;
  for (auto _ : state) {
    index.subscribe(id, "devices/42/commands/#", {}, std::nullopt);
    index.subscribe(id, "devices/42/config", {}, std::nullopt);
    index.subscribe(id, "buildings/3/rooms/7/#", {}, std::nullopt);
    index.subscribe(id, "buildings/+/rooms/7/temperature", {}, std::nullopt);
    index.subscribe(id, "$share/ingest/buildings/+/rooms/+/humidity", {}, std::nullopt);
    index.remove_subscriber(id);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(bm_remove_subscriber)->Arg(100'000);

mqtt::message_ptr retained(std::string topic) {
  auto m = std::make_shared<mqtt::message>();
  m->topic = std::move(topic);
  m->payload = "21.5";
  m->retain = true;
  return m;
}

// Retained messages for every room's 4 measurements; a new subscriber to one building's
// temperatures gets one message per room.
void bm_retained_match(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  retained_store store({static_cast<std::size_t>(n)});
  const char* leaves[] = {"temperature", "humidity", "alarm", "occupancy"};
  for (int i = 0; i < n; ++i) {
    store.set(retained(room_topic(i / (4 * rooms_per_building), i / 4 % rooms_per_building, leaves[i % 4])));
  }
  const int buildings = std::max(1, n / (4 * rooms_per_building));
  std::vector<mqtt::message_ptr> out;
  int b = 0;
  std::size_t found = 0;
  const auto now = retained_store::time_point{};
  for (auto _ : state) {
    store.match("buildings/" + std::to_string(b++ % buildings) + "/rooms/+/temperature", now, out);
    found += out.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(found)); // messages returned
  state.counters["matches/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(bm_retained_match)->Arg(100'000);

void bm_retained_set(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  retained_store store({static_cast<std::size_t>(n)});
  std::vector<mqtt::message_ptr> messages;
  for (int i = 0; i < n; ++i) {
    messages.push_back(retained(room_topic(i / rooms_per_building, i % rooms_per_building, "temperature")));
  }
  std::size_t i = 0;
  for (auto _ : state) {
    store.set(messages[i++ % messages.size()]); // stores, then replaces
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(bm_retained_set)->Arg(100'000);

} // namespace
} // namespace firehook::router

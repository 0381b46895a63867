// The cost of one authorization check on the data path: may_publish per PUBLISH, may_receive per
// delivery, and (less hot) may_subscribe per SUBSCRIBE filter. The topics file is fleet-shaped:
// the topics of examples/topics.toml plus `filler` unrelated topic definitions that every role is
// granted, so the figures show how the cost grows with the number of grants a client holds.

#include <benchmark/benchmark.h>

#include <string>

#include "security/topic_policy.hpp"

namespace firehook::security {
namespace {

std::shared_ptr<const topic_policy> fleet(int filler) {
  std::string text = R"(
[roles.thermostat]
from = ["cert.ou = thermostats"]
[roles.hvac-controller]
from = ["claim.kind = hvac"]
[roles.dashboard]
service = true
[[topic]]
pattern = "buildings/{building}/rooms/{room}/temperature"
description = "x"
max_qos = 1
publish = [{ role = "thermostat", where = { building = "attr.building", room = "attr.room" } }]
subscribe = [{ role = "hvac-controller", where = { building = "claim.building" } }, "dashboard"]
[[topic]]
pattern = "buildings/{building}/rooms/{room}/setpoint"
description = "x"
publish = [{ role = "hvac-controller", where = { building = "claim.building" } }]
subscribe = [{ role = "thermostat", where = { building = "attr.building", room = "attr.room" } }, "dashboard"]
[[topic]]
pattern = "#"
description = "x"
subscribe = ["dashboard"]
[[deny]]
pattern = "internal/#"
roles = ["*"]
)";
  for (int i = 0; i < filler; ++i) {
    text +=
        "[[topic]]\npattern = \"fleet/{building}/kind" + std::to_string(i) +
        "/{device}\"\ndescription = \"x\"\npublish = [{ role = \"thermostat\", where = { building = "
        "\"attr.building\" } }, \"hvac-controller\"]\nsubscribe = [\"thermostat\", \"hvac-controller\"]\n";
  }
  const auto loaded = config::load_topics_string(text, "bench.toml");
  return loaded.ok() ? topic_policy::compile(loaded.topics) : nullptr;
}

identity thermostat() {
  identity who;
  who.method = "certificate";
  who.certificate.emplace();
  who.certificate->organizational_units = {"thermostats"};
  who.attributes = {{"building", "b17"}, {"room", "r204"}};
  return who;
}

identity controller() {
  identity who;
  who.method = "jwt";
  who.claims = {{"kind", "hvac"}, {"building", "b17"}};
  return who;
}

identity dashboard() {
  identity who;
  who.method = "password";
  who.roles = {"dashboard"};
  return who;
}

void publish_allowed(benchmark::State& state) {
  const topic_access access(fleet(static_cast<int>(state.range(0))), thermostat(), "t-204");
  for (auto _ : state) {
    benchmark::DoNotOptimize(access.may_publish("buildings/b17/rooms/r204/temperature", 1, false));
  }
}
BENCHMARK(publish_allowed)->Arg(0)->Arg(10)->Arg(100);

void publish_refused(benchmark::State& state) {
  // Deny by default walks every grant: the worst case.
  const topic_access access(fleet(static_cast<int>(state.range(0))), thermostat(), "t-204");
  for (auto _ : state) {
    benchmark::DoNotOptimize(access.may_publish("buildings/b17/rooms/r205/temperature", 1, false));
  }
}
BENCHMARK(publish_refused)->Arg(0)->Arg(10)->Arg(100);

void receive_allowed(benchmark::State& state) {
  const topic_access access(fleet(static_cast<int>(state.range(0))), controller(), "hvac-17");
  for (auto _ : state) {
    benchmark::DoNotOptimize(access.may_receive("buildings/b17/rooms/r204/temperature"));
  }
}
BENCHMARK(receive_allowed)->Arg(0)->Arg(10)->Arg(100);

void receive_withheld(benchmark::State& state) {
  const topic_access access(fleet(static_cast<int>(state.range(0))), dashboard(), "ops");
  for (auto _ : state) {
    benchmark::DoNotOptimize(access.may_receive("internal/keys/rotation"));
  }
}
BENCHMARK(receive_withheld)->Arg(0);

void subscribe_wildcard(benchmark::State& state) {
  const topic_access access(fleet(static_cast<int>(state.range(0))), controller(), "hvac-17");
  for (auto _ : state) {
    benchmark::DoNotOptimize(access.may_subscribe("buildings/b17/rooms/+/temperature"));
  }
}
BENCHMARK(subscribe_wildcard)->Arg(0)->Arg(10)->Arg(100);

// What CONNECT pays once per session.
void compile_access(benchmark::State& state) {
  const auto policy = fleet(static_cast<int>(state.range(0)));
  const identity who = thermostat();
  for (auto _ : state) {
    benchmark::DoNotOptimize(topic_access(policy, who, "t-204"));
  }
}
BENCHMARK(compile_access)->Arg(0)->Arg(10)->Arg(100);

} // namespace
} // namespace firehook::security

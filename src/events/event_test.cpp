// Event formatting (text and JSON members) and the hub: the stream from producers to sinks.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "events/event.hpp"
#include "events/hub.hpp"

namespace firehook::events {
namespace {

using namespace std::chrono_literals;

event refused_publish() {
  event e;
  e.type = event_type::publish_refused;
  e.listener = "devices";
  e.peer = "10.0.0.7";
  e.peer_port = 51234;
  e.client_id = "dev \"1\"\n";
  e.method = "password";
  e.identity = "alice";
  e.verdict = decision::deny;
  e.reason_code = mqtt::reason_code::not_authorized;
  e.reason = "no grant";
  e.topic = "a/\xff/b";
  e.qos = 1;
  e.retain = false;
  return e;
}

TEST(event, every_type_has_a_name_a_level_and_a_description) {
  std::set<std::string_view> names;
  for (const auto t : all_event_types()) {
    EXPECT_FALSE(to_string(t).empty());
    EXPECT_FALSE(description(t).empty());
    names.insert(to_string(t));
  }
  EXPECT_EQ(names.size(), all_event_types().size());
  EXPECT_EQ(to_string(event_type::auth_denied), "auth_denied");
  EXPECT_EQ(level_of(event_type::auth_denied), level::warn);
}

TEST(event, text_lists_the_fields_that_are_set_and_quotes_client_text) {
  EXPECT_EQ(format_text(refused_publish()),
            "event=publish_refused listener=\"devices\" peer=\"10.0.0.7\" peer_port=51234 "
            "client_id=\"dev \\\"1\\\"\\x0a\" method=\"password\" identity=\"alice\" decision=deny "
            "reason_code=0x87 reason=\"no grant\" topic=\"a/\xff/b\" qos=1 retain=false");
}

TEST(event, json_members_escape_everything_and_type_numbers) {
  EXPECT_EQ(
      format_json_members(refused_publish()),
      "\"event\":\"publish_refused\",\"listener\":\"devices\",\"peer\":\"10.0.0.7\",\"peer_port\":51234,"
      "\"client_id\":\"dev \\\"1\\\"\\u000a\",\"method\":\"password\",\"identity\":\"alice\","
      "\"decision\":\"deny\",\"reason_code\":\"0x87\",\"reason\":\"no grant\",\"topic\":\"a/\\ufffd/b\","
      "\"qos\":1,\"retain\":false");
  event lost;
  lost.type = event_type::events_lost;
  lost.count = 3;
  EXPECT_EQ(format_json_members(lost), "\"event\":\"events_lost\",\"count\":3");
}

class recording_sink final : public sink {
public:
  void consume(const event& e) override {
    const std::lock_guard lock(mutex);
    got.push_back(e);
  }
  std::size_t size() {
    const std::lock_guard lock(mutex);
    return got.size();
  }
  std::mutex mutex;
  std::vector<event> got;
};

TEST(hub, events_reach_every_sink_in_each_producers_order) {
  hub h(2, 64, 1ms);
  auto a = std::make_shared<recording_sink>();
  auto b = std::make_shared<recording_sink>();
  h.add_sink(a);
  h.add_sink(b);
  h.start();
  std::thread t0([&] {
    for (int i = 0; i < 50; ++i) {
      event e;
      e.client_id = "p0-" + std::to_string(i);
      h.producer(0).emit(std::move(e));
      std::this_thread::sleep_for(50us);
    }
  });
  std::thread t1([&] {
    for (int i = 0; i < 50; ++i) {
      event e;
      e.client_id = "shared-" + std::to_string(i);
      h.shared().emit(std::move(e));
      std::this_thread::sleep_for(50us);
    }
  });
  t0.join();
  t1.join();
  h.stop();
  ASSERT_EQ(a->got.size(), 100u);
  ASSERT_EQ(b->got.size(), 100u);
  int next0 = 0;
  int next_shared = 0;
  for (const auto& e : a->got) {
    if (e.client_id.starts_with("p0-")) {
      EXPECT_EQ(e.client_id, "p0-" + std::to_string(next0++));
    } else {
      EXPECT_EQ(e.client_id, "shared-" + std::to_string(next_shared++));
    }
  }
}

TEST(hub, a_full_buffer_loses_events_and_says_so) {
  hub h(1, 8, std::chrono::hours(1)); // drained only at stop
  auto s = std::make_shared<recording_sink>();
  h.add_sink(s);
  h.start();
  for (int i = 0; i < 20; ++i) {
    h.producer(0).emit(event{});
  }
  EXPECT_EQ(h.lost(), 12u);
  EXPECT_EQ(h.count_of(event{}.type), 20u) << "every event counts, kept or not";
  h.stop();
  ASSERT_EQ(s->got.size(), 9u);
  EXPECT_EQ(s->got.back().type, event_type::events_lost);
  EXPECT_EQ(s->got.back().count, 12u);
}

class warnings_only final : public sink {
public:
  void consume(const event& e) override { got.push_back(e.type); }
  level min_level() const override { return level::warn; }
  std::vector<event_type> got;
};

TEST(hub, events_no_sink_wants_are_counted_but_not_made) {
  hub h(1, 64, std::chrono::hours(1));
  auto s = std::make_shared<warnings_only>();
  h.add_sink(s);
  h.start();
  int built = 0;
  h.producer(0).record(event_type::connection_accepted, [&] { // info: below the sink's level
    ++built;
    event e;
    e.type = event_type::connection_accepted;
    return e;
  });
  h.producer(0).record(event_type::auth_denied, [&] {
    ++built;
    event e;
    e.type = event_type::auth_denied;
    return e;
  });
  h.stop();
  EXPECT_EQ(built, 1);
  EXPECT_EQ(s->got, std::vector<event_type>{event_type::auth_denied});
  EXPECT_EQ(h.count_of(event_type::connection_accepted), 1u);
  EXPECT_EQ(h.count_of(event_type::auth_denied), 1u);
}

} // namespace
} // namespace firehook::events

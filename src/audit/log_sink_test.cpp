// The log sink: one line per event, identical events aggregated per window with the count
// written, and a cap on lines per second whose overflow is said.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "audit/log_sink.hpp"

namespace firehook::audit {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

struct lines {
  std::vector<std::string> got;
  log_sink::writer writer() {
    return [this](events::level, std::chrono::system_clock::time_point, std::string_view line) {
      got.emplace_back(line);
    };
  }
};

events::event denied(std::string client) {
  events::event e;
  e.type = events::event_type::publish_refused;
  e.client_id = std::move(client);
  e.topic = "t";
  e.reason = "no grant";
  return e;
}

TEST(log_sink, identical_events_are_written_once_per_window_then_counted) {
  lines out;
  log_sink sink({.fmt = log_sink::format::text, .window = 10s, .max_keys = 100, .max_lines_per_second = 0},
                out.writer());
  const auto t0 = clock::now();
  sink.tick(t0);
  for (int i = 0; i < 50; ++i) {
    sink.consume(denied("a"));
  }
  sink.consume(denied("b"));
  ASSERT_EQ(out.got.size(), 2u);
  sink.tick(t0 + 5s);
  EXPECT_EQ(out.got.size(), 2u);
  sink.tick(t0 + 10s);
  ASSERT_EQ(out.got.size(), 3u);
  EXPECT_NE(out.got[2].find("client_id=\"a\""), std::string::npos);
  EXPECT_NE(out.got[2].find("repeated=49"), std::string::npos) << out.got[2];
  // A new window writes the first one again.
  sink.consume(denied("a"));
  EXPECT_EQ(out.got.size(), 4u);
}

TEST(log_sink, a_ban_added_then_expired_is_two_lines) {
  lines out;
  log_sink sink({.fmt = log_sink::format::text, .window = 10s, .max_keys = 100, .max_lines_per_second = 0},
                out.writer());
  sink.tick(clock::now());
  events::event e;
  e.type = events::event_type::ban;
  e.subject = "192.0.2.7";
  e.reason = "20 failed logins within 600 s (offence 1)";
  e.change = "added";
  sink.consume(e);
  e.change = "expired";
  sink.consume(e);
  ASSERT_EQ(out.got.size(), 2u);
  EXPECT_NE(out.got[1].find("expired"), std::string::npos) << out.got[1];
}

TEST(log_sink, json_lines_carry_the_count_as_a_member) {
  lines out;
  log_sink sink({.fmt = log_sink::format::json, .window = 10s, .max_keys = 100, .max_lines_per_second = 0},
                out.writer());
  const auto t0 = clock::now();
  sink.tick(t0);
  sink.consume(denied("a"));
  sink.consume(denied("a"));
  sink.tick(t0 + 10s);
  ASSERT_EQ(out.got.size(), 2u);
  EXPECT_EQ(out.got[1].substr(out.got[1].size() - 13), ",\"repeated\":1");
}

TEST(log_sink, too_many_different_events_are_counted_not_written) {
  lines out;
  log_sink sink({.fmt = log_sink::format::text, .window = 10s, .max_keys = 3, .max_lines_per_second = 0},
                out.writer());
  const auto t0 = clock::now();
  sink.tick(t0);
  for (int i = 0; i < 10; ++i) {
    sink.consume(denied("c" + std::to_string(i)));
  }
  EXPECT_EQ(out.got.size(), 3u);
  sink.tick(t0 + 10s);
  ASSERT_EQ(out.got.size(), 4u);
  EXPECT_NE(out.got[3].find("event=events_lost"), std::string::npos);
  EXPECT_NE(out.got[3].find("count=7"), std::string::npos);
}

TEST(log_sink, lines_per_second_are_capped_and_the_overflow_said) {
  lines out;
  log_sink sink({.fmt = log_sink::format::text, .window = 10s, .max_keys = 1000, .max_lines_per_second = 5},
                out.writer());
  const auto t0 = clock::now();
  sink.tick(t0);
  for (int i = 0; i < 20; ++i) {
    sink.consume(denied("d" + std::to_string(i)));
  }
  EXPECT_EQ(out.got.size(), 5u);
  sink.tick(t0 + 1s);
  ASSERT_EQ(out.got.size(), 6u);
  EXPECT_NE(out.got[5].find("count=15"), std::string::npos) << out.got[5];
}

TEST(log_sink, events_below_the_log_level_are_not_looked_at) {
  lines out;
  log_sink::options o;
  o.min_level = events::level::warn;
  log_sink sink(o, out.writer());
  sink.tick(clock::now());
  events::event accepted;
  accepted.type = events::event_type::connection_accepted; // info
  sink.consume(accepted);
  sink.consume(denied("a")); // warn
  ASSERT_EQ(out.got.size(), 1u);
  EXPECT_NE(out.got[0].find("publish_refused"), std::string::npos);
}

} // namespace
} // namespace firehook::audit

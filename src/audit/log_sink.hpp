#pragma once
// The log as a sink of the event stream: every event becomes one line, text ("event=... key=value
// ...") or JSON members, handed to a writer (the application's logger). A flood cannot turn the
// log into a denial of service:
//  - identical events (same type, client id, identity, user name, peer address, topic, reason and
//    subject; the peer port and the time may differ) within a window are written once; at the window's end
//    one more line says how many were repeated
//    ("repeated": N), so the aggregation is itself visible;
//  - at most `max_lines_per_second` lines are written; what is over is counted and said in one
//    events_lost line per second.
// The statistics count every event whatever the log writes.
//
// Threads: the hub's thread only (events::sink).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "events/hub.hpp"

namespace firehook::audit {

class log_sink final : public events::sink {
public:
  enum class format : std::uint8_t { text, json };
  // One line: its level, when the event happened, and the text line or the JSON members (without
  // braces; the writer adds time and level).
  using writer = std::function<void(events::level, std::chrono::system_clock::time_point, std::string_view)>;

  struct options {
    format fmt = format::text;
    events::level min_level = events::level::info; // events below it are not looked at
    std::chrono::seconds window{10};
    std::size_t max_keys = 4096;             // identical-event groups remembered per window
    std::size_t max_lines_per_second = 1000; // 0: no cap
  };

  log_sink(options opts, writer write);

  void consume(const events::event& e) override;
  void tick(std::chrono::steady_clock::time_point now) override;
  void flush() override { flush_window(); }
  events::level min_level() const override { return opts_.min_level; }

private:
  struct group {
    std::uint64_t repeated = 0;
    // The latest of the repeats, written with the count; its `count` is the sum of the repeats'
    // (messages dropped, events lost). Only once there is a repeat: most groups never have one.
    std::unique_ptr<events::event> last;
  };

  void write(const events::event& e, std::uint64_t repeated);
  void write_lost(std::uint64_t count, std::string why); // an events_lost line, when count != 0
  void flush_window();

  options opts_;
  writer write_;
  std::unordered_map<std::string, group> groups_; // by key, this window
  std::uint64_t overflow_ = 0;                    // events of keys beyond max_keys, this window
  std::chrono::steady_clock::time_point window_end_{};
  std::chrono::steady_clock::time_point second_end_{};
  std::size_t lines_this_second_ = 0;
  std::uint64_t over_rate_ = 0; // events not written this second
};

} // namespace firehook::audit

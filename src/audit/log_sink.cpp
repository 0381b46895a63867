#include "audit/log_sink.hpp"

#include <utility>

namespace firehook::audit {

namespace {

std::string key_of(const events::event& e) {
  std::string key(events::to_string(e.type));
  for (const std::string* part :
       {&e.client_id, &e.method, &e.identity, &e.username, &e.peer, &e.topic, &e.reason, &e.subject, &e.change}) {
    key += '\0';
    key += *part;
  }
  return key;
}

} // namespace

log_sink::log_sink(options opts, writer write) : opts_(opts), write_(std::move(write)) {}

void log_sink::consume(const events::event& e) {
  if (events::level_of(e.type) < opts_.min_level) {
    return;
  }
  auto [it, first] = groups_.try_emplace(key_of(e));
  if (first && groups_.size() > opts_.max_keys) {
    groups_.erase(it);
    ++overflow_;
    return;
  }
  if (first) {
    write(e, 0);
    return;
  }
  group& g = it->second;
  ++g.repeated;
  const std::uint64_t counted = (g.last ? g.last->count : 0) + e.count; // what the repeats stand for
  g.last = std::make_unique<events::event>(e);
  g.last->count = counted;
}

void log_sink::write(const events::event& e, std::uint64_t repeated) {
  if (opts_.max_lines_per_second != 0 && lines_this_second_ >= opts_.max_lines_per_second) {
    ++over_rate_;
    return;
  }
  ++lines_this_second_;
  std::string line = opts_.fmt == format::json ? events::format_json_members(e) : events::format_text(e);
  if (repeated != 0) {
    line += opts_.fmt == format::json ? ",\"repeated\":" : " repeated=";
    line += std::to_string(repeated);
  }
  write_(events::level_of(e.type), e.time, line);
}

void log_sink::flush_window() {
  for (auto& [key, g] : groups_) {
    if (g.last) {
      write(*g.last, g.repeated);
    }
  }
  groups_.clear();
  write_lost(std::exchange(overflow_, 0),
             "more than " + std::to_string(opts_.max_keys) + " different events in one aggregation window");
}

void log_sink::write_lost(std::uint64_t count, std::string why) {
  if (count == 0) {
    return;
  }
  events::event e;
  e.type = events::event_type::events_lost;
  e.count = count;
  e.reason = "not written to the log: " + std::move(why);
  write(e, 0);
}

void log_sink::tick(std::chrono::steady_clock::time_point now) {
  if (now >= window_end_) {
    flush_window();
    window_end_ = now + opts_.window;
  }
  if (now >= second_end_) {
    const std::uint64_t dropped = std::exchange(over_rate_, 0);
    lines_this_second_ = 0;
    second_end_ = now + std::chrono::seconds(1);
    write_lost(dropped, "more than " + std::to_string(opts_.max_lines_per_second) + " lines in one second");
  }
}

} // namespace firehook::audit

#include "events/statistics.hpp"

namespace firehook::events {

namespace {

constexpr std::array<stat_info, stat_count> infos{{
#define FIREHOOK_STAT_INFO(name, kind, topic, metric, help) {stat::name, #name, stat_kind::kind, topic, metric, help},
    FIREHOOK_STATISTICS(FIREHOOK_STAT_INFO)
#undef FIREHOOK_STAT_INFO
}};

} // namespace

std::span<const stat_info> all_stats() {
  return infos;
}

void local_counters::flush_into(statistics& to) {
  for (std::size_t i = 0; i < stat_count; ++i) {
    if (values_[i] != flushed_[i]) {
      to.add(static_cast<stat>(i), static_cast<std::int64_t>(values_[i] - flushed_[i]));
      flushed_[i] = values_[i];
    }
  }
}

} // namespace firehook::events

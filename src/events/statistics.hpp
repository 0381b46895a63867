#pragma once
// Every counter and gauge of the broker, declared once (FIREHOOK_STATISTICS: name, kind, $SYS topic
// below $SYS/broker/, help text); the $SYS topics, and later the Prometheus metrics, are generated
// from the list, so a new statistic is one line here and one place that counts it.
//
// Two kinds of holder:
//  - statistics: the process-wide values, relaxed atomics, read by whoever publishes them;
//  - local_counters: one thread's counters (a shard's), plain integers, added to statistics in one
//    go (flush_into, about every 100 ms), so that nothing on the message path writes a shared line.
// Counts of events by type are the event hub's (hub::count_of).

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "events/event.hpp"

namespace firehook::events {

#define FIREHOOK_STATISTICS(X)                                                                               \
  X(clients_connected, gauge, "clients/connected", "connected clients now")                                  \
  X(messages_received, counter, "messages/received", "PUBLISH packets received from clients")                \
  X(messages_sent, counter, "messages/sent", "PUBLISH packets sent to clients (resends included)")           \
  X(messages_dropped, counter, "messages/dropped",                                                           \
    "deliveries dropped: over a session's bounds or the client's Maximum Packet Size")                       \
  X(bytes_received, counter, "bytes/received", "bytes read from clients")                                    \
  X(bytes_sent, counter, "bytes/sent", "bytes written to clients")                                           \
  X(subscriptions, gauge, "subscriptions/count", "subscriptions in the index now (shared ones included)")    \
  X(retained, gauge, "retained/count", "retained messages stored now")                                       \
  X(retained_bytes, gauge, "retained/bytes", "memory the retained messages hold now")                        \
  X(retained_refused, counter, "retained/refused", "retained messages not stored: store full or too large")  \
  X(publishes_denied, counter, "authorization/publishes_denied",                                             \
    "PUBLISH packets and wills the client's rights refused")                                                 \
  X(subscribes_denied, counter, "authorization/subscribes_denied",                                           \
    "SUBSCRIBE filters the topics file refused")                                                             \
  X(deliveries_withheld, counter, "authorization/deliveries_withheld",                                       \
    "deliveries withheld from subscribers without the right to read them")                                   \
  X(subscriptions_revoked, counter, "authorization/subscriptions_revoked",                                   \
    "live subscriptions removed because a reloaded topics file no longer grants them")                       \
  X(auth_queue_full, counter, "authentication/queue_full",                                                   \
    "CONNECTs refused with Server busy: the authentication queue (of their address, or in all) was full")    \
  X(events_lost, counter, "events/lost", "events lost to a full buffer")

enum class stat : std::uint8_t {
#define FIREHOOK_STAT_ENUM(name, kind, topic, help) name,
  FIREHOOK_STATISTICS(FIREHOOK_STAT_ENUM)
#undef FIREHOOK_STAT_ENUM
};

enum class stat_kind : std::uint8_t { counter, gauge };

struct stat_info {
  stat id;
  std::string_view name;
  stat_kind kind;
  std::string_view topic; // below $SYS/broker/
  std::string_view help;
};

std::span<const stat_info> all_stats();
inline constexpr std::size_t stat_count = 0
#define FIREHOOK_STAT_COUNT(name, kind, topic, help) +1
    FIREHOOK_STATISTICS(FIREHOOK_STAT_COUNT)
#undef FIREHOOK_STAT_COUNT
    ;

class statistics {
public:
  void add(stat s, std::int64_t delta) { at(s).fetch_add(delta, std::memory_order_relaxed); }
  void set(stat s, std::int64_t value) { at(s).store(value, std::memory_order_relaxed); }
  std::int64_t get(stat s) const {
    return values_[static_cast<std::size_t>(s)].load(std::memory_order_relaxed);
  }

private:
  std::atomic<std::int64_t>& at(stat s) { return values_[static_cast<std::size_t>(s)]; }
  std::array<std::atomic<std::int64_t>, stat_count> values_{};
};

class local_counters {
public:
  void add(stat s, std::uint64_t n = 1) { values_[static_cast<std::size_t>(s)] += n; }
  std::uint64_t get(stat s) const { return values_[static_cast<std::size_t>(s)]; }
  // Adds what was counted since the last call to `to`.
  void flush_into(statistics& to);

private:
  std::array<std::uint64_t, stat_count> values_{};
  std::array<std::uint64_t, stat_count> flushed_{};
};

} // namespace firehook::events

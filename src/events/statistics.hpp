#pragma once
// Every counter and gauge of the broker, declared once (FIREHOOK_STATISTICS: name, kind, $SYS topic
// below $SYS/broker/, Prometheus metric name, help text); the $SYS topics and the Prometheus
// metrics (admin/metrics.hpp) are generated from the list, so a new statistic is one line here and
// one place that counts it. Metric names follow Prometheus conventions: base units as a suffix,
// counters end in _total.
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
  X(clients_connected, gauge, "clients/connected", "firehook_clients_connected", "connected clients now")    \
  X(messages_received, counter, "messages/received", "firehook_messages_received_total",                     \
    "PUBLISH packets received from clients")                                                                 \
  X(messages_sent, counter, "messages/sent", "firehook_messages_sent_total",                                 \
    "PUBLISH packets sent to clients (resends included)")                                                    \
  X(messages_dropped, counter, "messages/dropped", "firehook_messages_dropped_total",                        \
    "deliveries dropped, for every reason below")                                                            \
  X(messages_dropped_queue_full, counter, "messages/dropped/queue_full",                                     \
    "firehook_messages_dropped_queue_full_total",                                                            \
    "deliveries dropped over a session's bounds: QoS 0 to a full session, offline queues (queue_overflow)")  \
  X(messages_dropped_too_large, counter, "messages/dropped/too_large", "firehook_messages_dropped_too_large_total", \
    "deliveries dropped because they exceed the client's Maximum Packet Size")                               \
  X(messages_expired, counter, "messages/expired", "firehook_messages_expired_total",                        \
    "deliveries discarded because their Message Expiry Interval passed before they were sent")               \
  X(messages_queued, gauge, "messages/queued", "firehook_messages_queued",                                   \
    "QoS 1/2 messages waiting in sessions' queues, online and offline (counted every second)")               \
  X(messages_inflight, gauge, "messages/inflight", "firehook_messages_inflight",                             \
    "QoS 1/2 messages sent to clients and not yet acknowledged (counted every second)")                      \
  X(subscribers_congested, counter, "messages/congested", "firehook_subscribers_congested_total",            \
    "times a connected session went over its queue bounds and its publishers were slowed")                   \
  X(publishers_slowed, counter, "messages/publishers_slowed", "firehook_publishers_slowed_total",            \
    "times a publisher's acknowledgements and reading were held for a congested subscriber")                 \
  X(clients_rate_limited, counter, "clients/rate_limited", "firehook_clients_rate_limited_total",            \
    "times a client went over its publish or subscribe rate and was held back")                              \
  X(rate_limit_disconnects, counter, "clients/rate_limit_disconnects",                                       \
    "firehook_rate_limit_disconnects_total",                                                                 \
    "clients disconnected for staying over their rate for limits.rate_limit_timeout")                        \
  X(bytes_received, counter, "bytes/received", "firehook_received_bytes_total", "bytes read from clients")   \
  X(bytes_sent, counter, "bytes/sent", "firehook_sent_bytes_total", "bytes written to clients")              \
  X(subscriptions, gauge, "subscriptions/count", "firehook_subscriptions",                                   \
    "subscriptions in the index now (shared ones included)")                                                 \
  X(retained, gauge, "retained/count", "firehook_retained_messages", "retained messages stored now")         \
  X(retained_bytes, gauge, "retained/bytes", "firehook_retained_bytes",                                      \
    "memory the retained messages hold now")                                                                 \
  X(retained_refused, counter, "retained/refused", "firehook_retained_refused_total",                        \
    "retained messages not stored: store full or too large")                                                 \
  X(publishes_denied, counter, "authorization/publishes_denied", "firehook_publishes_denied_total",          \
    "PUBLISH packets and wills the client's rights refused")                                                 \
  X(subscribes_denied, counter, "authorization/subscribes_denied", "firehook_subscribes_denied_total",       \
    "SUBSCRIBE filters the topics file refused")                                                             \
  X(deliveries_withheld, counter, "authorization/deliveries_withheld", "firehook_deliveries_withheld_total", \
    "deliveries withheld from subscribers without the right to read them")                                   \
  X(subscriptions_revoked, counter, "authorization/subscriptions_revoked",                                   \
    "firehook_subscriptions_revoked_total",                                                                  \
    "live subscriptions removed because a reloaded topics file no longer grants them")                       \
  X(auth_queue_full, counter, "authentication/queue_full", "firehook_auth_queue_full_total",                 \
    "CONNECTs refused with Server busy: the authentication queue (of their address, or in all) was full")    \
  X(connections_pending, gauge, "connections/pending", "firehook_connections_pending",                       \
    "connections accepted and not yet authenticated (TLS handshake, or CONNECT not yet accepted) now")       \
  X(refused_connections_per_address, counter, "connections/refused/connections_per_address",                 \
    "firehook_connections_refused_connections_per_address_total",                                            \
    "connections closed at accept: their address had abuse.max_connections_per_address open")                \
  X(refused_connection_rate_per_address, counter, "connections/refused/rate_per_address",                    \
    "firehook_connections_refused_rate_per_address_total",                                                   \
    "connections closed at accept: their address connected faster than abuse.connection_rate_per_address")   \
  X(refused_pending_per_address, counter, "connections/refused/pending_per_address",                         \
    "firehook_connections_refused_pending_per_address_total",                                                \
    "connections closed at accept: their address had abuse.max_pending_per_address not yet authenticated")   \
  X(refused_connections_per_network, counter, "connections/refused/connections_per_network",                 \
    "firehook_connections_refused_connections_per_network_total",                                            \
    "connections closed at accept: their network had abuse.max_connections_per_network open")                \
  X(refused_connection_rate_per_network, counter, "connections/refused/rate_per_network",                    \
    "firehook_connections_refused_rate_per_network_total",                                                   \
    "connections closed at accept: their network connected faster than abuse.connection_rate_per_network")   \
  X(refused_pending_per_network, counter, "connections/refused/pending_per_network",                         \
    "firehook_connections_refused_pending_per_network_total",                                                \
    "connections closed at accept: their network had abuse.max_pending_per_network not yet authenticated")   \
  X(refused_max_connections, counter, "connections/refused/max_connections",                                 \
    "firehook_connections_refused_max_connections_total",                                                    \
    "connections closed at accept: the broker had limits.max_connections open")                              \
  X(refused_pending_connections, counter, "connections/refused/pending",                                     \
    "firehook_connections_refused_pending_total",                                                            \
    "connections closed at accept: abuse.max_pending_connections of all were not yet authenticated")         \
  X(logins_delayed, counter, "authentication/delayed", "firehook_logins_delayed_total",                      \
    "CONNECTs held before their credentials were checked, after failed logins (tarpit)")                     \
  X(bans_active, gauge, "bans/active", "firehook_bans_active",                                               \
    "bans in force now: addresses, client ids and user names")                                               \
  X(refused_banned, counter, "connections/refused/banned", "firehook_connections_refused_banned_total",      \
    "connections closed at accept and CONNECTs refused (0x8A Banned) because of a ban")                      \
  X(alert_webhook_failures, counter, "webhook/failures", "firehook_alert_webhook_failures_total",            \
    "alerts the webhook did not accept after its last attempt ([alerts] webhook_retries)")                   \
  X(alert_webhook_dropped, counter, "webhook/dropped", "firehook_alert_webhook_dropped_total",               \
    "alerts not sent to the webhook: its queue was full")                                                    \
  X(events_lost, counter, "events/lost", "firehook_events_lost_total", "events lost to a full buffer")

enum class stat : std::uint8_t {
#define FIREHOOK_STAT_ENUM(name, kind, topic, metric, help) name,
  FIREHOOK_STATISTICS(FIREHOOK_STAT_ENUM)
#undef FIREHOOK_STAT_ENUM
};

enum class stat_kind : std::uint8_t { counter, gauge };

struct stat_info {
  stat id;
  std::string_view name;
  stat_kind kind;
  std::string_view topic;  // below $SYS/broker/
  std::string_view metric; // Prometheus
  std::string_view help;
};

std::span<const stat_info> all_stats();
inline constexpr std::size_t stat_count = 0
#define FIREHOOK_STAT_COUNT(name, kind, topic, metric, help) +1
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

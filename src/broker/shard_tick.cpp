// Timers, statistics, dropped-message logs, $SYS.
#include <chrono>
#include <string>

#include "broker/shard.hpp"

#ifndef FIREHOOK_VERSION
#define FIREHOOK_VERSION "unknown"
#endif

namespace firehook::broker {

namespace {

constexpr auto drop_log_interval = std::chrono::seconds(10);
constexpr std::size_t retained_expiry_batch = 1000; // per tick, to keep the store's lock short

} // namespace

void shard::on_tick() {
  const base::time_point now = clock_.now();
  while (!timers_.empty() && timers_.top().at <= now) {
    const timer t = timers_.top();
    timers_.pop();
    fire(t);
  }
  flush_statistics();
  log_drops(now);
  if (shard_index_ != 0) {
    return;
  }
  broker_.retained().expire(now, retained_expiry_batch);
  const auto interval = broker_.cfg().broker.sys_interval;
  if (interval.count() > 0 && now >= next_sys_) {
    next_sys_ = now + interval;
    publish_sys();
  }
}

void shard::fire(const timer& t) {
  if (t.what == timer::kind::connect_deadline) {
    const auto it = connections_.find(t.key);
    if (it != connections_.end() && (it->second.state == connection::phase::awaiting_connect ||
                                     it->second.state == connection::phase::authenticating)) {
      // No CONNECT, or no verdict on it, in time: closed, no CONNACK.
      it->second.state = connection::phase::closing;
      it->second.held.clear();
      transport_.close(t.key, false);
    }
    return;
  }
  if (t.what == timer::kind::credential_expiry) {
    const auto it = connections_.find(t.key);
    if (it != connections_.end() && it->second.state == connection::phase::connected) {
      const auto s = sessions_.find(it->second.sid);
      const security::identity* who = s != sessions_.end() ? s->second.who.get() : nullptr;
      auth_event e;
      e.listener = it->second.listener;
      e.peer_address = it->second.peer_address;
      e.client_id =
          s != sessions_.end() ? std::string_view(s->second.s->current().client_id) : std::string_view();
      e.method = who ? std::string_view(who->method) : std::string_view();
      e.identity = who ? std::string_view(who->name) : std::string_view();
      e.reason = mqtt::reason_code::maximum_connect_time;
      e.detail = "credential expired";
      broker_.report(e);
      disconnect(t.key, mqtt::reason_code::maximum_connect_time);
    }
    return;
  }
  if (const auto it = sessions_.find(t.key); it != sessions_.end()) {
    it->second.s->on_timer();
    run_actions(t.key);
  }
}

void shard::count_bytes(std::uint64_t in, std::uint64_t out) {
  bytes_in_ += in;
  bytes_out_ += out;
}

void shard::flush_statistics() {
  statistics& s = broker_.stats();
  const auto add = [](std::atomic<std::uint64_t>& to, std::uint64_t& now, std::uint64_t& before) {
    if (now != before) {
      to.fetch_add(now - before, std::memory_order_relaxed);
      before = now;
    }
  };
  add(s.messages_received, counters_.messages_received, flushed_.messages_received);
  add(s.messages_sent, counters_.messages_sent, flushed_.messages_sent);
  add(s.messages_dropped, counters_.messages_dropped, flushed_.messages_dropped);
  add(s.publishes_denied, counters_.publishes_denied, flushed_.publishes_denied);
  add(s.subscribes_denied, counters_.subscribes_denied, flushed_.subscribes_denied);
  add(s.deliveries_withheld, counters_.deliveries_withheld, flushed_.deliveries_withheld);
  add(s.subscriptions_revoked, counters_.subscriptions_revoked, flushed_.subscriptions_revoked);
  add(s.retained_refused, retained_refused_, retained_refused_flushed_);
  std::uint64_t zero = 0;
  add(s.bytes_received, bytes_in_, zero);
  zero = 0;
  add(s.bytes_sent, bytes_out_, zero);
  bytes_in_ = 0;
  bytes_out_ = 0;
}

void shard::log_drops(base::time_point now) {
  if (now < next_drop_log_) {
    return;
  }
  bool logged = false;
  if (counters_.messages_dropped != dropped_logged_) {
    broker_.log(
        "shard " + std::to_string(shard_index_) + ": " +
        std::to_string(counters_.messages_dropped - dropped_logged_) +
        " messages dropped (over the session's max_queued_messages or max_queued_bytes, or larger than "
        "the client's Maximum Packet Size)");
    dropped_logged_ = counters_.messages_dropped;
    logged = true;
  }
  if (retained_refused_ != retained_refused_logged_) {
    const auto& l = broker_.cfg().limits;
    broker_.log("shard " + std::to_string(shard_index_) + ": " +
                    std::to_string(retained_refused_ - retained_refused_logged_) +
                    " retained messages not stored (limits.max_retained_messages " +
                    std::to_string(l.max_retained_messages) + ", max_retained_bytes " +
                    std::to_string(l.max_retained_bytes) + " or max_retained_message_bytes " +
                    std::to_string(l.max_retained_message_bytes) + " reached); they were still delivered",
                false);
    retained_refused_logged_ = retained_refused_;
    logged = true;
  }
  if (logged) {
    next_drop_log_ = now + drop_log_interval;
  }
}

void shard::publish_sys() {
  flush_statistics();
  const statistics_snapshot s = broker_.snapshot();
  const auto publish = [this](std::string topic, std::string payload) {
    auto m = std::make_shared<mqtt::message>();
    m->topic = std::move(topic);
    m->payload = std::move(payload);
    m->retain = true;
    route(m, 0);
  };
  publish("$SYS/broker/version", "firehook " FIREHOOK_VERSION);
  publish("$SYS/broker/uptime", std::to_string(s.uptime_seconds) + " seconds");
  publish("$SYS/broker/clients/connected", std::to_string(s.clients_connected));
  publish("$SYS/broker/subscriptions/count", std::to_string(s.subscriptions));
  publish("$SYS/broker/messages/received", std::to_string(s.messages_received));
  publish("$SYS/broker/messages/sent", std::to_string(s.messages_sent));
  publish("$SYS/broker/bytes/received", std::to_string(s.bytes_received));
  publish("$SYS/broker/bytes/sent", std::to_string(s.bytes_sent));
  publish("$SYS/broker/messages/dropped", std::to_string(s.messages_dropped));
  publish("$SYS/broker/retained/count", std::to_string(s.retained));
  publish("$SYS/broker/retained/bytes", std::to_string(s.retained_bytes));
  publish("$SYS/broker/retained/refused", std::to_string(s.retained_refused));
  publish("$SYS/broker/authentication/queue_full", std::to_string(s.auth_queue_full));
  publish("$SYS/broker/authorization/publishes_denied", std::to_string(s.publishes_denied));
  publish("$SYS/broker/authorization/subscribes_denied", std::to_string(s.subscribes_denied));
  publish("$SYS/broker/authorization/deliveries_withheld", std::to_string(s.deliveries_withheld));
  publish("$SYS/broker/authorization/subscriptions_revoked", std::to_string(s.subscriptions_revoked));
}

} // namespace firehook::broker

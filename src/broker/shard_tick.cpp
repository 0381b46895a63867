// Timers, statistics, dropped-message logs, $SYS.
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "broker/shard.hpp"

#ifndef FIREHOOK_VERSION
#define FIREHOOK_VERSION "unknown"
#endif

namespace firehook::broker {

namespace {

constexpr std::size_t retained_expiry_batch = 1000; // per tick, to keep the store's lock short

} // namespace

void shard::on_tick() {
  const base::time_point now = clock_.now();
  while (!timers_.empty() && timers_.top().at <= now) {
    const timer t = timers_.top();
    timers_.pop();
    fire(t);
  }
  relieve_congested();
  if (now >= next_census_) {
    next_census_ = now + std::chrono::seconds(1);
    count_messages_held();
  }
  flush_statistics();
  report_drops();
  sample_rates(now);
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
    connection* c = connections_.find(t.key);
    if (c != nullptr &&
        (c->state == connection::phase::awaiting_connect || c->state == connection::phase::authenticating)) {
      // No CONNECT, or no verdict on it, in time: closed, no CONNACK.
      events::event e = event_of(events::event_type::connection_refused, *c);
      e.verdict = events::decision::deny;
      e.reason = c->state == connection::phase::awaiting_connect ? "no CONNECT in time"
                                                                 : "no authentication verdict in time";
      e.subject = "limits.connect_timeout";
      events_.emit(std::move(e));
      connections_.close(t.key, *c, false);
    }
    return;
  }
  if (t.what == timer::kind::login_delay) {
    admission_.resume(t.key);
    return;
  }
  if (t.what == timer::kind::rate_resume) {
    if (connection* c = connections_.find(t.key)) {
      c->rate_timer = false;
      replay_held(t.key);
    }
    return;
  }
  if (t.what == timer::kind::credential_expiry) {
    // The token stops being valid: the connection ends (5.0: 0xA0), as a new CONNECT would be refused.
    disconnect(t.key, mqtt::reason_code::maximum_connect_time, "credential expired");
    return;
  }
  if (const auto it = sessions_.find(t.key); it != sessions_.end()) {
    it->second.s->on_timer();
    run_actions(t.key);
  }
}

void shard::count_bytes(std::uint64_t in, std::uint64_t out) {
  counters_.add(events::stat::bytes_received, in);
  counters_.add(events::stat::bytes_sent, out);
}

void shard::count_messages_held() {
  // Counted, not tracked: a walk over the sessions once a second (100,000 sessions: well under a
  // millisecond) cannot drift, where a count kept at every queue change would have to follow each
  // session across shards, restarts and ends.
  std::int64_t queued = 0;
  std::int64_t inflight = 0;
  for (const auto& [sid, slot] : sessions_) {
    queued += static_cast<std::int64_t>(slot.s->current().queue.size());
    inflight += static_cast<std::int64_t>(slot.s->current().inflight.size());
  }
  broker_.stats().add(events::stat::messages_queued, queued - std::exchange(queued_counted_, queued));
  broker_.stats().add(events::stat::messages_inflight, inflight - std::exchange(inflight_counted_, inflight));
}

void shard::flush_statistics() {
  counters_.flush_into(broker_.stats());
}

void shard::report_drops() {
  // One event per session that dropped deliveries since the last tick, with the count: a stuck
  // subscriber under a flood costs one event per tick, not one per message.
  for (const subscriber_id sid : drop_reports_) {
    const auto it = sessions_.find(sid);
    if (it == sessions_.end()) {
      continue;
    }
    const auto dropped = it->second.s->take_dropped();
    for (const auto& [count, why] :
         {std::pair{dropped.over_bound, "over the session's limits.max_queued_bytes or max_queued_messages"},
          std::pair{dropped.too_large, "larger than the client's Maximum Packet Size"}}) {
      if (count != 0) {
        events::event e = session_event(events::event_type::message_dropped, it->second);
        e.count = count;
        e.reason = why;
        events_.emit(std::move(e));
      }
    }
  }
  drop_reports_.clear();
}

void shard::sample_rates(base::time_point now) {
  const auto& a = broker_.cfg().alerts;
  if (!a.enabled || a.baseline_factor == 0) {
    return; // the counts are not read (and wrap around harmlessly)
  }
  if (last_sample_ == base::time_point{}) {
    last_sample_ = now;
    return;
  }
  if (now - last_sample_ < a.baseline_interval) {
    return;
  }
  const auto interval = std::chrono::duration_cast<std::chrono::milliseconds>(now - last_sample_);
  last_sample_ = now;
  std::vector<events::rate_sample> batch;
  for (auto& [sid, slot] : sessions_) {
    if (slot.published == 0 && slot.delivered == 0) {
      continue;
    }
    // A session that went offline within the interval is sampled too: a flood just before leaving counts.
    if (slot.who != nullptr) {
      batch.push_back(events::rate_sample{slot.who->method, slot.who->name, slot.s->client_id(),
                                          slot.published, slot.delivered, interval});
    }
    slot.published = 0;
    slot.delivered = 0;
  }
  if (!batch.empty()) {
    broker_.rate_samples().add(std::move(batch));
  }
}

void shard::publish_own(mqtt::message_ptr m) {
  transport_.post_to_shard(shard_index_, [this, m = std::move(m)] { route(m, 0); });
}

void shard::publish_sys() {
  flush_statistics();
  broker_.refresh_statistics();
  const events::statistics& stats = broker_.stats();
  const auto publish = [this](std::string topic, std::string payload) {
    auto m = std::make_shared<mqtt::message>();
    m->topic = std::move(topic);
    m->payload = std::move(payload);
    m->retain = true;
    route(m, 0);
  };
  publish("$SYS/broker/version", "firehook " FIREHOOK_VERSION);
  publish("$SYS/broker/uptime", std::to_string(broker_.uptime_seconds()) + " seconds");
  for (const auto& info : events::all_stats()) {
    publish("$SYS/broker/" + std::string(info.topic), std::to_string(stats.get(info.id)));
  }
  for (const auto type : events::all_event_types()) {
    publish("$SYS/broker/events/" + std::string(events::to_string(type)),
            std::to_string(broker_.events().count_of(type)));
  }
}

} // namespace firehook::broker

#include "broker/broker.hpp"

#include <chrono>
#include <cstdio>
#include <random>

#include "broker/authentication.hpp"
#include "security/auth_factory.hpp"

namespace firehook::broker {

namespace {
// Two workers: Argon2id verification takes tens of milliseconds and the machine's cores also run
// the shards; more workers would only compete with them.
constexpr unsigned auth_workers = 2;
constexpr std::size_t auth_max_pending = 4096;
} // namespace

session::limits to_session_limits(const config::limit_settings& l) {
  session::limits s;
  s.max_packet_size = l.max_packet_size;
  s.max_inflight = l.max_inflight;
  s.max_queued_messages = l.max_queued_messages;
  s.max_queued_bytes = l.max_queued_bytes;
  s.max_subscriptions = l.max_subscriptions_per_client;
  s.max_topic_levels = l.max_topic_levels;
  s.max_topic_length = l.max_topic_length;
  s.max_client_id_length = l.max_client_id_length;
  s.max_keep_alive = l.max_keep_alive;
  s.max_session_expiry = l.max_session_expiry;
  s.topic_alias_maximum = l.topic_alias_maximum;
  s.max_qos = static_cast<mqtt::qos>(l.max_qos > 2 ? 2 : l.max_qos);
  s.retain_available = l.retain_available;
  s.max_message_expiry = l.max_message_expiry;
  return s;
}

broker::broker(std::shared_ptr<const config::config> cfg, unsigned shard_count, const base::clock& clock)
    : cfg_(std::move(cfg)), limits_(to_session_limits(cfg_->limits)), clock_(clock), started_(clock.now()),
      retained_(cfg_->limits.retain_available ? cfg_->limits.max_retained_messages : 0),
      shards_(shard_count == 0 ? 1 : shard_count) {
  std::random_device rd;
  const std::uint64_t nonce = (std::uint64_t{rd()} << 32) ^ rd();
  char buf[32];
  std::snprintf(buf, sizeof buf, "fh-%016llx-", static_cast<unsigned long long>(nonce));
  client_id_prefix_ = buf;
  methods_ = security::make_auth_methods(*cfg_, [this](std::string_view line) { log(line); });
  auth_ = std::make_unique<authentication>(methods_.by_listener, auth_workers, auth_max_pending);
}

broker::~broker() = default;

void broker::report(const auth_event& e) const {
  if (auth_log_) {
    auth_log_(e);
  }
}

void broker::stop_authentication() {
  auth_->stop();
}

std::optional<std::string> broker::reload_credentials() const {
  return methods_.reload();
}

statistics_snapshot broker::snapshot() const {
  statistics_snapshot s;
  s.clients_connected = stats_.clients_connected.load(std::memory_order_relaxed);
  s.messages_received = stats_.messages_received.load(std::memory_order_relaxed);
  s.messages_sent = stats_.messages_sent.load(std::memory_order_relaxed);
  s.messages_dropped = stats_.messages_dropped.load(std::memory_order_relaxed);
  s.bytes_received = stats_.bytes_received.load(std::memory_order_relaxed);
  s.bytes_sent = stats_.bytes_sent.load(std::memory_order_relaxed);
  s.subscriptions = stats_.subscriptions.load(std::memory_order_relaxed);
  s.retained = retained_.size();
  s.uptime_seconds = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(clock_.now() - started_).count());
  return s;
}

std::string broker::assign_client_id() {
  return client_id_prefix_ + std::to_string(next_client_id_.fetch_add(1, std::memory_order_relaxed));
}

void broker::log(std::string_view line) const {
  if (log_) {
    log_(line);
  }
}

void broker::attach(unsigned index, shard* s) {
  shards_.at(index).store(s, std::memory_order_release);
}

void broker::detach(unsigned index) {
  shards_.at(index).store(nullptr, std::memory_order_release);
}

} // namespace firehook::broker

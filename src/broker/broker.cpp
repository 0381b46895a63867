#include "broker/broker.hpp"

#include <sodium.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>

#include "broker/authentication.hpp"
#include "security/auth_factory.hpp"

namespace firehook::broker {

namespace {
// Two workers: Argon2id verification takes tens of milliseconds and the machine's cores also run
// the shards; more workers would only compete with them.
constexpr unsigned auth_workers = 2;

router::retained_limits retained_limits_of(const config::limit_settings& l) {
  if (!l.retain_available || l.max_retained_bytes == 0) {
    return router::retained_limits{0, 0, 0}; // nothing is stored
  }
  return router::retained_limits{l.max_retained_messages, l.max_retained_bytes, l.max_retained_message_bytes};
}
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
      retained_(retained_limits_of(cfg_->limits)), shards_(shard_count == 0 ? 1 : shard_count) {
  if (sodium_init() < 0) {
    throw std::runtime_error("libsodium cannot be initialised (no source of randomness)");
  }
  methods_ = security::make_auth_methods(*cfg_, [this](std::string_view line) { log(line, false); });
  limits_.disconnect_on_denied_publish =
      cfg_->authorization.on_denied_publish == config::denied_publish::disconnect;
  auth_ = std::make_unique<authentication>(methods_.by_listener, auth_workers, cfg_->limits.max_pending_auth,
                                           cfg_->limits.max_pending_auth_per_address);
  if (!cfg_->topics.empty()) {
    std::string error;
    if (reload_topics(true, error) == reload_outcome::failed) {
      throw std::runtime_error(error);
    }
  }
}

broker::~broker() = default;

void broker::report(const auth_event& e) const {
  if (auth_log_) {
    auth_log_(e);
  }
}

std::shared_ptr<const security::topic_policy> broker::policy() const {
  std::lock_guard lock(policy_mutex_);
  return policy_;
}

broker::reload_outcome broker::reload_topics(bool force, std::string& error) {
  const auto& path = cfg_->topics;
  if (path.empty()) {
    return reload_outcome::unchanged;
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  const auto mtime = std::filesystem::last_write_time(path, ec);
  const std::string stamp =
      ec ? std::string() : std::to_string(size) + "/" + std::to_string(mtime.time_since_epoch().count());
  {
    std::lock_guard lock(policy_mutex_);
    if (!force && stamp == topics_stamp_) {
      return reload_outcome::unchanged;
    }
    topics_stamp_ = stamp; // a broken file is reported once, not every watch interval
  }
  const auto loaded = config::load_topics_file(path);
  if (!loaded.ok()) {
    error = "topics file " + path.string() + " not loaded:";
    for (const auto& d : loaded.diagnostics) {
      if (!d.warning) {
        error += "\n  " + d.to_string();
      }
    }
    return reload_outcome::failed;
  }
  auto compiled = security::topic_policy::compile(loaded.topics);
  std::lock_guard lock(policy_mutex_);
  policy_ = std::move(compiled);
  return reload_outcome::reloaded;
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
  s.publishes_denied = stats_.publishes_denied.load(std::memory_order_relaxed);
  s.subscribes_denied = stats_.subscribes_denied.load(std::memory_order_relaxed);
  s.deliveries_withheld = stats_.deliveries_withheld.load(std::memory_order_relaxed);
  s.subscriptions_revoked = stats_.subscriptions_revoked.load(std::memory_order_relaxed);
  s.retained = retained_.size();
  s.retained_bytes = retained_.bytes();
  s.retained_refused = stats_.retained_refused.load(std::memory_order_relaxed);
  s.auth_queue_full = auth_->queue_full();
  s.uptime_seconds = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(clock_.now() - started_).count());
  return s;
}

std::string broker::assign_client_id() {
  // 128 bits from the operating system's generator, so that nobody can guess another client's
  // assigned id (a counter could be read off one's own and counted on from).
  unsigned char bytes[16];
  randombytes_buf(bytes, sizeof bytes);
  char hex[2 * sizeof bytes + 1];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  return std::string("fh-") + hex;
}

void broker::log(std::string_view line, bool warning) const {
  if (log_) {
    log_(line, warning);
  }
}

void broker::attach(unsigned index, shard* s) {
  shards_.at(index).store(s, std::memory_order_release);
}

void broker::detach(unsigned index) {
  shards_.at(index).store(nullptr, std::memory_order_release);
}

} // namespace firehook::broker

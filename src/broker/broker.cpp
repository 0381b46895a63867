#include "broker/broker.hpp"

#include <sodium.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>

#include "broker/authentication.hpp"
#include "security/auth_factory.hpp"
#include "security/jwt_authenticator.hpp"

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

broker::broker(std::shared_ptr<const config::config> cfg, unsigned shard_count, const base::clock& clock)
    : cfg_(std::move(cfg)), events_(shard_count == 0 ? 1 : shard_count),
      limits_(session::from_config(cfg_->limits)), clock_(clock), started_(clock.now()),
      retained_(retained_limits_of(cfg_->limits)), reloads_(events_.shared()),
      shards_(shard_count == 0 ? 1 : shard_count) {
  if (sodium_init() < 0) {
    throw std::runtime_error("libsodium cannot be initialised (no source of randomness)");
  }
  methods_ = security::make_auth_methods(*cfg_);
  limits_.disconnect_on_denied_publish =
      cfg_->authorization.on_denied_publish == config::denied_publish::disconnect;
  auth_ = std::make_unique<authentication>(methods_.by_listener, auth_workers, cfg_->limits.max_pending_auth,
                                           cfg_->limits.max_pending_auth_per_address);
  if (!cfg_->topics.empty()) {
    topics_ = std::make_shared<security::policy_file>(cfg_->topics); // throws with the file's errors
  }
}

broker::~broker() {
  events_.stop(); // its sinks (the statistics) go before it
}

std::shared_ptr<const security::topic_policy> broker::policy() const {
  return topics_ ? topics_->current() : nullptr;
}

std::shared_ptr<base::reloadable> broker::token_keys() const {
  return methods_.jwt;
}

void broker::refuse_connections_while(const std::atomic<bool>& refuse, std::string why) {
  refuse_ = &refuse;
  refuse_why_ = std::move(why);
}

void broker::stop_authentication() {
  auth_->stop();
}

void broker::refresh_statistics() {
  stats_.set(events::stat::retained, static_cast<std::int64_t>(retained_.size()));
  stats_.set(events::stat::retained_bytes, static_cast<std::int64_t>(retained_.bytes()));
  stats_.set(events::stat::auth_queue_full, static_cast<std::int64_t>(auth_->queue_full()));
  stats_.set(events::stat::events_lost, static_cast<std::int64_t>(events_.lost()));
}

std::uint64_t broker::uptime_seconds() const {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(clock_.now() - started_).count());
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

void broker::attach(unsigned index, shard* s) {
  shards_.at(index).store(s, std::memory_order_release);
}

void broker::detach(unsigned index) {
  shards_.at(index).store(nullptr, std::memory_order_release);
}

} // namespace firehook::broker

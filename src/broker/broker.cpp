#include "broker/broker.hpp"

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "broker/authentication.hpp"
#include "broker/enrollment_worker.hpp"
#include "broker/persistence.hpp"
#include "broker/shard.hpp"
#include "security/auth_factory.hpp"
#include "security/enrollment_authenticator.hpp"
#include "security/jwt_authenticator.hpp"
#include "store/store.hpp"

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
  clients_by_listener_ = std::make_unique<std::atomic<std::int64_t>[]>(std::max<std::size_t>(cfg_->listeners.size(), 1));
  if (sodium_init() < 0) {
    throw std::runtime_error("libsodium cannot be initialised (no source of randomness)");
  }
  methods_ = security::make_auth_methods(*cfg_);
  limits_.disconnect_on_denied_publish =
      cfg_->authorization.on_denied_publish == config::denied_publish::disconnect;
  auth_ = std::make_unique<authentication>(methods_.by_listener, auth_workers, cfg_->limits.max_pending_auth,
                                           cfg_->limits.max_pending_auth_per_address);
  const bool enrolls = std::any_of(cfg_->listeners.begin(), cfg_->listeners.end(), [](const auto& l) {
    return std::find(l.auth.begin(), l.auth.end(), config::auth_method::enrollment) != l.auth.end();
  });
  if (enrolls) {
    enrollment_ = std::make_unique<enrollment_worker>(
        registry::enrollment_tokens::open(registry::credential_database_path(*cfg_)), cfg_->enrollment,
        registry::ca_files::in(cfg_->broker.state_dir));
  }
  // Always there, so that rights_for() never has a claim identity without its fixed rights.
  enrollment_policy_ = security::enrollment_policy();
  if (!cfg_->topics.empty()) {
    topics_ = std::make_shared<security::policy_file>(cfg_->topics); // throws with the file's errors
  }
  if (cfg_->store.enabled) {
    store::options opts;
    opts.mode = cfg_->store.durability == config::store_durability::sync ? store::durability::sync
                                                                         : store::durability::interval;
    opts.interval = cfg_->store.flush_interval;
    opts.max_bytes = cfg_->store.max_bytes;
    auto opened = store::store::open(cfg_->broker.state_dir / "store", opts);
    if (!opened.opened) {
      throw std::runtime_error("the durable store cannot be opened: " + opened.message);
    }
    store_ = std::move(opened.opened);
    if (!opened.message.empty()) {
      events::event e;
      e.type = events::event_type::store;
      e.reason = opened.message;
      e.subject = (cfg_->broker.state_dir / "store").string();
      events_.shared().emit(std::move(e));
    }
  }
}

bool broker::acknowledge_after_write() const {
  return cfg_->store.durability == config::store_durability::sync;
}

persist::instant broker::now() const {
  return persist::instant{clock_.now(), std::chrono::system_clock::now()};
}

namespace {

// Everything the store holds, as read at start-up.
struct loaded_state : store::record_visitor {
  struct loaded_session {
    std::string record;
    std::vector<std::pair<std::uint64_t, std::string>> messages; // in sequence order
  };
  std::vector<std::pair<std::string, std::string>> retained_messages;
  std::map<std::string, loaded_session, std::less<>> sessions;
  std::uint64_t max_seq = 0;

  void retained(std::string_view topic, std::string_view blob) override {
    retained_messages.emplace_back(std::string(topic), std::string(blob));
  }
  void session(std::string_view client_id, std::string_view blob) override {
    sessions[std::string(client_id)].record = std::string(blob);
  }
  void session_message(std::string_view client_id, std::uint64_t seq, std::string_view blob) override {
    sessions[std::string(client_id)].messages.emplace_back(seq, std::string(blob));
    max_seq = std::max(max_seq, seq);
  }
};

} // namespace

broker::restored broker::restore() {
  restored out;
  if (!store_) {
    return out;
  }
  loaded_state loaded;
  if (const auto ec = store_->load(loaded)) {
    throw std::runtime_error("the durable store in " + (cfg_->broker.state_dir / "store").string() +
                             " cannot be read: " + ec.message());
  }
  next_stored_.store(loaded.max_seq + 1, std::memory_order_relaxed);
  const persist::instant now = this->now();
  store::batch cleanup; // records that cannot be used any more: unreadable, expired, orphaned
  for (const auto& [topic, blob] : loaded.retained_messages) {
    auto m = persist::decode_message(blob, now);
    if (!m) {
      ++out.unreadable; // or expired meanwhile
      cleanup.erase_retained(topic);
      continue;
    }
    retained_.set(std::make_shared<const mqtt::message>(std::move(*m)));
    ++out.retained;
  }
  for (auto& [client_id, s] : loaded.sessions) {
    auto record = s.record.empty() ? std::nullopt : persist::decode_session(s.record);
    if (!record || record->expiry_interval == 0) {
      out.unreadable += record ? 0 : 1;
      cleanup.erase_session_and_messages(client_id);
      continue;
    }
    std::vector<persist::stored_delivery> queue;
    for (auto& [seq, blob] : s.messages) {
      auto d = persist::decode_delivery(blob, now);
      if (!d) {
        cleanup.erase_session_message(client_id, seq); // expired while the broker was down, or damaged
        continue;
      }
      d->what.stored = seq;
      queue.push_back(std::move(*d));
    }
    out.messages += queue.size();
    ++out.sessions;
    const unsigned index = static_cast<unsigned>(std::hash<std::string>{}(client_id) % shard_count());
    shard_at(index).restore_session(client_id, std::move(*record), std::move(queue));
  }
  for (unsigned i = 0; i < shard_count(); ++i) {
    shard_at(i).finish_restore();
  }
  if (!cleanup.empty()) {
    store_->submit(std::move(cleanup), nullptr);
  }
  return out;
}

void broker::close_store() {
  if (store_) {
    store_->close();
  }
}

broker::~broker() {
  // The store's last completions call committed(), which reads shards_ under attach_mutex_: it
  // closes while they are still there (every shard has detached by now, so none is reached).
  close_store();
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
  if (enrollment_) {
    enrollment_->stop();
  }
}

std::size_t broker::listener_index(std::string_view name) const {
  const auto& l = cfg_->listeners;
  const auto it = std::find_if(l.begin(), l.end(), [&](const config::listener_settings& x) { return x.name == name; });
  return it == l.end() ? 0 : static_cast<std::size_t>(it - l.begin()); // a test's listener without configuration: 0
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
  const std::lock_guard lock(attach_mutex_);
  shards_.at(index).store(nullptr, std::memory_order_release);
}

void broker::committed(unsigned index, std::uint64_t generation, std::error_code ec) {
  const std::lock_guard lock(attach_mutex_);
  if (shard* s = shards_.at(index).load(std::memory_order_acquire)) {
    s->committed(generation, ec);
  }
}

void broker::publish(mqtt::message_ptr m) {
  const std::lock_guard lock(attach_mutex_);
  if (shard* s = shards_.at(0).load(std::memory_order_acquire)) {
    s->publish_own(std::move(m));
  }
}

} // namespace firehook::broker

#include "broker/ban_list.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <set>

namespace firehook::broker {
namespace {

bool same(const registry::ban& a, const registry::ban& b) {
  return a.kind == b.kind && a.subject == b.subject;
}

} // namespace

std::int64_t ban_list::now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string ban_list::until_text(const registry::ban& b) {
  if (!b.expires) {
    return "permanent";
  }
  const std::time_t t = *b.expires;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::shared_ptr<const ban_list::snapshot> ban_list::index(std::vector<registry::ban> bans) {
  auto s = std::make_shared<snapshot>();
  s->bans = std::move(bans);
  for (std::size_t i = 0; i < s->bans.size(); ++i) {
    const auto& b = s->bans[i];
    switch (b.kind) {
    case registry::ban_kind::address:
      if (std::string error; const auto range = base::address_range::parse(b.subject, error)) {
        s->networks[range->ipv6_prefix_length()][range->network()] = i;
      }
      break;
    case registry::ban_kind::client_id:
      s->client_ids[b.subject] = i;
      break;
    case registry::ban_kind::username:
      s->usernames[b.subject] = i;
      break;
    case registry::ban_kind::certificate:
      s->certificates[b.subject] = i;
      break;
    case registry::ban_kind::token_subject:
      s->token_subjects[b.subject] = i;
      break;
    }
  }
  return s;
}

std::shared_ptr<const ban_list::snapshot> ban_list::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

void ban_list::publish(std::vector<registry::ban> bans) {
  stats_.set(events::stat::bans_active, static_cast<std::int64_t>(bans.size()));
  current_ = index(std::move(bans));
}

void ban_list::open(const std::filesystem::path& path) {
  auto store = std::make_unique<registry::ban_store>(path);
  const auto now = now_seconds();
  for (const auto& b : store->remove_expired(now)) {
    emit(b, "expired");
  }
  auto bans = store->list();
  std::lock_guard lock(mutex_);
  data_version_ = store->data_version();
  store_ = std::move(store);
  publish(std::move(bans));
}

std::optional<registry::ban> ban_list::find_address(const base::address_bytes& address,
                                                    std::int64_t now) const {
  const auto s = current();
  for (const auto& [prefix, networks] : s->networks) {
    if (const auto it = networks.find(base::masked(address, prefix)); it != networks.end()) {
      const auto& b = s->bans[it->second];
      if (!b.expired(now)) {
        return b;
      }
    }
  }
  return std::nullopt;
}

std::optional<registry::ban> ban_list::find(const subjects& of, std::int64_t now) const {
  if (const auto a = base::parse_address(of.peer_address)) {
    if (auto b = find_address(*a, now)) {
      return b;
    }
  }
  const auto s = current();
  const auto look = [&](const std::unordered_map<std::string, std::size_t>& in,
                        std::string_view key) -> std::optional<registry::ban> {
    if (key.empty()) {
      return std::nullopt;
    }
    if (const auto it = in.find(std::string(key)); it != in.end() && !s->bans[it->second].expired(now)) {
      return s->bans[it->second];
    }
    return std::nullopt;
  };
  for (auto b : {look(s->client_ids, of.client_id), look(s->certificates, of.fingerprint),
                 look(s->token_subjects, of.token_subject), look(s->usernames, of.username.value_or(""))}) {
    if (b) {
      return b;
    }
  }
  return std::nullopt;
}

void ban_list::add(registry::ban b) {
  emit(b, "added");
  std::lock_guard lock(mutex_);
  auto bans = current_->bans;
  std::erase_if(bans, [&](const registry::ban& x) { return same(x, b); });
  bans.push_back(b);
  std::erase_if(unwritten_, [&](const registry::ban& x) { return same(x, b); });
  unwritten_.push_back(std::move(b));
  grown_ = true;
  publish(std::move(bans));
}

void ban_list::add_stored(registry::ban b) {
  add(b);
  registry::ban_store* store = nullptr;
  {
    std::lock_guard lock(mutex_);
    std::erase_if(unwritten_, [&](const registry::ban& x) { return same(x, b); });
    store = store_.get();
  }
  if (store != nullptr) {
    store->put(b); // a poll() that took it from unwritten_ first writes it too: the same row
  }
}

bool ban_list::remove(registry::ban_kind kind, std::string_view subject, std::string_view by) {
  std::optional<registry::ban> gone;
  {
    std::lock_guard lock(mutex_);
    auto bans = current_->bans;
    for (const auto& b : bans) {
      if (b.kind == kind && b.subject == subject) {
        gone = b;
      }
    }
    std::erase_if(unwritten_, [&](const registry::ban& x) { return x.kind == kind && x.subject == subject; });
    if (store_) {
      store_->remove(kind, subject);
    }
    if (!gone) {
      return false;
    }
    std::erase_if(bans, [&](const registry::ban& x) { return x.kind == kind && x.subject == subject; });
    publish(std::move(bans));
  }
  emit(*gone, "removed", "removed by " + std::string(by));
  return true;
}

std::vector<registry::ban> ban_list::list(std::int64_t now) const {
  auto bans = current()->bans;
  std::erase_if(bans, [now](const registry::ban& b) { return b.expired(now); });
  std::sort(bans.begin(), bans.end(), [](const registry::ban& a, const registry::ban& b) {
    return std::pair(a.kind, a.subject) < std::pair(b.kind, b.subject);
  });
  return bans;
}

bool ban_list::poll(std::int64_t now) {
  std::vector<registry::ban> writes;
  registry::ban_store* store = nullptr;
  {
    std::lock_guard lock(mutex_);
    writes.swap(unwritten_);
    store = store_.get();
  }
  std::vector<registry::ban> expired;
  bool changed_elsewhere = false;
  std::vector<registry::ban> stored;
  if (store != nullptr) {
    // The store has its own lock: SQLite's writes (fsync) never hold up a lookup.
    for (const auto& b : writes) {
      store->put(b);
    }
    store->remove_expired(now);
    const auto version = store->data_version();
    std::lock_guard lock(mutex_);
    changed_elsewhere = version != data_version_;
    data_version_ = version;
    if (changed_elsewhere) {
      stored = store->list();
    }
  }
  std::vector<std::pair<registry::ban, std::string_view>> changes;
  bool grown = false;
  {
    std::lock_guard lock(mutex_);
    auto bans = current_->bans;
    if (changed_elsewhere) {
      // The database is the truth, plus what was added since the writes above.
      std::erase_if(stored, [now](const registry::ban& b) { return b.expired(now); });
      for (const auto& b : unwritten_) {
        std::erase_if(stored, [&](const registry::ban& x) { return same(x, b); });
        stored.push_back(b);
      }
      for (const auto& b : stored) {
        if (std::none_of(bans.begin(), bans.end(), [&](const registry::ban& x) { return x == b; })) {
          changes.emplace_back(b, "added");
          grown_ = true;
        }
      }
      for (const auto& b : bans) {
        if (!b.expired(now) &&
            std::none_of(stored.begin(), stored.end(), [&](const registry::ban& x) { return same(x, b); })) {
          changes.emplace_back(b, "removed");
        }
      }
    }
    auto next = changed_elsewhere ? std::move(stored) : bans;
    for (const auto& b : bans) {
      if (b.expired(now)) {
        changes.emplace_back(b, "expired");
      }
    }
    std::erase_if(next, [now](const registry::ban& b) { return b.expired(now); });
    if (changed_elsewhere || next.size() != bans.size()) {
      publish(std::move(next));
    }
    grown = grown_;
    grown_ = false;
  }
  for (const auto& [b, change] : changes) {
    emit(b, change, change == "removed" ? "removed by another process (firehook ban)" : std::string());
  }
  return grown;
}

void ban_list::emit(const registry::ban& b, std::string_view change, std::string reason) {
  events::event e;
  e.type = events::event_type::ban;
  e.ban_kind = std::string(registry::to_string(b.kind));
  e.subject = b.subject;
  e.change = std::string(change);
  e.source = b.source;
  e.reason = reason.empty() ? b.reason : std::move(reason);
  e.until = until_text(b);
  events_.emit(std::move(e));
}

} // namespace firehook::broker

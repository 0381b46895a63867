#include "security/login_guard.hpp"

#include <arpa/inet.h>

#include <algorithm>

#include "base/address_range.hpp"

namespace firehook::security {

void windowed_counts::forget_expired(base::time_point now) {
  while (!order_.empty()) {
    const auto it = entries_.find(order_.front());
    if (now - it->second.started < window_) {
      return;
    }
    entries_.erase(it);
    order_.pop_front();
  }
}

std::uint32_t windowed_counts::add(const std::string& key, base::time_point now) {
  forget_expired(now);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (entries_.size() >= max_keys_ && !order_.empty()) {
      entries_.erase(order_.front()); // the oldest window goes first
      order_.pop_front();
    }
    order_.push_back(key);
    it = entries_.emplace(key, entry{now, 0, std::prev(order_.end())}).first;
  }
  return ++it->second.count;
}

std::uint32_t windowed_counts::count(const std::string& key, base::time_point now) const {
  const auto it = entries_.find(key);
  return it == entries_.end() || now - it->second.started >= window_ ? 0 : it->second.count;
}

void windowed_counts::reset(const std::string& key) {
  if (const auto it = entries_.find(key); it != entries_.end()) {
    order_.erase(it->second.order);
    entries_.erase(it);
  }
}

login_guard::login_guard(const config::abuse_settings& settings, const base::clock& clock)
    : settings_(settings), clock_(clock), by_username_(settings.login_window, settings.max_tracked_keys),
      by_address_(settings.login_window, settings.max_tracked_keys),
      offences_(2 * settings.ban_time_max, settings.max_tracked_keys),
      connects_(settings.flapping_window, settings.max_tracked_keys) {}

std::string login_guard::address_key(std::string_view peer_address) {
  auto bytes = base::parse_address(peer_address);
  if (!bytes) {
    return std::string(peer_address);
  }
  char text[INET6_ADDRSTRLEN] = {};
  if (base::is_ipv4(*bytes)) {
    inet_ntop(AF_INET, bytes->data() + 12, text, sizeof text);
    return text;
  }
  const auto network = base::masked(*bytes, 64);
  inet_ntop(AF_INET6, network.data(), text, sizeof text);
  return std::string(text) + "/64";
}

bool login_guard::allowlisted(std::string_view peer_address) const {
  return settings_.allowlist.contains(peer_address);
}

login_guard::hold login_guard::before_check(const std::optional<std::string>& username,
                                            std::string_view peer_address) const {
  if (settings_.login_failures == 0 || allowlisted(peer_address)) {
    return {};
  }
  const auto now = clock_.now();
  std::uint32_t failures = 0;
  {
    std::lock_guard lock(mutex_);
    failures = by_address_.count(address_key(peer_address), now);
    if (username) {
      failures = std::max(failures, by_username_.count(*username, now));
    }
  }
  if (failures < settings_.login_failures) {
    return {};
  }
  // Doubling per failure past the threshold; the shift is bounded so it cannot overflow.
  const auto doublings = std::min<std::uint32_t>(failures - settings_.login_failures, 20);
  const auto delay = std::min(settings_.login_delay * (std::int64_t{1} << doublings), settings_.login_delay_max);
  return {delay, failures};
}

std::optional<login_guard::address_ban> login_guard::failed(const std::optional<std::string>& username,
                                                             std::string_view peer_address) {
  const auto now = clock_.now();
  std::lock_guard lock(mutex_);
  if (username) {
    by_username_.add(*username, now);
  }
  if (allowlisted(peer_address)) {
    return std::nullopt;
  }
  std::string key = address_key(peer_address);
  const auto failures = by_address_.add(key, now);
  if (settings_.ban_after_failures == 0 || failures < settings_.ban_after_failures) {
    return std::nullopt;
  }
  by_address_.reset(key); // after the ban, it takes as many failures again to earn the next one
  const auto offence = offences_.add(key, now);
  const auto doublings = std::min<std::uint32_t>(offence - 1, 30);
  const auto duration = std::min(settings_.ban_time * (std::int64_t{1} << doublings), settings_.ban_time_max);
  return address_ban{std::move(key), duration, failures, offence};
}

std::size_t login_guard::tracked_client_ids() const {
  std::lock_guard lock(mutex_);
  return connects_.size();
}

void login_guard::disconnected(const std::string& client_id) {
  if (settings_.flapping_connects == 0) {
    return;
  }
  std::lock_guard lock(mutex_);
  connects_.add(client_id, clock_.now());
}

std::optional<std::chrono::seconds> login_guard::connected(const std::string& client_id) {
  if (settings_.flapping_connects == 0) {
    return std::nullopt;
  }
  std::lock_guard lock(mutex_);
  if (connects_.count(client_id, clock_.now()) < settings_.flapping_connects) {
    return std::nullopt;
  }
  connects_.reset(client_id);
  return settings_.flapping_ban_time;
}

} // namespace firehook::security

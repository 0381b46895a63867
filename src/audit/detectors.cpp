#include "audit/detectors.hpp"

#include <algorithm>

namespace firehook::audit {

bool detectors::count(counter& c, const std::string& key, std::uint32_t threshold,
                      std::chrono::system_clock::time_point t) {
  if (threshold == 0) {
    return false; // detector off
  }
  auto it = c.keys.find(key);
  if (it == c.keys.end()) {
    if (c.keys.size() >= s_.max_tracked) {
      std::erase_if(c.keys, [&](const auto& kv) { return t - kv.second.started >= s_.window; });
      if (c.keys.size() >= s_.max_tracked) {
        return false; // untracked; full_reported is for the operator (below)
      }
    }
    it = c.keys.emplace(key, window_count{t, 0, false}).first;
  }
  window_count& w = it->second;
  if (t - w.started >= s_.window) {
    w = window_count{t, 0, false};
  }
  ++w.count;
  if (w.count >= threshold && !w.alerted) {
    w.alerted = true;
    return true;
  }
  return false;
}

void detectors::raise(const events::event& about, std::string_view detector, std::string reason, std::uint64_t n) {
  events::event a;
  a.type = events::event_type::alert;
  a.time = about.time;
  a.listener = about.listener;
  a.peer = about.peer;
  a.client_id = about.client_id;
  a.method = about.method;
  a.identity = about.identity;
  a.username = about.username;
  a.subject = std::string(detector);
  a.reason = std::move(reason);
  a.count = n;
  out_.emit(std::move(a));
}

void detectors::consume(const events::event& e) {
  const auto window = std::to_string(s_.window.count()) + " s";
  switch (e.type) {
  case events::event_type::auth_denied:
    if (!e.peer.empty() && count(by_address_, e.peer, s_.auth_failures, e.time)) {
      raise(e, "auth_failures", std::to_string(s_.auth_failures) + " refused CONNECTs from " + e.peer + " within " + window,
            s_.auth_failures);
    }
    if (!e.username.empty() && count(by_username_, e.username, s_.auth_failures, e.time)) {
      raise(e, "auth_failures",
            std::to_string(s_.auth_failures) + " refused CONNECTs for user name \"" + e.username + "\" within " + window,
            s_.auth_failures);
    }
    if (e.subject == "limits.duplicate") {
      refused_duplicate(e);
    }
    break;
  case events::event_type::publish_refused:
  case events::event_type::subscribe_refused:
  case events::event_type::will_refused:
    if (!e.identity.empty() && count(probing_, e.method + ":" + e.identity, s_.probing, e.time)) {
      raise(e, "probing",
            std::to_string(s_.probing) + " refused PUBLISH/SUBSCRIBE of identity \"" + e.identity + "\" within " + window,
            s_.probing);
    }
    break;
  case events::event_type::limit_reached:
    if (e.subject == "limits.publish_rate" || e.subject == "limits.subscribe_rate") {
      const bool anonymous = e.identity.empty() || e.method == "anonymous";
      const std::string key = anonymous ? "client id:" + e.client_id : e.method + ":" + e.identity;
      if (count(rate_limited_, key, s_.rate_limited, e.time)) {
        raise(e, "rate_limited",
              (anonymous ? "client id \"" + e.client_id : "identity \"" + e.identity) +
                  "\" went over its publish or subscribe rate " + std::to_string(s_.rate_limited) + " times within " +
                  window,
              s_.rate_limited);
      }
    }
    break;
  case events::event_type::auth_allowed:
    shared(e);
    hopping(e);
    break;
  case events::event_type::client_disconnected:
    // Counted when a connection ends, not when it starts, so that a fleet of connected devices
    // costs this detector nothing.
    if (!e.client_id.empty() && count(flapping_, e.client_id, s_.flapping, e.time)) {
      raise(e, "client_id_flapping",
            "client id \"" + e.client_id + "\" connected and lost its connection " + std::to_string(s_.flapping) +
                " times within " + window,
            s_.flapping);
    }
    shared(e);
    break;
  default:
    break;
  }
  // Past the memory bound: said once per detector, so that a flood of keys is not silent.
  for (auto* c : {&by_address_, &by_username_, &probing_, &flapping_, &rate_limited_}) {
    if (!c->full_reported && c->keys.size() >= s_.max_tracked) {
      c->full_reported = true;
      raise(events::event{}, "detector_full",
            "a detector tracks " + std::to_string(s_.max_tracked) + " keys (alerts.max_tracked); new ones are not "
            "tracked until older windows pass", s_.max_tracked);
    }
  }
}

void detectors::shared(const events::event& e) {
  if (!s_.shared_credential || e.identity.empty() || e.method == "anonymous" || e.peer.empty()) {
    return;
  }
  const std::string who = e.method + ":" + e.identity;
  if (e.type == events::event_type::client_disconnected) {
    const auto it = live_.find(who);
    if (it == live_.end()) {
      return;
    }
    if (auto at = it->second.find(e.peer); at != it->second.end() && --at->second == 0) {
      it->second.erase(at);
    }
    if (it->second.empty()) {
      live_.erase(it);
    }
    return;
  }
  if (live_.size() >= s_.max_tracked && !live_.contains(who)) {
    return;
  }
  auto& places = live_[who];
  ++places[e.peer];
  if (places.size() >= 2 && !suspects_.contains(who) && suspects_.size() < s_.max_tracked) {
    suspects_.emplace(who, e);
  }
}

void detectors::refused_duplicate(const events::event& e) {
  if (!s_.shared_credential || e.identity.empty()) {
    return;
  }
  auto& last = shared_alerted_[e.method + ":" + e.identity];
  if (last != std::chrono::system_clock::time_point{} && e.time - last < s_.window) {
    return;
  }
  last = e.time;
  raise(e, "shared_credential",
        "identity \"" + e.identity + "\" (" + e.method + ") tried to connect from " + e.peer +
            " while it was connected; limits.duplicate = \"refuse_new\" refused it",
        2);
}

void detectors::hopping(const events::event& e) {
  if (s_.address_changes == 0 || e.identity.empty() || e.method == "anonymous" || e.peer.empty()) {
    return;
  }
  const std::string who = e.method + ":" + e.identity;
  auto it = hopping_.find(who);
  if (it == hopping_.end()) {
    if (hopping_.size() >= s_.max_tracked) {
      std::erase_if(hopping_, [&](const auto& kv) { return e.time - kv.second.started >= s_.window; });
      if (hopping_.size() >= s_.max_tracked) {
        if (!hopping_full_reported_) {
          hopping_full_reported_ = true;
          raise(events::event{}, "detector_full",
                "the address_hopping detector tracks " + std::to_string(s_.max_tracked) +
                    " identities (alerts.max_tracked); new ones are not tracked until older windows pass",
                s_.max_tracked);
        }
        return;
      }
    }
    it = hopping_.emplace(who, address_window{e.time, {}, false}).first;
  }
  address_window& w = it->second;
  if (e.time - w.started >= s_.window) {
    w = address_window{e.time, {}, false};
  }
  if (std::find(w.addresses.begin(), w.addresses.end(), e.peer) == w.addresses.end() &&
      w.addresses.size() < s_.address_changes) {
    w.addresses.push_back(e.peer);
  }
  if (w.addresses.size() >= s_.address_changes && !w.alerted) {
    w.alerted = true;
    std::string where;
    for (const auto& a : w.addresses) {
      where += (where.empty() ? "" : ", ") + a;
    }
    raise(e, "address_hopping",
          "identity \"" + e.identity + "\" (" + e.method + ") connected from " + std::to_string(w.addresses.size()) +
              " addresses within " + std::to_string(s_.window.count()) + " s: " + where,
          w.addresses.size());
  }
}

void detectors::tick(std::chrono::steady_clock::time_point) {
  constexpr auto grace = std::chrono::seconds(2);
  const auto now = std::chrono::system_clock::now();
  for (auto it = suspects_.begin(); it != suspects_.end();) {
    const events::event& e = it->second;
    if (now - e.time < grace) {
      ++it;
      continue;
    }
    const auto places = live_.find(it->first);
    auto& last = shared_alerted_[it->first];
    const bool recently = last != std::chrono::system_clock::time_point{} && now - last < s_.window;
    if (places != live_.end() && places->second.size() >= 2 && !recently) {
      last = now;
      std::string where;
      for (const auto& [address, n] : places->second) {
        where += (where.empty() ? "" : ", ") + address;
      }
      raise(e, "shared_credential",
            "identity \"" + e.identity + "\" (" + e.method + ") is connected from " +
                std::to_string(places->second.size()) + " addresses at once: " + where,
            places->second.size());
    }
    it = suspects_.erase(it);
  }
  if (shared_alerted_.size() > s_.max_tracked) {
    std::erase_if(shared_alerted_, [&](const auto& kv) { return now - kv.second >= s_.window; });
  }
}

} // namespace firehook::audit

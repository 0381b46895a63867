#include "audit/baselines.hpp"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <utility>
#include <vector>

namespace firehook::audit {

namespace {

std::string per_second(double rate) {
  const double tenths = std::round(rate * 10) / 10;
  std::string text = std::to_string(tenths);
  text.erase(text.find('.') + 2); // one decimal
  return text + "/s";
}

events::event alert(std::string_view detector, std::string reason, std::uint64_t count) {
  events::event a;
  a.type = events::event_type::alert;
  a.time = std::chrono::system_clock::now();
  a.subject = std::string(detector);
  a.reason = std::move(reason);
  a.count = count;
  return a;
}

} // namespace

baselines::learned baselines::of(const std::string& key) const {
  const auto it = known_.find(key);
  if (it == known_.end()) {
    return {};
  }
  return {it->second.published, it->second.received, it->second.samples};
}

void baselines::tick(time_point now) {
  if (s_.factor > 0) {
    for (const events::rate_sample& s : in_.take()) {
      judge(s, now);
    }
    report_dropped(now);
  }
  if (s_.fleet_ceiling > 0) {
    fleet(now);
  }
}

void baselines::judge(const events::rate_sample& s, time_point now) {
  const bool anonymous = s.identity.empty() || s.method == "anonymous";
  const std::string key = anonymous ? "client id:" + s.client_id : s.method + ":" + s.identity;
  baseline* b = find_or_add(key, now);
  if (b == nullptr) {
    return;
  }
  const double seconds = static_cast<double>(std::max<std::int64_t>(s.interval.count(), 1)) / 1000.0;
  const double published = s.published / seconds;
  const double received = s.received / seconds;
  b->last_seen = now;
  if (b->samples >= s_.warmup) {
    const bool over_published = over(published, b->published);
    const bool over_received = over(received, b->received);
    if ((over_published || over_received) && (b->alerted == time_point{} || now - b->alerted >= s_.window)) {
      b->alerted = now;
      const double rate = over_published ? published : received;
      const double usual = over_published ? b->published : b->received;
      events::event a =
          alert("rate_baseline",
                (anonymous ? "client id \"" + s.client_id : "identity \"" + s.identity) + "\" " +
                    (over_published ? "published " : "received ") + per_second(rate) + " over " +
                    std::to_string(std::lround(seconds)) + " s, more than " + std::to_string(s_.factor) +
                    " times its learned rate of " + per_second(usual),
                static_cast<std::uint64_t>(std::llround(rate)));
      a.client_id = s.client_id;
      a.method = s.method;
      a.identity = s.identity;
      out_.emit(std::move(a));
    }
  }
  learn(b->published, published, b->samples);
  learn(b->received, received, b->samples);
  if (b->samples < s_.warmup) {
    ++b->samples;
  }
}

bool baselines::over(double sample, float usual) const {
  return sample >= s_.min_rate && sample > static_cast<double>(s_.factor) * usual;
}

void baselines::learn(float& rate, double sample, std::uint32_t samples) const {
  if (samples < s_.warmup) {
    rate += static_cast<float>((sample - rate) / (samples + 1)); // the mean of the warm-up's samples
    return;
  }
  if (over(sample, rate)) {
    // A flood is learned slowly: at most twice what is usual (or the floor) per sample.
    sample = std::min(sample, std::max(2.0 * rate, static_cast<double>(s_.min_rate)));
  }
  rate += static_cast<float>(alpha * (sample - rate));
}

baselines::baseline* baselines::find_or_add(const std::string& key, time_point now) {
  if (const auto it = known_.find(key); it != known_.end()) {
    return &it->second;
  }
  if (known_.size() >= s_.max_tracked) {
    make_room();
    if (!full_reported_) {
      full_reported_ = true;
      out_.emit(
          alert("detector_full",
                "the rate baseline detector tracks " + std::to_string(s_.max_tracked) +
                    " identities (alerts.max_tracked); the least recently seen are forgotten to make room",
                s_.max_tracked));
    }
    if (known_.size() >= s_.max_tracked) {
      return nullptr; // max_tracked below 10
    }
  }
  baseline& b = known_[key];
  b.last_seen = now;
  return &b;
}

void baselines::make_room() {
  // The least recently seen tenth (ties broken arbitrarily): one pass per max_tracked / 10 new
  // identities, so each costs O(1) on average.
  using entry = std::pair<time_point, decltype(known_)::iterator>;
  std::vector<entry> by_age;
  by_age.reserve(known_.size());
  for (auto it = known_.begin(); it != known_.end(); ++it) {
    by_age.emplace_back(it->second.last_seen, it);
  }
  const auto cut = by_age.begin() + static_cast<std::ptrdiff_t>(by_age.size() / 10);
  std::nth_element(by_age.begin(), cut, by_age.end(),
                   [](const entry& a, const entry& b) { return a.first < b.first; });
  for (auto it = by_age.begin(); it != cut; ++it) {
    known_.erase(it->second);
  }
}

void baselines::report_dropped(time_point now) {
  const std::uint64_t dropped = in_.dropped();
  if (dropped == dropped_reported_ ||
      (dropped_alerted_ != time_point{} && now - dropped_alerted_ < s_.window)) {
    return;
  }
  out_.emit(alert(
      "detector_full",
      std::to_string(dropped - dropped_reported_) +
          " rate samples were dropped: more than alerts.max_tracked waited for the rate baseline detector",
      dropped - dropped_reported_));
  dropped_reported_ = dropped;
  dropped_alerted_ = now;
}

void baselines::fleet(time_point now) {
  const std::int64_t received = stats_.get(events::stat::messages_received);
  if (fleet_since_ == time_point{}) {
    fleet_since_ = now;
    fleet_received_ = received;
    return;
  }
  if (now - fleet_since_ < s_.interval) {
    return;
  }
  const double seconds = std::chrono::duration<double>(now - fleet_since_).count();
  const double rate = static_cast<double>(received - fleet_received_) / seconds;
  fleet_since_ = now;
  fleet_received_ = received;
  if (rate <= s_.fleet_ceiling || (fleet_alerted_ != time_point{} && now - fleet_alerted_ < s_.window)) {
    return;
  }
  fleet_alerted_ = now;
  out_.emit(alert("fleet_ceiling",
                  "clients published " + per_second(rate) + " in all over " +
                      std::to_string(std::lround(seconds)) +
                      " s, above alerts.fleet_publish_ceiling = " + std::to_string(s_.fleet_ceiling) + "/s",
                  static_cast<std::uint64_t>(std::llround(rate))));
}

} // namespace firehook::audit

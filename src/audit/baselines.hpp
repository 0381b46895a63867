#pragma once
// The rate detectors (docs/audit.md#rate-baselines): a client that publishes or receives far more
// than its identity usually does, and a broker that receives more than the fleet ever should.
//
//   rate_baseline  one identity's publish or receive rate in an interval (a sample: shards count per
//                  session and hand over one sample per session with traffic every
//                  `interval`, events/rate_samples.hpp) is above `factor` times the rate learned for
//                  that identity and above `min_rate` messages/s; judged once the identity has
//                  `warmup` samples; at most one alert per identity per `window`
//   fleet_ceiling  the messages all clients published in an interval (the messages_received
//                  statistic), per second, are above `fleet_ceiling`; at most once per `window`
//
// The learned rate is an exponentially weighted moving average per identity ("method:name";
// anonymous clients: "client id:<id>") of its samples' rates, one for publishing and one for
// receiving: during the warm-up the plain mean of the samples so far, then each sample weighs
// `alpha` (0.1: the last ~10 samples make up two thirds of it). A sample over the threshold is
// folded in as at most twice the learned rate (or `min_rate`, when more), so a flood becomes the
// new normal only gradually: a sustained tenfold rate takes about 25 samples, and alerts again
// each window meanwhile. Intervals without traffic are not sampled: the baseline is the rate of
// an identity while it sends or receives. An identity connected several times at once is sampled
// per connection (its baseline is that of one connection).
//
// Memory: at most `max_tracked` identities, each a hash-table entry with its key: measured 142
// bytes with 19-character keys ("certificate:m000001"), 158 with 25: 100,000 take 14 to 16 MB.
// When a new identity does not fit, the least recently seen tenth is forgotten (their warm-up
// starts again when they come back), and a detector_full alert says so once. Samples the detector
// did not take in time are dropped by the hand-over (bounded too) and a detector_full alert says
// so, at most once per window.
//
// Threads: the hub's thread only (tick); samples come in through `in` (thread safe), the
// messages_received statistic is read from `stats` (atomic), alerts go out through `out` (the
// hub's shared, thread-safe emitter).

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "events/hub.hpp"
#include "events/rate_samples.hpp"
#include "events/statistics.hpp"

namespace firehook::audit {

struct baseline_settings {
  std::chrono::seconds interval{10};
  std::uint32_t warmup = 30;
  std::uint32_t factor = 10;       // 0: rate_baseline off
  std::uint32_t min_rate = 10;     // messages/s
  std::uint32_t fleet_ceiling = 0; // messages/s; 0: fleet_ceiling off
  std::chrono::seconds window{60};
  std::size_t max_tracked = 100'000;
};

class baselines final : public events::sink {
public:
  using time_point = std::chrono::steady_clock::time_point;

  // `in`, `stats` and `out` must outlive the sink.
  baselines(baseline_settings s, events::rate_samples& in, const events::statistics& stats,
            events::emitter& out)
      : s_(s), in_(in), stats_(stats), out_(out) {}

  void consume(const events::event&) override {}
  // Takes the samples that arrived and judges them; every `interval`, the fleet's rate.
  void tick(time_point now) override;
  events::level min_level() const override { return events::level::error; } // wants no events

  // For tests and docs/audit.md.
  std::size_t tracked() const { return known_.size(); }
  struct learned {
    double published = 0; // messages/s
    double received = 0;
    std::uint32_t samples = 0;
  };
  // What is learned of identity key `key` ("method:name" or "client id:<id>"); zero when unknown.
  learned of(const std::string& key) const;

  static constexpr double alpha = 0.1;

private:
  struct baseline {
    float published = 0; // learned rates, messages/s
    float received = 0;
    std::uint32_t samples = 0; // up to warmup, then it stays there
    time_point last_seen{};
    time_point alerted{}; // {}: never
  };

  void judge(const events::rate_sample& s, time_point now);
  baseline* find_or_add(const std::string& key, time_point now);
  void make_room();
  void learn(float& rate, double sample, std::uint32_t samples) const;
  bool over(double sample, float usual) const;
  void fleet(time_point now);
  void report_dropped(time_point now);

  const baseline_settings s_;
  events::rate_samples& in_;
  const events::statistics& stats_;
  events::emitter& out_;
  std::unordered_map<std::string, baseline> known_;
  bool full_reported_ = false;
  std::uint64_t dropped_reported_ = 0;
  time_point dropped_alerted_{};
  // The fleet: messages_received at the start of the current interval.
  time_point fleet_since_{};
  std::int64_t fleet_received_ = 0;
  time_point fleet_alerted_{};
};

} // namespace firehook::audit

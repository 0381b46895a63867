#pragma once
// How fast one client may publish and subscribe: token buckets (docs/hardening.md, "Rates per
// client"). A bucket holds at most `burst` tokens and gains `rate` a second; a PUBLISH takes one
// message token and its size in byte tokens, a SUBSCRIBE or UNSUBSCRIBE one subscribe token. A
// packet is let through when its buckets hold a token and the byte bucket is above zero (it may
// then go below, so a message bigger than the byte burst still passes, alone); otherwise it waits
// until they do.
// The broker holds such a packet and stops reading from the client meanwhile, so its own inflight
// window and TCP slow it and nothing it sent is lost.
//
// A client is "over its rate" from the first packet that had to wait until its buckets are back
// to half full; over_since() says since when, for the disconnect after limits.rate_limit_timeout.
//
// Size: 48 bytes per client (the limits are shared). Thread safety: none; one shard's.

#include <cstdint>
#include <memory>
#include <optional>

#include "base/clock.hpp"
#include "config/config.hpp"

namespace firehook::security {

using rate_limits = config::rate_settings;

class client_rate {
public:
  enum class kind : std::uint8_t { publish, subscribe };

  client_rate() = default; // limits nothing
  // Full buckets at `now`. Null `limits`: nothing is limited.
  client_rate(std::shared_ptr<const rate_limits> limits, base::time_point now);

  // A packet of kind `k` (`bytes` long: the PUBLISH's payload and topic) may go now: nullopt, and
  // its tokens are taken. Otherwise the time from which it may, and nothing is taken.
  std::optional<base::time_point> admit(kind k, std::uint64_t bytes, base::time_point now);

  // Since when the client has been over its rate; nullopt when it is not.
  std::optional<base::time_point> over_since() const {
    return over_ == not_over ? std::nullopt : std::optional(over_);
  }
  const rate_limits* limits() const { return limits_.get(); }

  // From `now` on, hold the client to `limits` (a reload changed its rates): the buckets keep
  // their levels, cut to the new bursts. From or to no limits: full buckets.
  void set_limits(std::shared_ptr<const rate_limits> limits, base::time_point now);

private:
  void refill(base::time_point now);

  std::shared_ptr<const rate_limits> limits_;
  // Levels in tokens; float is precise enough for buckets of up to 2^24 tokens and keeps a
  // connection's share small.
  float messages_ = 0;
  float bytes_ = 0;
  float subscribes_ = 0;
  static constexpr base::time_point not_over = base::time_point::min();
  base::time_point last_{};
  base::time_point over_ = not_over;
};

} // namespace firehook::security

#include "security/rate_limit.hpp"

#include <algorithm>
#include <chrono>

namespace firehook::security {

namespace {

float refilled(float level, std::uint32_t rate, std::uint32_t burst, double seconds) {
  if (rate == 0) {
    return level;
  }
  return static_cast<float>(std::min<double>(static_cast<double>(burst), level + static_cast<double>(rate) * seconds));
}

// When a bucket at `level` (below `needed`) holds more than `needed`.
base::time_point refilled_at(float level, float needed, std::uint32_t rate, base::time_point now) {
  // A little past the exact time, so the retry finds the bucket past `needed`, not at it.
  const double seconds = (static_cast<double>(needed) - level) / static_cast<double>(rate) + 1e-3;
  return now + std::chrono::duration_cast<base::duration>(std::chrono::duration<double>(seconds));
}

bool half_full(float level, std::uint32_t rate, std::uint32_t burst) {
  return rate == 0 || level >= static_cast<float>(burst) / 2;
}

} // namespace

client_rate::client_rate(std::shared_ptr<const rate_limits> limits, base::time_point now)
    : limits_(std::move(limits)), last_(now) {
  if (limits_) {
    messages_ = static_cast<float>(limits_->publish_burst);
    bytes_ = static_cast<float>(limits_->publish_bytes_burst);
    subscribes_ = static_cast<float>(limits_->subscribe_burst);
  }
}

void client_rate::set_limits(std::shared_ptr<const rate_limits> limits, base::time_point now) {
  if (limits == limits_) {
    return;
  }
  if (!limits_ || !limits) {
    *this = client_rate(std::move(limits), now);
    return;
  }
  refill(now);
  limits_ = std::move(limits);
  messages_ = std::min(messages_, static_cast<float>(limits_->publish_burst));
  bytes_ = std::min(bytes_, static_cast<float>(limits_->publish_bytes_burst));
  subscribes_ = std::min(subscribes_, static_cast<float>(limits_->subscribe_burst));
}

void client_rate::refill(base::time_point now) {
  if (now <= last_) {
    return;
  }
  const double seconds = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  const rate_limits& l = *limits_;
  messages_ = refilled(messages_, l.publish_rate, l.publish_burst, seconds);
  bytes_ = refilled(bytes_, l.publish_bytes_rate, l.publish_bytes_burst, seconds);
  subscribes_ = refilled(subscribes_, l.subscribe_rate, l.subscribe_burst, seconds);
}

std::optional<base::time_point> client_rate::admit(kind k, std::uint64_t bytes, base::time_point now) {
  if (!limits_) {
    return std::nullopt;
  }
  const rate_limits& l = *limits_;
  refill(now);
  std::optional<base::time_point> wait;
  const auto later = [&](base::time_point t) { wait = wait ? std::max(*wait, t) : t; };
  if (k == kind::publish) {
    if (l.publish_rate != 0 && messages_ < 1) {
      later(refilled_at(messages_, 1, l.publish_rate, now));
    }
    if (l.publish_bytes_rate != 0 && bytes_ <= 0) {
      later(refilled_at(bytes_, 0, l.publish_bytes_rate, now));
    }
  } else if (l.subscribe_rate != 0 && subscribes_ < 1) {
    later(refilled_at(subscribes_, 1, l.subscribe_rate, now));
  }
  if (wait) {
    if (over_ == not_over) {
      over_ = now;
    }
    return wait;
  }
  if (k == kind::publish) {
    if (l.publish_rate != 0) {
      messages_ -= 1;
    }
    if (l.publish_bytes_rate != 0) {
      bytes_ -= static_cast<float>(bytes);
    }
  } else if (l.subscribe_rate != 0) {
    subscribes_ -= 1;
  }
  if (over_ != not_over && half_full(messages_, l.publish_rate, l.publish_burst) &&
      half_full(bytes_, l.publish_bytes_rate, l.publish_bytes_burst) &&
      half_full(subscribes_, l.subscribe_rate, l.subscribe_burst)) {
    over_ = not_over;
  }
  return std::nullopt;
}

} // namespace firehook::security

#include "stats.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace firehook::bench {

std::size_t latency_histogram::index_of(std::uint64_t v) {
  if (v < linear) {
    return static_cast<std::size_t>(v);
  }
  const unsigned exponent = static_cast<unsigned>(std::bit_width(v)) - 1; // >= 6
  const std::uint64_t sub = (v >> (exponent - sub_bits)) & ((std::uint64_t{1} << sub_bits) - 1);
  return linear + (exponent - 6) * (std::size_t{1} << sub_bits) + static_cast<std::size_t>(sub);
}

std::uint64_t latency_histogram::upper_of(std::size_t index) {
  if (index < linear) {
    return index;
  }
  const std::size_t rel = index - linear;
  const unsigned exponent = static_cast<unsigned>(rel >> sub_bits) + 6;
  const std::uint64_t sub = rel & ((std::size_t{1} << sub_bits) - 1);
  const std::uint64_t step = std::uint64_t{1} << (exponent - sub_bits);
  return (std::uint64_t{1} << exponent) + (sub + 1) * step - 1;
}

void latency_histogram::record(std::int64_t ns) {
  // A negative latency can only come from a clock read before the stamp was written on another
  // thread; it is counted as zero rather than dropped, so counts stay exact.
  const std::uint64_t v = ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
  ++counts_[index_of(v)];
  ++count_;
  sum_ += v;
  max_ = std::max(max_, static_cast<std::int64_t>(v));
}

void latency_histogram::merge(const latency_histogram& other) {
  for (std::size_t i = 0; i < buckets; ++i) {
    counts_[i] += other.counts_[i];
  }
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

std::int64_t latency_histogram::quantile(double q) const {
  if (count_ == 0) {
    return 0;
  }
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  const std::uint64_t target = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets; ++i) {
    seen += counts_[i];
    if (seen >= target) {
      return std::min(static_cast<std::int64_t>(upper_of(i)), max_);
    }
  }
  return max_;
}

sequence_tracker::verdict sequence_tracker::observe(std::uint64_t sequence) {
  if (sequence == next_) {
    ++next_;
    ++unique_;
    return verdict::in_order;
  }
  if (sequence > next_) {
    for (std::uint64_t s = next_; s < sequence; ++s) {
      if (missing_.size() < max_remembered) {
        missing_.insert(s);
      } else {
        forgotten_ += sequence - s;
        break;
      }
    }
    next_ = sequence + 1;
    ++unique_;
    return verdict::gap;
  }
  if (missing_.erase(sequence) == 1) {
    ++unique_;
    ++out_of_order_;
    return verdict::out_of_order;
  }
  ++duplicates_;
  return verdict::duplicate;
}

} // namespace firehook::bench

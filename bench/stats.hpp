#pragma once
// Counting what a run delivered: latency histograms and per-publisher sequence checking.
// Plain values, no locks: each one is owned by one generator thread and merged at the end.

#include <array>
#include <cstddef>
#include <cstdint>
#include <unordered_set>

namespace firehook::bench {

// Log-linear histogram of nanosecond values: exact below 64 ns, then 32 buckets per power of two,
// so a reported percentile is within about 3% of the true one. Fixed size (15 KB), no allocation
// when recording.
class latency_histogram {
public:
  void record(std::int64_t ns);
  void merge(const latency_histogram& other);

  std::uint64_t count() const { return count_; }
  std::int64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_); }
  // The value at quantile q (0..1), as the upper end of its bucket; 0 when empty.
  std::int64_t quantile(double q) const;

private:
  static constexpr unsigned sub_bits = 5;
  static constexpr std::size_t linear = 64;
  static constexpr std::size_t buckets = linear + (64 - 6) * (std::size_t{1} << sub_bits);
  static std::size_t index_of(std::uint64_t v);
  static std::uint64_t upper_of(std::size_t index);

  std::array<std::uint64_t, buckets> counts_{};
  std::uint64_t count_ = 0;
  std::int64_t max_ = 0;
  std::uint64_t sum_ = 0;
};

// What one subscriber saw of one publisher's numbered messages. MQTT keeps the order of the
// messages of one publisher on one topic at one QoS [MQTT-4.6.0-5], so anything but the next
// number is either a gap (lost, or late), a late arrival filling a gap (out of order), or a
// number seen before (duplicate).
class sequence_tracker {
public:
  enum class verdict : std::uint8_t { in_order, gap, out_of_order, duplicate };
  verdict observe(std::uint64_t sequence);

  std::uint64_t unique() const { return unique_; }
  std::uint64_t next() const { return next_; }
  std::uint64_t duplicates() const { return duplicates_; }
  std::uint64_t out_of_order() const { return out_of_order_; }
  // Numbers below next() never received; exact unless more than `max_remembered` gaps were open.
  std::uint64_t missing_below_next() const { return missing_.size() + forgotten_; }
  bool remembers_all() const { return forgotten_ == 0; }
  // Gaps only counted, not remembered (beyond `max_remembered`): which numbers they were is unknown.
  std::uint64_t forgotten() const { return forgotten_; }
  // Whether `sequence` (below next()) is a known gap.
  bool is_missing(std::uint64_t sequence) const { return missing_.contains(sequence); }
  template <typename F>
  void for_each_missing(F&& f) const {
    for (const std::uint64_t s : missing_) {
      f(s);
    }
  }

private:
  // Bounds the memory a very lossy QoS 0 run can use; beyond it, gaps are only counted.
  static constexpr std::size_t max_remembered = 1'000'000;

  std::uint64_t next_ = 0;
  std::uint64_t unique_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t out_of_order_ = 0;
  std::uint64_t forgotten_ = 0;
  std::unordered_set<std::uint64_t> missing_;
};

// What subscribers received of publishers' numbered messages, summed over (subscriber, publisher)
// pairs: the delivery figures of a report, and the one that decides its exit status, lost_acked.
struct delivery_count {
  std::uint64_t delivered = 0;  // unique messages
  std::uint64_t lost = 0;       // sent and never received: gaps, and the tail after the last one seen
  std::uint64_t lost_acked = 0; // of the lost, those the broker acknowledged (QoS 1/2)
  std::uint64_t duplicates = 0;
  std::uint64_t out_of_order = 0;

  // Adds what `t` saw of a publisher that sent messages 0 .. sent-1. `acknowledged(seq)` says whether
  // the broker acknowledged message seq (PUBACK, or PUBCOMP, without error). At QoS 1/2 a gap the
  // tracker only counted (see forgotten()) is taken as acknowledged: the worst case.
  template <typename Acknowledged>
  void add(const sequence_tracker& t, std::uint64_t sent, unsigned qos, Acknowledged&& acknowledged) {
    delivered += t.unique();
    duplicates += t.duplicates();
    out_of_order += t.out_of_order();
    const std::uint64_t tail = sent > t.next() ? sent - t.next() : 0;
    lost += t.missing_below_next() + tail;
    t.for_each_missing([&](std::uint64_t seq) { lost_acked += acknowledged(seq) ? 1 : 0; });
    for (std::uint64_t seq = t.next(); seq < sent; ++seq) {
      lost_acked += acknowledged(seq) ? 1 : 0;
    }
    if (qos > 0) {
      lost_acked += t.forgotten();
    }
  }
};

} // namespace firehook::bench

// The durable store's two costs that matter to the broker (docs/store.md):
//   bm_group_commit: small batches (a queued message put, the previous one erased: a QoS 1 flow)
//     from 1, 8 or 64 submitters, each waiting for its completion before the next, as a shard
//     waiting for the disk would; sync or interval durability. Prints batches/s, commits/s,
//     batches per commit and the mean time from submit to completion.
//   bm_load: open() and load() of 100,000 retained messages and 10,000 sessions with 5
//     messages each.
// Files in $TMPDIR: put it on the disk the broker's state_dir will be on. A timing never fails a
// build.

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/temp_dir.hpp"
#include "store/store.hpp"

namespace firehook::store {
namespace {

using clock_type = std::chrono::steady_clock;

options bench_options(std::int64_t interval_ms) {
  options o;
  if (interval_ms > 0) {
    o.mode = durability::interval;
    o.interval = std::chrono::milliseconds(interval_ms);
  }
  return o;
}

std::unique_ptr<store> open_or_die(const std::filesystem::path& dir, const options& o,
                                   benchmark::State& state) {
  open_result r = store::open(dir, o);
  if (!r.opened) {
    state.SkipWithError(r.message.c_str());
  }
  return std::move(r.opened);
}

// One submitter: submit, wait for the completion, repeat until told to stop.
struct submitter {
  std::mutex mutex;
  std::condition_variable done;
  bool waiting = false;
  std::uint64_t batches = 0;
  clock_type::duration latency{};
};

void run_submitter(store& s, submitter& me, int index, const std::atomic<bool>& stop) {
  const std::string client = "client-" + std::to_string(index);
  const std::string blob(200, 'm');
  for (std::uint64_t seq = 0; !stop.load(std::memory_order_relaxed); ++seq) {
    batch b;
    b.put_session_message(client, seq, blob);
    if (seq > 0) {
      b.erase_session_message(client, seq - 1);
    }
    const auto start = clock_type::now();
    {
      std::lock_guard lock(me.mutex);
      me.waiting = true;
    }
    if (s.submit(std::move(b), [&me](std::error_code) {
          std::lock_guard lock(me.mutex);
          me.waiting = false;
          me.done.notify_one();
        })) {
      return;
    }
    std::unique_lock lock(me.mutex);
    me.done.wait(lock, [&] { return !me.waiting; });
    me.latency += clock_type::now() - start;
    ++me.batches;
  }
}

void bm_group_commit(benchmark::State& state) {
  const auto submitters = static_cast<int>(state.range(0));
  base::temp_dir dir("firehook-store-bench");
  auto s = open_or_die(dir / "state", bench_options(state.range(1)), state);
  if (!s) {
    return;
  }
  std::vector<submitter> each(static_cast<std::size_t>(submitters));
  double seconds = 0;
  for (auto _ : state) {
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    const auto start = clock_type::now();
    for (int i = 0; i < submitters; ++i) {
      threads.emplace_back([&, i] { run_submitter(*s, each[static_cast<std::size_t>(i)], i, stop); });
    }
    std::this_thread::sleep_for(std::chrono::seconds(3));
    stop = true;
    for (auto& t : threads) {
      t.join();
    }
    seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    state.SetIterationTime(seconds);
  }
  std::uint64_t batches = 0;
  clock_type::duration latency{};
  for (const submitter& one : each) {
    batches += one.batches;
    latency += one.latency;
  }
  const store::counters stats = s->stats();
  state.counters["batches/s"] = static_cast<double>(batches) / seconds;
  state.counters["commits/s"] = static_cast<double>(stats.commits) / seconds;
  state.counters["batch/commit"] =
      static_cast<double>(stats.batches) / static_cast<double>(std::max<std::uint64_t>(stats.commits, 1));
  state.counters["latency_ms"] = std::chrono::duration<double, std::milli>(latency).count() /
                                 static_cast<double>(std::max<std::uint64_t>(batches, 1));
  state.counters["failed"] = static_cast<double>(stats.failed_commits);
}

struct counting_visitor final : record_visitor {
  std::uint64_t records = 0, bytes = 0;
  void retained(std::string_view k, std::string_view v) override { count(k, v); }
  void session(std::string_view k, std::string_view v) override { count(k, v); }
  void session_message(std::string_view k, std::uint64_t, std::string_view v) override { count(k, v); }
  void count(std::string_view k, std::string_view v) {
    ++records;
    bytes += k.size() + v.size();
  }
};

std::uintmax_t folder_bytes(const std::filesystem::path& dir) {
  std::uintmax_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    total += entry.is_regular_file() ? entry.file_size() : 0;
  }
  return total;
}

void bm_load(benchmark::State& state) {
  constexpr int retained = 100'000, sessions = 10'000, messages_per_session = 5;
  base::temp_dir dir("firehook-store-bench");
  const options o = bench_options(0);
  {
    auto s = open_or_die(dir / "state", o, state);
    if (!s) {
      return;
    }
    const std::string retained_blob(100, 'r'), session_blob(200, 's'), message_blob(200, 'm');
    batch b;
    auto flush = [&](bool always) {
      if (always || b.size() >= 2000) {
        s->submit(std::move(b), nullptr);
        b = batch{};
      }
    };
    for (int i = 0; i < retained; ++i) {
      b.put_retained("buildings/" + std::to_string(i / 1000) + "/rooms/" + std::to_string(i % 1000) +
                         "/temperature",
                     retained_blob);
      flush(false);
    }
    for (int i = 0; i < sessions; ++i) {
      const std::string id = "device-" + std::to_string(i);
      b.put_session(id, session_blob);
      for (int m = 0; m < messages_per_session; ++m) {
        b.put_session_message(id, static_cast<std::uint64_t>(m), message_blob);
      }
      flush(false);
    }
    flush(true);
  } // closed: everything committed
  std::uint64_t records = 0;
  double open_ms = 0, load_ms = 0;
  for (auto _ : state) {
    const auto start = clock_type::now();
    auto s = open_or_die(dir / "state", o, state);
    if (!s) {
      return;
    }
    const auto opened = clock_type::now();
    counting_visitor visitor;
    s->load(visitor);
    const auto loaded = clock_type::now();
    s.reset();
    records = visitor.records;
    open_ms += std::chrono::duration<double, std::milli>(opened - start).count();
    load_ms += std::chrono::duration<double, std::milli>(loaded - opened).count();
    state.SetIterationTime(std::chrono::duration<double>(loaded - start).count());
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["records"] = static_cast<double>(records);
  state.counters["open_ms"] = open_ms / n;
  state.counters["load_ms"] = load_ms / n;
  state.counters["file_MB"] = static_cast<double>(folder_bytes(dir / "state")) / 1e6;
}

// Arguments: submitters, interval in ms (0: sync durability).
BENCHMARK(bm_group_commit)
    ->ArgNames({"submitters", "interval_ms"})
    ->ArgsProduct({{1, 8, 64}, {0}})
    ->Args({64, 10})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(bm_load)->Iterations(3)->UseManualTime()->Unit(benchmark::kMillisecond);

} // namespace
} // namespace firehook::store

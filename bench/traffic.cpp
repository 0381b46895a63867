// The message scenarios: fanin (N publishers to one wildcard subscriber), fanout (one publisher to N
// subscribers) and pairs (N publisher/subscriber pairs on distinct topics).
//
// A run: connect and subscribe every subscriber, connect every publisher, publish for --duration
// seconds (or until --count messages), stop, wait up to --drain seconds for what is still in flight,
// then compare what each subscriber received with what each publisher sent and had acknowledged.
//
// pairs --stalled N adds N pairs whose subscribers stop reading their sockets for a while (a client
// that hangs); the report's figures are those of the other pairs, the stalled pairs' come apart.
//
// Closed loop (default): a publisher keeps at most --window of its messages undelivered, counting
// deliveries to all of its subscribers, and pauses when the window is full; a subscriber wakes it.
// The delivered rate is then what the broker sustains, not how fast its buffers fill.
// Open loop (--rate): each publisher sends on a fixed schedule and stamps each message with its
// scheduled time, so latency includes any queueing, the generator's own lateness included.

#include <algorithm>
#include <atomic>
#include <iostream>
#include <mutex>
#include <random>
#include <unordered_set>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "client.hpp"
#include "options.hpp"
#include "report.hpp"
#include "stats.hpp"
#include "workers.hpp"

namespace firehook::bench {
namespace {

namespace asio = boost::asio;

constexpr std::uint64_t no_sequence = ~std::uint64_t{0};
// A publisher stops adding to its output at this size and waits for the write in progress: large
// enough that one system call carries hundreds of messages, small enough to stay in cache.
constexpr std::size_t batch_bytes = 64 * 1024;

// What every client of a run shares with the coordinating thread.
struct run_state {
  std::atomic<unsigned> ready{0};  // subscribers subscribed, publishers connected
  std::atomic<unsigned> failed{0}; // connections that ended on their own
  std::mutex error_mutex;
  std::string first_error; // guarded by error_mutex

  void record_failure(const std::string& who, const std::string& why) {
    failed.fetch_add(1);
    std::lock_guard lock(error_mutex);
    if (first_error.empty()) {
      first_error = who + ": " + why;
    }
  }
};

class publisher final : public client_events {
public:
  publisher(asio::io_context& io, run_state& run, const options& opt, const client_settings& settings,
            std::uint32_t index, std::string topic, unsigned fan, std::uint64_t budget)
      : io_(io), run_(run), index_(index), fan_(fan), budget_(budget), qos_(opt.qos),
        window_(opt.window == 0 ? 1000 : opt.window), client_(io, settings, *this), timer_(io) {
    publish_.qos = static_cast<mqtt::qos>(opt.qos);
    publish_.topic = std::move(topic);
    payload_.assign(opt.payload, std::byte{'x'});
    if (opt.rate > 0) {
      interval_ns_ = static_cast<std::int64_t>(1e9 / opt.rate * static_cast<double>(opt_publishers(opt)));
    }
    if (qos_ > 0) {
      seq_by_packet_id_.assign(65536, no_sequence);
    }
  }

  // Deliveries of this publisher's messages, counted by its subscribers on their threads.
  std::atomic<std::uint64_t> delivered{0};
  // Set by a publisher whose window is full, with the delivery count at which it wants to go on;
  // the subscriber that brings `delivered` to `wake_at` clears `paused` and posts resume(). Waking
  // at half a window, not at the first free slot, keeps writes large: one per message would cost
  // the generator a system call and a wake-up per message.
  std::atomic<bool> paused{false};
  std::atomic<std::uint64_t> wake_at{0};

  asio::io_context& io() { return io_; }
  std::uint32_t index() const { return index_; }
  void start() { client_.start(); }

  // On the publisher's thread.
  void begin(std::int64_t start_ns) {
    if (interval_ns_ > 0) {
      // Publishers are spread over one interval so that the broker sees a steady stream, not bursts.
      start_ns_ = start_ns + interval_ns_ * index_ / std::max<std::int64_t>(1, publisher_count_);
      arm_timer(start_ns_);
    } else {
      fill();
    }
  }
  void stop() {
    stopped_ = true;
    timer_.cancel();
    stopped_flag.store(true);
  }
  void resume() {
    waiting_window_ = false;
    fill();
  }
  void close() { client_.close(false); }
  void set_publisher_count(std::int64_t n) { publisher_count_ = n; }

  // Read by the coordinating thread while the run goes on.
  std::atomic<std::uint64_t> sent_count{0};
  std::atomic<std::uint64_t> inflight_count{0};
  std::atomic<bool> budget_spent{false};
  std::atomic<bool> stopped_flag{false};

  // After the threads have stopped.
  std::uint64_t sent() const { return seq_; }
  std::uint64_t acked() const { return acked_; }
  std::uint64_t rejected() const { return rejected_.size(); }
  std::uint64_t unexpected_acks() const { return unexpected_acks_; }
  const latency_histogram& send_lag() const { return send_lag_; }
  std::uint16_t receive_maximum() const { return client_.receive_maximum(); }
  void settle() {
    for (const std::uint64_t s : seq_by_packet_id_) {
      if (s != no_sequence) {
        unacked_.insert(s);
      }
    }
  }
  // Whether the broker acknowledged message `sequence` (PUBACK or PUBCOMP without error).
  bool acknowledged(std::uint64_t sequence) const {
    return qos_ > 0 && sequence < seq_ && !unacked_.contains(sequence) && !rejected_.contains(sequence);
  }

private:
  static unsigned opt_publishers(const options& opt) {
    switch (opt.scenario) {
    case scenario::fanin:
      return opt.publishers;
    case scenario::pairs:
      return opt.pairs;
    default:
      return 1;
    }
  }

  std::uint64_t inflight_room() const {
    if (qos_ == 0) {
      return ~std::uint64_t{0};
    }
    const std::uint64_t limit = std::min<std::uint64_t>(client_.receive_maximum(), 65535);
    if (inflight_ >= limit || seq_by_packet_id_[next_packet_id_] != no_sequence) {
      return 0;
    }
    return limit - inflight_;
  }

  std::uint64_t window_room() const {
    const std::uint64_t outstanding = seq_ * fan_ - std::min(seq_ * fan_, delivered.load());
    const std::uint64_t limit = window_ * fan_;
    return outstanding >= limit ? 0 : (limit - outstanding) / fan_;
  }

  std::uint64_t budget_room() const { return budget_ - seq_; }

  void emit(std::int64_t sent_ns) {
    std::uint16_t packet_id = 0;
    if (qos_ > 0) {
      packet_id = next_packet_id_;
      next_packet_id_ = packet_id == 65535 ? 1 : static_cast<std::uint16_t>(packet_id + 1);
      seq_by_packet_id_[packet_id] = seq_;
      ++inflight_;
    }
    publish_.packet_id = packet_id;
    auto& out = client_.output();
    mqtt::encode_publish_header(publish_, payload_.size(), client_.version(), out);
    const std::size_t at = out.size();
    out.insert(out.end(), payload_.begin(), payload_.end());
    write_stamp(&out[at], {index_, seq_, sent_ns});
    ++seq_;
  }

  void publish_counts() {
    sent_count.store(seq_, std::memory_order_relaxed);
    inflight_count.store(inflight_, std::memory_order_relaxed);
    if (budget_room() == 0) {
      budget_spent.store(true);
    }
  }

  // Closed loop: sends what the window, the broker's Receive Maximum and the budget allow.
  void fill() {
    if (stopped_ || waiting_window_ || client_.closed()) {
      return;
    }
    const std::int64_t now = now_ns();
    bool window_full = false;
    while (client_.output().size() < batch_bytes) {
      const std::uint64_t window = window_room();
      window_full = window == 0;
      std::uint64_t n = std::min({window, inflight_room(), budget_room(), std::uint64_t{64}});
      if (n == 0) {
        break;
      }
      while (n-- > 0) {
        emit(now);
      }
    }
    publish_counts();
    client_.flush();
    if (window_full) {
      // Against the subscriber's fetch_add-then-load: either it sees `paused` and posts resume(),
      // or the load below sees its deliveries and the publisher goes on by itself.
      const std::uint64_t wake = seq_ * fan_ - window_ * fan_ / 2;
      waiting_window_ = true;
      wake_at.store(wake);
      paused.store(true);
      if (delivered.load() >= wake && paused.exchange(false)) {
        asio::post(io_, [this] { resume(); });
      }
    }
  }

  // Open loop: sends every message whose scheduled time has come, then sleeps until the next.
  void send_due() {
    if (stopped_ || client_.closed()) {
      return;
    }
    const std::int64_t now = now_ns();
    bool sent_any = false;
    while (budget_room() > 0 && inflight_room() > 0) {
      const std::int64_t scheduled = start_ns_ + static_cast<std::int64_t>(seq_) * interval_ns_;
      if (scheduled > now) {
        break;
      }
      if (!sent_any) {
        send_lag_.record(now - scheduled);
        sent_any = true;
      }
      emit(scheduled);
    }
    publish_counts();
    client_.flush();
    if (budget_room() > 0 && inflight_room() > 0) {
      arm_timer(start_ns_ + static_cast<std::int64_t>(seq_) * interval_ns_);
    }
    // Otherwise an acknowledgement calls send_due() again (on_read_done).
  }

  void arm_timer(std::int64_t at_ns) {
    timer_.expires_at(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(at_ns)));
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) {
        send_due();
      }
    });
  }

  void on_connected(client&) override { run_.ready.fetch_add(1); }
  void on_publish(client&, const publish_view&, std::int64_t) override {}
  void on_suback(client&, const mqtt::suback&) override {}
  void on_acked(client&, std::uint16_t packet_id, std::uint8_t reason) override {
    const std::uint64_t seq = qos_ > 0 ? seq_by_packet_id_[packet_id] : no_sequence;
    if (seq == no_sequence) {
      ++unexpected_acks_;
      return;
    }
    seq_by_packet_id_[packet_id] = no_sequence;
    --inflight_;
    if (reason >= 0x80) {
      rejected_.insert(seq);
    } else {
      ++acked_;
    }
    acks_in_read_ = true;
  }
  void on_read_done(client&) override {
    if (!acks_in_read_) {
      return;
    }
    acks_in_read_ = false;
    inflight_count.store(inflight_, std::memory_order_relaxed);
    if (interval_ns_ > 0) {
      send_due();
    } else {
      fill();
    }
  }
  void on_written(client&) override {
    if (interval_ns_ == 0) {
      fill();
    }
  }
  void on_closed(client&, const std::string& why) override {
    run_.record_failure("publisher " + std::to_string(index_), why);
  }

  asio::io_context& io_;
  run_state& run_;
  std::uint32_t index_;
  std::uint64_t fan_;
  std::uint64_t budget_; // messages this publisher may send
  unsigned qos_;
  std::uint64_t window_;
  std::int64_t interval_ns_ = 0; // open loop only
  std::int64_t start_ns_ = 0;
  std::int64_t publisher_count_ = 1;
  client client_;
  asio::steady_timer timer_;
  mqtt::publish publish_;
  std::vector<std::byte> payload_;
  std::uint64_t seq_ = 0; // next sequence number = messages sent
  std::vector<std::uint64_t> seq_by_packet_id_;
  std::uint16_t next_packet_id_ = 1;
  std::uint64_t inflight_ = 0;
  std::uint64_t acked_ = 0;
  std::uint64_t unexpected_acks_ = 0;
  std::unordered_set<std::uint64_t> rejected_;
  std::unordered_set<std::uint64_t> unacked_; // filled by settle()
  latency_histogram send_lag_;                // open loop: how late the generator woke up
  bool stopped_ = false;
  bool waiting_window_ = false; // paused until resume()
  bool acks_in_read_ = false;
};

class subscriber final : public client_events {
public:
  // Receives the messages of publishers [first, first + count).
  subscriber(asio::io_context& io, run_state& run, const options& opt, const client_settings& settings,
             std::uint32_t index, std::string filter, std::vector<publisher*> publishers)
      : run_(run), index_(index), qos_(opt.qos), filter_(std::move(filter)),
        publishers_(std::move(publishers)), first_(publishers_.front()->index()),
        trackers_(publishers_.size()), credit_(publishers_.size(), 0), client_(io, settings, *this),
        stall_timer_(io) {}

  void start() { client_.start(); }
  void close() { client_.close(false); }

  // On the subscriber's thread: stops reading at pause_ns and reads again at resume_ns (steady
  // clock, nanoseconds). What was read before the pause is still acknowledged.
  void schedule_stall(std::int64_t pause_ns, std::int64_t resume_ns) {
    arm_stall_timer(pause_ns, [this, resume_ns] {
      client_.pause_reading();
      paused_ns_ = now_ns();
      arm_stall_timer(resume_ns, [this] {
        client_.resume_reading();
        resumed_ns_ = now_ns();
      });
    });
  }
  // After the threads have stopped: how long reading was paused (0 if it never was).
  double stalled_s() const {
    return paused_ns_ == 0
               ? 0.0
               : static_cast<double>((resumed_ns_ == 0 ? now_ns() : resumed_ns_) - paused_ns_) / 1e9;
  }

  std::atomic<std::uint64_t> received_count{0}; // unique messages, for the coordinator
  std::atomic<std::int64_t> last_receive_ns{0};

  const std::vector<publisher*>& publishers() const { return publishers_; }
  const sequence_tracker& tracker(std::size_t i) const { return trackers_[i]; }
  const latency_histogram& latency() const { return latency_; }
  // When the slowest delivery arrived (steady clock, 0 if none did), to tell a hiccup from a tail.
  std::int64_t slowest_at() const { return slowest_at_; }
  std::int64_t slowest() const { return slowest_; }
  std::uint64_t foreign() const { return foreign_; }
  std::uint64_t downgraded() const { return downgraded_; }

private:
  void on_connected(client& c) override {
    mqtt::subscribe s;
    s.packet_id = 1;
    s.subscriptions.push_back({filter_, {static_cast<mqtt::qos>(qos_)}});
    mqtt::encode(s, c.version(), c.output());
    c.flush();
  }
  void on_suback(client&, const mqtt::suback& s) override {
    if (s.reasons.size() != 1 || mqtt::is_error(s.reasons[0])) {
      run_.record_failure(
          "subscriber " + std::to_string(index_),
          "SUBACK refused " + filter_ +
              (s.reasons.empty() ? std::string() : ": " + std::string(mqtt::to_string(s.reasons[0]))));
      client_.close(false);
      return;
    }
    run_.ready.fetch_add(1);
  }
  void on_publish(client&, const publish_view& p, std::int64_t now) override {
    if (p.payload.size() < stamp_size) {
      ++foreign_;
      return;
    }
    const stamp st = read_stamp(p.payload.data());
    const std::size_t i = st.publisher - first_;
    if (st.publisher < first_ || i >= trackers_.size()) {
      ++foreign_;
      return;
    }
    if (p.qos != qos_) {
      ++downgraded_;
    }
    if (trackers_[i].observe(st.sequence) == sequence_tracker::verdict::duplicate) {
      return;
    }
    latency_.record(now - st.sent_ns);
    if (now - st.sent_ns > slowest_) {
      slowest_ = now - st.sent_ns;
      slowest_at_ = now;
    }
    ++credit_[i];
    ++unique_;
    last_ns_ = now;
  }
  void on_acked(client&, std::uint16_t, std::uint8_t) override {}
  void on_read_done(client&) override {
    for (std::size_t i = 0; i < credit_.size(); ++i) {
      if (credit_[i] == 0) {
        continue;
      }
      publisher* pub = publishers_[i];
      const std::uint64_t delivered = pub->delivered.fetch_add(credit_[i]) + credit_[i];
      credit_[i] = 0;
      if (pub->paused.load() && delivered >= pub->wake_at.load() && pub->paused.exchange(false)) {
        asio::post(pub->io(), [pub] { pub->resume(); });
      }
    }
    received_count.store(unique_, std::memory_order_relaxed);
    last_receive_ns.store(last_ns_, std::memory_order_relaxed);
  }
  void on_closed(client&, const std::string& why) override {
    run_.record_failure("subscriber " + std::to_string(index_), why);
  }

  template <typename F>
  void arm_stall_timer(std::int64_t at_ns, F&& then) {
    stall_timer_.expires_at(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(at_ns)));
    stall_timer_.async_wait([then = std::forward<F>(then)](const boost::system::error_code& ec) {
      if (!ec) {
        then();
      }
    });
  }

  run_state& run_;
  std::uint32_t index_;
  unsigned qos_;
  std::string filter_;
  std::vector<publisher*> publishers_;
  std::uint32_t first_;
  std::vector<sequence_tracker> trackers_;
  std::vector<std::uint64_t> credit_; // deliveries not yet added to the publishers' counters
  client client_;
  latency_histogram latency_;
  std::uint64_t unique_ = 0;
  std::int64_t last_ns_ = 0;
  std::int64_t slowest_ = -1;
  std::int64_t slowest_at_ = 0;
  std::uint64_t foreign_ = 0;      // not a stamped message of this run
  std::uint64_t downgraded_ = 0;   // delivered at another QoS than subscribed and published
  asio::steady_timer stall_timer_; // --stalled only
  std::int64_t paused_ns_ = 0;
  std::int64_t resumed_ns_ = 0;
};

// The figures of one group of clients, summed once the threads have stopped: the pairs a report is
// about, or the stalled pairs, which are reported apart.
struct group_figures {
  delivery_count count;
  latency_histogram latency;
  latency_histogram send_lag; // open loop: how late the publishers sent
  std::uint64_t publishers = 0;
  std::uint64_t subscribers = 0;
  std::uint64_t sent = 0;
  std::uint64_t acked = 0;
  std::uint64_t rejected = 0;
  std::uint64_t unexpected_acks = 0;
  std::uint64_t expected = 0; // deliveries due: each subscriber's publishers' messages
  std::uint64_t foreign = 0;
  std::uint64_t downgraded = 0;
  std::uint16_t receive_maximum = 65535; // the smallest the broker granted a publisher
  std::int64_t last_rx = 0;              // the last unique delivery, steady clock
  std::int64_t slowest = -1;             // the slowest delivery's latency, and when it arrived
  std::int64_t slowest_at = 0;
  double stalled_s = 0; // the longest a subscriber of the group read nothing

  // Every publisher of the group before any subscriber: settle() decides what was acknowledged.
  void add(publisher& p) {
    ++publishers;
    receive_maximum = std::min(receive_maximum, p.receive_maximum());
    p.settle();
    sent += p.sent();
    acked += p.acked();
    rejected += p.rejected();
    unexpected_acks += p.unexpected_acks();
    send_lag.merge(p.send_lag());
  }
  void add(const subscriber& s, unsigned qos) {
    ++subscribers;
    latency.merge(s.latency());
    foreign += s.foreign();
    downgraded += s.downgraded();
    last_rx = std::max(last_rx, s.last_receive_ns.load());
    if (s.slowest() > slowest) {
      slowest = s.slowest();
      slowest_at = s.slowest_at();
    }
    stalled_s = std::max(stalled_s, s.stalled_s());
    for (std::size_t i = 0; i < s.publishers().size(); ++i) {
      const publisher& p = *s.publishers()[i];
      expected += p.sent();
      count.add(s.tracker(i), p.sent(), qos, [&p](std::uint64_t seq) { return p.acknowledged(seq); });
    }
  }
};

std::string random_tag() {
  std::random_device rd;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06x", rd() & 0xffffff);
  return buf;
}

const char* scenario_name(scenario s) {
  switch (s) {
  case scenario::fanin:
    return "fanin";
  case scenario::fanout:
    return "fanout";
  case scenario::pairs:
    return "pairs";
  case scenario::conn:
    return "conn";
  }
  return "?";
}

// Starts clients in groups of `group`, each group once the previous one is ready: a broker's listen
// backlog (100 for Mosquitto) must not overflow, or connects stall for a SYN retransmit (1 s).
template <typename T>
bool start_all(worker_pool& pool, std::vector<std::unique_ptr<T>>& clients, run_state& run, unsigned first_io,
               unsigned base_ready) {
  constexpr std::size_t group = 64;
  for (std::size_t i = 0; i < clients.size(); i += group) {
    const std::size_t end = std::min(clients.size(), i + group);
    for (std::size_t j = i; j < end; ++j) {
      T* c = clients[j].get();
      asio::post(pool.io(first_io + static_cast<unsigned>(j)), [c] { c->start(); });
    }
    const auto want = base_ready + static_cast<unsigned>(end);
    if (!wait_until([&] { return run.ready.load() >= want || run.failed.load() > 0; },
                    std::chrono::seconds(15)) ||
        run.failed.load() > 0) {
      return false;
    }
  }
  return true;
}

} // namespace

int run_traffic(const options& opt) {
  if (opt.payload < stamp_size) {
    std::cerr << "firehook-bench: --payload must be at least " << stamp_size
              << " bytes (sequence + timestamp)\n";
    return 2;
  }
  const asio::ip::tcp::endpoint endpoint = loopback_endpoint(opt.host, opt.port);
  std::unique_ptr<asio::ssl::context> tls;
  if (opt.tls) {
    tls = client_tls_context(opt.cafile);
  }
  const unsigned threads = opt.threads == 0 ? allowed_cpus() : opt.threads;
  const std::string tag = random_tag();
  const std::string prefix = "fhb/" + tag + "/";

  // Who publishes where, and who receives whom.
  unsigned n_pub = 1;
  unsigned n_sub = 1;
  switch (opt.scenario) {
  case scenario::fanin:
    n_pub = opt.publishers;
    break;
  case scenario::fanout:
    n_sub = opt.subscribers;
    break;
  default:
    n_pub = n_sub = opt.pairs + opt.stalled;
    break;
  }
  // Pairs from this index on are the stalled ones (--stalled); in fanin and fanout, none is (the
  // index is past every publisher and every subscriber).
  const unsigned first_stalled = opt.scenario == scenario::pairs ? opt.pairs : std::max(n_pub, n_sub);
  if (n_pub == 0 || n_sub == 0 || n_pub >= max_publishers) {
    std::cerr << "firehook-bench: need at least one publisher and one subscriber\n";
    return 2;
  }
  const unsigned fan = opt.scenario == scenario::fanout ? n_sub : 1;

  client_settings base;
  base.endpoint = endpoint;
  base.tls = tls.get();
  base.verify = opt.tls && !opt.cafile.empty();
  base.version = opt.mqtt == 4 ? mqtt::protocol_version::v3_1_1 : mqtt::protocol_version::v5;
  base.full_decode = opt.full_decode;
  base.connect_delay_us = opt.connect_delay_us;

  worker_pool pool(threads);
  run_state run;
  std::vector<std::unique_ptr<publisher>> pubs;
  std::vector<std::unique_ptr<subscriber>> subs;
  // Connections are dealt round-robin over the threads, subscribers first.
  for (unsigned i = 0; i < n_pub; ++i) {
    client_settings s = base;
    s.client_id = "fhb-" + tag + "-p" + std::to_string(i);
    const std::uint64_t budget =
        opt.count == 0 ? max_sequence : opt.count / n_pub + (i < opt.count % n_pub ? 1 : 0);
    const std::string topic = prefix + std::to_string(i);
    pubs.push_back(std::make_unique<publisher>(pool.io(n_sub + i), run, opt, s, i, topic, fan, budget));
    pubs.back()->set_publisher_count(n_pub);
  }
  for (unsigned i = 0; i < n_sub; ++i) {
    client_settings s = base;
    s.client_id = "fhb-" + tag + "-s" + std::to_string(i);
    s.session_expiry = opt.persistent ? 300 : 0;
    std::vector<publisher*> mine;
    std::string filter;
    switch (opt.scenario) {
    case scenario::fanin:
      filter = prefix + "+";
      for (auto& p : pubs) {
        mine.push_back(p.get());
      }
      break;
    case scenario::fanout:
      filter = prefix + "0";
      mine.push_back(pubs[0].get());
      break;
    default:
      filter = prefix + std::to_string(i);
      mine.push_back(pubs[i].get());
      break;
    }
    subs.push_back(std::make_unique<subscriber>(pool.io(i), run, opt, s, i, filter, std::move(mine)));
  }

  // Stops the threads before the clients they run are destroyed, however this function is left.
  struct pool_stopper {
    worker_pool& pool;
    ~pool_stopper() { pool.stop(); }
  } stopper{pool};
  pool.run();
  const auto fail_setup = [&](const char* what) {
    std::lock_guard lock(run.error_mutex);
    std::cerr << "firehook-bench: " << what << ": "
              << (run.first_error.empty() ? std::string("timed out") : run.first_error) << '\n';
    pool.stop();
    return 2;
  };
  if (!start_all(pool, subs, run, 0, 0)) {
    return fail_setup("subscribers could not connect and subscribe");
  }
  if (!start_all(pool, pubs, run, n_sub, n_sub)) {
    return fail_setup("publishers could not connect");
  }

  // Publishing.
  const int broker = opt.broker_pid;
  const double cpu0 = own_cpu_seconds();
  const auto broker_cpu0 = broker > 0 ? process_cpu_seconds(broker) : std::nullopt;
  const std::int64_t t0 = now_ns() + 1'000'000; // every publisher starts from the same instant
  for (auto& p : pubs) {
    publisher* pub = p.get();
    asio::post(pub->io(), [pub, t0] { pub->begin(t0); });
  }
  const auto seconds_ns = [](double s) { return static_cast<std::int64_t>(s * 1e9); };
  for (unsigned i = first_stalled; i < n_sub; ++i) {
    subscriber* sub = subs[i].get();
    const std::int64_t pause = t0 + seconds_ns(opt.stall_after);
    const std::int64_t resume = pause + seconds_ns(opt.stall_for);
    asio::post(pool.io(i), [sub, pause, resume] { sub->schedule_stall(pause, resume); });
  }
  const auto duration = std::chrono::nanoseconds(static_cast<std::int64_t>(opt.duration * 1e9));
  wait_until(
      [&] {
        return run.failed.load() > 0 ||
               std::all_of(pubs.begin(), pubs.end(), [](auto& p) { return p->budget_spent.load(); });
      },
      duration + std::chrono::milliseconds(1));
  for (auto& p : pubs) {
    publisher* pub = p.get();
    asio::post(pub->io(), [pub] { pub->stop(); });
  }
  wait_until(
      [&] { return std::all_of(pubs.begin(), pubs.end(), [](auto& p) { return p->stopped_flag.load(); }); },
      std::chrono::seconds(5));
  const std::int64_t t_stop = now_ns();

  // Draining: until everything sent has arrived and been acknowledged, nothing moved for two
  // seconds, or --drain has passed.
  std::uint64_t expected = 0;
  for (auto& s : subs) {
    for (publisher* p : s->publishers()) {
      expected += p->sent_count.load();
    }
  }
  const auto progress = [&] {
    std::uint64_t received = 0;
    std::uint64_t inflight = 0;
    for (auto& s : subs) {
      received += s->received_count.load();
    }
    for (auto& p : pubs) {
      inflight += p->inflight_count.load();
    }
    return std::pair{received, inflight};
  };
  const auto drain_deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(opt.drain);
  auto last = progress();
  auto last_change = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < drain_deadline && run.failed.load() == 0) {
    const auto now = progress();
    if (now.first >= expected && now.second == 0) {
      break;
    }
    if (now != last) {
      last = now;
      last_change = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last_change > std::chrono::seconds(2)) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const std::int64_t t_end = now_ns();
  const double cpu1 = own_cpu_seconds();
  const auto broker_cpu1 = broker > 0 ? process_cpu_seconds(broker) : std::nullopt;
  const auto broker_rss = broker > 0 ? process_rss_bytes(broker) : std::nullopt;
  pool.stop();

  // Accounting, on this thread now that the others are stopped.
  group_figures normal;
  group_figures stalled;
  for (auto& p : pubs) {
    (p->index() < first_stalled ? normal : stalled).add(*p);
  }
  for (unsigned i = 0; i < n_sub; ++i) {
    (i < first_stalled ? normal : stalled).add(*subs[i], opt.qos);
  }
  const std::uint64_t lost_acked = normal.count.lost_acked + stalled.count.lost_acked;
  const std::uint64_t duplicates = normal.count.duplicates + stalled.count.duplicates;

  const double publish_s = static_cast<double>(t_stop - t0) / 1e9;
  const double delivery_s = static_cast<double>(std::max(normal.last_rx, t0 + 1) - t0) / 1e9;
  const double wall_s = static_cast<double>(t_end - t0) / 1e9;
  const bool guarantee_broken = lost_acked > 0 || (opt.qos == 2 && duplicates > 0);
  const bool failed = run.failed.load() > 0;

  report r;
  if (!opt.label.empty()) {
    r.add("label", opt.label);
  }
  r.add("scenario", scenario_name(opt.scenario));
  r.add("mode", opt.rate > 0 ? "open" : "closed");
  r.add("mqtt", opt.mqtt == 4 ? "3.1.1" : "5.0");
  r.add("tls", opt.tls);
  r.add("qos", opt.qos);
  r.add("payload", std::uint64_t{opt.payload});
  r.add("publishers", normal.publishers);
  r.add("subscribers", normal.subscribers);
  if (opt.rate > 0) {
    r.add("rate", opt.rate, 0);
  } else {
    r.add("window", opt.window == 0 ? std::uint64_t{1000} : opt.window);
  }
  r.add("threads", pool.size());
  if (opt.mqtt == 5) {
    r.add("receive_maximum", unsigned{std::min(normal.receive_maximum, stalled.receive_maximum)});
  }
  r.add("publish_s", publish_s, 3);
  r.add("sent", normal.sent);
  r.add("acked", normal.acked);
  r.add("rejected", normal.rejected);
  r.add("expected", normal.expected);
  r.add("delivered", normal.count.delivered);
  r.add("lost", normal.count.lost);
  r.add("lost_acked", normal.count.lost_acked);
  r.add("duplicated", normal.count.duplicates);
  r.add("out_of_order", normal.count.out_of_order);
  r.add("foreign", normal.foreign + stalled.foreign);
  r.add("downgraded", normal.downgraded + stalled.downgraded);
  r.add("unexpected_acks", normal.unexpected_acks + stalled.unexpected_acks);
  r.add("sent_per_s", static_cast<double>(normal.sent) / publish_s, 0);
  r.add("delivered_per_s", static_cast<double>(normal.count.delivered) / delivery_s, 0);
  r.add_latency("latency", normal.latency);
  if (normal.slowest >= 0) {
    r.add("latency_max_at_s", static_cast<double>(normal.slowest_at - t0) / 1e9, 3);
  }
  if (opt.rate > 0) {
    r.add_latency("send_lag", normal.send_lag);
  }
  if (opt.stalled > 0) {
    // The stalled pairs: whether their messages all arrived in the end, and how long their
    // publishers were held back (send_lag, open loop) while the subscribers read nothing.
    r.add("stalled", opt.stalled);
    r.add("stall_after_s", opt.stall_after, 1);
    r.add("stall_for_s", opt.stall_for, 1);
    r.add("stalled_read_paused_s", stalled.stalled_s, 2);
    r.add("stalled_sent", stalled.sent);
    r.add("stalled_acked", stalled.acked);
    r.add("stalled_delivered", stalled.count.delivered);
    r.add("stalled_lost", stalled.count.lost);
    r.add("stalled_lost_acked", stalled.count.lost_acked);
    r.add("stalled_duplicated", stalled.count.duplicates);
    r.add("stalled_out_of_order", stalled.count.out_of_order);
    r.add("stalled_last_delivery_s", static_cast<double>(std::max(stalled.last_rx, t0) - t0) / 1e9, 3);
    r.add_latency("stalled_latency", stalled.latency);
    if (opt.rate > 0) {
      r.add_latency("stalled_send_lag", stalled.send_lag);
    }
  }
  r.add("gen_cpu", (cpu1 - cpu0) / wall_s, 2);
  if (broker_cpu0 && broker_cpu1) {
    r.add("broker_cpu", (*broker_cpu1 - *broker_cpu0) / wall_s, 2);
  }
  if (broker_rss) {
    r.add("broker_rss_mb", static_cast<double>(*broker_rss) / 1048576.0, 1);
  }
  r.add("ok", !guarantee_broken && !failed);
  if (failed) {
    std::lock_guard lock(run.error_mutex);
    r.add("error", run.first_error);
  }
  if (!opt.json) {
    std::cerr << "firehook-bench " << scenario_name(opt.scenario) << ":\n";
    r.print_table(std::cerr);
  }
  std::cout << r.json() << std::endl;
  if (guarantee_broken) {
    std::cerr << "firehook-bench: FAIL: " << lost_acked << " acknowledged QoS " << opt.qos
              << " messages were never delivered";
    if (stalled.count.lost_acked > 0) {
      std::cerr << " (" << stalled.count.lost_acked << " of them to the stalled subscribers)";
    }
    if (opt.qos == 2 && duplicates > 0) {
      std::cerr << ", " << duplicates << " QoS 2 messages were delivered twice";
    }
    std::cerr << '\n';
    return 1;
  }
  if (failed) {
    std::cerr << "firehook-bench: a connection failed during the run: " << run.first_error << '\n';
    return 2;
  }
  return 0;
}

} // namespace firehook::bench

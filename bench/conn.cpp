// The conn scenario: opens --connections MQTT connections (TCP, TLS handshake, CONNECT/CONNACK) as
// fast as the broker takes them, with at most --window of them in progress at once; reports
// connections per second and the handshake latency (connect() to CONNACK); then holds them all idle
// for --hold seconds and reports the broker's resident memory per connection, read from
// /proc/PID/status before the first connection and after the hold (--broker-pid).

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include <boost/asio/post.hpp>

#include "client.hpp"
#include "options.hpp"
#include "report.hpp"
#include "stats.hpp"
#include "workers.hpp"

namespace firehook::bench {
namespace {

namespace asio = boost::asio;

class conn_thread;

class conn_client final : public client_events {
public:
  conn_client(asio::io_context& io, conn_thread& owner, const client_settings& settings)
      : owner_(owner), client_(io, settings, *this) {}
  void start() { client_.start(); }
  void close() { client_.close(true); }
  const client& connection() const { return client_; }

private:
  void on_connected(client& c) override;
  void on_publish(client&, const publish_view&, std::int64_t) override {}
  void on_acked(client&, std::uint16_t, std::uint8_t) override {}
  void on_suback(client&, const mqtt::suback&) override {}
  void on_closed(client& c, const std::string& why) override;

  conn_thread& owner_;
  client client_;
};

// One thread's share of the connections, with its share of the window. Used on its thread only,
// except for the atomics the coordinator reads.
class conn_thread {
public:
  conn_thread(asio::io_context& io, const client_settings& base, std::string id_prefix, unsigned count,
              unsigned window)
      : io_(io), base_(base), id_prefix_(std::move(id_prefix)), count_(count), window_(window) {
    clients_.reserve(count);
  }

  void begin() {
    for (unsigned i = 0; i < window_ && next_ < count_; ++i) {
      start_next();
    }
  }
  void close_all() {
    for (auto& c : clients_) {
      c->close();
    }
    closed_all.store(true);
  }

  void on_ready(const client& c) {
    latency_.record(now_ns() - c.started_ns());
    last_ready_ns.store(now_ns(), std::memory_order_relaxed);
    connected.fetch_add(1);
    start_next();
  }
  void on_closed(const client& c, const std::string& why) {
    if (c.connected()) {
      dropped.fetch_add(1); // closed by the broker while held idle
      return;
    }
    {
      std::lock_guard lock(error_mutex);
      if (first_error.empty()) {
        first_error = why;
      }
    }
    failed.fetch_add(1);
    start_next();
  }

  std::atomic<unsigned> connected{0};
  std::atomic<unsigned> failed{0};
  std::atomic<unsigned> dropped{0};
  std::atomic<std::int64_t> last_ready_ns{0};
  std::atomic<bool> closed_all{false};
  // Set by the coordinator once too many connections failed: no new ones are started.
  std::atomic<bool> give_up{false};
  std::mutex error_mutex;
  std::string first_error; // guarded by error_mutex

  // After the thread has stopped.
  const latency_histogram& latency() const { return latency_; }

private:
  void start_next() {
    if (next_ >= count_ || give_up.load(std::memory_order_relaxed)) {
      return;
    }
    client_settings s = base_;
    s.client_id = id_prefix_ + std::to_string(next_++);
    clients_.push_back(std::make_unique<conn_client>(io_, *this, s));
    clients_.back()->start();
  }

  asio::io_context& io_;
  client_settings base_;
  std::string id_prefix_;
  unsigned count_;
  unsigned window_;
  unsigned next_ = 0;
  std::vector<std::unique_ptr<conn_client>> clients_;
  latency_histogram latency_;
};

void conn_client::on_connected(client& c) {
  owner_.on_ready(c);
}
void conn_client::on_closed(client& c, const std::string& why) {
  owner_.on_closed(c, why);
}

} // namespace

int run_conn(const options& opt) {
  const asio::ip::tcp::endpoint endpoint = loopback_endpoint(opt.host, opt.port);
  std::unique_ptr<asio::ssl::context> tls;
  if (opt.tls) {
    tls = client_tls_context(opt.cafile);
  }
  const std::uint64_t file_limit = raise_file_limit();
  if (file_limit < opt.connections + 64) {
    std::cerr << "firehook-bench: " << opt.connections << " connections need more open files than the limit ("
              << file_limit << "); raise it with ulimit -n\n";
    return 2;
  }
  const unsigned threads =
      std::min(opt.threads == 0 ? allowed_cpus() : opt.threads, std::max(opt.connections, 1u));
  const unsigned window = opt.window == 0 ? 64 : static_cast<unsigned>(opt.window);

  client_settings base;
  base.endpoint = endpoint;
  base.tls = tls.get();
  base.verify = opt.tls && !opt.cafile.empty();
  base.version = opt.mqtt == 4 ? mqtt::protocol_version::v3_1_1 : mqtt::protocol_version::v5;
  // An idle connection receives at most a CONNACK (and TLS session tickets, which are read in pieces).
  base.read_buffer = 512;
  base.full_decode = opt.full_decode;
  base.connect_delay_us = opt.connect_delay_us;

  std::random_device rd;
  const std::string tag = std::to_string(rd() % 1000000);
  worker_pool pool(threads);
  std::vector<std::unique_ptr<conn_thread>> parts;
  for (unsigned t = 0; t < threads; ++t) {
    const unsigned count = opt.connections / threads + (t < opt.connections % threads ? 1 : 0);
    const unsigned share = std::max(1u, window / threads + (t < window % threads ? 1 : 0));
    parts.push_back(std::make_unique<conn_thread>(
        pool.io(t), base, "fhb-" + tag + "-c" + std::to_string(t) + "-", count, share));
  }
  struct pool_stopper {
    worker_pool& pool;
    ~pool_stopper() { pool.stop(); }
  } stopper{pool};
  pool.run();

  const int broker = opt.broker_pid;
  // 0: unknown (no --broker-pid, or the process is gone).
  const std::uint64_t rss0 = broker > 0 ? process_rss_bytes(broker).value_or(0) : 0;
  const auto broker_cpu0 = broker > 0 ? process_cpu_seconds(broker) : std::nullopt;
  const double cpu0 = own_cpu_seconds();
  const std::int64_t t0 = now_ns();
  for (auto& p : parts) {
    conn_thread* part = p.get();
    asio::post(pool.io(static_cast<unsigned>(&p - parts.data())), [part] { part->begin(); });
  }
  const auto sum = [&](auto member) {
    unsigned n = 0;
    for (auto& p : parts) {
      n += ((*p).*member).load();
    }
    return n;
  };
  // Bounded: a broker that stops accepting ends the run after two minutes, not never, and one that
  // refuses more than 1% of the connections (at least 10) ends it at once: each failure may take
  // the broker's connect timeout, and the figures of such a run are not the ones wanted anyway.
  const unsigned failure_limit = std::max(10u, opt.connections / 100);
  wait_until(
      [&] {
        const unsigned failed = sum(&conn_thread::failed);
        return sum(&conn_thread::connected) + failed >= opt.connections || failed > failure_limit;
      },
      std::chrono::seconds(120));
  const std::int64_t t_waited = now_ns();
  for (auto& p : parts) {
    p->give_up.store(true);
  }
  std::int64_t t_ready = t0;
  for (auto& p : parts) {
    t_ready = std::max(t_ready, p->last_ready_ns.load());
  }
  const double cpu1 = own_cpu_seconds();
  const auto broker_cpu1 = broker > 0 ? process_cpu_seconds(broker) : std::nullopt;
  const unsigned connected = sum(&conn_thread::connected);
  const unsigned failed = sum(&conn_thread::failed);

  std::this_thread::sleep_for(std::chrono::duration<double>(opt.hold));
  const std::uint64_t rss1 = broker > 0 ? process_rss_bytes(broker).value_or(0) : 0;
  const auto own_rss = process_rss_bytes(static_cast<int>(getpid()));
  const unsigned dropped = sum(&conn_thread::dropped);

  for (auto& p : parts) {
    conn_thread* part = p.get();
    asio::post(pool.io(static_cast<unsigned>(&p - parts.data())), [part] { part->close_all(); });
  }
  wait_until(
      [&] { return std::all_of(parts.begin(), parts.end(), [](auto& p) { return p->closed_all.load(); }); },
      std::chrono::seconds(30));
  pool.stop();

  latency_histogram latency;
  std::string first_error;
  for (auto& p : parts) {
    latency.merge(p->latency());
    if (first_error.empty()) {
      first_error = p->first_error;
    }
  }
  // Until the last CONNACK when every connection succeeded; otherwise the whole wait, so that a
  // run with failures never shows a better rate than the broker gave.
  const std::int64_t connect_end = failed == 0 && connected > 0 ? t_ready : t_waited;
  const double connect_s = static_cast<double>(std::max(connect_end - t0, std::int64_t{1})) / 1e9;
  const double waited_s = static_cast<double>(std::max(t_waited - t0, std::int64_t{1})) / 1e9;

  report r;
  if (!opt.label.empty()) {
    r.add("label", opt.label);
  }
  r.add("scenario", "conn");
  r.add("mqtt", opt.mqtt == 4 ? "3.1.1" : "5.0");
  r.add("tls", opt.tls);
  r.add("threads", pool.size());
  r.add("window", window);
  r.add("connections", opt.connections);
  r.add("connected", connected);
  r.add("failed", failed);
  r.add("dropped_while_idle", dropped);
  r.add("connect_s", connect_s, 3);
  r.add("conn_per_s", static_cast<double>(connected) / connect_s, 0);
  r.add_latency("handshake", latency);
  r.add("gen_cpu", (cpu1 - cpu0) / waited_s, 2);
  if (broker_cpu0 && broker_cpu1) {
    r.add("broker_cpu", (*broker_cpu1 - *broker_cpu0) / waited_s, 2);
    // What each connection cost the broker: comparable even when the generator, not the broker,
    // limits the rate (TLS, where the client's half of the handshake costs more than the server's).
    if (connected > 0) {
      r.add("broker_cpu_us_per_conn", (*broker_cpu1 - *broker_cpu0) * 1e6 / connected, 1);
    }
  }
  if (rss0 > 0 && rss1 > 0) {
    r.add("broker_rss_before_mb", static_cast<double>(rss0) / 1048576.0, 1);
    r.add("broker_rss_after_mb", static_cast<double>(rss1) / 1048576.0, 1);
    const double per = connected == 0 ? 0.0
                                      : (static_cast<double>(rss1) - static_cast<double>(rss0)) /
                                            static_cast<double>(connected);
    r.add("broker_bytes_per_conn", per, 0);
  }
  if (own_rss) {
    r.add("gen_rss_mb", static_cast<double>(*own_rss) / 1048576.0, 1);
  }
  const bool ok = connected == opt.connections && dropped == 0;
  r.add("ok", ok);
  if (!first_error.empty()) {
    r.add("error", first_error);
  }
  if (!opt.json) {
    std::cerr << "firehook-bench conn:\n";
    r.print_table(std::cerr);
  }
  std::cout << r.json() << std::endl;
  if (!ok) {
    std::cerr << "firehook-bench: " << (opt.connections - connected) << " of " << opt.connections
              << " connections failed, " << dropped << " dropped while idle"
              << (first_error.empty() ? std::string() : " (first error: " + first_error + ")") << '\n';
    return 2;
  }
  return 0;
}

} // namespace firehook::bench

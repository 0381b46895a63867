#include "net/server.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/clock.hpp"
#include "broker/broker.hpp"
#include "broker/shard.hpp"
#include "config/config.hpp"
#include "net/address_budget.hpp"
#include "net/shard.hpp"
#include "tls/tls.hpp"

namespace firehook::net {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
// How long a graceful shutdown waits for clients to receive their DISCONNECT.
constexpr auto shutdown_flush_timeout = std::chrono::seconds(3);

// An address as base::address_range knows them: IPv4 as ::ffff:a.b.c.d, so that a client of a
// dual-stack listener has one key whichever way it came.
base::address_bytes address_bytes(const asio::ip::address& a) {
  return a.is_v4() ? asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes()
                   : a.to_v6().to_bytes();
}
} // namespace

// How often the watched files (TLS material, topics file, token keys) are looked at for changes
// (SIGHUP reloads at once). A look is a stat(2) per file.
constexpr auto file_watch_interval = std::chrono::seconds(1);
// How often the bans are brought up to date (broker::ban_list::poll: automatic bans written,
// those another process changed read, expired ones forgotten), off the shard threads.
constexpr auto ban_poll_interval = std::chrono::milliseconds(500);

// One acceptor per shard, on that shard's io_context, so a connection is accepted by the thread
// that will serve it: no hand-over between threads before its first byte is read. With more than
// one shard the acceptors share the port with SO_REUSEPORT and the kernel spreads new connections
// over them.
struct listener {
  config::listener_settings settings;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors; // by shard index
  std::shared_ptr<tls::material> tls;                    // null for plain TCP
  explicit listener(config::listener_settings s) : settings(std::move(s)) {}
};

struct server::impl {
  std::shared_ptr<const config::config> cfg;
  broker::broker& broker;
  asio::io_context control{1}; // signals and file watching, on the thread that calls run()
  asio::signal_set signals{control, SIGINT, SIGTERM};
  asio::signal_set hangup{control, SIGHUP};
  asio::steady_timer file_watch{control};
  asio::steady_timer ban_poll{control};
  base::steady_clock clock;
  // Before the shards: their connections (and lingering sockets) hold tickets until they end.
  address_budget budgets;
  std::vector<std::unique_ptr<shard>> shards;
  std::vector<std::unique_ptr<listener>> listeners; // after shards: their acceptors use the shards' io
  std::vector<std::thread> threads;
  std::atomic<std::uint32_t> open_connections{0};
  std::atomic<bool> stopping{false}; // read by the shards' accept handlers

  impl(std::shared_ptr<const config::config> c, broker::broker& b, unsigned shard_count)
      : cfg(std::move(c)), broker(b), budgets(cfg->abuse, clock, b.stats()) {
    mqtt::decode_limits limits{.max_packet_size = cfg->limits.max_packet_size};
    for (unsigned i = 0; i < shard_count; ++i) {
      // The session's byte bound (max_queued_bytes) covers its connection's unwritten output too.
      shards.push_back(std::make_unique<shard>(i, shards, open_connections, limits,
                                               cfg->limits.tls_handshake_timeout,
                                               cfg->limits.max_queued_bytes));
    }
    for (auto& s : shards) {
      s->attach(broker);
    }
  }

  // Accepts on shard `index`'s acceptor of `l`, on that shard's thread.
  void accept(listener& l, unsigned index) {
    l.acceptors[index]->async_accept([this, &l, index](const boost::system::error_code& ec,
                                                       tcp::socket socket) {
      if (stopping) {
        return;
      }
      if (ec) {
        if (ec == asio::error::operation_aborted) {
          return;
        }
        // Out of file descriptors and the like: log, back off a little, keep accepting.
        spdlog::warn("listener '{}': accept failed: {}", l.settings.name, ec.message());
        auto timer =
            std::make_shared<asio::steady_timer>(shards[index]->io(), std::chrono::milliseconds(100));
        timer->async_wait([this, &l, index, timer](const boost::system::error_code&) { accept(l, index); });
        return;
      }
      on_accepted(l, *shards[index], std::move(socket));
      accept(l, index);
    });
  }

  // Every refusal here closes the socket before anything is read from it or written to it: no TLS,
  // no buffers, one event (which the log folds when an address repeats it).
  void on_accepted(listener& l, shard& target, tcp::socket socket) {
    boost::system::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    if (ec) {
      return; // the peer has gone already; the socket closes here
    }
    broker::connection_info info;
    info.listener = l.settings.name;
    info.allow_anonymous = l.settings.allow_anonymous;
    info.peer_address = peer.address().to_string();
    info.peer_port = peer.port();
    if (open_connections.fetch_add(1, std::memory_order_relaxed) >= cfg->limits.max_connections) {
      open_connections.fetch_sub(1, std::memory_order_relaxed);
      broker.stats().add(events::stat::refused_max_connections, 1);
      target.protocol().report_refused(
          info, "limit reached: " + std::to_string(cfg->limits.max_connections) + " connections",
          "limits.max_connections");
      return;
    }
    const auto bytes = address_bytes(peer.address());
    if (const auto ban = broker.bans().find_address(bytes, broker::ban_list::now_seconds())) {
      open_connections.fetch_sub(1, std::memory_order_relaxed);
      broker.stats().add(events::stat::refused_banned, 1);
      target.protocol().report_refused(info,
                                       "banned (address " + ban->subject + ") until " +
                                           broker::ban_list::until_text(*ban) + ": " + ban->reason,
                                       "ban");
      return;
    }
    auto budget = budgets.admit(bytes);
    if (budget.refused != address_budget::refusal::none) {
      open_connections.fetch_sub(1, std::memory_order_relaxed);
      target.protocol().report_refused(info, budgets.reason_of(budget.refused),
                                       address_budget::key_of(budget.refused));
      return;
    }
    target.adopt(std::move(socket), std::move(info), l.tls ? l.tls->current() : nullptr,
                 std::move(budget.admitted));
  }

  // Everything read from files that a reload may change, in one place: each listener's TLS
  // material (a new CRL also drops the live clients it revokes), the topics file (every shard
  // re-checks its live subscriptions), the token keys.
  void watch_reloadables() {
    auto& reloads = broker.reloads();
    for (auto& l : listeners) {
      if (!l->tls) {
        continue;
      }
      reloads.watch(l->tls, [this, &l = *l] {
        if (!l.tls->settings().crl.empty()) {
          auto ctx = l.tls->current();
          const auto& name = l.settings.name;
          on_every_shard([&name, &ctx](shard& s) { s.drop_revoked(name, *ctx); });
        }
      });
    }
    if (auto topics = broker.topics_file()) {
      reloads.watch(topics, [this] { on_every_shard([](shard& s) { s.protocol().on_policy_changed(); }); });
    }
    if (auto keys = broker.token_keys()) {
      reloads.watch(keys);
    }
    for (const auto& r : reloads.in_force()) {
      spdlog::info("watching {}: {}", r.subject, r.detail);
    }
  }

  void watch_files() {
    file_watch.expires_after(file_watch_interval);
    file_watch.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping) {
        return;
      }
      broker.reloads().reload(false);
      watch_files();
    });
  }

  void poll_bans() {
    ban_poll.expires_after(ban_poll_interval);
    ban_poll.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping) {
        return;
      }
      bool added = false;
      try {
        added = broker.bans().poll(broker::ban_list::now_seconds());
      } catch (const std::exception& e) {
        spdlog::error("bans: {}", e.what()); // the bans in memory stay in force; tried again next time
      }
      if (added) {
        for (auto& s : shards) {
          asio::post(s->io(), [&s] { s->protocol().drop_banned(); });
        }
      }
      poll_bans();
    });
  }

  void wait_hangup() {
    hangup.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec || stopping) {
        return;
      }
      spdlog::info("SIGHUP received: reloading");
      broker.reloads().reload(true);
      wait_hangup();
    });
  }

  // Runs `f` on every shard's thread and waits until all have run it.
  template <typename F>
  void on_every_shard(F f) {
    std::vector<std::future<void>> done;
    for (auto& s : shards) {
      auto p = std::make_shared<std::promise<void>>();
      done.push_back(p->get_future());
      asio::post(s->io(), [p, &s, f] {
        f(*s);
        p->set_value();
      });
    }
    for (auto& d : done) {
      d.wait();
    }
  }

  void shutdown() {
    if (stopping) {
      return;
    }
    stopping = true;
    spdlog::info("shutting down");
    on_every_shard([this](shard& s) {
      for (auto& l : listeners) {
        boost::system::error_code ignored;
        l->acceptors[s.index()]->close(ignored);
      }
    });
    signals.cancel();
    hangup.cancel();
    file_watch.cancel();
    ban_poll.cancel();
    // No verdict may be posted to a shard after this: CONNECTs still being authenticated are
    // closed by finish_shutdown without a CONNACK.
    broker.stop_authentication();
    on_every_shard([](shard& s) { s.protocol().begin_shutdown(); });
    // Wills published in phase 1 may travel to other shards in batches: two more rounds through
    // every shard's queue deliver them (the batch, then its end-of-turn flush) before DISCONNECT.
    on_every_shard([](shard&) {});
    on_every_shard([](shard&) {});
    on_every_shard([](shard& s) { s.protocol().finish_shutdown(); });
    auto deadline = std::chrono::steady_clock::now() + shutdown_flush_timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::atomic<std::size_t> left{0};
      on_every_shard([&left](shard& s) { left += s.connection_count(); });
      if (left == 0) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (auto& s : shards) {
      s->stop();
    }
  }
};

server::server(std::shared_ptr<const config::config> cfg, broker::broker& b, unsigned shard_count)
    : impl_(std::make_unique<impl>(std::move(cfg), b, shard_count == 0 ? 1 : shard_count)) {}

server::~server() {
  for (auto& s : impl_->shards) {
    s->stop();
  }
  for (auto& t : impl_->threads) {
    if (t.joinable()) {
      t.join();
    }
  }
}

namespace {

using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// Whether anything listens on `endpoint` already. SO_REUSEPORT would let our acceptors share the
// port with another process of the same user (a second broker started by mistake) instead of
// failing, so with several shards the port is first bound once without it.
void check_port_free(asio::io_context& io, const tcp::endpoint& endpoint) {
  tcp::acceptor probe(io);
  probe.open(endpoint.protocol());
  probe.set_option(asio::socket_base::reuse_address(true));
  probe.bind(endpoint);
  probe.listen(1); // a port held by a bound but not listening socket counts as taken, too
}

} // namespace

std::vector<bound_listener> server::start() {
  auto& i = *impl_;
  std::vector<bound_listener> bound;
  for (const auto& settings : i.cfg->listeners) {
    auto l = std::make_unique<listener>(settings);
    auto where =
        "listener '" + settings.name + "' on " + settings.address + ":" + std::to_string(settings.port);
    if (settings.tls) {
      try {
        l->tls = std::make_shared<tls::material>(*settings.tls, settings.name, tls::alpn::mqtt);
      } catch (const std::exception& e) {
        throw std::runtime_error(where + ": TLS: " + e.what());
      }
    }
    try {
      tcp::resolver resolver(i.control);
      auto results = resolver.resolve(settings.address, std::to_string(settings.port),
                                      tcp::resolver::numeric_service | tcp::resolver::passive);
      tcp::endpoint endpoint = results.begin()->endpoint();
      const bool shared = i.shards.size() > 1;
      if (shared && endpoint.port() != 0) {
        check_port_free(i.control, endpoint);
      }
      for (auto& s : i.shards) {
        auto& a = *l->acceptors.emplace_back(std::make_unique<tcp::acceptor>(s->io()));
        a.open(endpoint.protocol());
        a.set_option(asio::socket_base::reuse_address(true));
        if (shared) {
          a.set_option(reuse_port(true));
        }
        a.bind(endpoint);
        a.listen(asio::socket_base::max_listen_connections);
        endpoint = a.local_endpoint(); // port 0: the other shards bind the port the first one got
      }
      bound.push_back(
          {settings.name, l->tls ? "mqtts" : "mqtt", endpoint.address().to_string(), endpoint.port()});
    } catch (const boost::system::system_error& e) {
      throw std::runtime_error(where + ": " + e.code().message());
    }
    i.listeners.push_back(std::move(l));
  }
  return bound;
}

void server::run() {
  auto& i = *impl_;
  for (auto& s : i.shards) {
    i.threads.emplace_back([&s] { s->run(); });
  }
  for (auto& l : i.listeners) {
    for (unsigned index = 0; index < i.shards.size(); ++index) {
      i.accept(*l, index);
    }
  }
  i.signals.async_wait([&i](const boost::system::error_code& ec, int signo) {
    if (!ec) {
      spdlog::info("signal {} received", signo);
      i.shutdown();
    }
  });
  i.watch_reloadables();
  i.wait_hangup();
  i.watch_files();
  i.poll_bans();
  i.control.run();
  for (auto& t : i.threads) {
    t.join();
  }
  i.threads.clear();
  try {
    i.broker.bans().poll(broker::ban_list::now_seconds()); // the automatic bans of the last 500 ms
  } catch (const std::exception& e) {
    spdlog::error("bans: {}", e.what());
  }
}

void server::request_stop() {
  asio::post(impl_->control, [this] { impl_->shutdown(); });
}

} // namespace firehook::net

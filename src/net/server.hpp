#pragma once
// The network side of the broker: one shard per thread, each with its own Asio io_context that
// owns its connections. Every shard accepts on every listener (SO_REUSEPORT when there are several
// shards, so the kernel spreads connections over them) and serves what it accepted.
// Everything Asio stays behind this header (pimpl), so only net/ and app/ compile Asio.
//
// Lifetime: construct, start() (binds every listener or throws std::runtime_error naming the
// listener), run() until a stop. run() returns after a graceful shutdown: SIGTERM/SIGINT make every
// shard publish wills, send DISCONNECT 0x8B to 5.0 clients, flush and close (broker::shard's
// begin_shutdown / finish_shutdown), then the threads end.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace firehook::config {
struct config;
}
namespace firehook::broker {
class broker;
}

namespace firehook::net {

struct bound_listener {
  std::string name;
  std::string protocol; // "mqtt"
  std::string address;
  std::uint16_t port = 0; // the port actually bound (a configured 0 becomes a real one)
};

class server {
public:
  // `b` must outlive the server. shard_count >= 1.
  server(std::shared_ptr<const config::config> cfg, broker::broker& b, unsigned shard_count);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds every configured listener. Throws std::runtime_error("listener 'x' on addr:port: reason").
  std::vector<bound_listener> start();

  // Runs the shards on their threads and waits for SIGTERM/SIGINT (or request_stop()), then shuts
  // down gracefully. Returns when every thread has ended.
  void run();

  // Asks run() to shut down as on SIGTERM. Thread safe.
  void request_stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace firehook::net

#pragma once
// A shard: one thread, one io_context, the connections accepted onto it, and the broker::shard that
// runs their protocol. Implements broker::transport for that broker shard. Every member is used on
// the shard's thread only, except io() and post() which any thread may call.

#include <array>
#include <atomic>
#include <memory>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/transport.hpp"
#include "mqtt/codec.hpp"
#include "net/address_budget.hpp"

namespace firehook::broker {
class broker;
class shard;
struct connection_info;
} // namespace firehook::broker

namespace firehook::net {

class connection;

class shard final : public broker::transport {
public:
  // `peers` is every shard of the server, this one included, indexed by shard number; it must
  // be complete before any thread runs. `open_connections` counts connections of the whole server.
  // `max_backlog`: a connection with more output than this waiting to be written is not read from
  // until it has written half of it (connection.hpp).
  shard(unsigned index, const std::vector<std::unique_ptr<shard>>& peers,
        std::atomic<std::uint32_t>& open_connections, mqtt::decode_limits limits,
        std::chrono::seconds handshake_timeout, std::size_t max_backlog);
  ~shard() override;

  void attach(broker::broker& b); // before run()
  boost::asio::io_context& io() { return io_; }
  unsigned index() const { return index_; }

  // Takes a freshly accepted socket (on this shard's thread); `tls` is null for plain TCP.
  // `budget`: its address's share, which the connection holds until its socket is closed.
  void adopt(boost::asio::ip::tcp::socket socket, broker::connection_info info,
             std::shared_ptr<boost::asio::ssl::context> tls, address_budget::ticket budget);

  // After a CRL reload of listener `listener`: closes live connections of that listener whose
  // client certificate `ctx` now says is revoked. Returns how many.
  std::size_t drop_revoked(const std::string& listener, boost::asio::ssl::context& ctx);

  void run();  // the thread's body: ticks and runs handlers until stop()
  void stop(); // any thread
  broker::shard& protocol() { return *protocol_; }
  std::size_t connection_count() const { return connections_.size(); }

  // broker::transport
  void send(broker::connection_id id, std::span<const std::byte> bytes) override;
  void send_payload(broker::connection_id id, mqtt::message_ptr owner) override;
  void close(broker::connection_id id, bool flush) override;
  void pause_reading(broker::connection_id id, bool paused) override;
  std::size_t queued_bytes(broker::connection_id id) const override;
  void defer(std::function<void()> task) override;
  void post_to_shard(unsigned shard, std::function<void()> task) override;

private:
  friend class connection;
  connection* find(broker::connection_id id) const;
  void schedule_flush(connection& c);
  void flush_all();
  void connection_finished(broker::connection_id id); // the broker is told (on_closed)
  void socket_closed(); // a connection's socket is closed (later than the above when it lingers)
  void tick();
  std::span<std::byte> read_buffer() { return read_buffer_; }
  std::size_t max_backlog() const { return max_backlog_; }

  unsigned index_;
  const std::vector<std::unique_ptr<shard>>& peers_;
  std::atomic<std::uint32_t>& open_connections_;
  mqtt::decode_limits limits_;
  std::chrono::seconds handshake_timeout_;
  std::size_t max_backlog_;
  // listener name of each connection, for drop_revoked
  std::unordered_map<broker::connection_id, std::string> listener_of_;
  boost::asio::io_context io_{1};
  boost::asio::steady_timer tick_timer_{io_};
  std::unique_ptr<broker::shard> protocol_;
  std::unordered_map<broker::connection_id, std::shared_ptr<connection>> connections_;
  std::vector<std::shared_ptr<connection>> dirty_; // queued output this turn
  bool flush_posted_ = false;
  bool stopping_ = false;
  std::array<std::byte, 64 * 1024> read_buffer_{}; // shared by all connections of the shard
};

} // namespace firehook::net

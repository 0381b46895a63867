#pragma once
// One client's connection on a shard, plain TCP or TLS: reads bytes into the MQTT stream decoder
// and hands whole packets to the broker shard; writes what the broker queued, gathered into as few
// system calls as possible. Owned by its net::shard (a shared_ptr in the shard's table; pending
// Asio handlers hold another); used only on the shard's thread.
//
// Plain TCP reading is reactive: the connection waits for readability and then reads into the
// shard's one read buffer, so an idle connection holds no read buffer of its own, only the bytes
// of a partly received packet in its decoder. A TLS connection instead keeps one asynchronous read
// outstanding into a small buffer of its own (tls_read_buffer_size): Asio's ssl::stream supports
// one asynchronous read beside one asynchronous write, but not a synchronous read while a write is
// in flight (that corrupts the record stream). OpenSSL's own buffers are released when idle
// (SSL_MODE_RELEASE_BUFFERS).

#include <cstddef>
#include <memory>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/broker.hpp"
#include "broker/transport.hpp"
#include "mqtt/codec.hpp"

namespace firehook::net {

class shard;

class connection : public std::enable_shared_from_this<connection> {
public:
  virtual ~connection() = default;

  broker::connection_id id() const { return id_; }

  // Starts the connection: the TLS handshake first where there is one (bounded by `handshake_timeout`),
  // then the broker is told (on_accept) and reading begins.
  virtual void start(broker::connection_info info, std::chrono::seconds handshake_timeout) = 0;

  // broker::transport, for this connection
  void send(std::span<const std::byte> bytes);
  void send_payload(mqtt::message_ptr owner);
  void close(bool flush);
  void pause_reading(bool paused);
  std::size_t queued_bytes() const { return pending_bytes_ + writing_bytes_; }

  // Called by the shard at the end of a turn for connections that queued output.
  void flush();

  // The TLS session, for certificate checks after a CRL reload; null for plain TCP.
  virtual const SSL* tls_session() const { return nullptr; }
  bool announced() const { return announced_; }

protected:
  connection(shard& owner, broker::connection_id id, mqtt::decode_limits limits)
      : owner_(owner), id_(id), decoder_(limits) {}

  // Queued output: runs of encoded bytes and payloads sent from their shared message.
  struct segment {
    std::size_t begin = 0, end = 0; // a range of `bytes` when payload is null
    mqtt::message_ptr payload;
  };
  struct out_queue {
    std::vector<std::byte> bytes;
    std::vector<segment> segments;
    void clear();
  };

  // The stream underneath.
  // Either waits for readability and calls on_wait_done (then read_some reads), or reads by itself
  // and calls on_read_done with what it read (then read_some is never called).
  virtual void async_wait_readable() = 0;
  virtual std::size_t read_some(std::span<std::byte> into, boost::system::error_code& ec) = 0;
  virtual void async_write(const out_queue& q) = 0; // calls on_written
  virtual void close_stream() = 0;

  void announce(broker::connection_info info); // tells the broker, starts reading
  void on_wait_done(const boost::system::error_code& ec);
  void on_read_done(const boost::system::error_code& ec, std::span<const std::byte> data);
  void on_written(const boost::system::error_code& ec, std::size_t n);
  void finish(); // closes the stream and tells the shard, once

  shard& owner_;

private:
  void arm_read();
  void on_readable();
  void drain_decoder();

  broker::connection_id id_;
  mqtt::stream_decoder decoder_;
  out_queue pending_; // appended to by send()
  out_queue writing_; // handed to the kernel by the write in progress
  std::size_t pending_bytes_ = 0;
  std::size_t writing_bytes_ = 0;
  std::unique_ptr<boost::asio::steady_timer> close_timer_; // bounds a flushing close
  bool announced_ = false;                                 // the broker knows this connection
  bool read_armed_ = false;
  bool paused_ = false;
  bool write_in_progress_ = false;
  bool flush_scheduled_ = false;
  bool closing_ = false;  // no more input is processed
  bool finished_ = false; // stream closed, shard told

  friend class shard;
};

// A plain TCP connection.
std::shared_ptr<connection> make_tcp_connection(shard& owner, broker::connection_id id,
                                                boost::asio::ip::tcp::socket socket,
                                                mqtt::decode_limits limits);

// A TLS connection using `ctx` (kept alive by the connection).
std::shared_ptr<connection> make_tls_connection(shard& owner, broker::connection_id id,
                                                boost::asio::ip::tcp::socket socket,
                                                mqtt::decode_limits limits,
                                                std::shared_ptr<boost::asio::ssl::context> ctx);

} // namespace firehook::net

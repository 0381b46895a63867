#pragma once
// One client's TCP connection on a shard: reads bytes into the MQTT stream decoder and hands whole
// packets to the broker shard; writes what the broker queued, gathered into as few system calls as
// possible. Owned by its net::shard (a shared_ptr in the shard's table; pending Asio handlers hold
// another); used only on the shard's thread.
//
// Reading is reactive: the connection waits for readability and then reads into the shard's one
// read buffer, so an idle connection holds no read buffer of its own, only the bytes of a partly
// received packet in its decoder.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <memory>
#include <vector>

#include "broker/transport.hpp"
#include "mqtt/codec.hpp"

namespace firehook::net {

class shard;

class connection : public std::enable_shared_from_this<connection> {
public:
  connection(shard& owner, broker::connection_id id, boost::asio::ip::tcp::socket socket,
             mqtt::decode_limits limits);

  broker::connection_id id() const { return id_; }
  void start();

  // broker::transport, for this connection
  void send(std::span<const std::byte> bytes);
  void send_payload(mqtt::message_ptr owner);
  void close(bool flush);
  void pause_reading(bool paused);
  std::size_t queued_bytes() const { return pending_bytes_ + writing_bytes_; }

  // Called by the shard at the end of a turn for connections that queued output.
  void flush();

private:
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

  void arm_read();
  void on_readable();
  void drain_decoder();
  void on_written(const boost::system::error_code& ec, std::size_t n);
  void finish(); // closes the socket and tells the shard, once

  shard& owner_;
  broker::connection_id id_;
  boost::asio::ip::tcp::socket socket_;
  mqtt::stream_decoder decoder_;
  out_queue pending_;  // appended to by send()
  out_queue writing_;  // handed to the kernel by the write in progress
  std::size_t pending_bytes_ = 0;
  std::size_t writing_bytes_ = 0;
  std::unique_ptr<boost::asio::steady_timer> close_timer_; // bounds a flushing close
  bool read_armed_ = false;
  bool paused_ = false;
  bool write_in_progress_ = false;
  bool flush_scheduled_ = false;
  bool closing_ = false;  // no more input is processed
  bool finished_ = false; // socket closed, shard told

  friend class shard;
};

} // namespace firehook::net

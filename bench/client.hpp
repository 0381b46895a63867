#pragma once
// One MQTT client connection of the load generator, plain TCP or TLS, driven by callbacks on the
// thread of its io_context (one io_context per generator thread, created with a concurrency hint of
// 1, so nothing here locks).
//
// The client does the protocol work that is the same for every scenario: CONNECT/CONNACK, answering
// incoming QoS 1/2 publications (PUBACK, PUBREC/PUBCOMP), answering PUBREC with PUBREL, and reading
// what arrives in large reads. It reports to a `client_events` what a scenario cares about: connected,
// a publication, an outgoing publication's flow finished, a SUBACK, a write finished, closed.
//
// Output is gathered: callers append whole encoded packets to output() and call flush(); everything
// appended while a write is in progress goes out in the next single write. Answers to a read's
// packets are flushed once, after the whole read has been handled.
//
// Lifetime: pending handlers hold a plain `this`. The owner destroys a client only after its
// io_context has stopped for good (handlers still queued are then destroyed, never run).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

#include "mqtt/codec.hpp"
#include "wire.hpp"

namespace firehook::bench {

class client;

class client_events {
public:
  virtual ~client_events() = default;
  // CONNACK with Success.
  virtual void on_connected(client& c) = 0;
  // A PUBLISH arrived; `now_ns` is the steady clock read once for the whole read it came in.
  virtual void on_publish(client& c, const publish_view& p, std::int64_t now_ns) = 0;
  // An outgoing QoS 1/2 flow ended: PUBACK, PUBCOMP, or a PUBREC with an error reason code.
  virtual void on_acked(client& c, std::uint16_t packet_id, std::uint8_t reason) = 0;
  virtual void on_suback(client& c, const mqtt::suback& s) = 0;
  // All packets of one read were handled; the client flushes right after.
  virtual void on_read_done(client&) {}
  // A write finished (the next one, if anything was queued, has already started).
  virtual void on_written(client&) {}
  // The connection ended without close() being called: refused, reset, DISCONNECT, bad packet.
  virtual void on_closed(client& c, const std::string& why) = 0;
};

struct client_settings {
  boost::asio::ip::tcp::endpoint endpoint;
  boost::asio::ssl::context* tls = nullptr; // null: plain TCP
  bool verify = false;                      // with tls: the certificate must name endpoint's address
  mqtt::protocol_version version = mqtt::protocol_version::v5;
  std::string client_id;
  std::uint16_t keep_alive = 300; // runs are far shorter, so no PINGREQ is ever needed
  // 0: a clean session; otherwise a persistent one (3.1.1 clean session 0, 5.0 this expiry).
  std::uint32_t session_expiry = 0;
  std::size_t read_buffer = 64 * 1024;
  bool full_decode = false;
  // Microseconds between the end of the TLS handshake and CONNECT; 0 (the default, what real
  // clients do) sends CONNECT at once. A workaround switch for brokers that lose a CONNECT arriving
  // in the same read as the handshake's last flight, so that their other figures can still be had.
  std::uint32_t connect_delay_us = 0;
};

class client {
public:
  client(boost::asio::io_context& io, const client_settings& settings, client_events& events);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Connects, does the TLS handshake, sends CONNECT. Reported through on_connected or on_closed.
  void start();

  std::vector<std::byte>& output() { return pending_; }
  void flush();
  bool write_in_progress() const { return writing_active_; }
  std::size_t queued_bytes() const { return pending_.size() + writing_.size(); }

  // Stops reading, as a client that has hung would: the read in progress, if any, still completes
  // and is handled (its packets acknowledged), but no further read starts, so the socket's receive
  // buffer fills and TCP stops the broker's writes. resume_reading() starts reading again; nothing
  // already received is lost. Both are no-ops on a closed client.
  void pause_reading();
  void resume_reading();

  // Stops the connection without reporting on_closed. reset: abortive close (RST), so that ten
  // thousand closed connections leave no TIME_WAIT behind to exhaust the ephemeral ports.
  void close(bool reset);

  bool connected() const { return connected_; }
  bool closed() const { return closed_; }
  mqtt::protocol_version version() const { return settings_.version; }
  // The broker's Receive Maximum (5.0 CONNACK), 65535 when absent or for 3.1.1.
  std::uint16_t receive_maximum() const { return receive_maximum_; }
  std::int64_t started_ns() const { return started_ns_; }

private:
  template <typename F>
  void with_stream(F&& f);
  void on_tcp_connected(const boost::system::error_code& ec);
  void on_handshake(const boost::system::error_code& ec);
  void send_connect();
  void read();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  void handle_buffer(std::int64_t now_ns);
  bool handle_packet(std::span<const std::byte> packet, const frame& f, std::int64_t now_ns);
  bool handle_decoded(mqtt::packet& p, std::int64_t now_ns);
  bool handle_incoming_publish(const publish_view& p, std::int64_t now_ns);
  bool handle_ack(std::uint8_t type, const ack_view& a);
  void on_write(const boost::system::error_code& ec);
  void fail(const std::string& why);

  client_settings settings_;
  client_events& events_;
  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> tls_;
  std::unique_ptr<boost::asio::steady_timer> connect_delay_; // only with connect_delay_us
  std::vector<std::byte> read_buffer_;
  std::size_t filled_ = 0;
  std::vector<std::byte> pending_;
  std::vector<std::byte> writing_;
  std::optional<mqtt::stream_decoder> decoder_; // --full-decode only
  // Incoming QoS 2 packet ids between PUBREC and PUBREL: a resent PUBLISH with one of these is not
  // delivered again [MQTT-4.3.3-9]. Allocated on first use; most clients never see QoS 2.
  std::unique_ptr<std::vector<bool>> qos2_pending_;
  std::int64_t started_ns_ = 0;
  std::uint16_t receive_maximum_ = 65535;
  bool writing_active_ = false;
  bool read_active_ = false;    // an async_read_some is outstanding
  bool reading_paused_ = false; // pause_reading(): no new read is started
  bool connected_ = false;
  bool closed_ = false;
};

// Nanoseconds on the steady clock, the one time base of every stamp and latency.
std::int64_t now_ns();

// The endpoint for host:port. Only loopback addresses are accepted: the generator floods whatever
// it talks to, so it must not be pointed at a machine on the network. Throws std::runtime_error.
boost::asio::ip::tcp::endpoint loopback_endpoint(const std::string& host, std::uint16_t port);

// A TLS client context (TLS 1.2 or later). With a CA file, peers are verified against it; without
// one nothing is verified (the caller has asked for that explicitly). Throws std::runtime_error.
std::unique_ptr<boost::asio::ssl::context> client_tls_context(const std::string& cafile);

} // namespace firehook::bench

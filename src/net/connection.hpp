#pragma once
// One client's connection on a shard: reads bytes from its stream into the MQTT stream decoder and
// hands whole packets to the broker shard; writes what the broker queued, gathered into as few
// system calls as possible. Owned by its net::shard (a shared_ptr in the shard's table; pending
// Asio handlers hold another); used only on the shard's thread.
//
// The bytes go through a `stream` the connection holds (streams.hpp): plain TCP, TLS, or a layer
// stacked on one of them; the connection is the same class for all. It drives the stream
// reactively on its non-blocking socket: it waits for readiness (tcp::socket::async_wait on the
// stream's socket()) and then reads or writes synchronously until the stream would block. Reads go
// into the shard's one read buffer, so an idle connection holds no read buffer of its own, only
// the bytes of a partly received packet in its decoder. TLS is why a read may have to wait for
// writability and a write for readability: `readiness` says which, and the connection keeps at
// most one wait per direction, shared by the reading and the writing side. A TLS stream (or any
// layer that holds bytes) may also hold records OpenSSL has already taken off the socket (a
// CONNECT that came with the client's TLS 1.3 Finished), which no readiness event announces: so
// reading always starts by reading, never by waiting (after the handshake, after a pause, after
// the read budget ran out), and waits only once the stream said it would block.
//
// A stream's handshake (TLS; none for TCP) comes first, bounded by the handshake timeout; the
// broker hears of the connection (on_accept, with the client certificate) only once it is done,
// and a handshake that fails or runs out of time is reported as a refusal.
//
// Writing holds no memory between writes: an idle connection's queues have no capacity, and the
// gather lists (and TLS's contiguous staging) live on the stack of the call that writes.
//
// Bounds: a client that does not read what it is sent cannot make its output grow without end by
// sending requests (PINGREQs, QoS 1 PUBLISHes, SUBSCRIBEs whose answers it never reads): once more
// than shard::max_backlog() bytes wait to be written, the connection stops reading (`backlogged_`)
// until half of that is written. (Deliveries to it are bounded by its session, which counts this
// backlog.)
//
// Reading stopped (paused by the broker, or backlogged) does not hide the peer hanging up: the
// connection still watches the socket and ends when the peer has closed its side (POLLRDHUP), so
// that nothing goes on being done for a client that has left (a password hashed for it, say).
//
// Closing: close(false) closes the socket at once. close(true) (after a DISCONNECT or a refusing
// CONNACK) writes what is queued, for at most 5 s, and then hands the stream to a lingering close
// (lingering_close.hpp: the sending side shut, the client's input discarded until it closes, for
// at most 2 s and 1 MiB), so that a client still sending reads the reason code instead of a reset.
// The shard is told (connection_finished, then on_closed) once, when the queued bytes are written
// and the lingering starts, not when the socket is finally closed; the server's connection count
// (max_connections) and the address's budgets (address_budget.hpp) go down only then
// (shard::socket_closed).
//
// Pending: from accept until the broker sends a successful CONNACK, the connection counts as not
// yet authenticated in its address's budget. The connection learns it from the CONNACK itself,
// the first packet the broker sends it: the transport interface says nothing of authentication,
// and the broker's shard stays unaware of budgets.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "broker/broker.hpp"
#include "broker/transport.hpp"
#include "mqtt/codec.hpp"
#include "net/address_budget.hpp"
#include "net/streams.hpp"

namespace firehook::net {

class shard;

class connection final : public std::enable_shared_from_this<connection> {
public:
  // Made with std::make_shared (its handlers hold shared_from_this()); the caller (the shard)
  // keeps it in its table and calls start().
  // `budget`: the connection's share of its address's budgets (address_budget.hpp), held until
  // its socket is closed; pending until the broker sends it a successful CONNACK.
  connection(shard& owner, broker::connection_id id, std::unique_ptr<stream> stack,
             mqtt::decode_limits limits, address_budget::ticket budget)
      : owner_(owner), stream_(std::move(stack)), id_(id), decoder_(limits), budget_(std::move(budget)) {}

  broker::connection_id id() const { return id_; }

  // Starts the connection: the stream's handshake first where there is one (bounded by
  // `handshake_timeout`, limits.tls_handshake_timeout: one deadline from the start, which bytes
  // arriving do not move), then the broker is told (on_accept) and reading begins.
  void start(broker::connection_info info, std::chrono::seconds handshake_timeout);

  // broker::transport, for this connection
  void send(std::span<const std::byte> bytes);
  void send_payload(mqtt::message_ptr owner);
  void close(bool flush);
  void pause_reading(bool paused);
  std::size_t queued_bytes() const { return pending_bytes_ + writing_bytes_; }

  // Called by the shard at the end of a turn for connections that queued output.
  void flush();

  // The TLS session, for certificate checks after a CRL reload; null for plain TCP.
  const SSL* tls_session() const { return stream_ ? stream_->tls_session() : nullptr; }
  bool announced() const { return announced_; }

private:
  // Queued output: runs of encoded bytes and payloads sent from their shared message.
  struct segment {
    std::size_t begin = 0, end = 0; // a range of `bytes` when payload is null
    mqtt::message_ptr payload;
  };
  struct out_queue {
    std::vector<std::byte> bytes;
    std::vector<segment> segments;
    void clear();   // keeps the capacity, for a connection that is writing again soon
    void release(); // gives the capacity back, for an idle connection

    // Marks the next `n` bytes written: visit() starts after them. Walks only the segments it
    // passes, so writing a long queue in many calls stays linear in its length.
    void consume(std::size_t n);

    // Calls `piece(std::span<const std::byte>)` for the bytes not yet consumed, in order, while it
    // returns true.
    template <typename F>
    void visit(F&& piece) const {
      for (std::size_t i = next_; i < segments.size(); ++i) {
        auto all = piece_at(i);
        if (!piece(i == next_ ? all.subspan(skip_) : all)) {
          return;
        }
      }
    }

  private:
    std::span<const std::byte> piece_at(std::size_t i) const {
      const segment& s = segments[i];
      return s.payload ? std::as_bytes(std::span(s.payload->payload))
                       : std::span<const std::byte>(bytes).subspan(s.begin, s.end - s.begin);
    }
    std::size_t next_ = 0; // segments before it are written,
    std::size_t skip_ = 0; // and this many bytes of segment next_
  };
  // While the stream's handshake runs: what the broker will be told, and the bound on the wait.
  struct pending_handshake {
    boost::asio::steady_timer timeout;
    broker::connection_info info;
  };

  // Moves the handshake on. Returns true once it is over (the broker told, or the client refused
  // and the connection finished), false while it waits for the readiness the stream asked for.
  bool advance_handshake(broker::connection_info& info);
  void announce(broker::connection_info info); // tells the broker, starts reading
  // While the connection is pending: a successful CONNACK among `bytes` (the broker's first packet
  // [MQTT-3.2.0-1], in one send) ends that.
  void note_connack(std::span<const std::byte> bytes);
  // Ends the connection once: closes the stream (with `linger`, after a lingering close) and tells
  // the shard.
  void finish(bool linger);

  void read_now(); // reads until the stream would block, the budget is spent or reading stops
  bool reading_stopped() const { return paused_ || backlogged_; }
  // While reading is stopped: ends the connection if the peer has hung up, else waits to look again.
  void watch_hangup();
  void note_backlog(); // stops reading when the output is over the limit
  void post_read();    // read_now after the other handlers of this turn, once
  void drain_decoder();
  void write_now(); // writes `writing_` until done or the stream would block
  void on_written(const boost::system::error_code& ec);
  // Waits for `r` on behalf of the reading (`for_write` false) or the writing side, and shares a
  // wait of the same direction that is already outstanding.
  void wait_for(readiness r, bool for_write);
  void on_ready(readiness r, const boost::system::error_code& ec);

  shard& owner_;
  std::unique_ptr<stream> stream_; // null once finished with a lingering close, which took it
  broker::connection_id id_;
  mqtt::stream_decoder decoder_;
  address_budget::ticket budget_; // given back when the socket is closed (finish)
  out_queue pending_;             // appended to by send()
  out_queue writing_;             // being written; the written_ bytes written so far are consumed
  std::size_t pending_bytes_ = 0;
  std::size_t writing_bytes_ = 0;
  std::size_t written_ = 0;
  std::unique_ptr<pending_handshake> handshake_;           // only while a handshake runs
  std::unique_ptr<boost::asio::steady_timer> close_timer_; // bounds a flushing close
  readiness read_waits_for_ = readiness::none;             // the reading side waits for this
  readiness write_waits_for_ = readiness::none;            // the writing side waits for this
  bool waiting_readable_ = false;                          // an async_wait(wait_read) is outstanding
  bool waiting_writable_ = false;                          // an async_wait(wait_write) is outstanding
  bool read_posted_ = false;     // a read_now is posted (budget spent, or reading resumed)
  bool announced_ = false;       // the broker knows this connection
  bool paused_ = false;          // by the broker
  bool backlogged_ = false;      // by the output bound
  bool watching_hangup_ = false; // the outstanding readable wait is (also) watch_hangup's
  bool write_in_progress_ = false;
  bool flush_scheduled_ = false;
  bool closing_ = false;  // no more input is processed
  bool finished_ = false; // stream closed, shard told

  friend class shard;
};

} // namespace firehook::net

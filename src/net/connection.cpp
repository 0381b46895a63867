#include "net/connection.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <chrono>

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>

#include "broker/shard.hpp"
#include "net/lingering_close.hpp"
#include "net/shard.hpp"
#include "tls/tls.hpp"

namespace firehook::net {

namespace asio = boost::asio;

namespace {
// A client that stops reading must not hold a closing connection open forever.
constexpr auto flush_close_timeout = std::chrono::seconds(5);
// Bytes read from one connection before other connections of the shard get their turn.
constexpr std::size_t read_budget = 256 * 1024;
// A connection that is still writing keeps queue buffers up to this size from one write to the
// next; larger ones, and all of an idle connection's, are given back once written.
constexpr std::size_t keep_capacity = 64 * 1024;

// What a write offers the stream: the queue's bytes not yet written, where they are. (A template
// only because the queue's type is private to the connection.)
template <typename Queue>
class unwritten_bytes final : public write_source {
public:
  explicit unwritten_bytes(const Queue& q) : q_(q) {}

private:
  void visit_pieces(void* visitor, piece_fn call) const override {
    q_.visit([&](std::span<const std::byte> piece) { return call(visitor, piece); });
  }
  const Queue& q_;
};
} // namespace

void connection::out_queue::clear() {
  if (bytes.capacity() > keep_capacity) {
    release();
  } else {
    bytes.clear();
    segments.clear();
    next_ = skip_ = 0;
  }
}

void connection::out_queue::release() {
  std::vector<std::byte>().swap(bytes);
  std::vector<segment>().swap(segments);
  next_ = skip_ = 0;
}

void connection::out_queue::consume(std::size_t n) {
  while (n > 0 && next_ < segments.size()) {
    const std::size_t left = piece_at(next_).size() - skip_;
    if (n < left) {
      skip_ += n;
      return;
    }
    n -= left;
    ++next_;
    skip_ = 0;
  }
}

void connection::start(broker::connection_info info, std::chrono::seconds handshake_timeout) {
  boost::system::error_code ec;
  stream_->start(ec);
  if (ec) {
    spdlog::error("connection from {}:{}: cannot set up its stream: {}", info.peer_address, info.peer_port,
                  ec.message());
    finish(false);
    return;
  }
  if (advance_handshake(info)) {
    return;
  }
  // One deadline for the whole handshake: a client that sends its handshake a byte at a time holds
  // the connection no longer than one that sends nothing.
  handshake_ = std::make_unique<pending_handshake>(
      pending_handshake{asio::steady_timer(owner_.io(), handshake_timeout), std::move(info)});
  handshake_->timeout.async_wait(
      [self = shared_from_this(), this](const boost::system::error_code& timer_ec) {
        if (!timer_ec && !finished_ && handshake_) {
          owner_.protocol().report_refused(handshake_->info, stream_->handshake_refusal({}),
                                           "limits.tls_handshake_timeout");
          finish(false);
        }
      });
}

bool connection::advance_handshake(broker::connection_info& info) {
  readiness wait = readiness::none;
  boost::system::error_code ec;
  if (stream_->handshake(wait, ec)) {
    broker::connection_info done = std::move(info); // `info` may be handshake_'s
    handshake_.reset();
    if (const SSL* ssl = stream_->tls_session()) {
      done.certificate = tls::peer_certificate(ssl);
    }
    announce(std::move(done));
    return true;
  }
  if (ec) {
    owner_.protocol().report_refused(info, stream_->handshake_refusal(ec));
    finish(false);
    return true;
  }
  stream_->socket().async_wait(wait == readiness::writable ? asio::ip::tcp::socket::wait_write
                                                           : asio::ip::tcp::socket::wait_read,
                               [self = shared_from_this(), this](const boost::system::error_code& wait_ec) {
                                 if (finished_) {
                                   return;
                                 }
                                 if (wait_ec) {
                                   finish(false);
                                   return;
                                 }
                                 advance_handshake(handshake_->info);
                               });
  return false;
}

void connection::announce(broker::connection_info info) {
  announced_ = true;
  owner_.protocol().on_accept(id_, std::move(info));
  // Read at once rather than wait: what OpenSSL took off the socket during the handshake (the
  // CONNECT that came with the client's Finished) will never make the socket readable.
  read_now();
}

void connection::wait_for(readiness r, bool for_write) {
  (for_write ? write_waits_for_ : read_waits_for_) = r;
  bool& outstanding = r == readiness::readable ? waiting_readable_ : waiting_writable_;
  if (outstanding) {
    return; // the other side's wait in this direction serves both
  }
  outstanding = true;
  stream_->socket().async_wait(
      r == readiness::readable ? asio::ip::tcp::socket::wait_read : asio::ip::tcp::socket::wait_write,
      [self = shared_from_this(), this, r](const boost::system::error_code& ec) { on_ready(r, ec); });
}

void connection::on_ready(readiness r, const boost::system::error_code& ec) {
  (r == readiness::readable ? waiting_readable_ : waiting_writable_) = false;
  bool resume_write = write_waits_for_ == r;
  bool resume_read = read_waits_for_ == r;
  const bool look_for_hangup = r == readiness::readable && watching_hangup_;
  if (look_for_hangup) {
    watching_hangup_ = false;
  }
  if (resume_write) {
    write_waits_for_ = readiness::none;
  }
  if (resume_read) {
    read_waits_for_ = readiness::none;
  }
  if (finished_) {
    return;
  }
  if (ec) {
    if (ec != asio::error::operation_aborted) {
      spdlog::debug("connection {}: wait failed: {}", id_, ec.message());
      finish(false);
    }
    return;
  }
  if (resume_write) {
    write_now();
  }
  if (resume_read) {
    read_now();
  }
  if (look_for_hangup && !finished_ && !closing_ && reading_stopped()) {
    watch_hangup();
  }
}

void connection::watch_hangup() {
  if (watching_hangup_ || finished_ || closing_) {
    return;
  }
  // Looked at now, since the hang-up may have come with the last bytes read (its readiness event
  // is then spent), and then on every readiness event while reading stays stopped. The socket is
  // edge-triggered in Asio's reactor, so unread data does not make this spin.
  pollfd p{stream_->socket().native_handle(), POLLRDHUP, 0};
  if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
    spdlog::debug("connection {}: the peer hung up while reading was stopped", id_);
    finish(false);
    return;
  }
  watching_hangup_ = true;
  if (!waiting_readable_) {
    waiting_readable_ = true;
    stream_->socket().async_wait(asio::ip::tcp::socket::wait_read,
                                 [self = shared_from_this(), this](const boost::system::error_code& ec) {
                                   on_ready(readiness::readable, ec);
                                 });
  }
}

void connection::note_backlog() {
  if (!backlogged_ && queued_bytes() > owner_.max_backlog()) {
    backlogged_ = true; // the read loop stops; on_written resumes it
  }
}

void connection::read_now() {
  if (read_waits_for_ != readiness::none) {
    return; // that wait reads when it ends
  }
  std::size_t total = 0;
  while (!closing_ && !finished_) {
    if (reading_stopped()) {
      watch_hangup();
      break;
    }
    if (total >= read_budget) {
      // Other connections get their turn; this one goes on reading after them, without waiting
      // for readiness (what is left may already be inside OpenSSL).
      post_read();
      break;
    }
    boost::system::error_code ec;
    readiness wait = readiness::none;
    auto buf = owner_.read_buffer();
    std::size_t n = stream_->read_some(buf, wait, ec);
    if (ec) { // eof, reset, TLS failure: the peer is gone
      spdlog::debug("connection {}: read ended: {}", id_, ec.message());
      owner_.protocol().count_bytes(total, 0);
      finish(false);
      return;
    }
    if (n > 0) {
      total += n;
      decoder_.feed(buf.first(n));
      drain_decoder();
    }
    if (n == 0 || wait != readiness::none) { // would block, or the stream knows the next read would
      if (!closing_ && !finished_ && !reading_stopped()) {
        wait_for(wait == readiness::none ? readiness::readable : wait, false);
      } else if (reading_stopped()) {
        watch_hangup();
      }
      break;
    }
  }
  owner_.protocol().count_bytes(total, 0);
}

void connection::post_read() {
  if (read_posted_) {
    return;
  }
  read_posted_ = true;
  asio::post(owner_.io(), [self = shared_from_this()] {
    self->read_posted_ = false;
    // Packets decoded while reading was paused wait in the decoder: they go before more is read.
    self->drain_decoder();
    self->read_now();
  });
}

void connection::drain_decoder() {
  while (!closing_ && !finished_ && !reading_stopped()) {
    auto r = decoder_.next();
    if (r.status == mqtt::decode_status::need_more) {
      return;
    }
    if (r.status == mqtt::decode_status::error) {
      // The broker answers with the spec's reason code and closes; nothing more is read.
      owner_.protocol().on_decode_error(id_, r.error);
      if (!closing_) {
        close(true);
      }
      return;
    }
    owner_.protocol().on_packet(id_, std::move(r.pkt));
  }
}

void connection::note_connack(std::span<const std::byte> bytes) {
  if (static_cast<std::uint8_t>(bytes.front()) >> 4 !=
      static_cast<std::uint8_t>(mqtt::packet_type::connack)) {
    return; // 5.0 AUTH, during enhanced authentication
  }
  const auto r = mqtt::decode(bytes, decoder_.version(), {});
  const auto* ack = r.status == mqtt::decode_status::complete ? std::get_if<mqtt::connack>(&r.pkt) : nullptr;
  if (ack != nullptr && ack->reason == mqtt::reason_code::success) {
    budget_.authenticated();
  }
}

void connection::send(std::span<const std::byte> bytes) {
  if (finished_ || bytes.empty()) {
    return;
  }
  if (budget_.pending()) {
    note_connack(bytes);
  }
  auto& q = pending_;
  std::size_t begin = q.bytes.size();
  q.bytes.insert(q.bytes.end(), bytes.begin(), bytes.end());
  if (!q.segments.empty() && !q.segments.back().payload && q.segments.back().end == begin) {
    q.segments.back().end = q.bytes.size();
  } else {
    q.segments.push_back({begin, q.bytes.size(), nullptr});
  }
  pending_bytes_ += bytes.size();
  note_backlog();
  owner_.schedule_flush(*this);
}

void connection::send_payload(mqtt::message_ptr owner) {
  if (finished_ || !owner || owner->payload.empty()) {
    return;
  }
  pending_bytes_ += owner->payload.size();
  pending_.segments.push_back({0, 0, std::move(owner)});
  note_backlog();
  owner_.schedule_flush(*this);
}

void connection::flush() {
  flush_scheduled_ = false;
  if (write_in_progress_ || finished_) {
    return;
  }
  if (pending_.segments.empty()) {
    if (closing_) {
      finish(true);
    }
    return;
  }
  std::swap(pending_, writing_);
  writing_bytes_ = pending_bytes_;
  pending_bytes_ = 0;
  written_ = 0;
  write_in_progress_ = true;
  write_now();
}

void connection::write_now() {
  while (!finished_ && written_ < writing_bytes_) {
    boost::system::error_code ec;
    readiness wait = readiness::none;
    std::size_t n = stream_->write_some(unwritten_bytes(writing_), wait, ec);
    if (ec) {
      on_written(ec);
      return;
    }
    if (n == 0) {
      wait_for(wait == readiness::none ? readiness::writable : wait, true);
      return;
    }
    written_ += n;
    writing_.consume(n);
  }
  on_written({});
}

void connection::on_written(const boost::system::error_code& ec) {
  write_in_progress_ = false;
  std::size_t n = written_;
  writing_bytes_ = 0;
  written_ = 0;
  if (finished_) {
    return;
  }
  owner_.protocol().count_bytes(0, n);
  if (ec) {
    spdlog::debug("connection {}: write failed: {}", id_, ec.message());
    finish(false);
    return;
  }
  if (backlogged_ && queued_bytes() <= owner_.max_backlog() / 2) {
    backlogged_ = false;
    if (!paused_ && !closing_) {
      post_read(); // by reading, not waiting: what is left may already be inside OpenSSL
    }
  }
  if (!pending_.segments.empty()) {
    writing_.clear(); // more is coming: keep the capacity for it
    flush();
    return;
  }
  // Idle now (the common case once CONNACK is out): hold no output memory at all.
  writing_.release();
  pending_.release();
  if (closing_) {
    finish(true); // everything is written: the client gets to read it (lingering_close.hpp)
  }
}

void connection::pause_reading(bool paused) {
  if (paused_ == paused) {
    return;
  }
  paused_ = paused;
  if (!reading_stopped() && !closing_ && !finished_) {
    // Reading resumes by reading, not by waiting: bytes may wait inside OpenSSL.
    post_read();
  }
}

void connection::close(bool flush) {
  if (finished_) {
    return;
  }
  closing_ = true;
  if (!flush) {
    finish(false);
    return;
  }
  if (!write_in_progress_ && pending_.segments.empty()) {
    // Nothing left to write; finish after the current handler so on_closed() is never re-entrant.
    asio::post(owner_.io(), [self = shared_from_this()] { self->finish(true); });
    return;
  }
  owner_.schedule_flush(*this);
  close_timer_ = std::make_unique<asio::steady_timer>(owner_.io(), flush_close_timeout);
  close_timer_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) {
      self->finish(false);
    }
  });
}

void connection::finish(bool linger) {
  if (finished_) {
    return;
  }
  finished_ = true;
  closing_ = true;
  handshake_.reset();
  if (close_timer_) {
    close_timer_->cancel();
  }
  // Nothing refers to the queues any more (writes are synchronous): the payloads they share go now.
  pending_.release();
  writing_.release();
  // The stream goes; the waits still pending on its socket end with operation_aborted (or find
  // finished_ set) and touch it no more.
  if (linger) {
    // The budget goes with the socket; held in a shared_ptr since std::function must be copyable.
    auto held = std::make_shared<address_budget::ticket>(std::move(budget_));
    lingering_close(owner_.io(), std::move(stream_), linger_limits{}, [&owner = owner_, held] {
      held->release();
      owner.socket_closed();
    });
  } else {
    stream_->close();
    budget_.release();
    owner_.socket_closed();
  }
  owner_.connection_finished(id_);
}

} // namespace firehook::net

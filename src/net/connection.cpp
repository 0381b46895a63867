#include "net/connection.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>

#include "broker/shard.hpp"
#include "net/shard.hpp"

namespace firehook::net {

namespace asio = boost::asio;

namespace {
// A client that stops reading must not hold a closing connection open forever.
constexpr auto flush_close_timeout = std::chrono::seconds(5);
// Bytes read from one connection before other connections of the shard get their turn.
constexpr std::size_t read_budget = 256 * 1024;
// Queue buffers larger than this are given back to the allocator once written.
constexpr std::size_t keep_capacity = 64 * 1024;
} // namespace

void connection::out_queue::clear() {
  if (bytes.capacity() > keep_capacity) {
    std::vector<std::byte>().swap(bytes);
    std::vector<segment>().swap(segments);
  } else {
    bytes.clear();
    segments.clear();
  }
}

void connection::announce(broker::connection_info info) {
  announced_ = true;
  owner_.protocol().on_accept(id_, std::move(info));
  arm_read();
}

void connection::arm_read() {
  if (read_armed_ || paused_ || closing_ || finished_) {
    return;
  }
  read_armed_ = true;
  async_wait_readable();
}

void connection::on_wait_done(const boost::system::error_code& ec) {
  read_armed_ = false;
  if (ec) {
    if (ec != asio::error::operation_aborted) {
      finish();
    }
    return;
  }
  on_readable();
}

void connection::on_read_done(const boost::system::error_code& ec, std::span<const std::byte> data) {
  read_armed_ = false;
  if (ec) {
    if (ec != asio::error::operation_aborted && !finished_) {
      spdlog::debug("connection {}: read ended: {}", id_, ec.message());
      finish();
    }
    return;
  }
  if (closing_ || finished_) {
    return;
  }
  decoder_.feed(data);
  drain_decoder();
  owner_.protocol().count_bytes(data.size(), 0);
  arm_read();
}

void connection::on_readable() {
  std::size_t total = 0;
  while (!closing_ && !finished_ && !paused_ && total < read_budget) {
    boost::system::error_code ec;
    auto buf = owner_.read_buffer();
    std::size_t n = read_some(buf, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      break;
    }
    if (ec) { // eof, reset, TLS failure: the peer is gone
      spdlog::debug("connection {}: read ended: {}", id_, ec.message());
      finish();
      return;
    }
    total += n;
    decoder_.feed(buf.first(n));
    drain_decoder();
  }
  owner_.protocol().count_bytes(total, 0);
  arm_read();
}

void connection::drain_decoder() {
  while (!closing_ && !finished_ && !paused_) {
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

void connection::send(std::span<const std::byte> bytes) {
  if (finished_ || bytes.empty()) {
    return;
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
  owner_.schedule_flush(*this);
}

void connection::send_payload(mqtt::message_ptr owner) {
  if (finished_ || !owner || owner->payload.empty()) {
    return;
  }
  pending_bytes_ += owner->payload.size();
  pending_.segments.push_back({0, 0, std::move(owner)});
  owner_.schedule_flush(*this);
}

void connection::flush() {
  flush_scheduled_ = false;
  if (write_in_progress_ || finished_) {
    return;
  }
  if (pending_.segments.empty()) {
    if (closing_) {
      finish();
    }
    return;
  }
  std::swap(pending_, writing_);
  writing_bytes_ = pending_bytes_;
  pending_bytes_ = 0;
  write_in_progress_ = true;
  async_write(writing_);
}

void connection::on_written(const boost::system::error_code& ec, std::size_t n) {
  write_in_progress_ = false;
  writing_bytes_ = 0;
  writing_.clear();
  if (finished_) {
    return;
  }
  owner_.protocol().count_bytes(0, n);
  if (ec) {
    spdlog::debug("connection {}: write failed: {}", id_, ec.message());
    finish();
    return;
  }
  if (!pending_.segments.empty()) {
    flush();
  } else if (closing_) {
    finish();
  }
}

void connection::pause_reading(bool paused) {
  if (paused_ == paused) {
    return;
  }
  paused_ = paused;
  if (!paused_ && !closing_ && !finished_) {
    // Packets decoded while paused wait in the decoder: hand them over before reading more.
    asio::post(owner_.io(), [self = shared_from_this()] {
      self->drain_decoder();
      self->arm_read();
    });
  }
}

void connection::close(bool flush) {
  if (finished_) {
    return;
  }
  closing_ = true;
  if (!flush) {
    finish();
    return;
  }
  if (!write_in_progress_ && pending_.segments.empty()) {
    // Nothing left to write; finish after the current handler so on_closed() is never re-entrant.
    asio::post(owner_.io(), [self = shared_from_this()] { self->finish(); });
    return;
  }
  owner_.schedule_flush(*this);
  close_timer_ = std::make_unique<asio::steady_timer>(owner_.io(), flush_close_timeout);
  close_timer_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) {
      self->finish();
    }
  });
}

void connection::finish() {
  if (finished_) {
    return;
  }
  finished_ = true;
  closing_ = true;
  close_stream();
  if (close_timer_) {
    close_timer_->cancel();
  }
  pending_.clear();
  owner_.connection_finished(id_);
}

} // namespace firehook::net

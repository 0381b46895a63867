#include "net/shard.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include <boost/asio/post.hpp>

#include "broker/shard.hpp"
#include "net/connection.hpp"
#include "net/streams.hpp"
#include "tls/tls.hpp"

namespace firehook::net {

namespace asio = boost::asio;

namespace {
constexpr auto tick_interval = std::chrono::milliseconds(100);
std::atomic<broker::connection_id> next_connection_id{1};
} // namespace

shard::shard(unsigned index, const std::vector<std::unique_ptr<shard>>& peers,
             std::atomic<std::uint32_t>& open_connections, mqtt::decode_limits limits,
             std::chrono::seconds handshake_timeout, std::size_t max_backlog)
    : index_(index), peers_(peers), open_connections_(open_connections), limits_(limits),
      handshake_timeout_(handshake_timeout), max_backlog_(max_backlog) {}

shard::~shard() = default;

void shard::attach(broker::broker& b) {
  protocol_ = std::make_unique<broker::shard>(b, index_, *this);
}

void shard::run() {
  tick();
  auto guard = asio::make_work_guard(io_);
  io_.run();
}

void shard::stop() {
  io_.stop();
}

void shard::tick() {
  tick_timer_.expires_after(tick_interval);
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) {
      return;
    }
    protocol_->on_tick();
    tick();
  });
}

void shard::adopt(asio::ip::tcp::socket socket, broker::connection_info info,
                  std::shared_ptr<asio::ssl::context> tls, address_budget::ticket budget) {
  boost::system::error_code ec;
  socket.set_option(asio::ip::tcp::no_delay(true), ec);
  auto id = next_connection_id.fetch_add(1, std::memory_order_relaxed);
  auto stack = tls ? make_tls_stream(std::move(socket), std::move(tls)) : make_tcp_stream(std::move(socket));
  auto c = std::make_shared<connection>(*this, id, std::move(stack), limits_, std::move(budget));
  connections_.emplace(id, c);
  if (c->tls_session()) {
    listener_of_.emplace(id, info.listener);
  }
  c->start(std::move(info), handshake_timeout_);
}

std::size_t shard::drop_revoked(const std::string& listener, asio::ssl::context& ctx) {
  std::vector<broker::connection_id> revoked;
  for (const auto& [id, name] : listener_of_) {
    auto* c = find(id);
    if (name == listener && c && c->announced() && tls::peer_revoked(c->tls_session(), ctx)) {
      revoked.push_back(id);
    }
  }
  for (auto id : revoked) {
    protocol_->disconnect(id, mqtt::reason_code::administrative_action,
                          "client certificate revoked by the new CRL");
  }
  return revoked.size();
}

connection* shard::find(broker::connection_id id) const {
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : it->second.get();
}

void shard::schedule_flush(connection& c) {
  if (c.flush_scheduled_) {
    return;
  }
  c.flush_scheduled_ = true;
  dirty_.push_back(c.shared_from_this());
  if (!flush_posted_) {
    // One flush per turn for the whole shard: every packet queued during this turn, for every
    // connection, goes out together, many packets per system call.
    flush_posted_ = true;
    asio::post(io_, [this] { flush_all(); });
  }
}

void shard::flush_all() {
  flush_posted_ = false;
  auto batch = std::move(dirty_);
  dirty_.clear();
  for (auto& c : batch) {
    c->flush();
  }
}

void shard::connection_finished(broker::connection_id id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) {
    return;
  }
  auto keep = std::move(it->second); // handlers may still hold it; the table lets go
  connections_.erase(it);
  listener_of_.erase(id);
  if (keep->announced()) {
    // Told after the current handler, never from inside a transport call the broker made.
    asio::post(io_, [this, id] { protocol_->on_closed(id); });
  }
}

void shard::socket_closed() {
  // Counted until the descriptor is gone: max_connections bounds the sockets held, lingering ones too.
  open_connections_.fetch_sub(1, std::memory_order_relaxed);
}

void shard::send(broker::connection_id id, std::span<const std::byte> bytes) {
  if (auto* c = find(id)) {
    c->send(bytes);
  }
}

void shard::send_payload(broker::connection_id id, mqtt::message_ptr owner) {
  if (auto* c = find(id)) {
    c->send_payload(std::move(owner));
  }
}

void shard::close(broker::connection_id id, bool flush) {
  if (auto* c = find(id)) {
    c->close(flush);
  }
}

void shard::pause_reading(broker::connection_id id, bool paused) {
  if (auto* c = find(id)) {
    c->pause_reading(paused);
  }
}

std::size_t shard::queued_bytes(broker::connection_id id) const {
  auto* c = find(id);
  return c ? c->queued_bytes() : 0;
}

void shard::defer(std::function<void()> task) {
  asio::post(io_, std::move(task));
}

void shard::post_to_shard(unsigned target, std::function<void()> task) {
  asio::post(peers_.at(target)->io_, std::move(task));
}

} // namespace firehook::net

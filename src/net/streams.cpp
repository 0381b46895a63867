// The two kinds of connection stream: plain TCP and TLS over TCP.
#include <spdlog/spdlog.h>

#include <array>

#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "net/connection.hpp"
#include "net/shard.hpp"
#include "net/tls.hpp"

namespace firehook::net {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

class tcp_connection final : public connection {
public:
  tcp_connection(shard& owner, broker::connection_id id, tcp::socket socket, mqtt::decode_limits limits)
      : connection(owner, id, limits), socket_(std::move(socket)) {}

  void start(broker::connection_info info, std::chrono::seconds) override {
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);
    announce(std::move(info));
  }

private:
  void async_wait_readable() override {
    socket_.async_wait(
        tcp::socket::wait_read,
        [self = shared_from_this(), this](const boost::system::error_code& ec) { on_wait_done(ec); });
  }

  std::size_t read_some(std::span<std::byte> into, boost::system::error_code& ec) override {
    return socket_.read_some(asio::buffer(into.data(), into.size()), ec);
  }

  void async_write(const out_queue& q) override {
    // Gathered: encoded bytes and payloads from their shared messages, one writev per 64 buffers.
    buffers_.clear();
    for (const auto& s : q.segments) {
      if (s.payload) {
        buffers_.emplace_back(s.payload->payload.data(), s.payload->payload.size());
      } else {
        buffers_.emplace_back(q.bytes.data() + s.begin, s.end - s.begin);
      }
    }
    asio::async_write(socket_, buffers_,
                      [self = shared_from_this(), this](const boost::system::error_code& ec, std::size_t n) {
                        on_written(ec, n);
                      });
  }

  void close_stream() override {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  tcp::socket socket_;
  std::vector<asio::const_buffer> buffers_;
};

// Plaintext bytes one TLS read may return. A full TLS record is 16 KiB; smaller reads just take
// more turns for large packets, and every idle TLS connection holds this much.
constexpr std::size_t tls_read_buffer_size = 4096;

class tls_connection final : public connection {
public:
  tls_connection(shard& owner, broker::connection_id id, tcp::socket socket, mqtt::decode_limits limits,
                 std::shared_ptr<asio::ssl::context> ctx)
      : connection(owner, id, limits), ctx_(std::move(ctx)), stream_(std::move(socket), *ctx_) {}

  void start(broker::connection_info info, std::chrono::seconds handshake_timeout) override {
    // The handshake gets as long as a client has to send CONNECT: a client that opens a socket
    // and stalls holds nothing for longer than that.
    handshake_timer_ = std::make_unique<asio::steady_timer>(owner_.io(), handshake_timeout);
    handshake_timer_->async_wait([self = shared_from_this(), this](const boost::system::error_code& ec) {
      if (!ec) {
        spdlog::debug("TLS handshake from {} timed out", peer_);
        finish();
      }
    });
    peer_ = info.peer_address;
    stream_.async_handshake(
        asio::ssl::stream_base::server, [self = shared_from_this(), this, info = std::move(info)](
                                            const boost::system::error_code& ec) mutable {
          handshake_timer_.reset();
          if (ec) {
            // "certificate verify failed" alone does not tell an operator which check refused the device.
            std::string why = ec.message();
            if (long verify = SSL_get_verify_result(stream_.native_handle()); verify != X509_V_OK) {
              why += std::string(": ") + X509_verify_cert_error_string(verify);
            }
            spdlog::info("TLS handshake from {}:{} failed: {}", info.peer_address, info.peer_port, why);
            finish();
            return;
          }
          info.certificate = peer_certificate(stream_.native_handle());
          announce(std::move(info));
        });
  }

  const SSL* tls_session() const override { return const_cast<stream_type&>(stream_).native_handle(); }

private:
  using stream_type = asio::ssl::stream<tcp::socket>;

  // One asynchronous read at a time (see connection.hpp for why not the reactive way). Records
  // Asio already holds, such as a CONNECT that came with the client's TLS 1.3 Finished, are
  // decrypted at once.
  void async_wait_readable() override {
    stream_.async_read_some(asio::buffer(inbox_), [self = shared_from_this(),
                                                   this](const boost::system::error_code& ec, std::size_t n) {
      on_read_done(ec, std::span<const std::byte>(inbox_.data(), n));
    });
  }

  std::size_t read_some(std::span<std::byte>, boost::system::error_code& ec) override {
    ec = asio::error::operation_not_supported; // never called: async_wait_readable reads
    return 0;
  }

  void async_write(const out_queue& q) override {
    // One contiguous buffer, so OpenSSL makes full records instead of one per queued piece.
    plain_.clear();
    for (const auto& s : q.segments) {
      if (s.payload) {
        auto p = reinterpret_cast<const std::byte*>(s.payload->payload.data());
        plain_.insert(plain_.end(), p, p + s.payload->payload.size());
      } else {
        plain_.insert(plain_.end(), q.bytes.begin() + static_cast<std::ptrdiff_t>(s.begin),
                      q.bytes.begin() + static_cast<std::ptrdiff_t>(s.end));
      }
    }
    asio::async_write(stream_, asio::buffer(plain_),
                      [self = shared_from_this(), this](const boost::system::error_code& ec, std::size_t n) {
                        if (plain_.capacity() > 64 * 1024) {
                          std::vector<std::byte>().swap(plain_);
                        }
                        on_written(ec, n);
                      });
  }

  void close_stream() override {
    handshake_timer_.reset();
    boost::system::error_code ignored;
    // No TLS close_notify exchange: the MQTT DISCONNECT (when there is one) has already been
    // flushed, and waiting for the peer's close_notify would let a client hold the connection.
    stream_.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.next_layer().close(ignored);
  }

  std::shared_ptr<asio::ssl::context> ctx_;
  stream_type stream_;
  std::unique_ptr<asio::steady_timer> handshake_timer_;
  std::vector<std::byte> plain_;
  std::array<std::byte, tls_read_buffer_size> inbox_{};
  std::string peer_;
};

} // namespace

std::shared_ptr<connection> make_tcp_connection(shard& owner, broker::connection_id id, tcp::socket socket,
                                                mqtt::decode_limits limits) {
  return std::make_shared<tcp_connection>(owner, id, std::move(socket), limits);
}

std::shared_ptr<connection> make_tls_connection(shard& owner, broker::connection_id id, tcp::socket socket,
                                                mqtt::decode_limits limits,
                                                std::shared_ptr<asio::ssl::context> ctx) {
  return std::make_shared<tls_connection>(owner, id, std::move(socket), limits, std::move(ctx));
}

} // namespace firehook::net

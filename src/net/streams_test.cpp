#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "net/streams.hpp"

namespace firehook::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

// A layer as streams.hpp describes one: it holds the stream below and keeps the contract both
// ways. It passes bytes through, counts them, and offers the layer below at most `window` bytes a
// write through a write_source of its own, as a framing layer presents its frames.
class counting_layer final : public stream {
public:
  counting_layer(std::unique_ptr<stream> below, std::size_t window)
      : below_(std::move(below)), window_(window) {}

  void start(error_code& ec) override { below_->start(ec); }
  bool handshake(readiness& wait, error_code& ec) override { return below_->handshake(wait, ec); }

  std::size_t read_some(std::span<std::byte> into, readiness& wait, error_code& ec) override {
    std::size_t n = below_->read_some(into, wait, ec);
    bytes_read += n;
    return n;
  }

  std::size_t write_some(const write_source& from, readiness& wait, error_code& ec) override {
    std::size_t n = below_->write_some(first_bytes(from, window_), wait, ec);
    bytes_written += n;
    return n;
  }

  bool shutdown_write(readiness& wait, error_code& ec) override { return below_->shutdown_write(wait, ec); }
  void close() override { below_->close(); }
  const SSL* tls_session() const override { return below_->tls_session(); }
  tcp::socket& socket() override { return below_->socket(); }

  std::size_t bytes_read = 0;
  std::size_t bytes_written = 0;

private:
  // The first `limit` bytes of `above`, in its pieces, where they are.
  class first_bytes final : public write_source {
  public:
    first_bytes(const write_source& above, std::size_t limit) : above_(above), limit_(limit) {}

  private:
    void visit_pieces(void* visitor, piece_fn call) const override {
      std::size_t left = limit_;
      above_.visit([&](std::span<const std::byte> piece) {
        auto part = piece.first(std::min(left, piece.size()));
        left -= part.size();
        return call(visitor, part) && left > 0;
      });
    }
    const write_source& above_;
    std::size_t limit_;
  };

  std::unique_ptr<stream> below_;
  std::size_t window_;
};

// Bytes to write, in several pieces, as the connection's queue offers them.
class pieces final : public write_source {
public:
  explicit pieces(std::vector<std::string> parts) : parts_(std::move(parts)) {}

  void consume(std::size_t n) { written_ += n; }
  std::size_t left() const {
    std::size_t all = 0;
    for (const auto& p : parts_) {
      all += p.size();
    }
    return all - written_;
  }

private:
  void visit_pieces(void* visitor, piece_fn call) const override {
    std::size_t skip = written_;
    for (const auto& p : parts_) {
      auto bytes = std::as_bytes(std::span(p));
      if (skip >= bytes.size()) {
        skip -= bytes.size();
        continue;
      }
      if (!call(visitor, bytes.subspan(skip))) {
        return;
      }
      skip = 0;
    }
  }

  std::vector<std::string> parts_;
  std::size_t written_ = 0;
};

// A connected loopback pair: `client` is an ordinary blocking socket, the other end is the one a
// stream stack is made over.
struct loopback {
  asio::io_context io;
  tcp::socket client{io};
  tcp::socket server{io};

  loopback() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
  }

  // Waits, as the connection does, for the readiness a stream operation asked for, on the
  // stack's socket. Fails instead of hanging when it does not come.
  void wait_for(stream& s, readiness r) {
    ASSERT_NE(r, readiness::none) << "a stream that moved nothing must say what to wait for";
    bool ready = false;
    s.socket().async_wait(r == readiness::writable ? tcp::socket::wait_write : tcp::socket::wait_read,
                          [&](const error_code& ec) {
                            EXPECT_FALSE(ec) << ec.message();
                            ready = true;
                          });
    io.restart();
    io.run_one_for(std::chrono::seconds(10));
    ASSERT_TRUE(ready) << "the readiness the stream asked for did not come";
  }

  // Reads `n` bytes through `s`, waiting whenever it says so.
  std::string read_through(stream& s, std::size_t n) {
    std::string got;
    std::array<std::byte, 7> buf; // small, so that a read is often short and one is often full
    while (got.size() < n) {
      readiness wait = readiness::none;
      error_code ec;
      std::size_t k = s.read_some(buf, wait, ec);
      EXPECT_FALSE(ec) << ec.message();
      if (ec) {
        break;
      }
      got.append(reinterpret_cast<const char*>(buf.data()), k);
      if (k == 0) {
        wait_for(s, wait);
        if (::testing::Test::HasFatalFailure()) {
          break;
        }
      }
    }
    return got;
  }

  // Writes all of `from` through `s`, waiting whenever it says so.
  void write_through(stream& s, pieces& from, std::size_t at_most_per_write) {
    while (from.left() > 0) {
      readiness wait = readiness::none;
      error_code ec;
      std::size_t n = s.write_some(from, wait, ec);
      EXPECT_FALSE(ec) << ec.message();
      EXPECT_LE(n, at_most_per_write);
      if (ec) {
        break;
      }
      if (n == 0) {
        wait_for(s, wait);
        if (::testing::Test::HasFatalFailure()) {
          break;
        }
        continue;
      }
      from.consume(n);
    }
  }
};

TEST(stream_stack, layers_over_tcp_carry_bytes_both_ways_and_keep_the_readiness_contract) {
  loopback pair;
  auto inner_owned = std::make_unique<counting_layer>(make_tcp_stream(std::move(pair.server)), 5);
  counting_layer& inner = *inner_owned;
  counting_layer outer(std::move(inner_owned), 3);

  error_code ec;
  outer.start(ec);
  ASSERT_FALSE(ec) << ec.message();
  readiness wait = readiness::none;
  EXPECT_TRUE(outer.handshake(wait, ec)) << "TCP has no handshake, nor have these layers";
  EXPECT_FALSE(ec);
  EXPECT_EQ(outer.tls_session(), nullptr);
  EXPECT_TRUE(outer.socket().non_blocking()) << "the socket at the bottom is the one the stack drives";

  // Nothing sent yet: the read does not block, it says to wait until the socket is readable.
  std::array<std::byte, 64> buf;
  wait = readiness::none;
  EXPECT_EQ(outer.read_some(buf, wait, ec), 0U);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(wait, readiness::readable);

  // Up: what the peer sends comes out of the top of the stack, in order.
  const std::string up = "CONNECT, then a PUBLISH, then more";
  asio::write(pair.client, asio::buffer(up));
  EXPECT_EQ(pair.read_through(outer, up.size()), up);
  EXPECT_EQ(outer.bytes_read, up.size());
  EXPECT_EQ(inner.bytes_read, up.size());

  // Down: queued pieces go out through both layers, each write no larger than the smaller window.
  pieces down({"CONNACK", "", " and a payload ", "that spans pieces"});
  const std::string expected = "CONNACK and a payload that spans pieces";
  pair.write_through(outer, down, 3);
  EXPECT_EQ(outer.bytes_written, expected.size());
  EXPECT_EQ(inner.bytes_written, expected.size());
  std::string got(expected.size(), '\0');
  asio::read(pair.client, asio::buffer(got));
  EXPECT_EQ(got, expected);

  // The peer closes: once its FIN is read, the read says eof, through both layers.
  pair.client.shutdown(tcp::socket::shutdown_send);
  for (int tries = 0; tries < 2 && !ec; ++tries) {
    wait = readiness::none;
    EXPECT_EQ(outer.read_some(buf, wait, ec), 0U);
    if (!ec) {
      pair.wait_for(outer, wait);
    }
  }
  EXPECT_EQ(ec, error_code(asio::error::eof)) << ec.message();

  outer.close();
  EXPECT_FALSE(outer.socket().is_open());
}

TEST(stream_stack, a_write_the_peer_cannot_take_asks_for_writability_through_the_layers) {
  loopback pair;
  counting_layer layer(make_tcp_stream(std::move(pair.server)), 1 << 20);
  error_code ec;
  layer.start(ec);
  ASSERT_FALSE(ec) << ec.message();

  // More than the socket buffers hold while the peer reads nothing: writing stops without
  // blocking and asks to wait until the socket is writable.
  std::string big(32 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>('a' + i % 23);
  }
  pieces from({big});
  std::size_t accepted = 0;
  readiness wait = readiness::none;
  for (;;) {
    std::size_t n = layer.write_some(from, wait, ec);
    ASSERT_FALSE(ec) << ec.message();
    if (n == 0) {
      break;
    }
    from.consume(n);
    accepted += n;
    ASSERT_LT(accepted, big.size()) << "the socket took everything: nothing showed the contract";
  }
  EXPECT_EQ(wait, readiness::writable);
  EXPECT_EQ(layer.bytes_written, accepted);

  // The peer reads what was taken; the wait the stream asked for ends and writing goes on.
  std::string got(accepted, '\0');
  asio::read(pair.client, asio::buffer(got));
  EXPECT_TRUE(got == big.substr(0, accepted)) << "bytes came out changed or out of order";
  pair.wait_for(layer, wait);
  wait = readiness::none;
  EXPECT_GT(layer.write_some(from, wait, ec), 0U);
  EXPECT_FALSE(ec) << ec.message();
}

} // namespace
} // namespace firehook::net

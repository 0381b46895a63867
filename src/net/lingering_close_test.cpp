#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "net/lingering_close.hpp"
#include "net/streams.hpp"

namespace firehook::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A connected loopback pair: `client` is an ordinary blocking socket (driven from a thread of its
// own where it must write while the stream's side runs), `stream` is a started TCP stream over the
// other end, as a connection holds one.
struct loopback {
  asio::io_context io;
  tcp::socket client{io};
  std::unique_ptr<stream> server;

  loopback() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    client.connect(acceptor.local_endpoint());
    tcp::socket accepted(io);
    acceptor.accept(accepted);
    server = make_tcp_stream(std::move(accepted));
    error_code ec;
    server->start(ec);
    EXPECT_FALSE(ec) << ec.message();
  }

  // The connection's last packet, written through the stream before it lingers.
  void write_last_packet(const std::string& bytes) {
    struct all final : write_source {
      explicit all(const std::string& b) : bytes(std::as_bytes(std::span(b))) {}
      void visit_pieces(void* visitor, piece_fn call) const override { call(visitor, bytes); }
      std::span<const std::byte> bytes;
    } from(bytes);
    readiness wait = readiness::none;
    error_code ec;
    ASSERT_EQ(server->write_some(from, wait, ec), bytes.size()) << ec.message();
  }

  // Runs the stream's side until `closed` or `limit`; returns how long that took.
  steady_clock::duration run_until(const bool& closed, steady_clock::duration limit) {
    const auto start = steady_clock::now();
    while (!closed && steady_clock::now() - start < limit) {
      io.run_one_for(milliseconds(50));
    }
    return steady_clock::now() - start;
  }
};

// Writes `total` bytes in chunks (or until a write fails), returns the error that stopped it.
error_code write_bytes(tcp::socket& s, std::size_t total) {
  const std::string chunk(std::size_t{16} * 1024, 'p');
  error_code ec;
  for (std::size_t sent = 0; sent < total && !ec; sent += chunk.size()) {
    asio::write(s, asio::buffer(chunk), ec);
  }
  return ec;
}

// Reads until the stream ends; returns what was read and the error that ended it.
std::pair<std::string, error_code> read_to_end(tcp::socket& s) {
  std::string got;
  std::array<char, 4096> buf;
  error_code ec;
  while (!ec) {
    got.append(buf.data(), s.read_some(asio::buffer(buf), ec));
  }
  return {got, ec};
}

TEST(lingering_close, a_peer_still_sending_reads_the_last_packet_and_a_clean_end_then_its_close_ends_it) {
  loopback pair;
  // Unread input when the connection ends: closed at once, the socket would answer with a reset.
  ASSERT_FALSE(write_bytes(pair.client, std::size_t{64} * 1024));
  pair.write_last_packet("DISCONNECT 0x93");

  bool closed = false;
  lingering_close(pair.io, std::move(pair.server), linger_limits{std::chrono::seconds(20), 16 << 20},
                  [&] { closed = true; });
  EXPECT_FALSE(closed);

  std::thread peer([&] {
    // It goes on writing, as a client in the middle of a burst does, and none of it fails.
    EXPECT_FALSE(write_bytes(pair.client, 4 << 20));
    auto [got, end] = read_to_end(pair.client);
    EXPECT_EQ(got, "DISCONNECT 0x93");
    EXPECT_EQ(end, error_code(asio::error::eof)) << "not a clean end: " << end.message();
    pair.client.close();
  });
  const auto took = pair.run_until(closed, std::chrono::seconds(15));
  peer.join();
  EXPECT_TRUE(closed);
  EXPECT_LT(took, std::chrono::seconds(10)) << "it ended when the peer closed, not at its time bound";
}

TEST(lingering_close, a_peer_that_stays_is_closed_at_the_time_bound) {
  loopback pair;
  pair.write_last_packet("CONNACK 0x87");
  bool closed = false;
  lingering_close(pair.io, std::move(pair.server), linger_limits{milliseconds(300), 16 << 20},
                  [&] { closed = true; });

  const auto took = pair.run_until(closed, std::chrono::seconds(10));
  EXPECT_TRUE(closed);
  EXPECT_GE(took, milliseconds(250));
  EXPECT_LT(took, std::chrono::seconds(5));
  auto [got, end] = read_to_end(pair.client);
  EXPECT_EQ(got, "CONNACK 0x87");
  EXPECT_EQ(end, error_code(asio::error::eof)) << end.message();
}

TEST(lingering_close, a_peer_that_floods_is_closed_at_the_byte_bound) {
  loopback pair;
  pair.write_last_packet("DISCONNECT 0x93");
  bool closed = false;
  lingering_close(pair.io, std::move(pair.server),
                  linger_limits{std::chrono::seconds(20), std::size_t{256} * 1024}, [&] { closed = true; });

  error_code stopped;
  std::thread peer([&] { stopped = write_bytes(pair.client, std::size_t{1} << 30); });
  const auto took = pair.run_until(closed, std::chrono::seconds(15));
  peer.join(); // the flood ends because the closed socket resets it, not because it ran out
  EXPECT_TRUE(closed);
  EXPECT_LT(took, std::chrono::seconds(10)) << "it ended at the byte bound, not at its time bound";
  EXPECT_TRUE(stopped == asio::error::connection_reset || stopped == asio::error::broken_pipe)
      << stopped.message();
}

} // namespace
} // namespace firehook::net

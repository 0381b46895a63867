#include "net/lingering_close.hpp"

#include <array>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace firehook::net {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// Bytes discarded in one handler before the shard's other handlers get their turn (the same
// budget a connection reads with).
constexpr std::size_t turn_budget = std::size_t{256} * 1024;

class lingering final : public std::enable_shared_from_this<lingering> {
public:
  lingering(asio::io_context& io, std::unique_ptr<stream> s, linger_limits limits,
            std::function<void()> closed)
      : stream_(std::move(s)), limits_(limits), timer_(io, limits.time), closed_(std::move(closed)) {}

  void start() {
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) {
        self->close();
      }
    });
    shut();
    discard();
  }

private:
  // Moves the shutdown of the sending side on until it is done (TLS: the close_notify may have to
  // wait for room in the socket's buffer; input is discarded meanwhile).
  void shut() {
    if (done_) {
      return;
    }
    readiness wait = readiness::none;
    boost::system::error_code ec;
    if (stream_->shutdown_write(wait, ec)) {
      return;
    }
    if (ec) { // the peer is gone
      close();
      return;
    }
    then(wait == readiness::readable ? tcp::socket::wait_read : tcp::socket::wait_write, &lingering::shut);
  }

  // Once the socket is ready for `w`, `next`; closes on an error; nothing once done.
  void then(tcp::socket::wait_type w, void (lingering::*next)()) {
    stream_->socket().async_wait(w, [self = shared_from_this(), next](const boost::system::error_code& ec) {
      if (self->done_) {
        return;
      }
      if (ec) {
        self->close();
        return;
      }
      ((*self).*next)();
    });
  }

  // Reads and drops what has arrived; closes at the peer's end of stream or at the byte bound.
  void discard() {
    std::array<std::byte, std::size_t{16} * 1024> scratch;
    std::size_t turn = 0;
    while (!done_) {
      boost::system::error_code ec;
      std::size_t n = stream_->socket().read_some(asio::buffer(scratch), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        then(tcp::socket::wait_read, &lingering::discard);
        return;
      }
      if (ec) { // eof: the client has closed its side too; or a reset
        close();
        return;
      }
      discarded_ += n;
      turn += n;
      if (discarded_ >= limits_.bytes) {
        close();
        return;
      }
      if (turn >= turn_budget) {
        asio::post(timer_.get_executor(), [self = shared_from_this()] { self->discard(); });
        return;
      }
    }
  }

  void close() {
    if (done_) {
      return;
    }
    done_ = true;
    timer_.cancel();
    stream_->close(); // the waits above end with operation_aborted
    if (closed_) {
      std::exchange(closed_, nullptr)();
    }
  }

  std::unique_ptr<stream> stream_;
  linger_limits limits_;
  asio::steady_timer timer_;
  std::function<void()> closed_;
  std::size_t discarded_ = 0;
  bool done_ = false; // the socket is closed
};

} // namespace

void lingering_close(asio::io_context& io, std::unique_ptr<stream> s, linger_limits limits,
                     std::function<void()> closed) {
  std::make_shared<lingering>(io, std::move(s), limits, std::move(closed))->start();
}

} // namespace firehook::net

#include "net/streams.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

#include "tls/tls.hpp"

namespace firehook::net {

namespace asio = boost::asio;
using asio::ip::tcp;

std::string stream::handshake_refusal(const boost::system::error_code& ec) const {
  return ec ? "handshake failed: " + ec.message() : "handshake not finished in time";
}

namespace {

// Closes `socket` for a stream that ends. Bytes left unread make the kernel answer close() with a
// reset instead of a FIN, and a client that is still sending then loses what was sent to it last
// (the TLS alert of a refused handshake, a DISCONNECT) before it reads it. So what has arrived is
// drained first, bounded (as much as the connection reads in one turn).
void close_socket(tcp::socket& socket) {
  constexpr std::size_t drain_limit = std::size_t{256} * 1024;
  std::array<std::byte, std::size_t{16} * 1024> discard;
  for (std::size_t drained = 0; drained < drain_limit && socket.is_open();) {
    auto n = ::recv(socket.native_handle(), discard.data(), discard.size(), MSG_DONTWAIT);
    if (n <= 0) {
      break;
    }
    drained += static_cast<std::size_t>(n);
  }
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

class tcp_stream final : public stream {
public:
  explicit tcp_stream(tcp::socket socket) : socket_(std::move(socket)) {}

  void start(boost::system::error_code&) override {
    boost::system::error_code ignored;
    socket_.non_blocking(true, ignored);
  }

  bool handshake(readiness&, boost::system::error_code&) override { return true; }

  std::size_t read_some(std::span<std::byte> into, readiness& wait, boost::system::error_code& ec) override {
    std::size_t n = socket_.read_some(asio::buffer(into.data(), into.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec.clear();
      wait = readiness::readable;
    } else if (!ec && n < into.size()) {
      // A TCP socket that gave less than asked for had nothing more queued: wait now instead of
      // making the read that would only say EAGAIN (one system call per readable event). Nothing
      // that arrives meanwhile is missed: Asio re-arms the descriptor (EPOLL_CTL_MOD, which
      // re-checks readiness) whenever a wait starts.
      wait = readiness::readable;
    }
    return n;
  }

  std::size_t write_some(const write_source& from, readiness& wait, boost::system::error_code& ec) override {
    // Gathered: encoded bytes and payloads from their shared messages, as many as one sendmsg
    // takes (IOV_MAX). Asio's own write_some passes at most 64 buffers, which for a subscriber
    // receiving a busy turn's worth of messages (two pieces each) meant many more system calls.
    std::array<iovec, IOV_MAX> pieces;
    std::size_t count = 0;
    from.visit([&](std::span<const std::byte> piece) {
      pieces[count++] = iovec{const_cast<std::byte*>(piece.data()), piece.size()};
      return count < pieces.size();
    });
    msghdr msg{};
    msg.msg_iov = pieces.data();
    msg.msg_iovlen = count;
    ssize_t n = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL);
    if (n >= 0) {
      return static_cast<std::size_t>(n);
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      wait = readiness::writable;
    } else {
      ec = boost::system::error_code(errno, boost::system::system_category());
    }
    return 0;
  }

  bool shutdown_write(readiness&, boost::system::error_code& ec) override {
    socket_.shutdown(tcp::socket::shutdown_send, ec); // FIN, after what is queued in the kernel
    return !ec;
  }

  void close() override { close_socket(socket_); }

  tcp::socket& socket() override { return socket_; }

private:
  tcp::socket socket_;
};

// The socket BIO under a TLS stream. OpenSSL's own (BIO_s_socket) writes with write(), which
// raises SIGPIPE when the peer has reset the connection; this one sends with MSG_NOSIGNAL, as
// Asio's sockets do. The descriptor is the BIO's data; the BIO never closes it (Asio does).
int socket_bio_fd(BIO* b) {
  return static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(b)));
}

bool retryable(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

int socket_bio_write(BIO* b, const char* data, int size) {
  BIO_clear_retry_flags(b);
  auto n = ::send(socket_bio_fd(b), data, static_cast<std::size_t>(size), MSG_NOSIGNAL);
  if (n < 0 && retryable(errno)) {
    BIO_set_retry_write(b);
  }
  return static_cast<int>(n);
}

int socket_bio_read(BIO* b, char* data, int size) {
  BIO_clear_retry_flags(b);
  auto n = ::recv(socket_bio_fd(b), data, static_cast<std::size_t>(size), 0);
  if (n < 0 && retryable(errno)) {
    BIO_set_retry_read(b);
  } else if (n == 0) {
    BIO_set_flags(b, BIO_FLAGS_IN_EOF); // tells OpenSSL the peer closed without close_notify
  }
  return static_cast<int>(n);
}

long socket_bio_ctrl(BIO* b, int cmd, long, void* ptr) {
  switch (cmd) {
  case BIO_C_SET_FD:
    BIO_set_data(b, reinterpret_cast<void*>(static_cast<std::intptr_t>(*static_cast<int*>(ptr))));
    return 1;
  case BIO_C_GET_FD:
    if (ptr) {
      *static_cast<int*>(ptr) = socket_bio_fd(b);
    }
    return socket_bio_fd(b);
  case BIO_CTRL_EOF:
    return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0;
  case BIO_CTRL_FLUSH: // nothing is buffered here
  case BIO_CTRL_DUP:
    return 1;
  default:
    return 0;
  }
}

int socket_bio_create(BIO* b) {
  BIO_set_data(b, reinterpret_cast<void*>(static_cast<std::intptr_t>(-1)));
  BIO_set_init(b, 1);
  return 1;
}

const BIO_METHOD* socket_bio_method() {
  // Made once and kept for the life of the process (OpenSSL's own methods are static too).
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m =
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "firehook socket");
    if (m) {
      BIO_meth_set_write(m, socket_bio_write);
      BIO_meth_set_read(m, socket_bio_read);
      BIO_meth_set_ctrl(m, socket_bio_ctrl);
      BIO_meth_set_create(m, socket_bio_create);
    }
    return m;
  }();
  return method;
}

// Plaintext per SSL_write: one full TLS record. With SSL_MODE_ENABLE_PARTIAL_WRITE each call
// writes (at most) one record, so staging more would only copy bytes twice.
constexpr std::size_t tls_record_size = SSL3_RT_MAX_PLAIN_LENGTH;

class tls_stream final : public stream {
public:
  // The TLS state is made here, not in start(): the shard asks tls_session() first.
  tls_stream(tcp::socket socket, std::shared_ptr<asio::ssl::context> ctx)
      : socket_(std::move(socket)), ctx_(std::move(ctx)), ssl_(SSL_new(ctx_->native_handle())) {}

  ~tls_stream() override { SSL_free(ssl_); }

  void start(boost::system::error_code& ec) override {
    boost::system::error_code ignored;
    socket_.non_blocking(true, ignored);
    const BIO_METHOD* method = socket_bio_method();
    BIO* bio = ssl_ && method ? BIO_new(method) : nullptr;
    if (!bio) {
      ec = openssl_error();
      ERR_clear_error();
      return;
    }
    BIO_set_fd(bio, socket_.native_handle(), BIO_NOCLOSE);
    SSL_set_bio(ssl_, bio, bio);
    // Writes resume from wherever the queue is gathered next time (a stack buffer) and return
    // after each record, so that the connection knows how far it got.
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Read what the socket has, not a record header and then its body: half the reads for a
    // stream of small records. Reading goes on until OpenSSL wants more from the socket, so
    // nothing read ahead is left waiting for a readiness event that will not come.
    SSL_set_read_ahead(ssl_, 1);
    SSL_set_accept_state(ssl_);
  }

  bool handshake(readiness& wait, boost::system::error_code& ec) override {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      return true;
    }
    classify(r, wait, ec);
    return false;
  }

  std::string handshake_refusal(const boost::system::error_code& ec) const override {
    if (!ec) {
      return "TLS handshake not finished in time";
    }
    return tls::handshake_failure(ssl_, ec);
  }

  std::size_t read_some(std::span<std::byte> into, readiness& wait, boost::system::error_code& ec) override {
    ERR_clear_error();
    std::size_t n = 0;
    int r = SSL_read_ex(ssl_, into.data(), into.size(), &n);
    if (r != 1) {
      classify(r, wait, ec);
      return 0;
    }
    return n;
  }

  std::size_t write_some(const write_source& from, readiness& wait, boost::system::error_code& ec) override {
    // One contiguous record's worth, so that OpenSSL makes full records instead of one per queued
    // piece. A piece that fills a record (or is all that is left) is written from where it is.
    // After WANT_WRITE OpenSSL wants the same bytes again: they are gathered again from where the
    // source's written part ends, which has not moved, so they are the same, at the same length.
    std::array<std::byte, tls_record_size> staging;
    std::span<const std::byte> first;
    std::size_t staged = 0;
    from.visit([&](std::span<const std::byte> piece) {
      if (first.empty()) {
        first = piece;
        return piece.size() < staging.size();
      }
      if (staged == 0) {
        std::memcpy(staging.data(), first.data(), first.size());
        staged = first.size();
      }
      std::size_t take = std::min(piece.size(), staging.size() - staged);
      std::memcpy(staging.data() + staged, piece.data(), take);
      staged += take;
      return staged < staging.size();
    });
    std::span<const std::byte> chunk =
        staged != 0 ? std::span<const std::byte>(staging.data(), staged) : first;
    ERR_clear_error();
    std::size_t n = 0;
    int r = SSL_write_ex(ssl_, chunk.data(), chunk.size(), &n);
    if (r != 1) {
      classify(r, wait, ec);
      return 0;
    }
    return n;
  }

  bool shutdown_write(readiness& wait, boost::system::error_code& ec) override {
    // One close_notify, sent and not waited for: the peer's answer (if it sends one) is discarded
    // with the rest of its input. The first SSL_shutdown queues the alert and may need to wait for
    // room in the socket's buffer; called again, it finishes sending that alert [RFC 8446 6.1].
    // Before the handshake is done there is no session to end: the FIN alone.
    if (ssl_ && SSL_is_init_finished(ssl_) == 1) {
      ERR_clear_error();
      if (int r = SSL_shutdown(ssl_); r < 0) {
        classify(r, wait, ec);
        return false;
      }
    }
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    return !ec;
  }

  void close() override {
    // No close_notify here: a lingering close has sent one, and a connection that ends at once
    // has lost its peer or is being cut off. The BIO forgets the descriptor, which the kernel may
    // give to the next accepted socket.
    if (ssl_ && SSL_get_rbio(ssl_)) {
      BIO_set_fd(SSL_get_rbio(ssl_), -1, BIO_NOCLOSE);
    }
    close_socket(socket_);
  }

  const SSL* tls_session() const override { return ssl_; }
  tcp::socket& socket() override { return socket_; }

private:
  // After an SSL call that returned `r` (not success): what to wait for, or the error that ends
  // the connection. Leaves the thread's OpenSSL error queue empty.
  void classify(int r, readiness& wait, boost::system::error_code& ec) {
    int saved_errno = errno;
    switch (SSL_get_error(ssl_, r)) {
    case SSL_ERROR_WANT_READ:
      wait = readiness::readable;
      break;
    case SSL_ERROR_WANT_WRITE:
      wait = readiness::writable;
      break;
    case SSL_ERROR_ZERO_RETURN: // close_notify
      ec = asio::error::eof;
      break;
    case SSL_ERROR_SYSCALL:
      ec = saved_errno != 0 ? boost::system::error_code(saved_errno, boost::system::system_category())
                            : boost::system::error_code(asio::error::eof);
      break;
    default:
      ec = openssl_error();
      break;
    }
    ERR_clear_error();
  }

  // The error at the head of the thread's OpenSSL error queue (a generic one when it is empty).
  static boost::system::error_code openssl_error() {
    if (unsigned long e = ERR_peek_error(); e != 0) {
      return {static_cast<int>(e), asio::error::get_ssl_category()};
    }
    return asio::error::fault;
  }

  tcp::socket socket_;
  std::shared_ptr<asio::ssl::context> ctx_;
  SSL* ssl_ = nullptr;
};

} // namespace

std::unique_ptr<stream> make_tcp_stream(tcp::socket socket) {
  return std::make_unique<tcp_stream>(std::move(socket));
}

std::unique_ptr<stream> make_tls_stream(tcp::socket socket, std::shared_ptr<asio::ssl::context> ctx) {
  return std::make_unique<tls_stream>(std::move(socket), std::move(ctx));
}

} // namespace firehook::net

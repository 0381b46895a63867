#pragma once
// The streams that carry a connection's bytes between its socket and its MQTT decoder. A
// net::connection (connection.hpp) holds one `stream` and drives it; the stream is TCP, TLS, or a
// layer over one of them. The connection calls it on the shard's thread only.
//
//   TCP         the socket itself. A read that returns less than it asked for means the socket is
//               drained, so the connection waits instead of making the read that would say EAGAIN.
//               A write gathers the queue into one sendmsg (up to IOV_MAX pieces), MSG_NOSIGNAL.
//   TLS         OpenSSL driven directly on the non-blocking socket, not Asio's ssl::stream, whose
//               four 17 KiB buffers every idle connection would hold; OpenSSL's own record buffers
//               are released when idle (SSL_MODE_RELEASE_BUFFERS, set on the context in tls.cpp).
//               The handshake comes first, bounded by limits.tls_handshake_timeout; the broker hears of
//               the connection (on_accept, with the client certificate) only once it is done. A
//               write stages at most one full record; OpenSSL reads ahead, so bytes may wait inside
//               it that no readiness event announces (which is why the connection reads before it
//               waits). A lingering close sends close_notify before the FIN, so that the peer's
//               TLS sees the end of the stream as such and not as a truncation; it does not wait
//               for the peer's close_notify.
//   socket BIO  OpenSSL's I/O under TLS: recv, and send with MSG_NOSIGNAL, because OpenSSL's own
//               socket BIO writes with write(), which raises SIGPIPE when the peer has reset the
//               connection. It never closes the descriptor (Asio does) and forgets it when the
//               stream closes, since the kernel may give that number to the next socket.
//
// The contract a stream keeps towards the connection (`readiness`): handshake, read_some and
// write_some never block; they move what they can now, and when they can move nothing they say
// what to wait for or set the error that ends the connection (eof when the peer closed it). The
// connection waits for that readiness on socket(), the one socket at the bottom of the stack.
//
// Adding a layer: a layer is a `stream` that holds the stream below it (a std::unique_ptr<stream>:
// TCP, TLS or another layer) and keeps the same contract both ways. A WebSocket layer (RFC 6455),
// say, goes between TCP or TLS and the decoder:
//   - towards the connection, its read_some gives the payload of binary frames, and its write_some
//     sends the bytes of the write_source it is given as frames and returns how many of them went;
//   - towards the layer below, it calls that layer's read_some and write_some and passes on, in
//     its own `wait`, the readiness that layer asked for: the connection waits for it on socket(),
//     which, like tls_session() and close(), the layer forwards to the one below;
//   - what it writes below is a write_source of its own, on the stack of its write_some, that
//     visits its frame header and then the pieces of the source above, so a write still copies and
//     allocates nothing (TCP gathers it into one sendmsg; TLS stages it into one record);
//   - its own handshake (the HTTP Upgrade) runs in its handshake() once the one below has said
//     done, so that, like TLS's, it ends before the broker hears of the connection and within the
//     same timeout; its handshake_refusal names the layer whose handshake failed;
//   - its shutdown_write ends its own framing (a Close frame) and then calls the one below's.
// Like OpenSSL, a layer may hold bytes already taken from below (a frame larger than the read
// buffer) that no readiness event announces; the connection reads before it waits, so they are
// not stranded. A new kind of stream gets its factory here; the shard builds the stack for each
// accepted socket (net::shard::adopt). streams_test.cpp stacks layers over TCP this way.
//
// Memory: TCP and TLS hold no buffers of their own between calls (TLS's are OpenSSL's, released
// when idle); what a read or write needs lives on the stack of the call. A layer should do the
// same, since every idle connection holds its stack.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

namespace firehook::net {

// What a stream operation that could not go on needs before it is tried again. TLS may need to
// write to read (a key update answered) or, in principle, to read to write.
enum class readiness : std::uint8_t { none, readable, writable };

// The bytes a write may take, as pieces in order that stay where they are during the write: the
// connection's queued segments, or a layer's framing around the pieces of the source above it.
// Visiting makes no copy and allocates nothing.
class write_source {
public:
  // Calls `piece(std::span<const std::byte>)` for the bytes not yet written, in order, while it
  // returns true.
  template <typename F>
  void visit(F&& piece) const {
    using visitor = std::remove_reference_t<F>;
    visit_pieces(static_cast<void*>(&piece), [](void* v, std::span<const std::byte> bytes) {
      return (*static_cast<visitor*>(v))(bytes);
    });
  }

protected:
  ~write_source() = default; // lives on the stack of the call that writes; never deleted through
  using piece_fn = bool (*)(void* visitor, std::span<const std::byte> bytes);
  // Calls `call(visitor, bytes)` for each piece in order while it returns true.
  virtual void visit_pieces(void* visitor, piece_fn call) const = 0;
};

class stream {
public:
  virtual ~stream() = default;

  // Makes the stream ready to be driven: the socket non-blocking, TLS's state. Sets `ec` when it
  // cannot (TLS state that OpenSSL could not make); the connection then logs it and ends.
  virtual void start(boost::system::error_code& ec) = 0;

  // Moves the opening handshake on as far as it can now. True once it is done (at once for TCP);
  // otherwise `wait` says what to wait for before calling again, or `ec` is set: the handshake
  // failed and the client is refused.
  virtual bool handshake(readiness& wait, boost::system::error_code& ec) = 0;

  // The reason the refusal event gives for a handshake that failed with `ec` ("TLS handshake
  // failed: ..."), or, when `ec` is empty, that did not finish within limits.tls_handshake_timeout.
  virtual std::string handshake_refusal(const boost::system::error_code& ec) const;

  // Each moves what it can now and returns how many bytes; when it can move none it returns 0 and
  // sets `wait`, or sets `ec` when the stream is over (eof when the peer closed it). A read may
  // also set `wait` beside the bytes it returns when it knows the next read would block (TCP: a
  // short read).
  virtual std::size_t read_some(std::span<std::byte> into, readiness& wait,
                                boost::system::error_code& ec) = 0;
  // Writes from the front of `from` (the caller consumes what it returns). After `wait`, the
  // caller offers the same bytes again (TLS requires it after WANT_WRITE).
  virtual std::size_t write_some(const write_source& from, readiness& wait,
                                 boost::system::error_code& ec) = 0;

  // Ends the sending side once everything written has gone, so that the peer reads it all and then
  // a clean end of stream (TCP: FIN; TLS: close_notify, then FIN); reading stays possible. True
  // when done; otherwise sets `wait` (call again after it) or `ec` (the peer is gone). Called
  // after the connection's last write, for a lingering close (lingering_close.hpp); nothing is
  // written or read through the stream after it.
  virtual bool shutdown_write(readiness& wait, boost::system::error_code& ec) = 0;

  // Closes the stream and its socket, without waiting for the peer; waits pending on socket() end
  // with operation_aborted. Called once, when the connection ends.
  virtual void close() = 0;

  // The TLS session, for the client certificate and checks after a CRL reload; null without TLS.
  virtual const SSL* tls_session() const { return nullptr; }

  // The socket at the bottom of the stack, which the connection waits on for the readiness a
  // stream operation asked for, and watches for the peer hanging up.
  virtual boost::asio::ip::tcp::socket& socket() = 0;
};

// Plain TCP over `socket`.
std::unique_ptr<stream> make_tcp_stream(boost::asio::ip::tcp::socket socket);

// TLS over `socket` using `ctx` (kept alive by the stream). Returned even when OpenSSL cannot make
// its TLS state: start() then says why.
std::unique_ptr<stream> make_tls_stream(boost::asio::ip::tcp::socket socket,
                                        std::shared_ptr<boost::asio::ssl::context> ctx);

} // namespace firehook::net

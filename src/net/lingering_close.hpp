#pragma once
// The end of a connection that the broker closes after writing its last packets (a DISCONNECT, a
// CONNACK refusal): a lingering close. Closing the socket while the client is still sending makes
// the kernel answer with a reset, and a client in the middle of a write then sees "broken pipe" or
// "connection reset" instead of reading the reason code it was sent. So the stream's sending side
// is shut first (stream::shutdown_write: TCP FIN; TLS close_notify, then FIN), then what the
// client still sends is read and thrown away until it closes its side, and only then is the
// socket closed.
//
// Input is discarded from the socket at the bottom of the stack, below every layer: nothing read
// now is used, so nothing is decrypted or parsed, and a TLS layer that has sent its close_notify
// has nothing to answer.
//
// Bounds: a client cannot hold the socket. It is closed after `limits.time`, or once
// `limits.bytes` have been discarded, whichever comes first (and then the kernel resets it if the
// client still sends). Discarded bytes go through a buffer on the stack of each read; nothing is
// kept between reads, and a read turn gives way to other handlers as a connection's does.
//
// Lifetime and threads: lingering_close takes the stream and keeps it in an object that its own
// pending handlers keep alive, on `io`'s thread, until the socket is closed; `closed` is then
// called, once, on that thread (possibly before lingering_close returns, when the stream cannot
// even be shut). If `io` is destroyed first, the stream is destroyed with its handlers (its socket
// closed) and `closed` is never called.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>

#include "net/streams.hpp"

namespace firehook::net {

struct linger_limits {
  std::chrono::steady_clock::duration time = std::chrono::seconds(2);
  std::size_t bytes = std::size_t{1} << 20;
};

// Shuts `s`'s sending side, drains its input within `limits`, closes it, then calls `closed`.
// `s` has been started, and nothing more is written to it.
void lingering_close(boost::asio::io_context& io, std::unique_ptr<stream> s, linger_limits limits,
                     std::function<void()> closed);

} // namespace firehook::net

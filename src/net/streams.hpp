#pragma once
// The streams that carry a connection's bytes between its socket and its MQTT decoder, and the
// factories that make a connection with one. Each stream is a subclass of net::connection that
// implements the stream side of it (connection.hpp): start(), read_some(), write_some(),
// close_stream() and, for TLS, tls_session(). The connection's reactive loop calls them on the
// shard's thread only.
//
//   TCP         the socket itself. A read that returns less than it asked for means the socket is
//               drained, so the connection waits instead of making the read that would say EAGAIN.
//               A write gathers the queue into one sendmsg (up to IOV_MAX pieces), MSG_NOSIGNAL.
//   TLS         OpenSSL driven directly on the non-blocking socket, not Asio's ssl::stream, whose
//               four 17 KiB buffers every idle connection would hold; OpenSSL's own record buffers
//               are released when idle (SSL_MODE_RELEASE_BUFFERS, set on the context in tls.cpp).
//               The handshake comes first, bounded by limits.connect_timeout; the broker hears of
//               the connection (on_accept, with the client certificate) only once it is done. A
//               write stages at most one full record; OpenSSL reads ahead, so bytes may wait inside
//               it that no readiness event announces (which is why the connection reads before it
//               waits).
//   socket BIO  OpenSSL's I/O under TLS: recv, and send with MSG_NOSIGNAL, because OpenSSL's own
//               socket BIO writes with write(), which raises SIGPIPE when the peer has reset the
//               connection. It never closes the descriptor (Asio does) and forgets it when the
//               connection closes, since the kernel may give that number to the next socket.
//
// The contract a stream keeps towards the connection (connection.hpp, `readiness`): read_some and
// write_some never block; they move what they can now, and when they can move nothing they say
// what to wait for or set the error that ends the connection (eof when the peer closed it).
//
// Adding a layer (not done yet): a WebSocket layer (RFC 6455) goes between TCP or TLS and the
// decoder and keeps the same contract both ways. Towards the connection, its read_some gives the
// payload of binary frames and its write_some sends the queue as frames; towards the layer below,
// it calls that layer's read_some and write_some and passes on the readiness that layer asks for.
// Its HTTP Upgrade handshake runs, like TLS's, before the broker hears of the connection. Like
// OpenSSL, it may hold bytes already taken from below (a frame larger than the read buffer) that
// no readiness event announces; the connection already reads before it waits. Today TCP and TLS
// are each a connection subclass directly over the socket, so stacking needs one step first: their
// read and write code moves into stream objects that a connection holds (the same operations), so
// that the WebSocket layer can hold either one as the layer below. A new kind of stream gets its
// factory here; the shard picks one per accepted socket (net::shard::adopt).

#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "broker/transport.hpp"
#include "mqtt/codec.hpp"
#include "net/connection.hpp"

namespace firehook::net {

// A plain TCP connection. The caller (the shard) keeps it in its table and calls start().
std::shared_ptr<connection> make_tcp_connection(shard& owner, broker::connection_id id,
                                                boost::asio::ip::tcp::socket socket,
                                                mqtt::decode_limits limits);

// A TLS connection using `ctx` (kept alive by the connection); the same caller's duties. It is
// returned even when OpenSSL cannot make its TLS state: start() then logs why and ends it.
std::shared_ptr<connection> make_tls_connection(shard& owner, broker::connection_id id,
                                                boost::asio::ip::tcp::socket socket,
                                                mqtt::decode_limits limits,
                                                std::shared_ptr<boost::asio::ssl::context> ctx);

} // namespace firehook::net

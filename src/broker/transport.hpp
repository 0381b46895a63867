#pragma once
// What the network layer does for one broker shard. net::shard implements it; tests use a fake.
//
// Threading: a transport belongs to one shard thread. Every call is made on that thread (except
// post_to_shard, below), and every callback it runs (defer, post_to_shard tasks) runs on the thread
// of the shard it targets.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "mqtt/message.hpp"

namespace firehook::broker {

// Unique for the life of the process, across all shards.
using connection_id = std::uint64_t;

class transport {
public:
  virtual ~transport() = default;

  // Appends bytes to the connection's write queue (copied). Queued bytes of all kinds are written
  // together when the current event-loop turn ends, many packets per system call.
  virtual void send(connection_id id, std::span<const std::byte> bytes) = 0;

  // Appends `owner->payload` to the write queue without copying it: it is written from the
  // shared message, which the transport keeps alive until written. Used after the bytes of
  // mqtt::encode_publish_header().
  virtual void send_payload(connection_id id, mqtt::message_ptr owner) = 0;

  // Closes the connection: after the queued bytes are written (flush = true, e.g. after a
  // CONNACK refusal or DISCONNECT), or at once. The shard is told with on_closed() either way,
  // later, never from inside this call.
  virtual void close(connection_id id, bool flush) = 0;

  // Backpressure: stop or resume reading from a connection.
  virtual void pause_reading(connection_id id, bool paused) = 0;

  // Bytes queued for the connection and not yet accepted by the kernel.
  virtual std::size_t queued_bytes(connection_id id) const = 0;

  // Runs `task` on this shard's thread after the current handlers (used to flush batches at the
  // end of a turn).
  virtual void defer(std::function<void()> task) = 0;

  // Runs `task` on shard `shard`'s thread. Cross-shard hand-over goes through here; callers batch,
  // so this is called about once per target shard per turn, not once per message. The one call
  // that may come from another thread: the authentication workers hand a verdict back with it
  // (broker/authentication.hpp), so implementations must make it thread-safe.
  virtual void post_to_shard(unsigned shard, std::function<void()> task) = 0;
};

} // namespace firehook::broker

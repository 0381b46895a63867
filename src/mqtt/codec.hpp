#pragma once
// The MQTT wire codec: a pure function of bytes. No I/O, no exceptions on the decode or encode path.
//
// Fixed header (all versions):
//   byte 1        packet type (4 bits) | flags (4 bits)
//   byte 2..5     remaining length, variable byte integer (1 to 4 bytes, at most 268,435,455)
// followed by `remaining length` bytes of variable header and payload, as each packet type defines.
//
// decode() reads exactly one packet from the front of a span and says how many bytes it used. It
// checks every length against the end of the span and rejects a packet larger than the limit from
// its fixed header alone, before the body has arrived. The protocol version decides how the packet
// is read: the first packet of a connection is read with `std::nullopt` and must be CONNECT, whose
// protocol level then fixes the version for the rest of the connection (stream_decoder does that).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "mqtt/packet.hpp"

namespace firehook::mqtt {

struct decode_limits {
  // Largest whole packet (fixed header included) accepted. The spec's largest is 268,435,460 bytes.
  std::uint32_t max_packet_size = 268'435'460;
};

enum class decode_status : std::uint8_t {
  complete,  // `packet` holds a packet that used `consumed` bytes
  need_more, // the span holds only part of a packet; nothing was used
  error,     // `error` says why; the connection must be closed (with to_reason_code(error) in 5.0)
};

struct decode_result {
  decode_status status = decode_status::need_more;
  std::size_t consumed = 0;
  std::error_code error;
  packet pkt;
};

// Reads one packet. `version` is nullopt before CONNECT: then only a CONNECT is accepted.
decode_result decode(std::span<const std::byte> bytes, std::optional<protocol_version> version,
                     const decode_limits& limits);

// Takes bytes as they arrive (any split) and yields whole packets. Keeps only the bytes of the
// packet being assembled, and no memory at all between packets. After an error it stays in the
// error state.
class stream_decoder {
public:
  explicit stream_decoder(decode_limits limits = {}) : limits_(limits) {}

  // Appends bytes that arrived. Nothing is decoded until next() is called.
  void feed(std::span<const std::byte> bytes);

  // The next whole packet (status complete), need_more, or the error that ends the connection.
  // The first packet decoded must be CONNECT; its protocol level sets version().
  decode_result next();

  std::optional<protocol_version> version() const { return version_; }
  // For a client-side decoder (bridge, load generator): the version it sent in its own CONNECT.
  void set_version(protocol_version v) { version_ = v; }
  void set_limits(decode_limits limits) { limits_ = limits; }
  std::size_t buffered() const { return buffer_.size() - start_; }
  // Bytes of memory the buffer holds: 0 once everything fed has been decoded.
  std::size_t buffer_capacity() const { return buffer_.capacity(); }

private:
  decode_limits limits_;
  std::optional<protocol_version> version_;
  std::vector<std::byte> buffer_;
  std::size_t start_ = 0; // bytes of buffer_ already consumed
  std::error_code error_; // once set, every next() returns it and feed() drops what it is given
};

// Encodes `p` for `version` and appends it to `out`. Returns the number of bytes appended.
// The caller is responsible for the packet being valid for that version (e.g. no AUTH in 3.1.1);
// fields the version does not have are left out. Encoding never fails for packets the decoder
// would accept.
std::size_t encode(const packet& p, protocol_version version, std::vector<std::byte>& out);

// Appends everything of a PUBLISH except its payload, so that the caller can send the payload
// from where it already is (gathered write) instead of copying it. `p.payload` is ignored; the
// remaining length counts `payload_size` payload bytes. The bytes appended followed by the
// payload make the whole packet.
std::size_t encode_publish_header(const publish& p, std::size_t payload_size, protocol_version version,
                                  std::vector<std::byte>& out);

// Size on the wire of `p` encoded for `version` (fixed header included), without encoding it.
// Used to honour the peer's Maximum Packet Size [MQTT-3.1.2-24].
std::size_t encoded_size(const packet& p, protocol_version version);

} // namespace firehook::mqtt

#pragma once
// What the load generator reads and writes on the hot path, without the codec's copies.
//
// The generator must outrun the broker it measures while sharing one core with nothing else, so the
// packets that arrive by the hundred thousand per second (PUBLISH and the four acknowledgements) are
// read in place from the receive buffer: no std::string for topic or payload, no properties struct.
// Everything else (CONNACK, SUBACK, DISCONNECT, ...) goes through mqtt::decode, and `--full-decode`
// sends every packet through mqtt::stream_decoder instead, as a cross-check of both.
//
// Wire grammar read here (MQTT 3.1.1 section 3.3 and 3.4-3.7, 5.0 section 3.3-3.7):
//   fixed header   type << 4 | flags, remaining length (variable byte integer, 1..4 bytes)
//   PUBLISH        topic (u16 length + bytes), packet id (u16, QoS > 0 only),
//                  5.0: property length (variable byte integer) + properties, then the payload
//   PUBACK..       packet id (u16); 5.0: reason code (1 byte, absent = 0x00), property length + properties
//
// Every application message the generator sends starts with a 16-byte stamp (little endian):
//   bytes 0..7   publisher index << 40 | sequence number (per publisher, from 0)
//   bytes 8..15  send time, steady clock nanoseconds: the scheduled time in open loop, so that a
//                late send counts as latency (no coordinated omission)

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace firehook::bench {

enum class frame_status : std::uint8_t { complete, need_more, malformed };

// The fixed header of the packet at the front of a buffer.
struct frame {
  std::uint8_t first_byte = 0; // type << 4 | flags
  std::size_t header_size = 0; // fixed header bytes
  std::size_t packet_size = 0; // whole packet, fixed header included
  std::uint8_t type() const { return static_cast<std::uint8_t>(first_byte >> 4); }
};

// Reads the fixed header at the front of `bytes`. need_more until the whole packet is there;
// malformed when the remaining length is not a valid variable byte integer.
frame_status read_frame(std::span<const std::byte> bytes, frame& out);

struct publish_view {
  std::uint8_t qos = 0;
  bool dup = false;
  bool retain = false;
  std::uint16_t packet_id = 0;
  std::string_view topic;
  std::span<const std::byte> payload;
};

// Reads a whole PUBLISH packet (as framed by read_frame). False when malformed.
bool read_publish(std::span<const std::byte> packet, const frame& f, bool v5, publish_view& out);

struct ack_view {
  std::uint16_t packet_id = 0;
  std::uint8_t reason = 0; // 0x00 when absent (3.1.1, or 5.0 short form)
};

// Reads a whole PUBACK, PUBREC, PUBREL or PUBCOMP. False when malformed.
bool read_ack(std::span<const std::byte> packet, const frame& f, ack_view& out);

inline constexpr std::size_t stamp_size = 16;
inline constexpr unsigned publisher_shift = 40;
inline constexpr std::uint64_t max_sequence = (std::uint64_t{1} << publisher_shift) - 1;
inline constexpr std::uint32_t max_publishers = 1u << 24;

struct stamp {
  std::uint32_t publisher = 0;
  std::uint64_t sequence = 0;
  std::int64_t sent_ns = 0;
};

void write_stamp(std::byte* to, const stamp& s);
stamp read_stamp(const std::byte* from);

// Appends an acknowledgement (PUBACK 0x40, PUBREC 0x50, PUBREL 0x62, PUBCOMP 0x70) with reason
// Success: 4 bytes in every version (5.0 allows leaving out a Success reason code and no properties).
void append_ack(std::byte first_byte, std::uint16_t packet_id, std::byte* to);
inline constexpr std::size_t ack_size = 4;

} // namespace firehook::bench

#include "wire.hpp"

namespace firehook::bench {
namespace {

std::uint16_t read_u16(const std::byte* p) {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) | std::to_integer<unsigned>(p[1]));
}

// Variable byte integer at bytes[pos...end): at most 4 bytes [MQTT-1.5.5-1]. Returns bytes used, 0 when
// malformed, and sets `incomplete` when the buffer ends before the integer does.
std::size_t read_varint(std::span<const std::byte> bytes, std::size_t pos, std::uint32_t& value,
                        bool& incomplete) {
  value = 0;
  incomplete = false;
  for (std::size_t i = 0; i < 4; ++i) {
    if (pos + i >= bytes.size()) {
      incomplete = true;
      return 0;
    }
    const auto b = std::to_integer<std::uint32_t>(bytes[pos + i]);
    value |= (b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      return i + 1;
    }
  }
  return 0;
}

} // namespace

frame_status read_frame(std::span<const std::byte> bytes, frame& out) {
  if (bytes.size() < 2) {
    return frame_status::need_more;
  }
  std::uint32_t remaining = 0;
  bool incomplete = false;
  const std::size_t n = read_varint(bytes, 1, remaining, incomplete);
  if (n == 0) {
    return incomplete ? frame_status::need_more : frame_status::malformed;
  }
  out.first_byte = std::to_integer<std::uint8_t>(bytes[0]);
  out.header_size = 1 + n;
  out.packet_size = out.header_size + remaining;
  return bytes.size() >= out.packet_size ? frame_status::complete : frame_status::need_more;
}

bool read_publish(std::span<const std::byte> packet, const frame& f, bool v5, publish_view& out) {
  out.qos = static_cast<std::uint8_t>((f.first_byte >> 1) & 3);
  out.dup = (f.first_byte & 0x08) != 0;
  out.retain = (f.first_byte & 0x01) != 0;
  if (out.qos == 3) {
    return false;
  }
  std::size_t pos = f.header_size;
  const std::size_t end = f.packet_size;
  if (end > packet.size() || pos + 2 > end) {
    return false;
  }
  const std::size_t topic_size = read_u16(&packet[pos]);
  pos += 2;
  if (pos + topic_size > end) {
    return false;
  }
  out.topic = std::string_view(reinterpret_cast<const char*>(&packet[pos]), topic_size);
  pos += topic_size;
  out.packet_id = 0;
  if (out.qos > 0) {
    if (pos + 2 > end) {
      return false;
    }
    out.packet_id = read_u16(&packet[pos]);
    pos += 2;
    if (out.packet_id == 0) {
      return false; // [MQTT-2.2.1-3]
    }
  }
  if (v5) {
    std::uint32_t props = 0;
    bool incomplete = false;
    const std::size_t n = read_varint(packet.first(end), pos, props, incomplete);
    if (n == 0 || pos + n + props > end) {
      return false;
    }
    pos += n + props;
  }
  out.payload = packet.subspan(pos, end - pos);
  return true;
}

bool read_ack(std::span<const std::byte> packet, const frame& f, ack_view& out) {
  const std::size_t remaining = f.packet_size - f.header_size;
  if (f.packet_size > packet.size() || remaining < 2) {
    return false;
  }
  out.packet_id = read_u16(&packet[f.header_size]);
  out.reason = remaining >= 3 ? std::to_integer<std::uint8_t>(packet[f.header_size + 2]) : 0;
  return out.packet_id != 0;
}

void write_stamp(std::byte* to, const stamp& s) {
  const std::uint64_t id = (std::uint64_t{s.publisher} << publisher_shift) | (s.sequence & max_sequence);
  const auto ts = static_cast<std::uint64_t>(s.sent_ns);
  for (unsigned i = 0; i < 8; ++i) {
    to[i] = static_cast<std::byte>(id >> (8 * i));
    to[8 + i] = static_cast<std::byte>(ts >> (8 * i));
  }
}

stamp read_stamp(const std::byte* from) {
  std::uint64_t id = 0;
  std::uint64_t ts = 0;
  for (unsigned i = 0; i < 8; ++i) {
    id |= std::to_integer<std::uint64_t>(from[i]) << (8 * i);
    ts |= std::to_integer<std::uint64_t>(from[8 + i]) << (8 * i);
  }
  return {static_cast<std::uint32_t>(id >> publisher_shift), id & max_sequence,
          static_cast<std::int64_t>(ts)};
}

void append_ack(std::byte first_byte, std::uint16_t packet_id, std::byte* to) {
  to[0] = first_byte;
  to[1] = std::byte{2};
  to[2] = static_cast<std::byte>(packet_id >> 8);
  to[3] = static_cast<std::byte>(packet_id & 0xff);
}

} // namespace firehook::bench

// The generator's in-place reading of PUBLISH and acknowledgements must agree with the codec the
// broker uses: packets are made here with mqtt::encode and read back with bench/wire.

#include <gtest/gtest.h>

#include <vector>

#include "mqtt/codec.hpp"
#include "wire.hpp"

namespace firehook::bench {
namespace {

std::vector<std::byte> encoded(const mqtt::packet& p, mqtt::protocol_version v) {
  std::vector<std::byte> out;
  mqtt::encode(p, v, out);
  return out;
}

TEST(Stamp, RoundTrips) {
  std::byte buf[stamp_size];
  write_stamp(buf, {.publisher = 99, .sequence = 123'456'789, .sent_ns = 987'654'321'012});
  const stamp s = read_stamp(buf);
  EXPECT_EQ(s.publisher, 99u);
  EXPECT_EQ(s.sequence, 123'456'789u);
  EXPECT_EQ(s.sent_ns, 987'654'321'012);
}

TEST(ReadFrame, NeedsTheWholePacket) {
  mqtt::publish p;
  p.topic = "a/b";
  p.payload = std::string(200, 'x'); // a two-byte remaining length
  const auto bytes = encoded(p, mqtt::protocol_version::v3_1_1);
  frame f;
  EXPECT_EQ(read_frame(std::span(bytes).first(1), f), frame_status::need_more);
  EXPECT_EQ(read_frame(std::span(bytes).first(2), f), frame_status::need_more);
  EXPECT_EQ(read_frame(std::span(bytes).first(bytes.size() - 1), f), frame_status::need_more);
  ASSERT_EQ(read_frame(bytes, f), frame_status::complete);
  EXPECT_EQ(f.header_size, 3u);
  EXPECT_EQ(f.packet_size, bytes.size());
  EXPECT_EQ(f.type(), 3);
}

TEST(ReadFrame, RejectsAFiveByteRemainingLength) {
  const std::vector<std::byte> bytes{std::byte{0x30}, std::byte{0xff}, std::byte{0xff},
                                     std::byte{0xff}, std::byte{0xff}, std::byte{0x01}};
  frame f;
  EXPECT_EQ(read_frame(bytes, f), frame_status::malformed);
}

TEST(ReadPublish, ReadsTopicPacketIdAndPayloadInBothVersions) {
  for (const auto v : {mqtt::protocol_version::v3_1_1, mqtt::protocol_version::v5}) {
    mqtt::publish p;
    p.qos = mqtt::qos::at_least_once;
    p.dup = true;
    p.packet_id = 4242;
    p.topic = "fhb/x/7";
    p.payload = "0123456789abcdef-payload";
    if (v == mqtt::protocol_version::v5) {
      p.props.message_expiry_interval = 60; // properties must be skipped, not read as payload
      p.props.content_type = "text/plain";
    }
    const auto bytes = encoded(p, v);
    frame f;
    ASSERT_EQ(read_frame(bytes, f), frame_status::complete);
    publish_view view;
    ASSERT_TRUE(read_publish(bytes, f, v == mqtt::protocol_version::v5, view));
    EXPECT_EQ(view.qos, 1);
    EXPECT_TRUE(view.dup);
    EXPECT_EQ(view.packet_id, 4242);
    EXPECT_EQ(view.topic, "fhb/x/7");
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(view.payload.data()), view.payload.size()),
              p.payload);
  }
}

TEST(ReadPublish, RejectsPacketIdZeroAndATopicPastTheEnd) {
  // QoS 1, topic "a", packet id 0 [MQTT-2.2.1-3]
  const std::vector<std::byte> zero_id{std::byte{0x32}, std::byte{5}, std::byte{0}, std::byte{1},
                                       std::byte{'a'},  std::byte{0}, std::byte{0}};
  frame f;
  ASSERT_EQ(read_frame(zero_id, f), frame_status::complete);
  publish_view view;
  EXPECT_FALSE(read_publish(zero_id, f, false, view));

  // QoS 0, topic length 9 in a 3-byte body
  const std::vector<std::byte> long_topic{std::byte{0x30}, std::byte{3}, std::byte{0}, std::byte{9},
                                          std::byte{'a'}};
  ASSERT_EQ(read_frame(long_topic, f), frame_status::complete);
  EXPECT_FALSE(read_publish(long_topic, f, false, view));
}

TEST(ReadAck, ReadsPacketIdAndReasonCode) {
  mqtt::puback ok;
  ok.packet_id = 7;
  auto bytes = encoded(ok, mqtt::protocol_version::v5);
  frame f;
  ASSERT_EQ(read_frame(bytes, f), frame_status::complete);
  ack_view a;
  ASSERT_TRUE(read_ack(bytes, f, a));
  EXPECT_EQ(a.packet_id, 7);
  EXPECT_EQ(a.reason, 0x00);

  mqtt::pubrec refused;
  refused.packet_id = 8;
  refused.reason = mqtt::reason_code::not_authorized;
  bytes = encoded(refused, mqtt::protocol_version::v5);
  ASSERT_EQ(read_frame(bytes, f), frame_status::complete);
  ASSERT_TRUE(read_ack(bytes, f, a));
  EXPECT_EQ(a.packet_id, 8);
  EXPECT_EQ(a.reason, 0x87);
}

TEST(AppendAck, IsWhatTheCodecDecodes) {
  std::byte buf[ack_size];
  append_ack(std::byte{0x62}, 513, buf); // PUBREL
  const auto r = mqtt::decode(std::span<const std::byte>(buf, ack_size), mqtt::protocol_version::v5,
                              mqtt::decode_limits{});
  ASSERT_EQ(r.status, mqtt::decode_status::complete);
  ASSERT_TRUE(std::holds_alternative<mqtt::pubrel>(r.pkt));
  EXPECT_EQ(std::get<mqtt::pubrel>(r.pkt).packet_id, 513);
}

} // namespace
} // namespace firehook::bench

// stream_decoder: any split of the bytes gives the same packets; oversized packets are refused from
// their fixed header; errors are final.

#include <gtest/gtest.h>

#include "mqtt/codec.hpp"
#include "mqtt/error.hpp"
#include "mqtt/test_packets.hpp"

namespace firehook::mqtt {
namespace {

using test::bytes;
using test::encoded;

// A connection's worth of packets: CONNECT first, then every other sample of that version.
std::vector<packet> conversation(protocol_version v) {
  std::vector<packet> out = test::sample_packets(v);
  return out; // sample_packets starts with CONNECT and has no second one
}

std::vector<std::byte> wire_of(const std::vector<packet>& packets, protocol_version v) {
  std::vector<std::byte> out;
  for (const packet& p : packets) {
    encode(p, v, out);
  }
  return out;
}

// Feeds `stream` in pieces of `piece` bytes and collects every packet.
std::vector<packet> feed_in_pieces(std::span<const std::byte> stream, std::size_t piece, stream_decoder& d) {
  std::vector<packet> got;
  for (std::size_t i = 0; i < stream.size(); i += piece) {
    d.feed(stream.subspan(i, std::min(piece, stream.size() - i)));
    while (true) {
      decode_result r = d.next();
      if (r.status == decode_status::need_more) {
        break;
      }
      EXPECT_EQ(r.status, decode_status::complete) << r.error.message();
      if (r.status != decode_status::complete) {
        return got;
      }
      got.push_back(std::move(r.pkt));
    }
  }
  return got;
}

class stream : public ::testing::TestWithParam<protocol_version> {};

TEST_P(stream, byte_by_byte) {
  const protocol_version v = GetParam();
  const auto packets = conversation(v);
  const auto b = wire_of(packets, v);
  stream_decoder d;
  EXPECT_EQ(feed_in_pieces(b, 1, d), packets);
  EXPECT_EQ(d.version(), v);
  EXPECT_EQ(d.buffered(), 0u);
}

TEST_P(stream, every_piece_size) {
  const protocol_version v = GetParam();
  const auto packets = conversation(v);
  const auto b = wire_of(packets, v);
  for (const std::size_t piece : {2u, 3u, 5u, 7u, 64u, 1000u}) {
    stream_decoder d;
    EXPECT_EQ(feed_in_pieces(b, piece, d), packets) << piece;
  }
}

TEST_P(stream, several_packets_in_one_feed) {
  const protocol_version v = GetParam();
  const auto packets = conversation(v);
  const auto b = wire_of(packets, v);
  stream_decoder d;
  d.feed(b);
  EXPECT_EQ(d.buffered(), b.size());
  std::vector<packet> got;
  for (decode_result r = d.next(); r.status == decode_status::complete; r = d.next()) {
    got.push_back(std::move(r.pkt));
  }
  EXPECT_EQ(got, packets);
  EXPECT_EQ(d.buffered(), 0u);
}

INSTANTIATE_TEST_SUITE_P(all_versions, stream, ::testing::ValuesIn(test::all_versions),
                         [](const auto& param_info) {
                           return std::string(test::version_name(param_info.param));
                         });

TEST(stream_decoder, keeps_only_the_partial_packet) {
  const auto connect_bytes = encoded(test::sample_connect(protocol_version::v5), protocol_version::v5);
  const auto publish_bytes =
      encoded(test::sample_publish(protocol_version::v5, qos::at_least_once), protocol_version::v5);
  stream_decoder d;
  // The CONNECT and the first 10 bytes of a PUBLISH.
  d.feed(connect_bytes);
  d.feed(std::span(publish_bytes).first(10));
  EXPECT_EQ(d.next().status, decode_status::complete);
  EXPECT_EQ(d.next().status, decode_status::need_more);
  EXPECT_EQ(d.buffered(), 10u);
  d.feed(std::span(publish_bytes).subspan(10));
  const decode_result r = d.next();
  ASSERT_EQ(r.status, decode_status::complete);
  EXPECT_EQ(r.pkt, packet(test::sample_publish(protocol_version::v5, qos::at_least_once)));
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(stream_decoder, holds_no_memory_between_packets) {
  const auto connect_bytes = encoded(test::sample_connect(protocol_version::v5), protocol_version::v5);
  stream_decoder d;
  d.feed(connect_bytes);
  EXPECT_GE(d.buffer_capacity(), connect_bytes.size());
  EXPECT_EQ(d.next().status, decode_status::complete);
  EXPECT_EQ(d.buffer_capacity(), 0u) << "an idle connection keeps no buffer";
  // A big packet's buffer goes too.
  publish big = test::sample_publish(protocol_version::v5, qos::at_most_once);
  big.payload.assign(100'000, 'x');
  const auto big_bytes = encoded(big, protocol_version::v5);
  d.feed(std::span(big_bytes).first(1000));
  EXPECT_EQ(d.next().status, decode_status::need_more);
  d.feed(std::span(big_bytes).subspan(1000));
  const decode_result r = d.next();
  ASSERT_EQ(r.status, decode_status::complete);
  EXPECT_EQ(r.pkt, packet(big));
  EXPECT_EQ(d.buffer_capacity(), 0u);
}

TEST(stream_decoder, version_from_connect_rules_what_follows) {
  // A 5.0 PUBACK with a reason code: as 3.1.1 the same bytes are malformed (remaining length 3).
  const auto puback_v5 = bytes({0x40, 0x03, 0x00, 0x01, 0x10});
  for (const protocol_version v : test::all_versions) {
    stream_decoder d;
    d.feed(encoded(test::sample_connect(v), v));
    ASSERT_EQ(d.next().status, decode_status::complete);
    d.feed(puback_v5);
    const decode_result r = d.next();
    if (v == protocol_version::v5) {
      EXPECT_EQ(r.pkt, packet(puback{1, reason_code::no_matching_subscribers, {}}));
    } else {
      EXPECT_EQ(r.error, codec_errc::malformed_packet);
    }
  }
}

TEST(stream_decoder, oversized_packet_rejected_after_its_fixed_header) {
  decode_limits limits;
  limits.max_packet_size = 1024;
  stream_decoder d(limits);
  d.feed(encoded(test::sample_connect(protocol_version::v3_1_1), protocol_version::v3_1_1));
  ASSERT_EQ(d.next().status, decode_status::complete);
  // PUBLISH with remaining length 1,000,000: only 4 bytes (type + 3 length bytes) arrive.
  d.feed(bytes({0x30, 0xC0}));
  EXPECT_EQ(d.next().status, decode_status::need_more);
  d.feed(bytes({0x84, 0x3D}));
  const decode_result r = d.next();
  EXPECT_EQ(r.status, decode_status::error);
  EXPECT_EQ(r.error, codec_errc::packet_too_large);
  EXPECT_EQ(to_reason_code(r.error), reason_code::packet_too_large);
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(stream_decoder, stays_in_error_state) {
  stream_decoder d;
  d.feed(bytes({0xC0, 0x00})); // PINGREQ before CONNECT
  const decode_result first = d.next();
  EXPECT_EQ(first.error, codec_errc::protocol_error);
  // Whatever comes after, even a valid CONNECT, does not revive it, and is not buffered.
  d.feed(encoded(test::sample_connect(protocol_version::v5), protocol_version::v5));
  EXPECT_EQ(d.buffered(), 0u);
  for (int i = 0; i < 3; ++i) {
    const decode_result r = d.next();
    EXPECT_EQ(r.status, decode_status::error);
    EXPECT_EQ(r.error, codec_errc::protocol_error);
  }
}

TEST(stream_decoder, first_packet_must_be_connect) {
  for (const packet& p : test::sample_packets(protocol_version::v5)) {
    if (type_of(p) == packet_type::connect) {
      continue;
    }
    stream_decoder d;
    d.feed(encoded(p, protocol_version::v5));
    EXPECT_EQ(d.next().error, codec_errc::protocol_error) << test::type_name(type_of(p));
  }
}

TEST(stream_decoder, second_connect_is_a_protocol_error) {
  // [MQTT-3.1.0-2]
  const auto c = encoded(test::sample_connect(protocol_version::v3_1_1), protocol_version::v3_1_1);
  stream_decoder d;
  d.feed(c);
  d.feed(c);
  EXPECT_EQ(d.next().status, decode_status::complete);
  const decode_result r = d.next();
  EXPECT_EQ(r.error, codec_errc::protocol_error);
  EXPECT_EQ(to_reason_code(r.error), reason_code::protocol_error);
  // Like every error it ends the connection: the second CONNECT is not kept (found by the fuzzer,
  // fuzz/crashes/stream_decoder/), nor is anything fed after it.
  EXPECT_EQ(d.buffered(), 0u);
  d.feed(c);
  EXPECT_EQ(d.buffered(), 0u);
  EXPECT_EQ(d.next().error, codec_errc::protocol_error);
}

TEST(stream_decoder, error_in_a_later_packet_is_reported_after_the_good_ones) {
  stream_decoder d;
  d.feed(encoded(test::sample_connect(protocol_version::v5), protocol_version::v5));
  d.feed(encoded(pingreq{}, protocol_version::v5));
  d.feed(bytes({0x36, 0x00})); // PUBLISH QoS 3
  EXPECT_EQ(d.next().status, decode_status::complete);
  EXPECT_EQ(d.next().status, decode_status::complete);
  EXPECT_EQ(d.next().error, codec_errc::invalid_qos);
}

TEST(stream_decoder, client_side_decoder_with_preset_version) {
  stream_decoder d;
  d.set_version(protocol_version::v5);
  d.feed(encoded(test::sample_connack(protocol_version::v5), protocol_version::v5));
  const decode_result r = d.next();
  ASSERT_EQ(r.status, decode_status::complete);
  EXPECT_EQ(r.pkt, packet(test::sample_connack(protocol_version::v5)));
}

TEST(stream_decoder, limits_can_change_between_packets) {
  stream_decoder d;
  d.feed(encoded(test::sample_connect(protocol_version::v5), protocol_version::v5));
  ASSERT_EQ(d.next().status, decode_status::complete);
  decode_limits limits;
  limits.max_packet_size = 16;
  d.set_limits(limits);
  d.feed(encoded(test::sample_publish(protocol_version::v5, qos::at_most_once), protocol_version::v5));
  EXPECT_EQ(d.next().error, codec_errc::packet_too_large);
}

} // namespace
} // namespace firehook::mqtt

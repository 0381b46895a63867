// Round trips of every packet in every version, and byte-exact vectors written from the
// specifications' text.

#include <gtest/gtest.h>

#include "mqtt/codec.hpp"
#include "mqtt/error.hpp"
#include "mqtt/test_packets.hpp"
#include "mqtt/wire.hpp"

namespace firehook::mqtt {
namespace {

using test::bytes;
using test::encoded;

constexpr protocol_version v31 = protocol_version::v3_1;
constexpr protocol_version v311 = protocol_version::v3_1_1;
constexpr protocol_version v5 = protocol_version::v5;

// Decodes one whole packet that must use all of `b`.
packet decode_all(const std::vector<std::byte>& b, protocol_version v) {
  const bool is_connect = !b.empty() && (static_cast<unsigned>(b[0]) >> 4) == 1;
  const decode_result r = decode(b, is_connect ? std::nullopt : std::optional(v), {});
  EXPECT_EQ(r.status, decode_status::complete) << r.error.message();
  EXPECT_EQ(r.consumed, b.size());
  return r.pkt;
}

class round_trip : public ::testing::TestWithParam<protocol_version> {};

TEST_P(round_trip, every_packet_type_encodes_and_decodes_to_an_equal_packet) {
  const protocol_version v = GetParam();
  std::vector<bool> seen(16, false);
  for (const packet& p : test::sample_packets(v)) {
    SCOPED_TRACE(test::type_name(type_of(p)));
    const std::vector<std::byte> b = encoded(p, v);
    EXPECT_EQ(b.size(), encoded_size(p, v));
    EXPECT_EQ(decode_all(b, v), p);
    seen[static_cast<unsigned>(type_of(p))] = true;
  }
  for (unsigned t = 1; t <= 14; ++t) {
    EXPECT_TRUE(seen[t]) << "no sample of packet type " << t;
  }
  EXPECT_EQ(seen[15], v == v5) << "AUTH exists in 5.0 only";
}

TEST_P(round_trip, encode_appends_to_what_the_vector_holds) {
  const protocol_version v = GetParam();
  std::vector<std::byte> out = bytes({0xAA, 0xBB});
  std::size_t total = 2;
  for (const packet& p : test::sample_packets(v)) {
    const std::size_t n = encode(p, v, out);
    EXPECT_EQ(n, encoded_size(p, v));
    total += n;
    EXPECT_EQ(out.size(), total);
  }
  EXPECT_EQ(out[0], std::byte{0xAA});
  EXPECT_EQ(out[1], std::byte{0xBB});
}

TEST_P(round_trip, publish_header_followed_by_the_payload_is_the_whole_packet) {
  const protocol_version v = GetParam();
  for (const qos q : {qos::at_most_once, qos::at_least_once, qos::exactly_once}) {
    const publish p = test::sample_publish(v, q);
    std::vector<std::byte> gathered;
    const std::size_t header = encode_publish_header(p, p.payload.size(), v, gathered);
    EXPECT_EQ(header, gathered.size());
    const auto payload = bytes(p.payload);
    gathered.insert(gathered.end(), payload.begin(), payload.end());
    EXPECT_EQ(gathered, encoded(p, v));
  }
}

TEST_P(round_trip, publish_header_ignores_the_payload_field) {
  const protocol_version v = GetParam();
  publish p = test::sample_publish(v, qos::at_least_once);
  std::vector<std::byte> a;
  std::vector<std::byte> b;
  encode_publish_header(p, 300, v, a);
  p.payload = "something else";
  encode_publish_header(p, 300, v, b);
  EXPECT_EQ(a, b);
}

INSTANTIATE_TEST_SUITE_P(all_versions, round_trip, ::testing::ValuesIn(test::all_versions),
                         [](const auto& param_info) {
                           return std::string(test::version_name(param_info.param));
                         });

TEST(round_trip, large_publish_uses_a_four_byte_remaining_length) {
  publish p;
  p.topic = "t";
  p.payload = std::string(2'097'152, 'p'); // remaining length 2,097,155: four bytes
  const auto b = encoded(p, v311);
  EXPECT_EQ(b.size(), 1 + 4 + 3 + p.payload.size());
  EXPECT_EQ(decode_all(b, v311), packet(p));
}

// --- variable byte integer: the examples of 5.0 section 1.5.5 / 3.1.1 section 2.2.3 --------------------

struct vbi_example {
  std::uint32_t value;
  std::vector<std::byte> wire_bytes;
};

TEST(variable_byte_integer, encodes_the_spec_examples) {
  const vbi_example examples[] = {
      {0, bytes({0x00})},
      {127, bytes({0x7F})},
      {128, bytes({0x80, 0x01})},
      {16'383, bytes({0xFF, 0x7F})},
      {16'384, bytes({0x80, 0x80, 0x01})},
      {2'097'151, bytes({0xFF, 0xFF, 0x7F})},
      {2'097'152, bytes({0x80, 0x80, 0x80, 0x01})},
      {268'435'455, bytes({0xFF, 0xFF, 0xFF, 0x7F})},
  };
  for (const auto& [value, expected] : examples) {
    SCOPED_TRACE(value);
    EXPECT_EQ(wire::variable_byte_integer_size(value), expected.size());
    std::vector<std::byte> out(expected.size());
    wire::byte_writer w(out.data());
    w.variable_byte_integer(value);
    EXPECT_EQ(out, expected);
    std::uint32_t parsed = 0;
    std::size_t used = 0;
    EXPECT_EQ(wire::parse_variable_byte_integer(expected.data(), expected.size(), parsed, used),
              wire::vbi_status::complete);
    EXPECT_EQ(parsed, value);
    EXPECT_EQ(used, expected.size());
    // Every proper prefix is incomplete.
    for (std::size_t n = 0; n < expected.size(); ++n) {
      EXPECT_EQ(wire::parse_variable_byte_integer(expected.data(), n, parsed, used),
                wire::vbi_status::need_more);
    }
  }
}

TEST(variable_byte_integer, rejects_five_bytes_and_non_minimal_forms) {
  std::uint32_t v = 0;
  std::size_t used = 0;
  const auto five = bytes({0xFF, 0xFF, 0xFF, 0xFF, 0x7F});
  EXPECT_EQ(wire::parse_variable_byte_integer(five.data(), five.size(), v, used), wire::vbi_status::invalid);
  // [MQTT-1.5.5-1]: 0x80 0x00 is 0 in two bytes.
  const auto overlong = bytes({0x80, 0x00});
  EXPECT_EQ(wire::parse_variable_byte_integer(overlong.data(), overlong.size(), v, used),
            wire::vbi_status::invalid);
}

TEST(variable_byte_integer, remaining_length_is_read_from_the_fixed_header) {
  // PUBLISH with remaining length 321 = 0xC1 0x02: topic "a", payload of 318 bytes.
  publish p;
  p.topic = "a";
  p.payload = std::string(318, 'z');
  const auto b = encoded(p, v311);
  ASSERT_GE(b.size(), 3u);
  EXPECT_EQ(b[1], std::byte{0xC1});
  EXPECT_EQ(b[2], std::byte{0x02});
  EXPECT_EQ(b.size(), 3u + 321u);
}

// --- byte-exact packets -------------------------------------------------------------------------

// 5.0 section 3.1.2.12, figure 3-6: the CONNECT variable header example (user name, password,
// Will QoS 1, Will, Clean Start; Keep Alive 10; Session Expiry Interval 10), with a small payload.
TEST(vectors, connect_v5_variable_header_example) {
  const auto expected = bytes({
      0x10, 0x20,                                     // CONNECT, remaining length 32
      0x00, 0x04, 'M',  'Q',  'T',  'T',  0x05, 0xCE, // protocol name, level 5, flags
      0x00, 0x0A,                                     // keep alive 10
      0x05, 0x11, 0x00, 0x00, 0x00, 0x0A,             // properties: session expiry interval 10
      0x00, 0x01, 'c',                                // client id
      0x00,                                           // will properties: none
      0x00, 0x01, 'w',  0x00, 0x01, 'x',              // will topic, will payload
      0x00, 0x01, 'u',  0x00, 0x01, 'p',              // user name, password
  });
  connect c;
  c.version = v5;
  c.clean_start = true;
  c.keep_alive = 10;
  c.props.session_expiry_interval = 10;
  c.client_id = "c";
  c.will_message = will{"w", "x", qos::at_least_once, false, {}};
  c.username = "u";
  c.password = "p";
  EXPECT_EQ(encoded(c, v5), expected);
  EXPECT_EQ(decode_all(expected, v5), packet(c));
}

// 3.1.1 section 3.1.2.10, figure 3.6: the same variable header for level 4, without properties.
TEST(vectors, connect_v311_variable_header_example) {
  const auto expected =
      bytes({0x10, 0x19, 0x00, 0x04, 'M',  'Q',  'T', 'T',  0x04, 0xCE, 0x00, 0x0A, 0x00, 0x01,
             'c',  0x00, 0x01, 'w',  0x00, 0x01, 'x', 0x00, 0x01, 'u',  0x00, 0x01, 'p'});
  connect c;
  c.version = v311;
  c.keep_alive = 10;
  c.client_id = "c";
  c.will_message = will{"w", "x", qos::at_least_once, false, {}};
  c.username = "u";
  c.password = "p";
  EXPECT_EQ(encoded(c, v311), expected);
  EXPECT_EQ(decode_all(expected, v311), packet(c));
}

// MQTT 3.1 section 3.1: protocol name "MQIsdp", version 3.
TEST(vectors, connect_v31) {
  const auto expected = bytes(
      {0x10, 0x10, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x00, 0x3C, 0x00, 0x02, 'c', 'l'});
  connect c;
  c.version = v31;
  c.keep_alive = 60;
  c.client_id = "cl";
  EXPECT_EQ(encoded(c, v31), expected);
  EXPECT_EQ(decode_all(expected, v31), packet(c));
}

TEST(vectors, connack) {
  EXPECT_EQ(encoded(connack{}, v311), bytes({0x20, 0x02, 0x00, 0x00}));
  EXPECT_EQ(encoded(connack{true, reason_code::success, {}}, v311), bytes({0x20, 0x02, 0x01, 0x00}));
  // 3.1.1 carries to_v3_connack(reason): Bad User Name or Password is return code 4.
  EXPECT_EQ(encoded(connack{false, reason_code::bad_user_name_or_password, {}}, v311),
            bytes({0x20, 0x02, 0x00, 0x04}));
  EXPECT_EQ(encoded(connack{false, reason_code::banned, {}}, v311), bytes({0x20, 0x02, 0x00, 0x05}));
  EXPECT_EQ(encoded(connack{false, reason_code::unsupported_protocol_version, {}}, v31),
            bytes({0x20, 0x02, 0x00, 0x01}));
  // 5.0: flags, reason code, property length 0.
  EXPECT_EQ(encoded(connack{false, reason_code::not_authorized, {}}, v5),
            bytes({0x20, 0x03, 0x00, 0x87, 0x00}));
  EXPECT_EQ(decode_all(bytes({0x20, 0x02, 0x00, 0x02}), v311),
            packet(connack{false, reason_code::client_identifier_not_valid, {}}));
}

TEST(vectors, publish) {
  publish p;
  p.qos = qos::at_least_once;
  p.topic = "a/b";
  p.packet_id = 10;
  p.payload = "hi";
  EXPECT_EQ(encoded(p, v311), bytes({0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i'}));
  EXPECT_EQ(encoded(p, v5), bytes({0x32, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 0x00, 'h', 'i'}));
  p.qos = qos::at_most_once;
  p.packet_id = 0;
  p.retain = true;
  EXPECT_EQ(encoded(p, v311), bytes({0x31, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'}));
  p.qos = qos::exactly_once;
  p.packet_id = 1;
  p.dup = true;
  p.retain = false;
  p.payload.clear();
  EXPECT_EQ(encoded(p, v311), bytes({0x3C, 0x07, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x01}));
}

TEST(vectors, puback_family) {
  EXPECT_EQ(encoded(puback{10, {}, {}}, v311), bytes({0x40, 0x02, 0x00, 0x0A}));
  EXPECT_EQ(encoded(pubrec{10, {}, {}}, v311), bytes({0x50, 0x02, 0x00, 0x0A}));
  EXPECT_EQ(encoded(pubrel{10, {}, {}}, v311), bytes({0x62, 0x02, 0x00, 0x0A}));
  EXPECT_EQ(encoded(pubcomp{10, {}, {}}, v311), bytes({0x70, 0x02, 0x00, 0x0A}));
  // 5.0 shortest forms: Success without properties is 2 bytes, another reason without properties 3.
  EXPECT_EQ(encoded(puback{10, {}, {}}, v5), bytes({0x40, 0x02, 0x00, 0x0A}));
  EXPECT_EQ(encoded(puback{10, reason_code::no_matching_subscribers, {}}, v5),
            bytes({0x40, 0x03, 0x00, 0x0A, 0x10}));
  properties props;
  props.reason_string = "r";
  EXPECT_EQ(encoded(pubrel{10, reason_code::success, props}, v5),
            bytes({0x62, 0x08, 0x00, 0x0A, 0x00, 0x04, 0x1F, 0x00, 0x01, 'r'}));
  // The reason code is left out in 3.1.1.
  EXPECT_EQ(encoded(puback{10, reason_code::not_authorized, props}, v311), bytes({0x40, 0x02, 0x00, 0x0A}));
}

TEST(vectors, puback_v5_decodes_every_allowed_length) {
  const puback expected{10, reason_code::success, {}};
  EXPECT_EQ(decode_all(bytes({0x40, 0x02, 0x00, 0x0A}), v5), packet(expected));
  EXPECT_EQ(decode_all(bytes({0x40, 0x03, 0x00, 0x0A, 0x00}), v5), packet(expected));
  EXPECT_EQ(decode_all(bytes({0x40, 0x04, 0x00, 0x0A, 0x00, 0x00}), v5), packet(expected));
  EXPECT_EQ(decode_all(bytes({0x50, 0x03, 0x00, 0x0A, 0x97}), v5),
            packet(pubrec{10, reason_code::quota_exceeded, {}}));
}

// 3.1.1 section 3.8.3, figure 3.22 (payload example) with packet identifier 10.
TEST(vectors, subscribe_v311) {
  const auto expected =
      bytes({0x82, 0x0E, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01, 0x00, 0x03, 'c', '/', 'd', 0x02});
  subscribe s;
  s.packet_id = 10;
  s.subscriptions = {{"a/b", {qos::at_least_once, false, false, {}}},
                     {"c/d", {qos::exactly_once, false, false, {}}}};
  EXPECT_EQ(encoded(s, v311), expected);
  EXPECT_EQ(decode_all(expected, v311), packet(s));
}

TEST(vectors, subscribe_v5_options_byte) {
  subscribe s;
  s.packet_id = 5;
  s.subscriptions = {{"a", {qos::exactly_once, true, true, retain_handling::do_not_send}}};
  // options: QoS 2 | No Local 0x04 | Retain As Published 0x08 | Retain Handling 2 << 4 = 0x2E
  EXPECT_EQ(encoded(s, v5), bytes({0x82, 0x07, 0x00, 0x05, 0x00, 0x00, 0x01, 'a', 0x2E}));
  // 3.1.1 keeps only the QoS.
  EXPECT_EQ(encoded(s, v311), bytes({0x82, 0x06, 0x00, 0x05, 0x00, 0x01, 'a', 0x02}));
}

// 3.1.1 section 3.9.3, figure 3.26: Success QoS 0, Success QoS 2, Failure.
TEST(vectors, suback) {
  suback s;
  s.packet_id = 10;
  s.reasons = {reason_code::success, reason_code::granted_qos_2, reason_code::unspecified_error};
  EXPECT_EQ(encoded(s, v311), bytes({0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80}));
  // 3.1.1 has one failure code: the 5.0 ones are sent as 0x80.
  s.reasons = {reason_code::not_authorized};
  EXPECT_EQ(encoded(s, v311), bytes({0x90, 0x03, 0x00, 0x0A, 0x80}));
  EXPECT_EQ(encoded(s, v5), bytes({0x90, 0x04, 0x00, 0x0A, 0x00, 0x87}));
}

TEST(vectors, unsubscribe_and_unsuback) {
  unsubscribe u;
  u.packet_id = 3;
  u.filters = {"a/+"};
  EXPECT_EQ(encoded(u, v311), bytes({0xA2, 0x07, 0x00, 0x03, 0x00, 0x03, 'a', '/', '+'}));
  EXPECT_EQ(encoded(u, v5), bytes({0xA2, 0x08, 0x00, 0x03, 0x00, 0x00, 0x03, 'a', '/', '+'}));
  unsuback a;
  a.packet_id = 3;
  a.reasons = {reason_code::no_subscription_existed};
  EXPECT_EQ(encoded(a, v311), bytes({0xB0, 0x02, 0x00, 0x03}));
  EXPECT_EQ(encoded(a, v5), bytes({0xB0, 0x04, 0x00, 0x03, 0x00, 0x11}));
}

TEST(vectors, ping_and_disconnect) {
  EXPECT_EQ(encoded(pingreq{}, v311), bytes({0xC0, 0x00}));
  EXPECT_EQ(encoded(pingresp{}, v5), bytes({0xD0, 0x00}));
  EXPECT_EQ(encoded(disconnect{}, v311), bytes({0xE0, 0x00}));
  EXPECT_EQ(encoded(disconnect{}, v5), bytes({0xE0, 0x00}));
  EXPECT_EQ(encoded(disconnect{reason_code::disconnect_with_will_message, {}}, v5),
            bytes({0xE0, 0x01, 0x04}));
  // Reason codes do not exist in 3.1.1.
  EXPECT_EQ(encoded(disconnect{reason_code::server_shutting_down, {}}, v311), bytes({0xE0, 0x00}));
  // 5.0 section 3.14.2.2.1: below remaining length 2 there is no property length.
  EXPECT_EQ(decode_all(bytes({0xE0, 0x01, 0x8B}), v5),
            packet(disconnect{reason_code::server_shutting_down, {}}));
  EXPECT_EQ(decode_all(bytes({0xE0, 0x02, 0x00, 0x00}), v5), packet(disconnect{}));
}

TEST(vectors, auth) {
  EXPECT_EQ(encoded(auth{}, v5), bytes({0xF0, 0x00}));
  EXPECT_EQ(encoded(auth{reason_code::re_authenticate, {}}, v5), bytes({0xF0, 0x02, 0x19, 0x00}));
  properties props;
  props.authentication_method = "m";
  EXPECT_EQ(encoded(auth{reason_code::continue_authentication, props}, v5),
            bytes({0xF0, 0x06, 0x18, 0x04, 0x15, 0x00, 0x01, 'm'}));
  EXPECT_EQ(decode_all(bytes({0xF0, 0x00}), v5), packet(auth{}));
}

TEST(vectors, every_property_identifier_and_type) {
  // One PUBLISH-independent check of each property's identifier byte and value encoding, through
  // the packets that carry them.
  connack c;
  c.props.maximum_packet_size = 0x01020304;
  c.props.server_keep_alive = 0x0506;
  c.props.retain_available = 1;
  c.props.user = {{"k", "v"}};
  EXPECT_EQ(encoded(c, v5), bytes({0x20, 0x14, 0x00, 0x00, 0x11,            // flags, reason, 17 bytes
                                   0x13, 0x05, 0x06,                        // server keep alive
                                   0x25, 0x01,                              // retain available
                                   0x26, 0x00, 0x01, 'k',  0x00, 0x01, 'v', // user property
                                   0x27, 0x01, 0x02, 0x03, 0x04}));         // maximum packet size
  publish p;
  p.topic = "t";
  p.props.subscription_identifiers = {128, 1};
  p.props.correlation_data = std::string("\0", 1);
  EXPECT_EQ(encoded(p, v5), bytes({0x30, 0x0D, 0x00, 0x01, 't', 0x09, // property length 9
                                   0x09, 0x00, 0x01, 0x00,            // correlation data
                                   0x0B, 0x80, 0x01, 0x0B, 0x01}));   // two subscription identifiers
}

// --- what each version leaves out ---------------------------------------------------------------------

TEST(versions, v311_encoding_leaves_out_every_5_0_field) {
  for (const packet& p5 : test::sample_packets(v5)) {
    if (type_of(p5) == packet_type::auth || type_of(p5) == packet_type::connect) {
      continue;
    }
    SCOPED_TRACE(test::type_name(type_of(p5)));
    const packet back = decode_all(encoded(p5, v311), v311);
    // Whatever comes back has no properties: encoding it for 3.1.1 again gives the same bytes.
    EXPECT_EQ(encoded(back, v311), encoded(p5, v311));
    std::visit(
        [](const auto& pkt) {
          if constexpr (requires { pkt.props; }) {
            EXPECT_EQ(pkt.props, properties{});
          }
        },
        back);
  }
}

TEST(versions, encoder_leaves_out_properties_the_packet_may_not_carry) {
  connect c;
  c.client_id = "x";
  c.props.topic_alias = 5;      // PUBLISH only
  c.props.reason_string = "no"; // not in CONNECT
  c.props.receive_maximum = 1;  // allowed
  const auto b = encoded(c, v5);
  connect expected = c;
  expected.props = {};
  expected.props.receive_maximum = 1;
  EXPECT_EQ(decode_all(b, v5), packet(expected));
}

TEST(versions, connect_level_decides_the_version) {
  for (const protocol_version v : test::all_versions) {
    const auto b = encoded(test::sample_connect(v), v);
    const decode_result r = decode(b, std::nullopt, {});
    ASSERT_EQ(r.status, decode_status::complete);
    EXPECT_EQ(std::get<connect>(r.pkt).version, v);
  }
}

TEST(versions, v5_publish_with_empty_topic_and_alias_is_valid) {
  publish p;
  p.props.topic_alias = 1;
  p.payload = "x";
  EXPECT_EQ(decode_all(encoded(p, v5), v5), packet(p));
}

TEST(versions, topic_alias_zero_is_left_to_the_session) {
  publish p;
  p.topic = "t";
  p.props.topic_alias = 0;
  EXPECT_EQ(decode_all(encoded(p, v5), v5), packet(p));
}

TEST(versions, v5_allows_a_password_without_user_name) {
  connect c;
  c.client_id = "x";
  c.password = "secret";
  EXPECT_EQ(decode_all(encoded(c, v5), v5), packet(c));
}

TEST(versions, v31_tolerates_dup_on_pubrel_subscribe_unsubscribe) {
  // MQTT 3.1 clients set DUP when they send these again.
  EXPECT_EQ(decode_all(bytes({0x6A, 0x02, 0x00, 0x01}), v31), packet(pubrel{1, {}, {}}));
  const decode_result r = decode(bytes({0x6A, 0x02, 0x00, 0x01}), v311, {});
  EXPECT_EQ(r.error, codec_errc::reserved_flags);
}

TEST(versions, v31_connack_ignores_its_reserved_byte) {
  EXPECT_EQ(decode_all(bytes({0x20, 0x02, 0x01, 0x00}), v31), packet(connack{}));
}

TEST(decode, need_more_uses_nothing) {
  const auto b = encoded(test::sample_publish(v5, qos::at_least_once), v5);
  for (std::size_t n = 0; n < b.size(); ++n) {
    const decode_result r = decode(std::span(b).first(n), v5, {});
    EXPECT_EQ(r.status, decode_status::need_more) << n;
    EXPECT_EQ(r.consumed, 0u);
  }
}

TEST(decode, reads_one_packet_from_the_front) {
  auto b = encoded(pingreq{}, v311);
  const auto second = encoded(puback{1, {}, {}}, v311);
  b.insert(b.end(), second.begin(), second.end());
  const decode_result r = decode(b, v311, {});
  ASSERT_EQ(r.status, decode_status::complete);
  EXPECT_EQ(r.consumed, 2u);
  EXPECT_EQ(type_of(r.pkt), packet_type::pingreq);
}

TEST(decode, packet_exactly_at_the_limit_is_accepted) {
  const auto b = encoded(test::sample_publish(v311, qos::at_most_once), v311);
  decode_limits limits;
  limits.max_packet_size = static_cast<std::uint32_t>(b.size());
  EXPECT_EQ(decode(b, v311, limits).status, decode_status::complete);
  limits.max_packet_size -= 1;
  EXPECT_EQ(decode(b, v311, limits).error, codec_errc::packet_too_large);
}

} // namespace
} // namespace firehook::mqtt

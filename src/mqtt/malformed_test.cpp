// One test per rule the decoder enforces: each feeds a packet that breaks exactly that rule and checks
// the error and the 5.0 reason code a server would send for it.

#include <gtest/gtest.h>

#include "mqtt/codec.hpp"
#include "mqtt/error.hpp"
#include "mqtt/test_packets.hpp"

namespace firehook::mqtt {
namespace {

using test::bytes;
using test::encoded;

constexpr protocol_version v31 = protocol_version::v3_1;
constexpr protocol_version v311 = protocol_version::v3_1_1;
constexpr protocol_version v5 = protocol_version::v5;

constexpr reason_code malformed = reason_code::malformed_packet;
constexpr reason_code protocol = reason_code::protocol_error;

// Builds a packet body field by field; finish() puts the fixed header in front.
class body {
public:
  body& u8(int v) {
    b_.push_back(static_cast<std::byte>(v));
    return *this;
  }
  body& u16(int v) { return u8(v >> 8).u8(v & 0xFF); }
  body& u32(std::uint32_t v) { return u16(static_cast<int>(v >> 16)).u16(static_cast<int>(v & 0xFFFF)); }
  body& vbi(std::uint32_t v) {
    do {
      int b = static_cast<int>(v & 0x7F);
      v >>= 7;
      u8(v != 0 ? (b | 0x80) : b);
    } while (v != 0);
    return *this;
  }
  body& raw(std::string_view s) {
    for (const char c : s) {
      u8(static_cast<unsigned char>(c));
    }
    return *this;
  }
  body& str(std::string_view s) { return u16(static_cast<int>(s.size())).raw(s); }
  body& append(const body& other) {
    b_.insert(b_.end(), other.b_.begin(), other.b_.end());
    return *this;
  }
  // Properties: the length prefix and then these bytes.
  body& props(const body& list) { return vbi(static_cast<std::uint32_t>(list.size())).append(list); }
  std::size_t size() const { return b_.size(); }

  std::vector<std::byte> finish(int first_byte) const {
    body out;
    out.u8(first_byte).vbi(static_cast<std::uint32_t>(b_.size())).append(*this);
    return out.b_;
  }

private:
  std::vector<std::byte> b_;
};

::testing::AssertionResult rejected(const std::vector<std::byte>& b, std::optional<protocol_version> v,
                                    codec_errc expected, reason_code expected_reason,
                                    decode_limits limits = {}) {
  const decode_result r = decode(b, v, limits);
  if (r.status != decode_status::error) {
    return ::testing::AssertionFailure() << "not rejected (status " << static_cast<int>(r.status) << ")";
  }
  if (r.error != make_error_code(expected)) {
    return ::testing::AssertionFailure() << "error \"" << r.error.message() << "\", expected \""
                                         << make_error_code(expected).message() << "\"";
  }
  if (to_reason_code(r.error) != expected_reason) {
    return ::testing::AssertionFailure() << "reason " << to_string(to_reason_code(r.error));
  }
  if (r.consumed != 0) {
    return ::testing::AssertionFailure() << "consumed " << r.consumed;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult accepted(const std::vector<std::byte>& b, std::optional<protocol_version> v) {
  const decode_result r = decode(b, v, {});
  if (r.status != decode_status::complete || r.consumed != b.size()) {
    return ::testing::AssertionFailure()
           << "status " << static_cast<int>(r.status) << ": " << r.error.message();
  }
  return ::testing::AssertionSuccess();
}

body connect_header(std::string_view name, int level, int flags) {
  body b;
  b.str(name).u8(level).u8(flags).u16(60);
  return b;
}

// A 5.0 CONNECT with the given flags, properties and payload.
std::vector<std::byte> connect_v5(int flags, const body& props, const body& payload) {
  return connect_header("MQTT", 5, flags).props(props).append(payload).finish(0x10);
}

std::vector<std::byte> connect_v311(int flags, const body& payload) {
  return connect_header("MQTT", 4, flags).append(payload).finish(0x10);
}

// A 5.0 PUBLISH QoS 0 to "t" with these properties.
std::vector<std::byte> publish_v5_with(const body& props) {
  return body().str("t").props(props).raw("payload").finish(0x30);
}

// --- fixed header --------------------------------------------------------------------------------------

TEST(fixed_header, reserved_flags_must_be_as_table_2_2_says) {
  // [MQTT-2.2.2-1], [MQTT-2.2.2-2]
  EXPECT_TRUE(
      rejected(bytes({0x41, 0x02, 0x00, 0x01}), v311, codec_errc::reserved_flags, malformed)); // PUBACK
  EXPECT_TRUE(
      rejected(bytes({0x60, 0x02, 0x00, 0x01}), v5, codec_errc::reserved_flags, malformed)); // PUBREL 0
  EXPECT_TRUE(rejected(bytes({0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00}), v311,
                       codec_errc::reserved_flags,
                       malformed)); // SUBSCRIBE 0
  EXPECT_TRUE(rejected(bytes({0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'}), v311, codec_errc::reserved_flags,
                       malformed));                                                          // UNSUBSCRIBE 0
  EXPECT_TRUE(rejected(bytes({0xC8, 0x00}), v311, codec_errc::reserved_flags, malformed));   // PINGREQ
  EXPECT_TRUE(rejected(bytes({0xE2, 0x00}), v5, codec_errc::reserved_flags, malformed));     // DISCONNECT
  EXPECT_TRUE(rejected(bytes({0xF1, 0x00}), v5, codec_errc::reserved_flags, malformed));     // AUTH
  EXPECT_TRUE(rejected(bytes({0x11}), std::nullopt, codec_errc::reserved_flags, malformed)); // CONNECT
  EXPECT_TRUE(rejected(bytes({0x6A, 0x02, 0x00, 0x01}), v311, codec_errc::reserved_flags, malformed)); // DUP
}

TEST(fixed_header, reserved_packet_type_0) {
  EXPECT_TRUE(rejected(bytes({0x00, 0x00}), v311, codec_errc::invalid_packet_type, malformed));
  EXPECT_TRUE(rejected(bytes({0x00}), std::nullopt, codec_errc::invalid_packet_type, malformed));
}

TEST(fixed_header, auth_before_5_0) {
  EXPECT_TRUE(rejected(bytes({0xF0, 0x00}), v311, codec_errc::invalid_packet_type, malformed));
  EXPECT_TRUE(rejected(bytes({0xF0, 0x00}), v31, codec_errc::invalid_packet_type, malformed));
}

TEST(fixed_header, publish_qos_3) {
  // [MQTT-3.3.1-4]
  EXPECT_TRUE(
      rejected(bytes({0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01}), v311, codec_errc::invalid_qos, malformed));
  EXPECT_TRUE(rejected(bytes({0x36, 0x06, 0x00, 0x01, 't', 0x00, 0x01, 0x00}), v5, codec_errc::invalid_qos,
                       malformed));
}

TEST(fixed_header, dup_on_qos_0) {
  // [MQTT-3.3.1-2]
  EXPECT_TRUE(rejected(bytes({0x38, 0x03, 0x00, 0x01, 't'}), v311, codec_errc::reserved_flags, malformed));
}

TEST(fixed_header, remaining_length_of_five_bytes) {
  EXPECT_TRUE(rejected(bytes({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}), v311, codec_errc::bad_remaining_length,
                       malformed));
  // Known to be bad as soon as the fourth byte says "more".
  EXPECT_TRUE(
      rejected(bytes({0x30, 0x80, 0x80, 0x80, 0x80}), v311, codec_errc::bad_remaining_length, malformed));
}

TEST(fixed_header, remaining_length_not_minimal) {
  // [MQTT-1.5.5-1]: 2 written in two bytes.
  EXPECT_TRUE(
      rejected(bytes({0x40, 0x82, 0x00, 0x00, 0x01}), v311, codec_errc::bad_remaining_length, malformed));
}

TEST(fixed_header, remaining_length_too_short_for_the_fields) {
  EXPECT_TRUE(rejected(bytes({0x40, 0x01, 0x00}), v311, codec_errc::malformed_packet, malformed));
  // topic length 5, but only 1 byte in the packet
  EXPECT_TRUE(rejected(bytes({0x30, 0x03, 0x00, 0x05, 'a'}), v311, codec_errc::malformed_packet, malformed));
  // CONNECT cut inside the client id
  EXPECT_TRUE(rejected(connect_header("MQTT", 4, 0x02).u16(5).raw("ab").finish(0x10), std::nullopt,
                       codec_errc::malformed_packet, malformed));
}

TEST(fixed_header, remaining_length_too_long_for_the_fields) {
  EXPECT_TRUE(rejected(bytes({0xC0, 0x01, 0x00}), v311, codec_errc::malformed_packet, malformed));
  EXPECT_TRUE(rejected(bytes({0xD0, 0x01, 0x00}), v5, codec_errc::malformed_packet, malformed));
  EXPECT_TRUE(rejected(bytes({0x40, 0x03, 0x00, 0x01, 0x00}), v311, codec_errc::malformed_packet, malformed));
  EXPECT_TRUE(rejected(bytes({0xE0, 0x01, 0x00}), v311, codec_errc::malformed_packet, malformed));
  EXPECT_TRUE(rejected(bytes({0xB0, 0x03, 0x00, 0x01, 0x00}), v311, codec_errc::malformed_packet, malformed));
  EXPECT_TRUE(rejected(connect_header("MQTT", 4, 0x02).str("id").u8(0).finish(0x10), std::nullopt,
                       codec_errc::malformed_packet, malformed));
  // 5.0 PUBACK: property length says 3, one byte follows.
  EXPECT_TRUE(rejected(bytes({0x40, 0x05, 0x00, 0x01, 0x00, 0x03, 0x1F}), v5, codec_errc::malformed_packet,
                       malformed));
}

TEST(fixed_header, oversized_packet_is_rejected_from_its_fixed_header) {
  decode_limits limits;
  limits.max_packet_size = 100;
  // Remaining length 200: only the two header bytes have arrived.
  EXPECT_TRUE(rejected(bytes({0x30, 0xC8, 0x01}), v311, codec_errc::packet_too_large,
                       reason_code::packet_too_large, limits));
  // A 4-byte remaining length, 5 bytes in all.
  EXPECT_TRUE(rejected(bytes({0x30, 0xFF, 0xFF, 0xFF, 0x7F}), v5, codec_errc::packet_too_large,
                       reason_code::packet_too_large, limits));
  // The CONNECT is limited too.
  EXPECT_TRUE(rejected(bytes({0x10, 0xE5, 0x00 + 1}), std::nullopt, codec_errc::packet_too_large,
                       reason_code::packet_too_large, limits));
  // 98 bytes of body + 2 of header = 100: not too large, so it waits for the body.
  EXPECT_EQ(decode(bytes({0x30, 0x62}), v311, limits).status, decode_status::need_more);
  EXPECT_TRUE(rejected(bytes({0x30, 0x63}), v311, codec_errc::packet_too_large, reason_code::packet_too_large,
                       limits));
}

// --- first packet ---------------------------------------------------------------------------------

TEST(first_packet, must_be_connect) {
  // [MQTT-3.1.0-1]
  EXPECT_TRUE(rejected(bytes({0xC0, 0x00}), std::nullopt, codec_errc::protocol_error, protocol));
  EXPECT_TRUE(rejected(bytes({0x30}), std::nullopt, codec_errc::protocol_error, protocol));
  EXPECT_TRUE(rejected(bytes({0xF0, 0x00}), std::nullopt, codec_errc::protocol_error, protocol));
}

// --- CONNECT --------------------------------------------------------------------------------------

TEST(connect, unsupported_protocol_version) {
  // [MQTT-3.1.2-2]: the session answers with CONNACK 0x01 (3.1.1) / 0x84; the error says which.
  const body payload = body().str("id");
  for (const auto& [name, level] : std::vector<std::pair<std::string, int>>{
           {"MQTT", 6}, {"MQTT", 3}, {"MQTT", 0}, {"MQTT", 0x84}, {"MQIsdp", 4}, {"MQIsdp", 5}}) {
    SCOPED_TRACE(name + " " + std::to_string(level));
    EXPECT_TRUE(rejected(connect_header(name, level, 0x02).append(payload).finish(0x10), std::nullopt,
                         codec_errc::unsupported_protocol_version,
                         reason_code::unsupported_protocol_version));
  }
}

TEST(connect, bad_protocol_name) {
  // [MQTT-3.1.2-1]
  for (const std::string_view name :
       std::initializer_list<std::string_view>{"MQTX", "mqtt", "MQIsdP", "", std::string_view("MQTT\0", 5)}) {
    EXPECT_TRUE(rejected(connect_header(name, 4, 0x02).str("id").finish(0x10), std::nullopt,
                         codec_errc::invalid_protocol_name, reason_code::unsupported_protocol_version));
  }
}

TEST(connect, reserved_flag_set) {
  // [MQTT-3.1.2-3]
  EXPECT_TRUE(rejected(connect_v311(0x03, body().str("id")), std::nullopt, codec_errc::invalid_connect_flags,
                       malformed));
  EXPECT_TRUE(rejected(connect_v5(0x03, body(), body().str("id")), std::nullopt,
                       codec_errc::invalid_connect_flags, malformed));
}

TEST(connect, will_qos_3) {
  // 5.0 [MQTT-3.1.2-12], 3.1.1 [MQTT-3.1.2-14]
  const body payload = body().str("id").str("will/topic").str("bye");
  EXPECT_TRUE(rejected(connect_v311(0x1E, payload), std::nullopt, codec_errc::invalid_qos, malformed));
}

TEST(connect, will_qos_or_retain_without_will_flag) {
  // 5.0 [MQTT-3.1.2-11], [MQTT-3.1.2-13]
  const body payload = body().str("id");
  EXPECT_TRUE(
      rejected(connect_v311(0x0A, payload), std::nullopt, codec_errc::invalid_connect_flags, malformed));
  EXPECT_TRUE(
      rejected(connect_v311(0x12, payload), std::nullopt, codec_errc::invalid_connect_flags, malformed));
  EXPECT_TRUE(rejected(connect_v5(0x22, body(), payload), std::nullopt, codec_errc::invalid_connect_flags,
                       malformed));
}

TEST(connect, password_without_user_name_before_5_0) {
  // 3.1.1 [MQTT-3.1.2-22]; 5.0 allows it.
  EXPECT_TRUE(rejected(connect_v311(0x42, body().str("id").str("pw")), std::nullopt,
                       codec_errc::invalid_connect_flags, malformed));
  EXPECT_TRUE(accepted(connect_v5(0x42, body(), body().str("id").str("pw")), std::nullopt));
}

TEST(connect, will_topic_with_wildcard) {
  const body payload = body().str("id").str("will/#").str("bye");
  EXPECT_TRUE(rejected(connect_v311(0x06, payload), std::nullopt, codec_errc::invalid_topic_name, malformed));
  EXPECT_TRUE(rejected(connect_v311(0x06, body().str("id").str("").str("bye")), std::nullopt,
                       codec_errc::invalid_topic_name, malformed));
}

TEST(connect, client_id_with_invalid_utf8) {
  EXPECT_TRUE(rejected(connect_v311(0x02, body().str("a\xC0\xAF")), std::nullopt, codec_errc::invalid_utf8,
                       malformed));
}

TEST(connect, authentication_data_without_method) {
  // 5.0 section 3.1.2.11.10
  EXPECT_TRUE(rejected(connect_v5(0x02, body().u8(0x16).str("data"), body().str("id")), std::nullopt,
                       codec_errc::protocol_error, protocol));
  EXPECT_TRUE(accepted(connect_v5(0x02, body().u8(0x15).str("m").u8(0x16).str("data"), body().str("id")),
                       std::nullopt));
}

TEST(connect, will_property_not_allowed_in_will) {
  // Topic Alias is a PUBLISH property, not a Will property.
  const body will_props = body().u8(0x23).u16(1);
  const body payload = body().str("id").props(will_props).str("w").str("x");
  EXPECT_TRUE(
      rejected(connect_v5(0x06, body(), payload), std::nullopt, codec_errc::invalid_property, malformed));
}

TEST(connect, connect_property_not_allowed_in_will_and_vice_versa) {
  // Will Delay Interval belongs in the Will properties only.
  EXPECT_TRUE(rejected(connect_v5(0x02, body().u8(0x18).u32(5), body().str("id")), std::nullopt,
                       codec_errc::invalid_property, malformed));
}

// --- properties ------------------------------------------------------------------------------------

TEST(properties, duplicate_property) {
  // 5.0 section 3.3.2.3.3: "It is a Protocol Error to include the Message Expiry Interval more than once".
  EXPECT_TRUE(rejected(publish_v5_with(body().u8(0x02).u32(1).u8(0x02).u32(2)), v5,
                       codec_errc::duplicate_property, protocol));
  EXPECT_TRUE(rejected(connect_v5(0x02, body().u8(0x21).u16(1).u8(0x21).u16(1), body().str("id")),
                       std::nullopt, codec_errc::duplicate_property, protocol));
  EXPECT_TRUE(
      rejected(bytes({0x40, 0x0C, 0x00, 0x01, 0x00, 0x08, 0x1F, 0x00, 0x01, 'a', 0x1F, 0x00, 0x01, 'b'}), v5,
               codec_errc::duplicate_property, protocol));
}

TEST(properties, repeatable_properties) {
  // User Property may repeat anywhere; Subscription Identifier in PUBLISH.
  EXPECT_TRUE(accepted(publish_v5_with(body().u8(0x26).str("k").str("v").u8(0x26).str("k").str("v")), v5));
  EXPECT_TRUE(accepted(publish_v5_with(body().u8(0x0B).vbi(1).u8(0x0B).vbi(2)), v5));
  // ... but not in SUBSCRIBE (5.0 section 3.8.2.1.2).
  const auto sub = body().u16(1).props(body().u8(0x0B).vbi(1).u8(0x0B).vbi(2)).str("a").u8(0).finish(0x82);
  EXPECT_TRUE(rejected(sub, v5, codec_errc::duplicate_property, protocol));
}

TEST(properties, property_not_allowed_in_packet) {
  // 5.0 section 2.2.2.2: a Malformed Packet.
  EXPECT_TRUE(
      rejected(publish_v5_with(body().u8(0x11).u32(10)), v5, codec_errc::invalid_property, malformed));
  EXPECT_TRUE(rejected(connect_v5(0x02, body().u8(0x23).u16(1), body().str("id")), std::nullopt,
                       codec_errc::invalid_property, malformed));
  // Reason String is not a PUBLISH property; Server Reference is not a PUBACK property.
  EXPECT_TRUE(
      rejected(publish_v5_with(body().u8(0x1F).str("r")), v5, codec_errc::invalid_property, malformed));
  EXPECT_TRUE(rejected(bytes({0x40, 0x08, 0x00, 0x01, 0x00, 0x04, 0x1C, 0x00, 0x01, 's'}), v5,
                       codec_errc::invalid_property, malformed));
  // UNSUBSCRIBE takes only user properties.
  EXPECT_TRUE(rejected(body().u16(1).props(body().u8(0x0B).vbi(1)).str("a").finish(0xA2), v5,
                       codec_errc::invalid_property, malformed));
}

TEST(properties, unknown_identifier) {
  for (const int id : {0x00, 0x04, 0x0A, 0x14, 0x2B, 0x3F, 0x7F}) {
    SCOPED_TRACE(id);
    EXPECT_TRUE(rejected(publish_v5_with(body().u8(id).u8(0)), v5, codec_errc::invalid_property, malformed));
  }
  // A two-byte identifier (129) is not defined either.
  EXPECT_TRUE(
      rejected(publish_v5_with(body().u8(0x81).u8(0x01).u8(0)), v5, codec_errc::invalid_property, malformed));
}

TEST(properties, truncated_value) {
  EXPECT_TRUE(rejected(publish_v5_with(body().u8(0x02).u16(1)), v5, codec_errc::malformed_packet, malformed));
  EXPECT_TRUE(rejected(publish_v5_with(body().u8(0x08).u16(9).raw("ab")), v5, codec_errc::malformed_packet,
                       malformed));
}

TEST(properties, invalid_values_are_protocol_errors) {
  const body id = body().str("id");
  // Receive Maximum 0 (5.0 section 3.1.2.11.3)
  EXPECT_TRUE(rejected(connect_v5(0x02, body().u8(0x21).u16(0), id), std::nullopt,
                       codec_errc::property_value_invalid, protocol));
  // Maximum Packet Size 0 (3.1.2.11.4)
  EXPECT_TRUE(rejected(connect_v5(0x02, body().u8(0x27).u32(0), id), std::nullopt,
                       codec_errc::property_value_invalid, protocol));
  // Request Problem / Response Information other than 0 or 1 (3.1.2.11.6, 3.1.2.11.7)
  EXPECT_TRUE(rejected(connect_v5(0x02, body().u8(0x17).u8(2), id), std::nullopt,
                       codec_errc::property_value_invalid, protocol));
  EXPECT_TRUE(rejected(connect_v5(0x02, body().u8(0x19).u8(2), id), std::nullopt,
                       codec_errc::property_value_invalid, protocol));
  // Payload Format Indicator 2 (3.3.2.3.2)
  EXPECT_TRUE(
      rejected(publish_v5_with(body().u8(0x01).u8(2)), v5, codec_errc::property_value_invalid, protocol));
  // Subscription Identifier 0 (3.3.2.3.8, 3.8.2.1.2)
  EXPECT_TRUE(
      rejected(publish_v5_with(body().u8(0x0B).vbi(0)), v5, codec_errc::property_value_invalid, protocol));
  EXPECT_TRUE(rejected(body().u16(1).props(body().u8(0x0B).vbi(0)).str("a").u8(0).finish(0x82), v5,
                       codec_errc::property_value_invalid, protocol));
  // Maximum QoS 2 and Retain Available 2 in CONNACK (3.2.2.3.4, 3.2.2.3.5)
  EXPECT_TRUE(rejected(body().u8(0).u8(0).props(body().u8(0x24).u8(2)).finish(0x20), v5,
                       codec_errc::property_value_invalid, protocol));
  EXPECT_TRUE(rejected(body().u8(0).u8(0).props(body().u8(0x25).u8(2)).finish(0x20), v5,
                       codec_errc::property_value_invalid, protocol));
  EXPECT_TRUE(rejected(body().u8(0).u8(0).props(body().u8(0x2A).u8(7)).finish(0x20), v5,
                       codec_errc::property_value_invalid, protocol));
}

TEST(properties, response_topic_with_wildcard) {
  // [MQTT-3.3.2-14]
  EXPECT_TRUE(rejected(publish_v5_with(body().u8(0x08).str("replies/+")), v5, codec_errc::invalid_topic_name,
                       malformed));
}

TEST(properties, user_property_with_invalid_utf8) {
  EXPECT_TRUE(rejected(publish_v5_with(body().u8(0x26).str("k").str("\xED\xA0\x80")), v5,
                       codec_errc::invalid_utf8, malformed));
}

TEST(properties, property_length_past_the_packet) {
  EXPECT_TRUE(rejected(body().str("t").vbi(50).u8(0x01).u8(0).finish(0x30), v5, codec_errc::malformed_packet,
                       malformed));
}

// --- UTF-8 ---------------------------------------------------------------------------------------

TEST(utf8, invalid_strings_in_a_topic_name) {
  // [MQTT-1.5.4-1], [MQTT-1.5.4-2]
  for (const std::string_view s :
       {std::string_view("a\xC0\xAF", 3),                         // overlong '/'
        std::string_view("\xE0\x80\xAF", 3),                      // overlong, 3 bytes
        std::string_view("\xF0\x80\x80\xAF", 4),                  // overlong, 4 bytes
        std::string_view("\xED\xA0\x80", 3),                      // U+D800, a surrogate
        std::string_view("\xED\xBF\xBF", 3),                      // U+DFFF
        std::string_view("a\0b", 3),                              // U+0000
        std::string_view("\xF4\x90\x80\x80", 4),                  // U+110000
        std::string_view("\xFF", 1), std::string_view("\x80", 1), // lone continuation
        std::string_view("\xE2\x82", 2)}) {                       // truncated sequence
    SCOPED_TRACE(::testing::PrintToString(std::string(s)));
    EXPECT_TRUE(rejected(body().str(s).finish(0x30), v311, codec_errc::invalid_utf8, malformed));
    EXPECT_TRUE(rejected(body().str(s).u8(0).finish(0x30), v5, codec_errc::invalid_utf8, malformed));
  }
}

TEST(utf8, invalid_strings_elsewhere) {
  const std::string_view bad("\xC1\xBF", 2);
  EXPECT_TRUE(rejected(body().u16(1).str(bad).u8(0).finish(0x82), v311, codec_errc::invalid_utf8, malformed));
  EXPECT_TRUE(rejected(body().u16(1).str(bad).finish(0xA2), v311, codec_errc::invalid_utf8, malformed));
  EXPECT_TRUE(rejected(connect_v311(0x82, body().str("id").str(bad)), std::nullopt, codec_errc::invalid_utf8,
                       malformed));
  EXPECT_TRUE(rejected(body().u8(0x00).u8(0x00).props(body().u8(0x1F).str(bad)).finish(0x20), v5,
                       codec_errc::invalid_utf8, malformed));
}

// --- PUBLISH ----------------------------------------------------------------------------------------

TEST(publish, wildcard_in_topic_name) {
  // [MQTT-3.3.2-2]
  for (const std::string_view topic : {"a/+", "#", "a/#", "+", "a+b"}) {
    EXPECT_TRUE(rejected(body().str(topic).finish(0x30), v311, codec_errc::invalid_topic_name, malformed));
    EXPECT_TRUE(
        rejected(body().str(topic).u8(0).finish(0x30), v5, codec_errc::invalid_topic_name, malformed));
  }
}

TEST(publish, empty_topic) {
  // 3.1.1 [MQTT-4.7.3-1]
  EXPECT_TRUE(
      rejected(body().str("").raw("x").finish(0x30), v311, codec_errc::invalid_topic_name, malformed));
  // 5.0 section 3.3.2.1: a Protocol Error without a Topic Alias, valid with one.
  EXPECT_TRUE(rejected(body().str("").u8(0).raw("x").finish(0x30), v5, codec_errc::protocol_error, protocol));
  EXPECT_TRUE(accepted(body().str("").props(body().u8(0x23).u16(4)).raw("x").finish(0x30), v5));
}

TEST(publish, packet_id_zero) {
  // [MQTT-2.2.1-3]
  EXPECT_TRUE(
      rejected(body().str("t").u16(0).finish(0x32), v311, codec_errc::packet_identifier_zero, protocol));
  EXPECT_TRUE(
      rejected(body().str("t").u16(0).u8(0).finish(0x34), v5, codec_errc::packet_identifier_zero, protocol));
}

TEST(publish, qos_1_without_packet_id) {
  EXPECT_TRUE(rejected(body().str("t").u8(1).finish(0x32), v311, codec_errc::malformed_packet, malformed));
}

// --- acknowledgements -------------------------------------------------------------------------------

TEST(acknowledgement, packet_id_zero) {
  EXPECT_TRUE(rejected(bytes({0x40, 0x02, 0x00, 0x00}), v311, codec_errc::packet_identifier_zero, protocol));
  EXPECT_TRUE(rejected(bytes({0x50, 0x02, 0x00, 0x00}), v5, codec_errc::packet_identifier_zero, protocol));
  EXPECT_TRUE(rejected(bytes({0x62, 0x02, 0x00, 0x00}), v5, codec_errc::packet_identifier_zero, protocol));
  EXPECT_TRUE(rejected(bytes({0x70, 0x02, 0x00, 0x00}), v311, codec_errc::packet_identifier_zero, protocol));
  EXPECT_TRUE(
      rejected(bytes({0x90, 0x03, 0x00, 0x00, 0x00}), v311, codec_errc::packet_identifier_zero, protocol));
  EXPECT_TRUE(rejected(bytes({0xB0, 0x02, 0x00, 0x00}), v311, codec_errc::packet_identifier_zero, protocol));
}

TEST(acknowledgement, reason_code_not_allowed_in_packet) {
  // Each packet's table in 5.0 section 3: 0x92 is PUBREL's, not PUBACK's; 0x10 is PUBACK's, not PUBREL's.
  EXPECT_TRUE(rejected(bytes({0x40, 0x03, 0x00, 0x01, 0x92}), v5, codec_errc::invalid_reason_code, protocol));
  EXPECT_TRUE(rejected(bytes({0x62, 0x03, 0x00, 0x01, 0x10}), v5, codec_errc::invalid_reason_code, protocol));
  EXPECT_TRUE(rejected(bytes({0x70, 0x03, 0x00, 0x01, 0x80}), v5, codec_errc::invalid_reason_code, protocol));
  EXPECT_TRUE(rejected(bytes({0xE0, 0x01, 0x01}), v5, codec_errc::invalid_reason_code, protocol));
  EXPECT_TRUE(rejected(bytes({0xF0, 0x02, 0x80, 0x00}), v5, codec_errc::invalid_reason_code, protocol));
  EXPECT_TRUE(rejected(bytes({0x20, 0x03, 0x00, 0x04, 0x00}), v5, codec_errc::invalid_reason_code, protocol));
  EXPECT_TRUE(
      rejected(bytes({0x90, 0x04, 0x00, 0x01, 0x00, 0x10}), v5, codec_errc::invalid_reason_code, protocol));
  EXPECT_TRUE(
      rejected(bytes({0xB0, 0x04, 0x00, 0x01, 0x00, 0x02}), v5, codec_errc::invalid_reason_code, protocol));
  // 3.1.1: CONNACK return codes stop at 5, SUBACK knows 0, 1, 2 and 0x80.
  EXPECT_TRUE(rejected(bytes({0x20, 0x02, 0x00, 0x06}), v311, codec_errc::invalid_reason_code, protocol));
  EXPECT_TRUE(
      rejected(bytes({0x90, 0x03, 0x00, 0x01, 0x03}), v311, codec_errc::invalid_reason_code, protocol));
  EXPECT_TRUE(
      rejected(bytes({0x90, 0x03, 0x00, 0x01, 0x87}), v311, codec_errc::invalid_reason_code, protocol));
}

TEST(acknowledgement, connack_reserved_bits) {
  // 5.0 [MQTT-3.2.2-1]; 3.1.1 section 3.2.2.1
  EXPECT_TRUE(rejected(bytes({0x20, 0x02, 0x02, 0x00}), v311, codec_errc::malformed_packet, malformed));
  EXPECT_TRUE(rejected(bytes({0x20, 0x03, 0x80, 0x00, 0x00}), v5, codec_errc::malformed_packet, malformed));
}

TEST(acknowledgement, connack_session_present_with_refusal) {
  // 3.1.1 [MQTT-3.2.2-4], 5.0 [MQTT-3.2.2-6]
  EXPECT_TRUE(rejected(bytes({0x20, 0x02, 0x01, 0x05}), v311, codec_errc::protocol_error, protocol));
  EXPECT_TRUE(rejected(bytes({0x20, 0x03, 0x01, 0x87, 0x00}), v5, codec_errc::protocol_error, protocol));
}

TEST(acknowledgement, empty_suback_and_unsuback_lists) {
  EXPECT_TRUE(rejected(bytes({0x90, 0x02, 0x00, 0x01}), v311, codec_errc::malformed_packet, malformed));
  EXPECT_TRUE(rejected(bytes({0x90, 0x03, 0x00, 0x01, 0x00}), v5, codec_errc::malformed_packet, malformed));
  EXPECT_TRUE(rejected(bytes({0xB0, 0x03, 0x00, 0x01, 0x00}), v5, codec_errc::malformed_packet, malformed));
}

TEST(acknowledgement, auth_with_reason_code_but_no_property_length) {
  // 5.0 section 3.15.2.1: reason code and properties are omitted together or not at all.
  EXPECT_TRUE(rejected(bytes({0xF0, 0x01, 0x18}), v5, codec_errc::malformed_packet, malformed));
}

// --- SUBSCRIBE, UNSUBSCRIBE ---------------------------------------------------------------------------

TEST(subscribe, empty_payload) {
  // 5.0 [MQTT-3.8.3-2] ("A SUBSCRIBE packet with no Payload is a Protocol Error"), 3.1.1 [MQTT-3.8.3-3]
  EXPECT_TRUE(rejected(bytes({0x82, 0x02, 0x00, 0x01}), v311, codec_errc::empty_subscription_list, protocol));
  EXPECT_TRUE(
      rejected(bytes({0x82, 0x03, 0x00, 0x01, 0x00}), v5, codec_errc::empty_subscription_list, protocol));
}

TEST(subscribe, packet_id_zero) {
  EXPECT_TRUE(rejected(body().u16(0).str("a").u8(0).finish(0x82), v311, codec_errc::packet_identifier_zero,
                       protocol));
}

TEST(subscribe, options_reserved_bits_v311) {
  // 3.1.1 [MQTT-3-8.3-4]: upper 6 bits reserved, QoS 3 not allowed.
  for (const int options : {0x04, 0x08, 0x40, 0x80, 0xFC}) {
    EXPECT_TRUE(rejected(body().u16(1).str("a").u8(options).finish(0x82), v311, codec_errc::malformed_packet,
                         malformed));
  }
  EXPECT_TRUE(
      rejected(body().u16(1).str("a").u8(0x03).finish(0x82), v311, codec_errc::invalid_qos, malformed));
}

TEST(subscribe, options_reserved_bits_v5) {
  // 5.0 [MQTT-3.8.3-5]: bits 6 and 7.
  for (const int options : {0x40, 0x80}) {
    EXPECT_TRUE(rejected(body().u16(1).u8(0).str("a").u8(options).finish(0x82), v5,
                         codec_errc::malformed_packet, malformed));
  }
  // 5.0 section 3.8.3.1: QoS 3 and Retain Handling 3 are Protocol Errors.
  EXPECT_TRUE(
      rejected(body().u16(1).u8(0).str("a").u8(0x03).finish(0x82), v5, codec_errc::protocol_error, protocol));
  EXPECT_TRUE(
      rejected(body().u16(1).u8(0).str("a").u8(0x30).finish(0x82), v5, codec_errc::protocol_error, protocol));
  // No Local, Retain As Published and Retain Handling 2 are fine.
  EXPECT_TRUE(accepted(body().u16(1).u8(0).str("a").u8(0x2E).finish(0x82), v5));
}

TEST(subscribe, no_local_on_shared_subscription) {
  // [MQTT-3.8.3-4]
  EXPECT_TRUE(rejected(body().u16(1).u8(0).str("$share/g/a").u8(0x04).finish(0x82), v5,
                       codec_errc::protocol_error, protocol));
}

TEST(subscribe, invalid_topic_filters) {
  // [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.7.3-1], [MQTT-4.8.2-1], [MQTT-4.8.2-2]
  for (const std::string_view filter :
       {"", "a/#/b", "a#", "#/", "a+", "+a/b", "a/b+", "$share/g", "$share//a", "$share/g+/a", "$share/g#/a",
        "$share/g/", "$share/g/a/#/b"}) {
    SCOPED_TRACE(filter);
    EXPECT_TRUE(rejected(body().u16(1).str(filter).u8(0).finish(0x82), v311, codec_errc::invalid_topic_filter,
                         malformed));
    EXPECT_TRUE(rejected(body().u16(1).u8(0).str(filter).u8(0).finish(0x82), v5,
                         codec_errc::invalid_topic_filter, malformed));
    EXPECT_TRUE(
        rejected(body().u16(1).str(filter).finish(0xA2), v311, codec_errc::invalid_topic_filter, malformed));
  }
}

TEST(subscribe, pair_without_options_byte) {
  EXPECT_TRUE(rejected(body().u16(1).str("a").u8(0).str("b").finish(0x82), v311, codec_errc::malformed_packet,
                       malformed));
}

TEST(unsubscribe, empty_payload) {
  // 5.0 [MQTT-3.10.3-2] ("An UNSUBSCRIBE packet with no Payload is a Protocol Error")
  EXPECT_TRUE(rejected(bytes({0xA2, 0x02, 0x00, 0x01}), v311, codec_errc::empty_subscription_list, protocol));
  EXPECT_TRUE(
      rejected(bytes({0xA2, 0x03, 0x00, 0x01, 0x00}), v5, codec_errc::empty_subscription_list, protocol));
}

TEST(unsubscribe, packet_id_zero) {
  EXPECT_TRUE(
      rejected(body().u16(0).str("a").finish(0xA2), v311, codec_errc::packet_identifier_zero, protocol));
}

// --- every rejected packet is rejected at every split ------------------------------------------------

TEST(partial, rejection_never_depends_on_what_has_not_arrived) {
  // A truncated valid packet is need_more, never an error, however it is cut.
  for (const protocol_version v : test::all_versions) {
    for (const packet& p : test::sample_packets(v)) {
      const auto b = encoded(p, v);
      const std::optional<protocol_version> version =
          type_of(p) == packet_type::connect ? std::nullopt : std::optional(v);
      for (std::size_t n = 0; n < b.size(); ++n) {
        const decode_result r = decode(std::span(b).first(n), version, {});
        ASSERT_EQ(r.status, decode_status::need_more) << test::type_name(type_of(p)) << " cut at " << n;
      }
    }
  }
}

} // namespace
} // namespace firehook::mqtt

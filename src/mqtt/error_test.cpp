// The codec error category and the mapping to reason codes.

#include <gtest/gtest.h>

#include "mqtt/error.hpp"
#include "mqtt/reason_code.hpp"

namespace firehook::mqtt {
namespace {

TEST(codec_error, category_and_messages) {
  const std::error_code ec = codec_errc::invalid_utf8;
  EXPECT_STREQ(ec.category().name(), "mqtt.codec");
  EXPECT_EQ(ec.message(), "invalid UTF-8 string");
  for (int e = 1; e <= static_cast<int>(codec_errc::protocol_error); ++e) {
    const std::error_code code = static_cast<codec_errc>(e);
    EXPECT_TRUE(code);
    EXPECT_NE(code.message(), "unknown mqtt.codec error") << e;
  }
}

TEST(codec_error, reason_codes) {
  using enum codec_errc;
  const std::pair<codec_errc, reason_code> expected[] = {
      {malformed_packet, reason_code::malformed_packet},
      {bad_remaining_length, reason_code::malformed_packet},
      {reserved_flags, reason_code::malformed_packet},
      {invalid_packet_type, reason_code::malformed_packet},
      {invalid_utf8, reason_code::malformed_packet},
      {invalid_property, reason_code::malformed_packet},
      {duplicate_property, reason_code::protocol_error},
      {property_value_invalid, reason_code::protocol_error},
      {invalid_qos, reason_code::malformed_packet},
      {packet_identifier_zero, reason_code::protocol_error},
      {empty_subscription_list, reason_code::protocol_error},
      {invalid_topic_name, reason_code::malformed_packet},
      {invalid_topic_filter, reason_code::malformed_packet},
      {invalid_protocol_name, reason_code::unsupported_protocol_version},
      {unsupported_protocol_version, reason_code::unsupported_protocol_version},
      {invalid_connect_flags, reason_code::malformed_packet},
      {packet_too_large, reason_code::packet_too_large},
      {invalid_reason_code, reason_code::protocol_error},
      {protocol_error, reason_code::protocol_error},
  };
  for (const auto& [e, rc] : expected) {
    EXPECT_EQ(to_reason_code(e), rc) << std::error_code(e).message();
  }
}

TEST(codec_error, foreign_errors_are_unspecified) {
  EXPECT_EQ(to_reason_code(std::make_error_code(std::errc::connection_reset)),
            reason_code::unspecified_error);
  // Same value as codec_errc::malformed_packet, other category.
  EXPECT_EQ(to_reason_code(std::error_code(1, std::generic_category())), reason_code::unspecified_error);
  EXPECT_EQ(to_reason_code(std::error_code{}), reason_code::success);
}

TEST(reason_code, names) {
  EXPECT_EQ(to_string(reason_code::success), "Success");
  EXPECT_EQ(to_string(reason_code::malformed_packet), "Malformed Packet");
  EXPECT_EQ(to_string(reason_code::packet_too_large), "Packet too large");
  EXPECT_EQ(to_string(reason_code::wildcard_subscriptions_not_supported),
            "Wildcard Subscriptions not supported");
  EXPECT_EQ(to_string(static_cast<reason_code>(0x03)), "Unknown");
  EXPECT_EQ(to_string(static_cast<reason_code>(0xFF)), "Unknown");
  // Every defined code has a name.
  int named = 0;
  for (int v = 0; v < 256; ++v) {
    if (to_string(static_cast<reason_code>(v)) != "Unknown") {
      ++named;
    }
  }
  EXPECT_EQ(named, 43);
}

TEST(reason_code, v3_connack_mapping) {
  EXPECT_EQ(to_v3_connack(reason_code::success), connack_return_code_v3::accepted);
  EXPECT_EQ(to_v3_connack(reason_code::unsupported_protocol_version),
            connack_return_code_v3::unacceptable_protocol_version);
  EXPECT_EQ(to_v3_connack(reason_code::client_identifier_not_valid),
            connack_return_code_v3::identifier_rejected);
  EXPECT_EQ(to_v3_connack(reason_code::server_unavailable), connack_return_code_v3::server_unavailable);
  EXPECT_EQ(to_v3_connack(reason_code::server_busy), connack_return_code_v3::server_unavailable);
  EXPECT_EQ(to_v3_connack(reason_code::use_another_server), connack_return_code_v3::server_unavailable);
  EXPECT_EQ(to_v3_connack(reason_code::bad_user_name_or_password),
            connack_return_code_v3::bad_user_name_or_password);
  EXPECT_EQ(to_v3_connack(reason_code::not_authorized), connack_return_code_v3::not_authorized);
  EXPECT_EQ(to_v3_connack(reason_code::banned), connack_return_code_v3::not_authorized);
  EXPECT_EQ(to_v3_connack(reason_code::bad_authentication_method), connack_return_code_v3::not_authorized);
}

TEST(reason_code, is_error) {
  EXPECT_FALSE(is_error(reason_code::granted_qos_2));
  EXPECT_FALSE(is_error(reason_code::re_authenticate));
  EXPECT_TRUE(is_error(reason_code::unspecified_error));
}

} // namespace
} // namespace firehook::mqtt

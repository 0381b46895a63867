#include "base/address_range.hpp"

#include <gtest/gtest.h>

namespace firehook::base {
namespace {

address_range range(std::string_view text) {
  std::string error;
  auto r = address_range::parse(text, error);
  EXPECT_TRUE(r) << text << ": " << error;
  return r.value_or(address_range{});
}

TEST(AddressRange, Ipv4Network) {
  const auto r = range("10.0.0.0/8");
  EXPECT_TRUE(r.contains(*parse_address("10.255.1.2")));
  EXPECT_TRUE(r.contains(*parse_address("::ffff:10.1.2.3"))); // dual-stack form
  EXPECT_FALSE(r.contains(*parse_address("11.0.0.1")));
  EXPECT_FALSE(r.contains(*parse_address("::1")));
}

TEST(AddressRange, PrefixNotOnAByte) {
  const auto r = range("192.168.4.0/22");
  EXPECT_TRUE(r.contains(*parse_address("192.168.7.255")));
  EXPECT_FALSE(r.contains(*parse_address("192.168.8.0")));
  EXPECT_FALSE(r.contains(*parse_address("192.168.3.255")));
}

TEST(AddressRange, Ipv6AndSingleAddresses) {
  EXPECT_TRUE(range("2001:db8::/32").contains(*parse_address("2001:db8:ffff::1")));
  EXPECT_FALSE(range("2001:db8::/32").contains(*parse_address("2001:db9::1")));
  EXPECT_TRUE(range("127.0.0.1").contains(*parse_address("127.0.0.1")));
  EXPECT_FALSE(range("127.0.0.1").contains(*parse_address("127.0.0.2")));
  EXPECT_TRUE(range("0.0.0.0/0").contains(*parse_address("8.8.8.8")));
  EXPECT_FALSE(range("0.0.0.0/0").contains(*parse_address("2001:db8::1")));
}

TEST(AddressRange, RefusesWhatIsNotANetwork) {
  std::string error;
  EXPECT_FALSE(address_range::parse("10.0.0.0/33", error));
  EXPECT_EQ(error, "prefix length must be 0..32");
  EXPECT_FALSE(address_range::parse("::/129", error));
  EXPECT_FALSE(address_range::parse("10.0.0.0/", error));
  EXPECT_FALSE(address_range::parse("10.0.0.0/8x", error));
  EXPECT_FALSE(address_range::parse("gateway.local", error));
  EXPECT_EQ(error, "not an IPv4 or IPv6 address or network");
  EXPECT_FALSE(parse_address(std::string(100, '1')));
}

TEST(AddressSet, AnyRangeMatches) {
  const address_set set({range("10.0.0.0/8"), range("::1")});
  EXPECT_TRUE(set.contains("10.9.9.9"));
  EXPECT_TRUE(set.contains("::1"));
  EXPECT_FALSE(set.contains("127.0.0.1"));
  EXPECT_FALSE(set.contains("not an address"));
}

TEST(address_masked, clears_the_bits_past_the_prefix_and_tells_ipv4) {
  const auto v4 = *parse_address("192.0.2.77");
  EXPECT_TRUE(is_ipv4(v4));
  EXPECT_EQ(masked(v4, 120), *parse_address("192.0.2.0"));
  EXPECT_EQ(masked(v4, 123), *parse_address("192.0.2.64"));
  const auto v6 = *parse_address("2001:db8:1:2:3:4:5:6");
  EXPECT_FALSE(is_ipv4(v6));
  EXPECT_EQ(masked(v6, 64), *parse_address("2001:db8:1:2::"));
  EXPECT_EQ(masked(v6, 128), v6);
  EXPECT_EQ(masked(v6, 0), address_bytes{});
  std::string error;
  EXPECT_EQ(address_range::parse("10.1.2.3/8", error)->network(), *parse_address("10.0.0.0"));
  EXPECT_EQ(address_range::parse("10.1.2.3/8", error)->ipv6_prefix_length(), 104U);
}

} // namespace
} // namespace firehook::base

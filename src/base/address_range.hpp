#pragma once
// A network in CIDR notation ("10.0.0.0/8", "2001:db8::/32", or one address), and whether an
// address is in it. IPv4 is kept as its IPv4-mapped IPv6 form (::ffff:a.b.c.d), so "10.0.0.0/8"
// also matches a dual-stack listener's "::ffff:10.1.2.3".

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace firehook::base {

// 16 bytes of an IPv6 address; IPv4 as ::ffff:a.b.c.d.
using address_bytes = std::array<std::uint8_t, 16>;

// The bytes of an IPv4 or IPv6 literal, or nullopt when `text` is not one.
std::optional<address_bytes> parse_address(std::string_view text);
// Whether `a` is an IPv4 address (::ffff:a.b.c.d).
bool is_ipv4(const address_bytes& a);
// `a` with every bit past the first `prefix` (0..128, in the IPv6 form: an IPv4 /24 is 120) cleared.
address_bytes masked(address_bytes a, unsigned prefix);

class address_range {
public:
  // "a.b.c.d/n" (n 0..32), "x::y/n" (n 0..128), or an address alone (every bit).
  // nullopt with `error` set ("prefix length must be 0..32") when `text` is not one.
  static std::optional<address_range> parse(std::string_view text, std::string& error);

  bool contains(const address_bytes& a) const;
  std::string to_string() const { return text_; }
  // Written as an IPv4 network; its prefix length as written (0..32 for IPv4, 0..128 for IPv6).
  bool ipv4() const { return ipv4_; }
  unsigned prefix_length() const { return ipv4_ ? prefix_ - 96 : prefix_; }
  // The prefix length in the IPv6 form (an IPv4 /24 is 120), and the network's bytes.
  unsigned ipv6_prefix_length() const { return prefix_; }
  address_bytes network() const { return masked(bytes_, prefix_); }

private:
  address_bytes bytes_{};
  unsigned prefix_ = 128; // in the IPv6 form
  bool ipv4_ = false;
  std::string text_;
};

// Several ranges: an allowlist.
class address_set {
public:
  address_set() = default;
  explicit address_set(std::vector<address_range> ranges) : ranges_(std::move(ranges)) {}

  bool contains(const address_bytes& a) const;
  // False for text that is not an address.
  bool contains(std::string_view address) const;
  bool empty() const { return ranges_.empty(); }
  std::span<const address_range> ranges() const { return ranges_; }

private:
  std::vector<address_range> ranges_;
};

} // namespace firehook::base

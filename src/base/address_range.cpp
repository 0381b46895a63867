#include "base/address_range.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace firehook::base {

std::optional<address_bytes> parse_address(std::string_view text) {
  if (text.size() >= INET6_ADDRSTRLEN) {
    return std::nullopt;
  }
  char buffer[INET6_ADDRSTRLEN] = {};
  std::memcpy(buffer, text.data(), text.size());
  address_bytes out{};
  in_addr v4{};
  if (inet_pton(AF_INET, buffer, &v4) == 1) {
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return out;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, buffer, &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return out;
  }
  return std::nullopt;
}

std::optional<address_range> address_range::parse(std::string_view text, std::string& error) {
  const auto slash = text.find('/');
  const std::string_view address = text.substr(0, slash);
  const auto bytes = parse_address(address);
  if (!bytes) {
    error = "not an IPv4 or IPv6 address or network";
    return std::nullopt;
  }
  const bool v4 = address.find(':') == std::string_view::npos;
  const unsigned width = v4 ? 32 : 128;
  unsigned prefix = width;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || prefix > width) {
      error = "prefix length must be 0.." + std::to_string(width);
      return std::nullopt;
    }
  }
  address_range r;
  r.bytes_ = *bytes;
  r.prefix_ = v4 ? prefix + 96 : prefix;
  r.ipv4_ = v4;
  r.text_ = std::string(text);
  return r;
}

bool address_range::contains(const address_bytes& a) const {
  const unsigned whole = prefix_ / 8;
  if (std::memcmp(a.data(), bytes_.data(), whole) != 0) {
    return false;
  }
  const unsigned rest = prefix_ % 8;
  if (rest == 0) {
    return true;
  }
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (bytes_[whole] & mask);
}

bool address_set::contains(const address_bytes& a) const {
  for (const address_range& r : ranges_) {
    if (r.contains(a)) {
      return true;
    }
  }
  return false;
}

bool address_set::contains(std::string_view address) const {
  const auto bytes = parse_address(address);
  return bytes && contains(*bytes);
}

} // namespace firehook::base

#include "base/address_range.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace firehook::base {

std::optional<address_bytes> parse_address(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) {
    return std::nullopt; // empty: its data() may be null, which memcpy must not get
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

bool is_ipv4(const address_bytes& a) {
  constexpr std::array<std::uint8_t, 12> mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::equal(mapped.begin(), mapped.end(), a.begin());
}

address_bytes masked(address_bytes a, unsigned prefix) {
  for (unsigned i = 0; i < a.size(); ++i) {
    const unsigned kept = prefix > i * 8 ? std::min(prefix - i * 8, 8U) : 0U;
    a[i] = static_cast<std::uint8_t>(a[i] & (0xff00U >> kept));
  }
  return a;
}

bool address_range::contains(const address_bytes& a) const {
  return masked(a, prefix_) == masked(bytes_, prefix_);
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

#pragma once
// SipHash-2-4 (libsodium's crypto_shorthash) under a random key drawn when the hash is made, for
// hash tables keyed by what an attacker chooses: peer addresses (an IPv6 /64 holds 2^64), user
// names, client ids. With a fixed hash (std::hash) such keys can be chosen to collide, and each
// lookup of a flooded table then walks every colliding entry.
//
// Threads: const members are thread safe. Construction throws std::runtime_error when libsodium
// cannot be initialised.

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "base/address_range.hpp"

namespace firehook::security {

class keyed_hash {
public:
  keyed_hash();

  std::size_t operator()(std::span<const unsigned char> bytes) const noexcept;
  std::size_t operator()(std::string_view s) const noexcept {
    return (*this)(std::span(reinterpret_cast<const unsigned char*>(s.data()), s.size()));
  }
  std::size_t operator()(const std::string& s) const noexcept { return (*this)(std::string_view(s)); }
  std::size_t operator()(const base::address_bytes& a) const noexcept {
    return (*this)(std::span<const unsigned char>(a.data(), a.size()));
  }

private:
  std::array<unsigned char, 16> key_{};
};

} // namespace firehook::security

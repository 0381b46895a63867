#include "security/keyed_hash.hpp"

#include <sodium.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace firehook::security {

keyed_hash::keyed_hash() {
  static_assert(sizeof(key_) == crypto_shorthash_KEYBYTES);
  if (sodium_init() < 0) {
    throw std::runtime_error("libsodium cannot be initialised");
  }
  crypto_shorthash_keygen(key_.data());
}

std::size_t keyed_hash::operator()(std::span<const unsigned char> bytes) const noexcept {
  std::array<unsigned char, crypto_shorthash_BYTES> out{};
  crypto_shorthash(out.data(), bytes.data(), bytes.size(), key_.data());
  std::uint64_t h = 0;
  std::memcpy(&h, out.data(), sizeof h);
  return static_cast<std::size_t>(h);
}

} // namespace firehook::security

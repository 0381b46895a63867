#pragma once
// Private to src/mqtt: the data representations of MQTT (5.0 section 1.5, 3.1.1 section 1.5) read
// from and written to bytes.
//
//   Byte / Two Byte Integer / Four Byte Integer   big-endian
//   Variable Byte Integer                          7 bits per byte, low group first, bit 7 = "more",
//                                                  1 to 4 bytes, minimal length [MQTT-1.5.5-1]
//   UTF-8 Encoded String                           Two Byte Integer length, then that many bytes
//   Binary Data                                    Two Byte Integer length, then that many bytes
//   UTF-8 String Pair                              two UTF-8 Encoded Strings
//
// A `reader` never reads past the end of its span; every read reports failure instead. Writers come in
// two kinds with the same interface, so one template per packet both measures and writes it: a
// `size_counter` only adds up lengths, a `byte_writer` stores into memory the caller has sized.

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "mqtt/error.hpp"
#include "mqtt/topic.hpp"

namespace firehook::mqtt::wire {

// codec_errc has no enumerator for success; the zero value means "no error" as std::error_code does.
inline constexpr codec_errc ok{};

inline constexpr std::uint32_t max_variable_byte_integer = 268'435'455;
inline constexpr std::size_t max_string_size = 65'535;

constexpr std::size_t variable_byte_integer_size(std::uint32_t v) {
  return v < 128 ? 1 : v < 16'384 ? 2 : v < 2'097'152 ? 3 : 4;
}

enum class vbi_status : std::uint8_t { complete, need_more, invalid };

// Parses a Variable Byte Integer from the front of [p, p + n). `used` is set when complete.
// Invalid when a fifth byte would be needed or when the encoding is longer than necessary
// (its last byte is zero) [MQTT-1.5.5-1].
inline vbi_status parse_variable_byte_integer(const std::byte* p, std::size_t n, std::uint32_t& value,
                                              std::size_t& used) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    if (i == n) {
      return vbi_status::need_more;
    }
    const auto b = static_cast<std::uint32_t>(p[i]);
    v |= (b & 0x7Fu) << (7 * i);
    if ((b & 0x80u) == 0) {
      if (i > 0 && b == 0) {
        return vbi_status::invalid;
      }
      value = v;
      used = i + 1;
      return vbi_status::complete;
    }
  }
  return vbi_status::invalid;
}

class reader {
public:
  reader() = default;
  explicit reader(std::span<const std::byte> s) : p_(s.data()), end_(s.data() + s.size()) {}

  std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }
  bool empty() const { return p_ == end_; }

  bool read_u8(std::uint8_t& v) {
    if (p_ == end_) {
      return false;
    }
    v = static_cast<std::uint8_t>(*p_++);
    return true;
  }

  bool read_u16(std::uint16_t& v) {
    if (remaining() < 2) {
      return false;
    }
    v = static_cast<std::uint16_t>((static_cast<unsigned>(p_[0]) << 8) | static_cast<unsigned>(p_[1]));
    p_ += 2;
    return true;
  }

  bool read_u32(std::uint32_t& v) {
    if (remaining() < 4) {
      return false;
    }
    v = (static_cast<std::uint32_t>(p_[0]) << 24) | (static_cast<std::uint32_t>(p_[1]) << 16) |
        (static_cast<std::uint32_t>(p_[2]) << 8) | static_cast<std::uint32_t>(p_[3]);
    p_ += 4;
    return true;
  }

  // Inside a packet whose length is known, a truncated integer is as malformed as an overlong one.
  bool read_variable_byte_integer(std::uint32_t& v) {
    std::size_t used = 0;
    if (parse_variable_byte_integer(p_, remaining(), v, used) != vbi_status::complete) {
      return false;
    }
    p_ += used;
    return true;
  }

  // Splits off the next `n` bytes as a reader of their own.
  bool take(std::size_t n, reader& sub) {
    if (remaining() < n) {
      return false;
    }
    sub.p_ = p_;
    sub.end_ = p_ + n;
    p_ += n;
    return true;
  }

  bool read_binary(std::string& s) {
    std::uint16_t n = 0;
    if (!read_u16(n) || remaining() < n) {
      return false;
    }
    s.assign(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }

  // [MQTT-1.5.4-1], [MQTT-1.5.4-2]: ill-formed UTF-8, surrogates and U+0000 make the packet malformed.
  codec_errc read_utf8(std::string& s) {
    std::uint16_t n = 0;
    if (!read_u16(n) || remaining() < n) {
      return codec_errc::malformed_packet;
    }
    const std::string_view view(reinterpret_cast<const char*>(p_), n);
    if (!is_valid_utf8(view)) {
      return codec_errc::invalid_utf8;
    }
    s.assign(view);
    p_ += n;
    return ok;
  }

  // The rest of the span, consumed.
  std::string_view read_rest() {
    const std::string_view view(reinterpret_cast<const char*>(p_), remaining());
    p_ = end_;
    return view;
  }

private:
  const std::byte* p_ = nullptr;
  const std::byte* end_ = nullptr;
};

class size_counter {
public:
  void u8(std::uint8_t) { size_ += 1; }
  void u16(std::uint16_t) { size_ += 2; }
  void u32(std::uint32_t) { size_ += 4; }
  void variable_byte_integer(std::uint32_t v) { size_ += variable_byte_integer_size(v); }
  void raw(std::string_view s) { size_ += s.size(); }
  void skip(std::size_t n) { size_ += n; }
  void string(std::string_view s) { size_ += 2 + (s.size() < max_string_size ? s.size() : max_string_size); }
  std::size_t size() const { return size_; }

private:
  std::size_t size_ = 0;
};

// Writes into memory that the caller has already sized exactly (with a size_counter pass).
class byte_writer {
public:
  explicit byte_writer(std::byte* p) : p_(p) {}

  void u8(std::uint8_t v) { *p_++ = static_cast<std::byte>(v); }
  void u16(std::uint16_t v) {
    u8(static_cast<std::uint8_t>(v >> 8));
    u8(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    u8(static_cast<std::uint8_t>(v >> 24));
    u8(static_cast<std::uint8_t>(v >> 16));
    u8(static_cast<std::uint8_t>(v >> 8));
    u8(static_cast<std::uint8_t>(v));
  }
  void variable_byte_integer(std::uint32_t v) {
    assert(v <= max_variable_byte_integer);
    do {
      auto b = static_cast<std::uint8_t>(v & 0x7Fu);
      v >>= 7;
      if (v != 0) {
        b = static_cast<std::uint8_t>(b | 0x80u);
      }
      u8(b);
    } while (v != 0);
  }
  void raw(std::string_view s) {
    if (!s.empty()) {
      std::memcpy(p_, s.data(), s.size());
      p_ += s.size();
    }
  }
  // UTF-8 string or binary data. A string the spec cannot carry is a caller's bug; it is cut to the
  // largest length the wire allows so that the packets after it are still framed correctly.
  void string(std::string_view s) {
    assert(s.size() <= max_string_size && "MQTT strings and binary data hold at most 65,535 bytes");
    if (s.size() > max_string_size) {
      s = s.substr(0, max_string_size);
    }
    u16(static_cast<std::uint16_t>(s.size()));
    raw(s);
  }
  std::byte* position() const { return p_; }

private:
  std::byte* p_;
};

} // namespace firehook::mqtt::wire

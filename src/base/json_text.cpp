#include "base/json_text.hpp"

#include <cstddef>

namespace firehook::base {

namespace {

// The length of the well-formed UTF-8 sequence starting at `p` (RFC 3629 section 4), or 0.
std::size_t utf8_sequence(const unsigned char* p, const unsigned char* end) {
  const unsigned c = *p;
  std::size_t more = 0;
  unsigned lo = 0x80;
  unsigned hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    more = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    more = 2;
    lo = c == 0xE0 ? 0xA0 : 0x80; // no overlong forms
    hi = c == 0xED ? 0x9F : 0xBF; // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    more = 3;
    lo = c == 0xF0 ? 0x90 : 0x80;
    hi = c == 0xF4 ? 0x8F : 0xBF; // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (static_cast<std::size_t>(end - p) <= more || p[1] < lo || p[1] > hi) {
    return 0;
  }
  for (std::size_t i = 2; i <= more; ++i) {
    if (p[i] < 0x80 || p[i] > 0xBF) {
      return 0;
    }
  }
  return more + 1;
}

} // namespace

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = p + text.size();
  while (p != end) {
    const unsigned c = *p;
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++p;
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 0xF];
      ++p;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++p;
    } else if (const std::size_t n = utf8_sequence(p, end); n != 0) {
      out.append(reinterpret_cast<const char*>(p), n);
      p += n;
    } else {
      out += "\\ufffd"; // one replacement per byte that starts no well-formed sequence
      ++p;
    }
  }
  out += '"';
}

} // namespace firehook::base

// Topic names, topic filters and UTF-8 strings.
//
//   topic-name   = level *( "/" level )        at least one character, no "+" or "#"
//   topic-filter = flevel *( "/" flevel )      "+" and "#" only as a whole level, "#" only last
//   shared       = "$share/" share-name "/" topic-filter
//   share-name   = 1*( any character but "/", "+", "#" )

#include "mqtt/topic.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace firehook::mqtt {
namespace {

constexpr std::string_view share_prefix = "$share/";

// True when every byte of the 8 loaded is ASCII and none is zero: the common case, checked a word at a
// time (the classic "has zero byte" test on the word, and a high-bit test).
bool ascii_without_nul(std::uint64_t w) {
  constexpr std::uint64_t ones = 0x0101010101010101u;
  constexpr std::uint64_t highs = 0x8080808080808080u;
  return ((w | ((w - ones) & ~w)) & highs) == 0;
}

// Filter levels without the "$share/" handling.
bool is_valid_plain_filter(std::string_view f) {
  if (f.empty()) {
    return false; // [MQTT-4.7.3-1]
  }
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = f.find('/', start);
    const std::size_t end = slash == std::string_view::npos ? f.size() : slash;
    const std::string_view level = f.substr(start, end - start);
    if (level.find_first_of("+#") != std::string_view::npos) {
      // [MQTT-4.7.1-2], [MQTT-4.7.1-3]: a wildcard occupies a whole level ...
      if (level.size() != 1) {
        return false;
      }
      // ... and "#" is the last one.
      if (level[0] == '#' && slash != std::string_view::npos) {
        return false;
      }
    }
    if (slash == std::string_view::npos) {
      return true;
    }
    start = slash + 1;
  }
}

// Walks the "/"-separated levels of a string; "a//b/" has the levels "a", "", "b", "".
class level_cursor {
public:
  explicit level_cursor(std::string_view s) : s_(s) {}
  bool done() const { return done_; }
  std::string_view next() {
    const std::size_t slash = s_.find('/', pos_);
    if (slash == std::string_view::npos) {
      done_ = true;
      return s_.substr(pos_);
    }
    const std::string_view level = s_.substr(pos_, slash - pos_);
    pos_ = slash + 1;
    return level;
  }

private:
  std::string_view s_;
  std::size_t pos_ = 0;
  bool done_ = false;
};

} // namespace

bool is_valid_utf8(std::string_view s) {
  if (s.size() > 65'535) {
    return false;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* const end = p + s.size();
  while (p != end) {
    if (end - p >= 8) {
      std::uint64_t w = 0;
      std::memcpy(&w, p, sizeof w);
      if (ascii_without_nul(w)) {
        p += 8;
        continue;
      }
    }
    const unsigned c = *p;
    if (c < 0x80) {
      if (c == 0) {
        return false; // [MQTT-1.5.4-2]
      }
      ++p;
      continue;
    }
    // Well-formed sequences per RFC 3629 section 4 (Unicode table 3-7). Restricting the second byte
    // is what rules out overlong forms (C0, C1, E0 80..9F, F0 80..8F), the surrogates U+D800..U+DFFF
    // (ED A0..BF) [MQTT-1.5.4-1], and code points above U+10FFFF (F4 90.., F5..FF).
    std::size_t continuation = 0;
    unsigned lo = 0x80;
    unsigned hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      continuation = 1;
    } else if (c == 0xE0) {
      continuation = 2;
      lo = 0xA0;
    } else if (c == 0xED) {
      continuation = 2;
      hi = 0x9F;
    } else if (c >= 0xE1 && c <= 0xEF) {
      continuation = 2;
    } else if (c == 0xF0) {
      continuation = 3;
      lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      continuation = 3;
    } else if (c == 0xF4) {
      continuation = 3;
      hi = 0x8F;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) <= continuation || p[1] < lo || p[1] > hi) {
      return false;
    }
    for (std::size_t i = 2; i <= continuation; ++i) {
      if ((p[i] & 0xC0u) != 0x80u) {
        return false;
      }
    }
    p += continuation + 1;
  }
  return true;
}

bool has_wildcard(std::string_view filter) {
  return filter.find_first_of("+#") != std::string_view::npos;
}

bool is_valid_topic_name(std::string_view topic) {
  // [MQTT-4.7.3-1] at least one character; [MQTT-4.7.1-1] no wildcard characters.
  return !topic.empty() && !has_wildcard(topic) && is_valid_utf8(topic);
}

bool is_valid_topic_filter(std::string_view filter) {
  if (!is_valid_utf8(filter)) {
    return false;
  }
  if (filter.starts_with(share_prefix)) {
    return parse_shared_filter(filter).has_value();
  }
  return is_valid_plain_filter(filter);
}

std::optional<shared_filter> parse_shared_filter(std::string_view filter) {
  if (!filter.starts_with(share_prefix)) {
    return std::nullopt;
  }
  const std::string_view rest = filter.substr(share_prefix.size());
  const std::size_t slash = rest.find('/');
  // [MQTT-4.8.2-1]: a ShareName of at least one character; [MQTT-4.8.2-2]: without "/", "+" or "#",
  // followed by "/" and a Topic Filter.
  if (slash == std::string_view::npos || slash == 0) {
    return std::nullopt;
  }
  const std::string_view group = rest.substr(0, slash);
  if (has_wildcard(group)) {
    return std::nullopt;
  }
  const std::string_view inner = rest.substr(slash + 1);
  if (!is_valid_plain_filter(inner)) {
    return std::nullopt;
  }
  return shared_filter{group, inner};
}

bool topic_matches(std::string_view filter, std::string_view topic) {
  // [MQTT-4.7.2-1]: "$SYS/..." and the like are not matched by a filter starting with a wildcard.
  if (!topic.empty() && topic.front() == '$' && !filter.empty() &&
      (filter.front() == '+' || filter.front() == '#')) {
    return false;
  }
  level_cursor f(filter);
  level_cursor t(topic);
  while (!f.done()) {
    const std::string_view fl = f.next();
    if (fl == "#") {
      return true; // also matches the parent level: "a/#" matches "a" (4.7.1.2)
    }
    if (t.done()) {
      return false;
    }
    const std::string_view tl = t.next();
    if (fl != "+" && fl != tl) {
      return false;
    }
  }
  return t.done();
}

} // namespace firehook::mqtt

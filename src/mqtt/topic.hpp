#pragma once
// Topic names, topic filters and UTF-8 strings as MQTT defines them (3.1.1 sections 1.5.3 and 4.7,
// 5.0 sections 1.5.4 and 4.7, 4.8.2 for shared subscriptions).

#include <cstddef>
#include <optional>
#include <string_view>

namespace firehook::mqtt {

// Well-formed UTF-8 without U+0000 and without surrogates (U+D800..U+DFFF) [MQTT-1.5.4-1],
// [MQTT-1.5.4-2], and at most 65,535 bytes.
bool is_valid_utf8(std::string_view s);

// A topic name a client may publish to: valid UTF-8, at least one character, no '+' or '#'
// [MQTT-4.7.1-1], [MQTT-4.7.3-1].
bool is_valid_topic_name(std::string_view topic);

// A topic filter: valid UTF-8, non-empty, '#' only as the whole last level, '+' only as a whole
// level [MQTT-4.7.1-2], [MQTT-4.7.1-3]. A "$share/..." filter must also be a valid shared filter.
bool is_valid_topic_filter(std::string_view filter);

struct shared_filter {
  std::string_view group;  // ShareName: non-empty, no '/', '+' or '#' [MQTT-4.8.2-1], [MQTT-4.8.2-2]
  std::string_view filter; // the topic filter after "$share/group/", itself a valid filter
};

// Splits "$share/group/filter". nullopt when `filter` does not start with "$share/" or is malformed
// (is_valid_topic_filter() tells the two apart).
std::optional<shared_filter> parse_shared_filter(std::string_view filter);

bool has_wildcard(std::string_view filter);

// Calls fn(level) for each '/'-separated level of a topic or filter. Empty levels are levels:
// "a//b" has three, "/a" and "a/" two each, "" one.
template <class Fn>
void for_each_level(std::string_view s, Fn&& fn) {
  std::size_t begin = 0;
  for (;;) {
    const std::size_t end = s.find('/', begin);
    if (end == std::string_view::npos) {
      fn(s.substr(begin));
      return;
    }
    fn(s.substr(begin, end - begin));
    begin = end + 1;
  }
}

// Whether `topic` (a valid name) matches `filter` (a valid, non-shared filter). Topics beginning
// with '$' are not matched by a filter beginning with '#' or '+' [MQTT-4.7.2-1].
bool topic_matches(std::string_view filter, std::string_view topic);

} // namespace firehook::mqtt

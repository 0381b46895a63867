// Topic names, topic filters, shared subscription filters, matching, and UTF-8 validation.

#include <gtest/gtest.h>

#include <string>

#include "mqtt/topic.hpp"

namespace firehook::mqtt {
namespace {

TEST(utf8, accepts_well_formed_strings) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii, longer than eight bytes"));
  EXPECT_TRUE(is_valid_utf8("\x7F"));             // U+007F
  EXPECT_TRUE(is_valid_utf8("\xC2\x80"));         // U+0080
  EXPECT_TRUE(is_valid_utf8("\xDF\xBF"));         // U+07FF
  EXPECT_TRUE(is_valid_utf8("\xE0\xA0\x80"));     // U+0800
  EXPECT_TRUE(is_valid_utf8("\xED\x9F\xBF"));     // U+D7FF, just below the surrogates
  EXPECT_TRUE(is_valid_utf8("\xEE\x80\x80"));     // U+E000, just above
  EXPECT_TRUE(is_valid_utf8("\xEF\xBB\xBF"));     // U+FEFF is kept, not stripped [MQTT-1.5.4-3]
  EXPECT_TRUE(is_valid_utf8("\xEF\xBF\xBF"));     // U+FFFF
  EXPECT_TRUE(is_valid_utf8("\xF0\x90\x80\x80")); // U+10000
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF")); // U+10FFFF
  EXPECT_TRUE(is_valid_utf8("température/région/✓/😀"));
  EXPECT_TRUE(is_valid_utf8(std::string(65'535, 'a')));
}

TEST(utf8, rejects_ill_formed_strings) {
  EXPECT_FALSE(is_valid_utf8(std::string_view("\0", 1)));             // U+0000 [MQTT-1.5.4-2]
  EXPECT_FALSE(is_valid_utf8(std::string_view("abcdefgh\0ijk", 12))); // U+0000 inside a fast-path word
  EXPECT_FALSE(is_valid_utf8("\xC0\x80"));                            // overlong U+0000
  EXPECT_FALSE(is_valid_utf8("\xC1\xBF"));                            // overlong U+007F
  EXPECT_FALSE(is_valid_utf8("\xE0\x9F\xBF"));                        // overlong U+07FF
  EXPECT_FALSE(is_valid_utf8("\xF0\x8F\xBF\xBF"));                    // overlong U+FFFF
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));                        // U+D800 [MQTT-1.5.4-1]
  EXPECT_FALSE(is_valid_utf8("\xED\xBF\xBF"));                        // U+DFFF
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));                    // U+110000
  EXPECT_FALSE(is_valid_utf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(is_valid_utf8("\xFE"));
  EXPECT_FALSE(is_valid_utf8("\xFF"));
  EXPECT_FALSE(is_valid_utf8("\x80")); // continuation without lead
  EXPECT_FALSE(is_valid_utf8("\xC3")); // truncated
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));
  EXPECT_FALSE(is_valid_utf8("\xF0\x9F\x98"));
  EXPECT_FALSE(is_valid_utf8("\xE2\x28\xA1"));           // bad continuation
  EXPECT_FALSE(is_valid_utf8("abcdefghijklmno\xC3"));    // truncated after a fast-path word
  EXPECT_FALSE(is_valid_utf8(std::string(65'536, 'a'))); // longer than a string can be
}

TEST(topic_name, validity) {
  EXPECT_TRUE(is_valid_topic_name("a"));
  EXPECT_TRUE(is_valid_topic_name("/"));
  EXPECT_TRUE(is_valid_topic_name("sport/tennis/player1"));
  EXPECT_TRUE(is_valid_topic_name("$SYS/broker/uptime"));
  EXPECT_TRUE(is_valid_topic_name("a//b/ with spaces "));
  EXPECT_FALSE(is_valid_topic_name(""));      // [MQTT-4.7.3-1]
  EXPECT_FALSE(is_valid_topic_name("a/+/b")); // [MQTT-4.7.1-1]
  EXPECT_FALSE(is_valid_topic_name("a/#"));
  EXPECT_FALSE(is_valid_topic_name("a+"));
  EXPECT_FALSE(is_valid_topic_name("\xED\xA0\x80"));
  EXPECT_FALSE(is_valid_topic_name(std::string_view("a\0", 2)));
}

TEST(topic_filter, validity) {
  for (const char* f :
       {"#", "+", "+/+", "/+", "+/", "sport/#", "sport/tennis/#", "sport/+/player1", "+/tennis/#", "/", "//",
        "$SYS/#", "a/b/c", "$share", "$sharex/a", "$share/g/#", "$share/group/a/+/c", "$share/g/$share/x"}) {
    EXPECT_TRUE(is_valid_topic_filter(f)) << f;
  }
  for (const char* f : {"", "sport/tennis#", "sport/tennis/#/ranking", "#/", "a/#/", "sport+", "+sport",
                        "sport/+tennis", "a/++/b", "##", "$share/", "$share/g", "$share/g/", "$share//a",
                        "$share/g+/a", "$share/g#/a", "$share/+/a", "$share/g/a#"}) {
    EXPECT_FALSE(is_valid_topic_filter(f)) << f;
  }
  EXPECT_FALSE(is_valid_topic_filter("\xC0\xAF"));
}

TEST(topic_filter, has_wildcard) {
  EXPECT_TRUE(has_wildcard("a/+"));
  EXPECT_TRUE(has_wildcard("#"));
  EXPECT_FALSE(has_wildcard("a/b"));
  EXPECT_FALSE(has_wildcard(""));
}

TEST(shared_filter, parses_group_and_filter) {
  const auto s = parse_shared_filter("$share/consumer1/sport/tennis/+");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->group, "consumer1");
  EXPECT_EQ(s->filter, "sport/tennis/+");
  const auto hash = parse_shared_filter("$share/g/#");
  ASSERT_TRUE(hash);
  EXPECT_EQ(hash->group, "g");
  EXPECT_EQ(hash->filter, "#");
  // [MQTT-4.8.2-1], [MQTT-4.8.2-2]
  EXPECT_FALSE(parse_shared_filter("sport/tennis"));
  EXPECT_FALSE(parse_shared_filter("$share"));
  EXPECT_FALSE(parse_shared_filter("$SHARE/g/a"));
  EXPECT_FALSE(parse_shared_filter("$share/g"));
  EXPECT_FALSE(parse_shared_filter("$share//a"));
  EXPECT_FALSE(parse_shared_filter("$share/g/"));
  EXPECT_FALSE(parse_shared_filter("$share/a+b/c"));
  EXPECT_FALSE(parse_shared_filter("$share/g/a/#/b"));
}

struct match_case {
  const char* filter;
  const char* topic;
  bool matches;
};

TEST(topic_matches, examples_of_section_4_7) {
  const match_case cases[] = {
      // 4.7.1.2: multi-level wildcard
      {"sport/tennis/player1/#", "sport/tennis/player1", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
      {"sport/#", "sport", true},
      {"#", "sport/tennis", true},
      {"#", "/", true},
      {"sport/tennis/#", "sport/tennis2", false},
      // 4.7.1.3: single-level wildcard
      {"sport/tennis/+", "sport/tennis/player1", true},
      {"sport/tennis/+", "sport/tennis/player2", true},
      {"sport/tennis/+", "sport/tennis/player1/ranking", false},
      {"sport/+", "sport", false},
      {"sport/+", "sport/", true},
      {"+/+", "/finance", true},
      {"/+", "/finance", true},
      {"+", "/finance", false},
      {"+", "finance", true},
      {"+/tennis/#", "sport/tennis/player1/ranking", true},
      {"+/tennis/#", "sport/tennis", true},
      {"+/tennis/#", "sport/golf", false},
      // exact levels
      {"a/b", "a/b", true},
      {"a/b", "a/b/", false},
      {"a/b/", "a/b", false},
      {"a//b", "a//b", true},
      {"a/+/b", "a//b", true},
      {"A/b", "a/b", false},
      // 4.7.2: topics starting with "$" [MQTT-4.7.2-1]
      {"#", "$SYS/broker", false},
      {"+/monitor/Clients", "$SYS/monitor/Clients", false},
      {"$SYS/#", "$SYS/monitor/Clients", true},
      {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
      {"$SYS/+", "$SYS/", true},
      {"a/#", "a/$b", true}, // the rule is about the first character of the topic only
      {"+/#", "$SYS", false},
  };
  for (const auto& [filter, topic, matches] : cases) {
    EXPECT_EQ(topic_matches(filter, topic), matches) << filter << " vs " << topic;
  }
}

} // namespace
} // namespace firehook::mqtt

#include <gtest/gtest.h>

#include <string>

#include "base/json_text.hpp"

namespace firehook::base {
namespace {

std::string json(std::string_view text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

TEST(json_text, plain_text_is_quoted) {
  EXPECT_EQ(json("dev-1"), "\"dev-1\"");
  EXPECT_EQ(json(""), "\"\"");
}

TEST(json_text, quotes_backslashes_and_control_characters_are_escaped) {
  EXPECT_EQ(json("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json(std::string("a\nb\0c\x7f", 6)), "\"a\\u000ab\\u0000c\\u007f\"");
}

TEST(json_text, utf8_is_kept_and_invalid_bytes_are_replaced) {
  EXPECT_EQ(json("°C €"), "\"°C €\"");
  EXPECT_EQ(json("\xF0\x9F\x8C\xA1"), "\"\xF0\x9F\x8C\xA1\"");             // U+1F321
  EXPECT_EQ(json("a\xC3"), "\"a\\ufffd\"");                                // truncated
  EXPECT_EQ(json("\xC0\xAF"), "\"\\ufffd\\ufffd\"");                       // overlong '/'
  EXPECT_EQ(json("\xED\xA0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");            // a surrogate
  EXPECT_EQ(json("\xF4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); // above U+10FFFF
  EXPECT_EQ(json("\xFF"
                 "ok"),
            "\"\\ufffdok\"");
}

} // namespace
} // namespace firehook::base

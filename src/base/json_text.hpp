#pragma once
// Text of any origin as a JSON string (RFC 8259 section 7), for log lines a machine parses: quotes,
// backslashes and control characters escaped, and every byte sequence that is not well-formed UTF-8
// replaced by U+FFFD, so that the line is valid JSON whatever a client put in its client id or topic.

#include <string>
#include <string_view>

namespace firehook::base {

// Appends `text` to `out` as a JSON string, quotes included.
void append_json_string(std::string& out, std::string_view text);

} // namespace firehook::base

#pragma once
// Text a client chose (a client id, a topic, a filter), made safe for one log line: quoted, with
// quotes, backslashes and control characters escaped, so that it cannot forge a line of its own.

#include <string>
#include <string_view>

namespace firehook::base {

// "dev-1" -> "\"dev-1\""; "a\nb" -> "\"a\\x0ab\"".
std::string quoted(std::string_view text);

} // namespace firehook::base

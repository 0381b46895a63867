#include "session/limits.hpp"

#include <type_traits>

#include "config/config.hpp"

namespace firehook::session {

namespace {
// A limit has one type in the configuration and in the session; an enum (max_qos) is read as
// its underlying integer, which the configuration loader has checked against the enum's range.
template <typename To, typename From>
constexpr To limit_value(From v) {
  if constexpr (std::is_enum_v<To>) {
    static_assert(std::is_same_v<From, std::underlying_type_t<To>>);
    return static_cast<To>(v);
  } else {
    static_assert(std::is_same_v<To, From>, "a limit must have the same type in config and session");
    return v;
  }
}
} // namespace

limits from_config(const config::limit_settings& l) {
  limits s;
#define FIREHOOK_COPY_LIMIT(name) s.name = limit_value<decltype(s.name)>(l.name);
  FIREHOOK_SESSION_LIMITS(FIREHOOK_COPY_LIMIT)
#undef FIREHOOK_COPY_LIMIT
  return s;
}

} // namespace firehook::session

#pragma once
// What store::load() hands every record to, at start-up. Override the kinds you need; the others
// are skipped. The views are valid only during the call: copy what you keep.
//
// Order: every meta record, then every retained message, then the sessions and their messages:
// each session record followed by that client id's messages in sequence order. Client ids, topics
// and meta keys come in byte order. Messages whose client id has no session record still come,
// in the same place their session record would have, with no session() call before them.

#include <cstdint>
#include <string_view>

namespace firehook::store {

class record_visitor {
public:
  virtual ~record_visitor() = default;
  virtual void meta(std::string_view /*key*/, std::string_view /*blob*/) {}
  virtual void retained(std::string_view /*topic*/, std::string_view /*blob*/) {}
  virtual void session(std::string_view /*client_id*/, std::string_view /*blob*/) {}
  virtual void session_message(std::string_view /*client_id*/, std::uint64_t /*seq*/,
                               std::string_view /*blob*/) {}
};

} // namespace firehook::store

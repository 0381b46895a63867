#pragma once
// A write batch: changes to the durable store that are applied together or not at all.
//
// The store holds four kinds of records, each a key and an opaque blob that the broker encodes:
//   meta              key (string)                 -> blob  (e.g. the broker's format version)
//   retained          topic                        -> blob  (one retained message)
//   session           client id                    -> blob  (subscriptions, expiry, will, ...)
//   session message   (client id, sequence number) -> blob  (a queued or in-flight QoS 1/2 message)
// Keys and blobs are any bytes, of any length; a session's messages are kept in sequence order.
// A session message does not need its session record (the store does not enforce the link), but
// erase_session_and_messages() removes both.
//
// Operations apply in the order they were added: a put after an erase of the same key leaves
// the record, an erase after a put removes it. Erasing a record that is not there is not an error.
//
// A batch is a plain value: built on one thread, then moved into store::submit(). Not thread safe.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace firehook::store {

class batch {
public:
  enum class op_type : std::uint8_t {
    put_meta,
    erase_meta,
    put_retained,
    erase_retained,
    put_session,
    erase_session, // the session record only; its messages stay
    put_session_message,
    erase_session_message,
    erase_session_and_messages, // the session record and every message of that client id
  };
  struct operation {
    op_type type;
    std::string key;       // meta key, topic or client id
    std::uint64_t seq = 0; // session messages only
    std::string value;     // puts only
  };

  void put_meta(std::string_view key, std::string_view blob);
  void erase_meta(std::string_view key);
  void put_retained(std::string_view topic, std::string_view blob);
  void erase_retained(std::string_view topic);
  void put_session(std::string_view client_id, std::string_view blob);
  void erase_session(std::string_view client_id);
  void put_session_message(std::string_view client_id, std::uint64_t seq, std::string_view blob);
  void erase_session_message(std::string_view client_id, std::uint64_t seq);
  void erase_session_and_messages(std::string_view client_id);

  const std::vector<operation>& operations() const { return ops_; }
  bool empty() const { return ops_.empty(); }
  std::size_t size() const { return ops_.size(); }
  // Key and blob bytes held: what a caller bounding the memory of pending batches counts.
  std::size_t bytes() const { return bytes_; }
  void clear();

private:
  void add(op_type type, std::string_view key, std::uint64_t seq, std::string_view value);

  std::vector<operation> ops_;
  std::size_t bytes_ = 0;
};

} // namespace firehook::store

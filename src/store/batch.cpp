#include "store/batch.hpp"

namespace firehook::store {

void batch::add(op_type type, std::string_view key, std::uint64_t seq, std::string_view value) {
  ops_.push_back(operation{type, std::string(key), seq, std::string(value)});
  bytes_ += key.size() + value.size();
}

void batch::put_meta(std::string_view key, std::string_view blob) {
  add(op_type::put_meta, key, 0, blob);
}

void batch::erase_meta(std::string_view key) {
  add(op_type::erase_meta, key, 0, {});
}

void batch::put_retained(std::string_view topic, std::string_view blob) {
  add(op_type::put_retained, topic, 0, blob);
}

void batch::erase_retained(std::string_view topic) {
  add(op_type::erase_retained, topic, 0, {});
}

void batch::put_session(std::string_view client_id, std::string_view blob) {
  add(op_type::put_session, client_id, 0, blob);
}

void batch::erase_session(std::string_view client_id) {
  add(op_type::erase_session, client_id, 0, {});
}

void batch::put_session_message(std::string_view client_id, std::uint64_t seq, std::string_view blob) {
  add(op_type::put_session_message, client_id, seq, blob);
}

void batch::erase_session_message(std::string_view client_id, std::uint64_t seq) {
  add(op_type::erase_session_message, client_id, seq, {});
}

void batch::erase_session_and_messages(std::string_view client_id) {
  add(op_type::erase_session_and_messages, client_id, 0, {});
}

void batch::clear() {
  ops_.clear();
  bytes_ = 0;
}

} // namespace firehook::store

#include "mqtt/message.hpp"

namespace firehook::mqtt {

std::size_t footprint(const message& m) {
  const auto text = [](const std::optional<std::string>& s) { return s ? s->size() : 0; };
  std::size_t bytes = sizeof(message) + m.topic.size() + m.payload.size() + m.origin_client_id.size() +
                      text(m.props.content_type) + text(m.props.response_topic) +
                      text(m.props.correlation_data);
  for (const auto& [name, value] : m.props.user) {
    bytes += sizeof(name) + sizeof(value) + name.size() + value.size();
  }
  return bytes;
}

} // namespace firehook::mqtt

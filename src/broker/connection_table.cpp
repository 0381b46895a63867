#include "broker/connection_table.hpp"

namespace firehook::broker {

events::event event_of(events::event_type t, const connection& c) {
  events::event e;
  e.type = t;
  e.listener = c.listener;
  e.peer = c.peer_address;
  e.peer_port = c.peer_port;
  if (c.connect) {
    e.client_id = c.connect->client_id;
  }
  if (c.who) {
    e.method = c.who->method;
    e.identity = c.who->name;
  }
  return e;
}

connection& connection_table::add(connection_id id, connection_info&& info) {
  connection& c = connections_[id];
  c.listener = std::move(info.listener);
  c.peer_address = std::move(info.peer_address);
  c.peer_port = info.peer_port;
  if (info.certificate) {
    c.certificate = std::make_unique<security::certificate_info>(std::move(*info.certificate));
  }
  return c;
}

connection* connection_table::find(connection_id id) {
  const auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : &it->second;
}

const connection* connection_table::find(connection_id id) const {
  const auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : &it->second;
}

std::optional<connection> connection_table::remove(connection_id id) {
  const auto it = connections_.find(id);
  if (it == connections_.end()) {
    return std::nullopt;
  }
  connection c = std::move(it->second);
  connections_.erase(it);
  return c;
}

void connection_table::hold(connection_id id, connection& c, mqtt::packet&& p, std::size_t pause_at) {
  c.held.push_back(std::move(p));
  if (c.held.size() >= pause_at) {
    pause(id, c);
  }
}

void connection_table::pause(connection_id id, connection& c) {
  if (!c.paused) {
    c.paused = true;
    transport_.pause_reading(id, true);
  }
}

void connection_table::resume(connection_id id, connection& c) {
  if (c.paused) {
    c.paused = false;
    transport_.pause_reading(id, false);
  }
}

void connection_table::close(connection_id id, connection& c, bool flush) {
  if (c.state == connection::phase::closing) {
    return;
  }
  c.state = connection::phase::closing;
  c.held.clear();
  transport_.close(id, flush);
}

} // namespace firehook::broker

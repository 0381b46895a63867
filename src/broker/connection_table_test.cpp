// The connection table on its own: records, holding packets with reading paused, and the one close.
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "broker/connection_table.hpp"

namespace firehook::broker {
namespace {

// Records what the table asks of the transport.
class recording_transport final : public transport {
public:
  void send(connection_id, std::span<const std::byte>) override {}
  void send_payload(connection_id, mqtt::message_ptr) override {}
  void close(connection_id id, bool flush) override { closed.emplace_back(id, flush); }
  void pause_reading(connection_id id, bool paused) override { pauses.emplace_back(id, paused); }
  std::size_t queued_bytes(connection_id) const override { return 0; }
  void defer(std::function<void()>) override {}
  void post_to_shard(unsigned, std::function<void()>) override {}

  std::vector<std::pair<connection_id, bool>> closed;
  std::vector<std::pair<connection_id, bool>> pauses;
};

connection_info info() {
  connection_info i;
  i.listener = "devices";
  i.peer_address = "10.0.0.7";
  i.peer_port = 51234;
  return i;
}

TEST(connection_table, a_record_lives_from_add_to_remove) {
  recording_transport t;
  connection_table table(t);
  connection& c = table.add(7, info());
  EXPECT_EQ(c.peer(), "10.0.0.7:51234");
  EXPECT_EQ(c.state, connection::phase::awaiting_connect);
  EXPECT_EQ(table.find(7), &c);
  EXPECT_EQ(table.size(), 1u);
  const auto gone = table.remove(7);
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->listener, "devices");
  EXPECT_EQ(table.find(7), nullptr);
  EXPECT_FALSE(table.remove(7));
}

TEST(connection_table, held_packets_pause_reading_once_until_resumed) {
  recording_transport t;
  connection_table table(t);
  connection& c = table.add(1, info());
  table.hold(1, c, mqtt::pingreq{});
  table.hold(1, c, mqtt::pingreq{});
  EXPECT_EQ(c.held.size(), 2u);
  EXPECT_EQ(t.pauses, (std::vector<std::pair<connection_id, bool>>{{1, true}}));
  table.resume(1, c);
  table.resume(1, c);
  EXPECT_EQ(t.pauses.size(), 2u);
  EXPECT_FALSE(c.paused);
}

TEST(connection_table, close_drops_what_is_held_and_closes_once) {
  recording_transport t;
  connection_table table(t);
  connection& c = table.add(3, info());
  table.hold(3, c, mqtt::pingreq{});
  table.close(3, c, true);
  table.close(3, c, false);
  EXPECT_EQ(c.state, connection::phase::closing);
  EXPECT_TRUE(c.held.empty());
  EXPECT_EQ(t.closed, (std::vector<std::pair<connection_id, bool>>{{3, true}}));
}

} // namespace
} // namespace firehook::broker

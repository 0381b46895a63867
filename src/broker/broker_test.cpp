// Broker shards driven through a fake transport: what a client would see on its connection after
// session takeover (on one shard and across two) and after shard::disconnect().
//
// The fake runs every shard on the test's thread: post_to_shard and defer queue tasks that
// pump() runs. Authentication runs on the broker's worker threads, so pump() also waits (a
// bounded time) for verdicts to come back.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.hpp"
#include "base/temp_dir.hpp"
#include "broker/broker.hpp"
#include "broker/shard.hpp"
#include "broker/transport.hpp"
#include "config/config.hpp"
#include "mqtt/codec.hpp"

namespace firehook::broker {
namespace {

using namespace std::chrono_literals;
using mqtt::protocol_version;
using mqtt::reason_code;

class network;

// One shard's transport. Written bytes and closes are recorded per connection.
class fake_transport final : public transport {
public:
  fake_transport(network& net, unsigned index) : net_(net), index_(index) {}

  void send(connection_id id, std::span<const std::byte> bytes) override {
    if (on_send) {
      on_send(id, bytes);
    }
    auto& out = written[id];
    out.insert(out.end(), bytes.begin(), bytes.end());
  }
  void send_payload(connection_id id, mqtt::message_ptr owner) override {
    const auto* p = reinterpret_cast<const std::byte*>(owner->payload.data());
    send(id, std::span<const std::byte>(p, owner->payload.size()));
  }
  void close(connection_id id, bool flush) override;
  void pause_reading(connection_id id, bool pause) override { paused[id] = pause; }
  std::size_t queued_bytes(connection_id) const override { return 0; }
  void defer(std::function<void()> task) override;
  void post_to_shard(unsigned shard, std::function<void()> task) override;

  std::map<connection_id, std::vector<std::byte>> written;
  std::map<connection_id, bool> closed; // id -> flush
  std::map<connection_id, bool> paused;
  std::function<void(connection_id, std::span<const std::byte>)> on_send; // sees each write first

private:
  network& net_;
  unsigned index_;
};

class network {
public:
  network(const std::string& toml, unsigned shards) {
    auto loaded = config::load_string(toml, "test.toml");
    if (!loaded.cfg) {
      throw std::runtime_error("bad test configuration");
    }
    broker_ = std::make_unique<broker>(loaded.cfg, shards, clock_);
    for (unsigned i = 0; i < shards; ++i) {
      transports_.push_back(std::make_unique<fake_transport>(*this, i));
    }
    for (unsigned i = 0; i < shards; ++i) {
      shards_.push_back(std::make_unique<shard>(*broker_, i, *transports_[i]));
    }
  }
  ~network() {
    broker_->stop_authentication();
    shards_.clear();
  }

  void post(std::function<void()> task) {
    const std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
  }

  // Runs queued tasks until `done()` holds or 5 s pass (authentication verdicts arrive from
  // worker threads meanwhile).
  bool pump(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (true) {
      std::deque<std::function<void()>> batch;
      {
        const std::lock_guard lock(mutex_);
        batch.swap(tasks_);
      }
      for (auto& t : batch) {
        t();
      }
      if (batch.empty()) {
        if (done()) {
          return true;
        }
        if (std::chrono::steady_clock::now() > deadline) {
          return false;
        }
        std::this_thread::sleep_for(1ms);
      }
    }
  }

  // Accepts a connection on shard `s` and sends `c`, without running what that queues.
  connection_id start_connect(unsigned s, const mqtt::connect& c) {
    const connection_id id = next_id_++;
    versions_[id] = c.version;
    shards_[s]->on_accept(id, connection_info{"default", "127.0.0.1", 40000, true, std::nullopt});
    shards_[s]->on_packet(id, mqtt::packet(c));
    return id;
  }

  // As start_connect, then waits for the CONNACK.
  connection_id connect(unsigned s, const mqtt::connect& c) {
    const connection_id id = start_connect(s, c);
    EXPECT_TRUE(pump([&] { return !received(s, id).empty(); })) << "no CONNACK";
    return id;
  }

  // Everything written to connection `id` of shard `s`, decoded.
  std::vector<mqtt::packet> received(unsigned s, connection_id id) const {
    std::vector<mqtt::packet> out;
    const auto it = transports_[s]->written.find(id);
    if (it == transports_[s]->written.end()) {
      return out;
    }
    std::span<const std::byte> rest(it->second);
    while (!rest.empty()) {
      auto r = mqtt::decode(rest, versions_.at(id), {});
      if (r.status != mqtt::decode_status::complete) {
        ADD_FAILURE() << "undecodable bytes written to connection " << id;
        break;
      }
      out.push_back(std::move(r.pkt));
      rest = rest.subspan(r.consumed);
    }
    return out;
  }

  bool closed(unsigned s, connection_id id) const { return transports_[s]->closed.contains(id); }

  // The transport reports a close back to the shard, as net/ does after close().
  void report_closed(unsigned s, connection_id id) { shards_[s]->on_closed(id); }

  shard& at(unsigned s) { return *shards_[s]; }
  fake_transport& transport_of(unsigned s) { return *transports_[s]; }
  broker& the_broker() { return *broker_; }
  base::manual_clock& clock() { return clock_; }

private:
  base::manual_clock clock_{base::time_point{} + 1000s};
  std::unique_ptr<broker> broker_;
  std::vector<std::unique_ptr<fake_transport>> transports_;
  std::vector<std::unique_ptr<shard>> shards_;
  std::mutex mutex_; // guards tasks_: verdicts are posted from authentication workers
  std::deque<std::function<void()>> tasks_;
  connection_id next_id_ = 1;
  std::map<connection_id, protocol_version> versions_;
};

void fake_transport::close(connection_id id, bool flush) {
  closed.emplace(id, flush);
}
void fake_transport::defer(std::function<void()> task) {
  net_.post(std::move(task));
}
void fake_transport::post_to_shard(unsigned, std::function<void()> task) {
  net_.post(std::move(task));
}

const char* const config_text = R"(
[broker]
shards = 2

[store]
enabled = false

[[listener]]
name = "default"
address = "127.0.0.1"
port = 0
protocol = "mqtt"
allow_anonymous = true
)";

mqtt::connect connect_packet(protocol_version v, std::string id, bool clean = true) {
  mqtt::connect c;
  c.version = v;
  c.client_id = std::move(id);
  c.clean_start = clean;
  if (v == protocol_version::v5 && !clean) {
    c.props.session_expiry_interval = 60;
  }
  return c;
}

mqtt::connect with_will(mqtt::connect c) {
  mqtt::will w;
  w.topic = "will/t";
  w.payload = "gone";
  c.will_message = w;
  return c;
}

template <class P>
std::vector<P> only(const std::vector<mqtt::packet>& ps) {
  std::vector<P> out;
  for (const auto& p : ps) {
    if (const auto* x = std::get_if<P>(&p)) {
      out.push_back(*x);
    }
  }
  return out;
}

void subscribe(network& net, unsigned s, connection_id id, const std::string& filter,
               mqtt::qos qos = mqtt::qos::at_least_once) {
  mqtt::subscribe sub;
  sub.packet_id = 1;
  sub.subscriptions.push_back(mqtt::subscription{filter, mqtt::subscribe_options{qos}});
  net.at(s).on_packet(id, mqtt::packet(sub));
  EXPECT_TRUE(net.pump([&] { return !only<mqtt::suback>(net.received(s, id)).empty(); })) << "no SUBACK";
}

// --- takeover ------------------------------------------------------------------------------------

class takeover : public ::testing::TestWithParam<unsigned> {}; // the new connection's shard

TEST_P(takeover, v5_old_connection_gets_disconnect_0x8e_and_is_closed) {
  network net(config_text, 2);
  const unsigned new_shard = GetParam();
  const auto old_id = net.connect(0, connect_packet(protocol_version::v5, "dev"));
  const auto new_id = net.connect(new_shard, connect_packet(protocol_version::v5, "dev"));
  ASSERT_TRUE(net.pump([&] { return net.closed(0, old_id); })) << "old connection not closed";
  const auto got = only<mqtt::disconnect>(net.received(0, old_id));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].reason, reason_code::session_taken_over);
  EXPECT_TRUE(net.transport_of(0).closed.at(old_id)) << "closed after the DISCONNECT is written";
  const auto ack = only<mqtt::connack>(net.received(new_shard, new_id));
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_EQ(ack[0].reason, reason_code::success);
  EXPECT_FALSE(ack[0].session_present) << "clean start";
  EXPECT_FALSE(net.closed(new_shard, new_id));
}

TEST_P(takeover, v311_old_connection_is_closed_without_disconnect) {
  network net(config_text, 2);
  const unsigned new_shard = GetParam();
  const auto old_id = net.connect(0, connect_packet(protocol_version::v3_1_1, "dev"));
  net.connect(new_shard, connect_packet(protocol_version::v3_1_1, "dev"));
  ASSERT_TRUE(net.pump([&] { return net.closed(0, old_id); }));
  EXPECT_TRUE(only<mqtt::disconnect>(net.received(0, old_id)).empty());
}

TEST_P(takeover, resumed_session_keeps_its_subscriptions_and_the_old_will_is_published) {
  network net(config_text, 2);
  const unsigned new_shard = GetParam();
  const auto watcher = net.connect(1, connect_packet(protocol_version::v5, "watcher"));
  subscribe(net, 1, watcher, "will/t");
  const auto old_id = net.connect(0, with_will(connect_packet(protocol_version::v5, "dev", false)));
  subscribe(net, 0, old_id, "data/t");
  const auto new_id = net.connect(new_shard, connect_packet(protocol_version::v5, "dev", false));
  ASSERT_TRUE(net.pump([&] { return net.closed(0, old_id); }));
  net.report_closed(0, old_id);
  const auto ack = only<mqtt::connack>(net.received(new_shard, new_id));
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_TRUE(ack[0].session_present);
  // The will of the ended connection (no delay) goes [MQTT-3.1.3-9] ...
  ASSERT_TRUE(net.pump([&] { return !only<mqtt::publish>(net.received(1, watcher)).empty(); }));
  EXPECT_EQ(only<mqtt::publish>(net.received(1, watcher))[0].topic, "will/t");
  // ... and a message to the subscription reaches the new connection.
  mqtt::publish p;
  p.topic = "data/t";
  p.payload = "after";
  p.qos = mqtt::qos::at_least_once;
  p.packet_id = 9;
  net.at(1).on_packet(watcher, mqtt::packet(p));
  ASSERT_TRUE(net.pump([&] { return !only<mqtt::publish>(net.received(new_shard, new_id)).empty(); }));
  EXPECT_EQ(only<mqtt::publish>(net.received(new_shard, new_id))[0].payload, "after");
}

TEST_P(takeover, waits_for_a_subscription_change_in_flight) {
  // The old connection's SUBSCRIBE is still being applied on the other shard when the new
  // CONNECT arrives: the old client gets its SUBACK first, then 0x8E, and the resumed session
  // has the subscription.
  network net(config_text, 2);
  const unsigned new_shard = GetParam();
  const auto old_id = net.connect(0, connect_packet(protocol_version::v5, "dev", false));
  mqtt::subscribe sub;
  sub.packet_id = 4;
  sub.subscriptions.push_back(
      mqtt::subscription{"late/t", mqtt::subscribe_options{mqtt::qos::at_least_once}});
  net.at(0).on_packet(old_id, mqtt::packet(sub)); // broadcast queued, not yet run
  const auto new_id = net.start_connect(new_shard, connect_packet(protocol_version::v5, "dev", false));
  // An anonymous client is authenticated at once: on the same shard its takeover request finds
  // the change in flight and is deferred until the SUBACK; on the other shard the request travels
  // behind the change's broadcast.
  ASSERT_TRUE(net.pump([&] { return net.closed(0, old_id) && !net.received(new_shard, new_id).empty(); }));
  const auto old_got = net.received(0, old_id);
  ASSERT_GE(old_got.size(), 3u); // CONNACK, SUBACK, DISCONNECT
  EXPECT_TRUE(std::holds_alternative<mqtt::suback>(old_got[1]));
  ASSERT_TRUE(std::holds_alternative<mqtt::disconnect>(old_got.back()));
  EXPECT_EQ(std::get<mqtt::disconnect>(old_got.back()).reason, reason_code::session_taken_over);
  const auto ack = only<mqtt::connack>(net.received(new_shard, new_id));
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_TRUE(ack[0].session_present);
  net.report_closed(0, old_id);

  const auto pub_id = net.connect(1 - new_shard, connect_packet(protocol_version::v5, "pub"));
  mqtt::publish p;
  p.topic = "late/t";
  p.payload = "kept";
  net.at(1 - new_shard).on_packet(pub_id, mqtt::packet(p));
  ASSERT_TRUE(net.pump([&] { return !only<mqtt::publish>(net.received(new_shard, new_id)).empty(); }));
  EXPECT_EQ(only<mqtt::publish>(net.received(new_shard, new_id))[0].payload, "kept");
}

INSTANTIATE_TEST_SUITE_P(same_and_other_shard, takeover, ::testing::Values(0u, 1u));

// --- backpressure --------------------------------------------------------------------------------

class backpressure : public ::testing::TestWithParam<unsigned> {}; // the subscriber's shard

const std::string small_queues = std::string(config_text) + R"(
[limits]
max_inflight = 2
max_queued_messages = 4
slow_subscriber_timeout = 30
)";

mqtt::publish qos1(const std::string& topic, std::uint16_t id) {
  mqtt::publish p;
  p.topic = topic;
  p.payload = std::to_string(id);
  p.qos = mqtt::qos::at_least_once;
  p.packet_id = id;
  return p;
}

std::vector<std::uint16_t> ack_ids(const std::vector<mqtt::packet>& ps) {
  std::vector<std::uint16_t> out;
  for (const auto& a : only<mqtt::puback>(ps)) {
    out.push_back(a.packet_id);
  }
  return out;
}

bool idle() {
  return true;
}

TEST_P(backpressure, a_congested_subscriber_slows_its_publisher_and_nothing_is_dropped) {
  network net(small_queues, 2);
  const unsigned sub_shard = GetParam();
  const auto sub = net.connect(sub_shard, connect_packet(protocol_version::v5, "sub"));
  subscribe(net, sub_shard, sub, "t");
  const auto pub = net.connect(0, connect_packet(protocol_version::v5, "pub"));
  // Another pair, on another topic, is not slowed.
  const auto other_sub = net.connect(1, connect_packet(protocol_version::v5, "other-sub"));
  subscribe(net, 1, other_sub, "u");
  const auto other_pub = net.connect(0, connect_packet(protocol_version::v5, "other-pub"));

  // The subscriber acknowledges nothing: 2 in flight, 4 queued, then the 7th congests it. The
  // publisher's next message reaches a congested subscriber: its PUBACK is withheld, and what the
  // publisher sends after that waits unread.
  for (std::uint16_t id = 1; id <= 10; ++id) {
    net.at(0).on_packet(pub, mqtt::packet(qos1("t", id)));
    net.pump(idle);
  }
  EXPECT_EQ(ack_ids(net.received(0, pub)), (std::vector<std::uint16_t>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_TRUE(net.transport_of(0).paused[pub]) << "reading paused at Receive Maximum held packets";
  EXPECT_EQ(only<mqtt::publish>(net.received(sub_shard, sub)).size(), 2u);

  net.at(0).on_packet(other_pub, mqtt::packet(qos1("u", 1)));
  ASSERT_TRUE(net.pump([&] { return !only<mqtt::publish>(net.received(1, other_sub)).empty(); }));
  EXPECT_EQ(ack_ids(net.received(0, other_pub)), std::vector<std::uint16_t>{1});

  // The subscriber catches up: every message arrives, in order, and every PUBACK, in order.
  std::size_t acked = 0;
  for (int round = 0; round < 50; ++round) {
    const auto got = only<mqtt::publish>(net.received(sub_shard, sub));
    for (; acked < got.size(); ++acked) {
      net.at(sub_shard).on_packet(sub,
                                  mqtt::packet(mqtt::puback{got[acked].packet_id, reason_code::success, {}}));
    }
    net.pump(idle);
  }
  std::vector<std::string> payloads;
  for (const auto& p : only<mqtt::publish>(net.received(sub_shard, sub))) {
    payloads.push_back(p.payload);
  }
  EXPECT_EQ(payloads, (std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}));
  EXPECT_EQ(ack_ids(net.received(0, pub)), (std::vector<std::uint16_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_FALSE(net.transport_of(0).paused[pub]);
}

TEST_P(backpressure, a_subscriber_that_stops_acknowledging_is_disconnected_and_its_publisher_released) {
  network net(small_queues, 2);
  const unsigned sub_shard = GetParam();
  const auto sub = net.connect(sub_shard, connect_packet(protocol_version::v5, "sub", false));
  subscribe(net, sub_shard, sub, "t");
  const auto pub = net.connect(0, connect_packet(protocol_version::v5, "pub"));
  for (std::uint16_t id = 1; id <= 9; ++id) {
    net.at(0).on_packet(pub, mqtt::packet(qos1("t", id)));
    net.pump(idle);
  }
  ASSERT_EQ(ack_ids(net.received(0, pub)).size(), 7u);
  net.clock().advance(31s);
  net.at(sub_shard).on_tick();
  ASSERT_TRUE(net.pump([&] { return net.closed(sub_shard, sub); }));
  const auto got = only<mqtt::disconnect>(net.received(sub_shard, sub));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].reason, reason_code::quota_exceeded);
  // Offline, the session is no longer congested: the publisher gets its PUBACKs and is read again.
  ASSERT_TRUE(net.pump([&] { return ack_ids(net.received(0, pub)).size() == 9; }));
  EXPECT_FALSE(net.transport_of(0).paused[pub]);
}

INSTANTIATE_TEST_SUITE_P(same_and_other_shard, backpressure, ::testing::Values(0u, 1u));

// --- rates per client ------------------------------------------------------------------------------

const std::string slow_rates = std::string(config_text) + R"(
[limits]
publish_rate = 10
publish_burst = 3
subscribe_rate = 1
subscribe_burst = 1
rate_limit_timeout = 5
)";

TEST(rates, a_publisher_over_its_rate_is_held_then_read_on_and_nothing_is_lost) {
  network net(slow_rates, 1);
  const auto sub = net.connect(0, connect_packet(protocol_version::v5, "sub"));
  subscribe(net, 0, sub, "t");
  const auto pub = net.connect(0, connect_packet(protocol_version::v5, "pub"));
  for (std::uint16_t id = 1; id <= 6; ++id) {
    net.at(0).on_packet(pub, mqtt::packet(qos1("t", id)));
    net.pump(idle);
  }
  // The burst of 3 passes; the 4th waits for a token, and the rest behind it, unread.
  EXPECT_EQ(ack_ids(net.received(0, pub)), (std::vector<std::uint16_t>{1, 2, 3}));
  EXPECT_TRUE(net.transport_of(0).paused[pub]);
  // A PINGREQ still passes.
  net.at(0).on_packet(pub, mqtt::packet(mqtt::pingreq{}));
  EXPECT_EQ(only<mqtt::pingresp>(net.received(0, pub)).size(), 1u);
  // 10 a second: after 0.35 s three more tokens, and the timer reads on.
  net.clock().advance(350ms);
  net.at(0).on_tick();
  net.pump(idle);
  EXPECT_EQ(ack_ids(net.received(0, pub)), (std::vector<std::uint16_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_FALSE(net.transport_of(0).paused[pub]);
  std::vector<std::string> payloads;
  for (const auto& p : only<mqtt::publish>(net.received(0, sub))) {
    payloads.push_back(p.payload);
  }
  EXPECT_EQ(payloads, (std::vector<std::string>{"1", "2", "3", "4", "5", "6"}));
  EXPECT_EQ(net.the_broker().stats().get(events::stat::clients_rate_limited), 1);
}

TEST(rates, a_client_that_stays_over_its_rate_is_disconnected_with_0x96) {
  network net(slow_rates, 1);
  const auto pub = net.connect(0, connect_packet(protocol_version::v5, "pub"));
  std::uint16_t id = 1;
  // Three packets each time it is read, every 100 ms (30/s, three times its rate), for longer
  // than rate_limit_timeout.
  for (int step = 0; step < 80 && !net.closed(0, pub); ++step) {
    for (int i = 0; i < 3 && !net.transport_of(0).paused[pub]; ++i) {
      net.at(0).on_packet(pub, mqtt::packet(qos1("t", id++)));
    }
    net.clock().advance(100ms);
    net.at(0).on_tick();
    net.pump(idle);
  }
  ASSERT_TRUE(net.closed(0, pub));
  const auto got = only<mqtt::disconnect>(net.received(0, pub));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].reason, reason_code::message_rate_too_high);
  // Held to its rate (10/s after a burst of 3) until the timeout (5 s), not cut off at once.
  EXPECT_GE(ack_ids(net.received(0, pub)).size(), 45u);
  EXPECT_LE(ack_ids(net.received(0, pub)).size(), 60u);
}

TEST(rates, subscribes_have_a_rate_of_their_own) {
  network net(slow_rates, 1);
  const auto c = net.connect(0, connect_packet(protocol_version::v5, "c"));
  subscribe(net, 0, c, "a");
  mqtt::subscribe sub;
  sub.packet_id = 2;
  sub.subscriptions.push_back(mqtt::subscription{"b", mqtt::subscribe_options{mqtt::qos::at_least_once}});
  net.at(0).on_packet(c, mqtt::packet(sub));
  net.pump(idle);
  EXPECT_EQ(only<mqtt::suback>(net.received(0, c)).size(), 1u);
  // Its publishes are not held meanwhile... but they do not overtake the held SUBSCRIBE.
  net.at(0).on_packet(c, mqtt::packet(qos1("b", 7)));
  net.pump(idle);
  EXPECT_TRUE(ack_ids(net.received(0, c)).empty());
  net.clock().advance(1100ms);
  net.at(0).on_tick();
  net.pump(idle);
  EXPECT_EQ(only<mqtt::suback>(net.received(0, c)).size(), 2u);
  EXPECT_EQ(ack_ids(net.received(0, c)), std::vector<std::uint16_t>{7});
  // Subscribed before the PUBLISH was read: it gets its own message back.
  EXPECT_EQ(only<mqtt::publish>(net.received(0, c)).size(), 1u);
}

TEST(rates, every_baseline_interval_each_session_with_traffic_is_sampled_once) {
  network net(config_text, 1);
  net.at(0).on_tick(); // the first interval starts
  const auto sub = net.connect(0, connect_packet(protocol_version::v5, "sub"));
  subscribe(net, 0, sub, "t");
  const auto pub = net.connect(0, connect_packet(protocol_version::v5, "pub"));
  net.connect(0, connect_packet(protocol_version::v5, "idle"));
  for (std::uint16_t id = 1; id <= 3; ++id) {
    net.at(0).on_packet(pub, mqtt::packet(qos1("t", id)));
  }
  net.pump(idle);
  net.clock().advance(9s);
  net.at(0).on_tick();
  EXPECT_TRUE(net.the_broker().rate_samples().take().empty()); // not yet [alerts] baseline_interval (10 s)
  net.clock().advance(1s);
  net.at(0).on_tick();
  auto samples = net.the_broker().rate_samples().take();
  std::sort(samples.begin(), samples.end(),
            [](const auto& a, const auto& b) { return a.client_id < b.client_id; });
  ASSERT_EQ(samples.size(), 2u); // the idle client has none
  EXPECT_EQ(samples[0].client_id, "pub");
  EXPECT_EQ(samples[0].method, "anonymous");
  EXPECT_EQ(samples[0].published, 3u);
  EXPECT_EQ(samples[0].received, 0u);
  EXPECT_EQ(samples[0].interval, 10s);
  EXPECT_EQ(samples[1].client_id, "sub");
  EXPECT_EQ(samples[1].published, 0u);
  EXPECT_EQ(samples[1].received, 3u);
  // The counts started again.
  net.clock().advance(10s);
  net.at(0).on_tick();
  EXPECT_TRUE(net.the_broker().rate_samples().take().empty());
}

// --- durable store --------------------------------------------------------------------------------

TEST(durable_store, a_persistent_session_and_its_queued_message_come_back_after_a_restart) {
  const base::temp_dir dir("firehook-broker-store");
  const std::string with_store = "[broker]\nshards = 2\nstate_dir = \"" + dir.path().string() +
                                 "\"\n\n[[listener]]\nname = \"default\"\naddress = \"127.0.0.1\"\nport = 0\n"
                                 "protocol = \"mqtt\"\nallow_anonymous = true\n";
  {
    network net(with_store, 2);
    const auto dev = net.connect(1, connect_packet(protocol_version::v5, "dev", false));
    subscribe(net, 1, dev, "t");
    net.at(1).on_packet(dev, mqtt::packet(mqtt::disconnect{}));
    ASSERT_TRUE(net.pump([&] { return net.closed(1, dev); }));
    net.report_closed(1, dev);
    const auto pub = net.connect(0, connect_packet(protocol_version::v5, "pub"));
    net.at(0).on_packet(pub, mqtt::packet(qos1("t", 7)));
    // The PUBACK comes once the message is on disk (the store's writer thread answers).
    ASSERT_TRUE(net.pump([&] { return ack_ids(net.received(0, pub)) == std::vector<std::uint16_t>{7}; }));
  }
  network net(with_store, 2);
  const auto restored = net.the_broker().restore();
  EXPECT_EQ(restored.sessions, 1u);
  EXPECT_EQ(restored.messages, 1u);
  const auto dev = net.connect(0, connect_packet(protocol_version::v5, "dev", false));
  const auto ack = only<mqtt::connack>(net.received(0, dev));
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_TRUE(ack[0].session_present);
  ASSERT_TRUE(net.pump([&] { return !only<mqtt::publish>(net.received(0, dev)).empty(); }));
  EXPECT_EQ(only<mqtt::publish>(net.received(0, dev))[0].payload, "7");
  // The subscription is back in every shard's index: a message published on the other shard arrives.
  const auto pub = net.connect(1, connect_packet(protocol_version::v5, "pub2"));
  net.at(1).on_packet(pub, mqtt::packet(qos1("t", 8)));
  ASSERT_TRUE(net.pump([&] { return only<mqtt::publish>(net.received(0, dev)).size() == 2; }));
}

// A QoS 2 delivery in flight to a connected persistent session when the broker stops comes back
// under the same packet identifier: the PUBLISH again (DUP) before its PUBREC, only the PUBREL
// after it, so a receiver that remembers the identifier gets it once.
class durable_qos2 : public ::testing::TestWithParam<bool> {}; // whether PUBREC came back

TEST_P(durable_qos2, an_in_flight_delivery_is_resent_under_its_packet_identifier_after_a_restart) {
  const bool pubrec_sent = GetParam();
  const base::temp_dir dir("firehook-broker-store");
  const std::string with_store = "[broker]\nshards = 1\nstate_dir = \"" + dir.path().string() +
                                 "\"\n\n[[listener]]\nname = \"default\"\naddress = \"127.0.0.1\"\nport = 0\n"
                                 "protocol = \"mqtt\"\nallow_anonymous = true\n";
  std::uint16_t id = 0;
  {
    network net(with_store, 1);
    const auto dev = net.connect(0, connect_packet(protocol_version::v5, "dev", false));
    subscribe(net, 0, dev, "t", mqtt::qos::exactly_once);
    const auto pub = net.connect(0, connect_packet(protocol_version::v5, "pub"));
    mqtt::publish m = qos1("t", 7);
    m.qos = mqtt::qos::exactly_once;
    net.at(0).on_packet(pub, mqtt::packet(m));
    ASSERT_TRUE(net.pump([&] { return !only<mqtt::pubrec>(net.received(0, pub)).empty(); }));
    const auto got = only<mqtt::publish>(net.received(0, dev));
    ASSERT_EQ(got.size(), 1u);
    id = got[0].packet_id;
    if (pubrec_sent) {
      net.at(0).on_packet(dev, mqtt::packet(mqtt::pubrec{id, reason_code::success, {}}));
      ASSERT_TRUE(net.pump([&] { return !only<mqtt::pubrel>(net.received(0, dev)).empty(); }));
    }
  } // the broker stops; what its shards submitted is committed
  network net(with_store, 1);
  EXPECT_EQ(net.the_broker().restore().messages, 1u);
  const auto dev = net.connect(0, connect_packet(protocol_version::v5, "dev", false));
  ASSERT_TRUE(net.pump([&] { return net.received(0, dev).size() >= 2; }));
  const auto again = net.received(0, dev);
  if (pubrec_sent) {
    const auto rel = only<mqtt::pubrel>(again);
    ASSERT_EQ(rel.size(), 1u);
    EXPECT_EQ(rel[0].packet_id, id);
    EXPECT_TRUE(only<mqtt::publish>(again).empty()) << "the message is not sent again";
    net.at(0).on_packet(dev, mqtt::packet(mqtt::pubcomp{id, reason_code::success, {}}));
    net.pump(idle);
  } else {
    const auto resent = only<mqtt::publish>(again);
    ASSERT_EQ(resent.size(), 1u);
    EXPECT_EQ(resent[0].packet_id, id);
    EXPECT_TRUE(resent[0].dup);
    EXPECT_EQ(resent[0].payload, "7");
  }
}

INSTANTIATE_TEST_SUITE_P(before_and_after_pubrec, durable_qos2, ::testing::Bool());

// The same after a crash at the worst moment: the test copies the store's files as the PUBLISH
// (or the PUBREL) is written to the subscriber, which is what a kill -9 then would leave, and
// starts a broker from the copy. The record of what was sent must be on disk before it is sent:
// else the restarted broker would send the message again under a new packet identifier (or, the
// publisher's PUBLISH not being recorded, route it again when it is resent), a duplicate.
class durable_qos2_crash : public ::testing::TestWithParam<std::tuple<bool, unsigned>> {};

TEST_P(durable_qos2_crash, what_is_sent_to_a_persistent_session_is_on_disk_first) {
  const auto [pubrec_sent, publisher_shard] = GetParam();
  const base::temp_dir dir("firehook-broker-store");
  const base::temp_dir crash("firehook-broker-crash");
  const auto config = [](const std::filesystem::path& state) {
    return "[broker]\nshards = 2\nstate_dir = \"" + state.string() +
           "\"\n\n[[listener]]\nname = \"default\"\naddress = \"127.0.0.1\"\nport = 0\n"
           "protocol = \"mqtt\"\nallow_anonymous = true\n";
  };
  std::uint16_t id = 0;
  {
    network net(config(dir.path()), 2);
    const auto dev = net.connect(0, connect_packet(protocol_version::v5, "dev", false));
    subscribe(net, 0, dev, "t", mqtt::qos::exactly_once);
    const std::byte watched{static_cast<unsigned char>(pubrec_sent ? 0x62 : 0x34)}; // PUBREL; PUBLISH QoS 2
    bool copied = false;
    net.transport_of(0).on_send = [&](connection_id to, std::span<const std::byte> bytes) {
      if (to == dev && !copied && !bytes.empty() && bytes[0] == watched) {
        std::filesystem::copy(dir.path() / "store", crash.path() / "store",
                              std::filesystem::copy_options::recursive);
        copied = true;
      }
    };
    const auto pub = net.connect(publisher_shard, connect_packet(protocol_version::v5, "pub"));
    mqtt::publish m = qos1("t", 7);
    m.qos = mqtt::qos::exactly_once;
    net.at(publisher_shard).on_packet(pub, mqtt::packet(m));
    ASSERT_TRUE(net.pump([&] { return !only<mqtt::publish>(net.received(0, dev)).empty(); }));
    id = only<mqtt::publish>(net.received(0, dev))[0].packet_id;
    if (pubrec_sent) {
      net.at(0).on_packet(dev, mqtt::packet(mqtt::pubrec{id, reason_code::success, {}}));
      ASSERT_TRUE(net.pump([&] { return !only<mqtt::pubrel>(net.received(0, dev)).empty(); }));
    }
    ASSERT_TRUE(copied);
  }
  network net(config(crash.path()), 2);
  EXPECT_EQ(net.the_broker().restore().messages, 1u) << "the message sent was not on disk";
  const auto dev = net.connect(0, connect_packet(protocol_version::v5, "dev", false));
  ASSERT_TRUE(net.pump([&] { return net.received(0, dev).size() >= 2; }));
  const auto again = net.received(0, dev);
  if (pubrec_sent) {
    const auto rel = only<mqtt::pubrel>(again);
    ASSERT_EQ(rel.size(), 1u) << "PUBREL was sent: the message must not be sent again";
    EXPECT_EQ(rel[0].packet_id, id);
    EXPECT_TRUE(only<mqtt::publish>(again).empty());
  } else {
    const auto resent = only<mqtt::publish>(again);
    ASSERT_EQ(resent.size(), 1u);
    EXPECT_EQ(resent[0].packet_id, id);
    EXPECT_TRUE(resent[0].dup);
  }
}

INSTANTIATE_TEST_SUITE_P(before_and_after_pubrec_on_one_and_two_shards, durable_qos2_crash,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(0u, 1u)));

// --- shard::disconnect ---------------------------------------------------------------------------

// --- the broker's own messages (alerts) ------------------------------------------------------------

TEST(own_messages, a_message_published_from_another_thread_reaches_subscribers_on_every_shard) {
  network net(config_text, 2);
  const auto near = net.connect(0, connect_packet(protocol_version::v5, "ops-0"));
  const auto far = net.connect(1, connect_packet(protocol_version::v3_1_1, "ops-1"));
  const auto other = net.connect(1, connect_packet(protocol_version::v5, "other"));
  subscribe(net, 0, near, "$SYS/broker/alerts/#");
  subscribe(net, 1, far, "$SYS/broker/alerts/+");
  subscribe(net, 1, other, "#"); // [MQTT-4.7.2-1]: a wildcard first level does not match $SYS
  auto m = std::make_shared<mqtt::message>();
  m->topic = "$SYS/broker/alerts/probing";
  m->payload = R"({"detector":"probing"})";
  m->props.content_type = "application/json";
  std::thread([&] { net.the_broker().publish(m); }).join();
  ASSERT_TRUE(net.pump([&] {
    return !only<mqtt::publish>(net.received(0, near)).empty() &&
           !only<mqtt::publish>(net.received(1, far)).empty();
  }));
  const auto got = only<mqtt::publish>(net.received(0, near));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic, "$SYS/broker/alerts/probing");
  EXPECT_EQ(got[0].payload, R"({"detector":"probing"})");
  EXPECT_EQ(got[0].props.content_type, "application/json");
  EXPECT_FALSE(got[0].retain);
  EXPECT_EQ(only<mqtt::publish>(net.received(1, far)).size(), 1u);
  EXPECT_TRUE(only<mqtt::publish>(net.received(1, other)).empty());
}

TEST(disconnect, v5_client_gets_the_reason_and_its_will_is_published) {
  network net(config_text, 2);
  const auto watcher = net.connect(1, connect_packet(protocol_version::v5, "watcher"));
  subscribe(net, 1, watcher, "will/t");
  const auto id = net.connect(0, with_will(connect_packet(protocol_version::v5, "dev")));
  net.at(0).disconnect(id, reason_code::maximum_connect_time, "test");
  ASSERT_TRUE(net.pump([&] { return net.closed(0, id); }));
  const auto d = only<mqtt::disconnect>(net.received(0, id));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].reason, reason_code::maximum_connect_time);
  ASSERT_TRUE(net.pump([&] { return !only<mqtt::publish>(net.received(1, watcher)).empty(); }));
  EXPECT_EQ(only<mqtt::publish>(net.received(1, watcher))[0].payload, "gone");
}

TEST(disconnect, v5_client_gets_whichever_reason_is_given) {
  for (const auto reason :
       {reason_code::administrative_action, reason_code::not_authorized, reason_code::server_busy}) {
    network net(config_text, 1);
    const auto id = net.connect(0, connect_packet(protocol_version::v5, "dev"));
    net.at(0).disconnect(id, reason, "test");
    ASSERT_TRUE(net.closed(0, id));
    EXPECT_EQ(only<mqtt::disconnect>(net.received(0, id)).at(0).reason, reason);
  }
}

TEST(disconnect, v311_client_is_closed_without_disconnect) {
  network net(config_text, 1);
  const auto id = net.connect(0, with_will(connect_packet(protocol_version::v3_1_1, "dev")));
  net.at(0).disconnect(id, reason_code::administrative_action, "test");
  ASSERT_TRUE(net.closed(0, id));
  EXPECT_TRUE(only<mqtt::disconnect>(net.received(0, id)).empty());
}

TEST(disconnect, unknown_or_repeated_id_is_a_no_op) {
  network net(config_text, 1);
  const auto id = net.connect(0, connect_packet(protocol_version::v5, "dev"));
  net.at(0).disconnect(id + 100, reason_code::administrative_action, "test");
  EXPECT_FALSE(net.closed(0, id));
  net.at(0).disconnect(id, reason_code::administrative_action, "test");
  net.at(0).disconnect(id, reason_code::administrative_action, "test");
  net.report_closed(0, id);
  net.at(0).disconnect(id, reason_code::administrative_action, "test");
  EXPECT_EQ(only<mqtt::disconnect>(net.received(0, id)).size(), 1u);
}

TEST(disconnect, connection_before_connack_is_closed_without_answer) {
  network net(config_text, 1);
  net.at(0).on_accept(7, connection_info{"default", "127.0.0.1", 40000, true, std::nullopt});
  net.at(0).disconnect(7, reason_code::administrative_action, "test");
  EXPECT_TRUE(net.closed(0, 7));
  EXPECT_TRUE(net.transport_of(0).written[7].empty());
}

} // namespace
} // namespace firehook::broker

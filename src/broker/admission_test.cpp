// Admission on its own: a CONNECT through its checks, authentication, the will check and the
// registry claim, with a real broker (configuration, authentication chains, topics file, session
// registry) and a fake transport; what the client sees and which event records it.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <vector>

#include "base/clock.hpp"
#include "base/temp_dir.hpp"
#include "broker/admission.hpp"
#include "mqtt/codec.hpp"

namespace firehook::broker {
namespace {

using mqtt::protocol_version;
using mqtt::reason_code;

class fake_transport final : public transport {
public:
  void send(connection_id id, std::span<const std::byte> bytes) override {
    auto& out = written[id];
    out.insert(out.end(), bytes.begin(), bytes.end());
  }
  void send_payload(connection_id, mqtt::message_ptr) override {}
  void close(connection_id id, bool flush) override { closed[id] = flush; }
  void pause_reading(connection_id, bool) override {}
  std::size_t queued_bytes(connection_id) const override { return 0; }
  void defer(std::function<void()>) override {}
  void post_to_shard(unsigned, std::function<void()>) override {} // only quick verdicts in these tests

  std::map<connection_id, std::vector<std::byte>> written;
  std::map<connection_id, bool> closed;
};

// A broker whose configuration admits anonymous clients and checks wills against a topics file
// that lets anybody publish under "open/" only.
class admission_test : public ::testing::Test {
protected:
  admission_test() {
    const auto topics = dir_.path() / "topics.toml";
    std::ofstream(topics) << "[anonymous]\nrole = \"guest\"\n[roles.guest]\n"
                             "[[topic]]\npattern = \"open/#\"\ndescription = \"x\"\npublish = [\"guest\"]\n";
    const auto loaded = config::load_string("topics = \"" + topics.string() + R"("
[store]
enabled = false
[limits]
max_client_id_length = 16
[[listener]]
name = "default"
allow_anonymous = true
)",
                                            "test.toml");
    EXPECT_TRUE(loaded.ok());
    broker_ = std::make_unique<broker>(loaded.cfg, 1, clock_);
    admit_ = std::make_unique<admission>(
        *broker_, 0, transport_, events_, connections_,
        [this](connection_id id, connection&, const session_registry::claim_result& c) {
          admitted_.emplace(id, c);
        },
        [](connection_id, base::time_point) {});
  }
  ~admission_test() override { broker_->stop_authentication(); }

  // A connection that sends `c`; returns its id.
  connection_id connect(const mqtt::connect& c) {
    const connection_id id = next_++;
    connection_info info;
    info.listener = "default";
    info.peer_address = "127.0.0.1";
    info.peer_port = 40000;
    connection& record = connections_.add(id, std::move(info));
    admit_->on_connect(id, record, mqtt::connect(c));
    return id;
  }

  std::optional<mqtt::connack> connack(connection_id id, protocol_version v) {
    const auto it = transport_.written.find(id);
    if (it == transport_.written.end()) {
      return std::nullopt;
    }
    auto r = mqtt::decode(it->second, v, {});
    if (r.status != mqtt::decode_status::complete) {
      return std::nullopt;
    }
    return std::get<mqtt::connack>(r.pkt);
  }

  const events::event& last_event() {
    EXPECT_FALSE(events_.events.empty());
    return events_.events.back();
  }

  static mqtt::connect connect_packet(std::string client_id, protocol_version v = protocol_version::v5) {
    mqtt::connect c;
    c.version = v;
    c.client_id = std::move(client_id);
    return c;
  }

  base::temp_dir dir_{"firehook-admission"};
  base::manual_clock clock_{base::time_point{} + std::chrono::seconds(1000)};
  std::unique_ptr<broker> broker_;
  fake_transport transport_;
  events::recording_emitter events_;
  connection_table connections_{transport_};
  std::unique_ptr<admission> admit_;
  std::map<connection_id, session_registry::claim_result> admitted_;
  connection_id next_ = 1;
};

TEST_F(admission_test, an_anonymous_client_is_admitted_with_its_claim_and_an_auth_allowed_event) {
  const auto id = connect(connect_packet("dev-1"));
  ASSERT_TRUE(admitted_.contains(id));
  EXPECT_EQ(admitted_.at(id).status, session_registry::claim_status::ok);
  EXPECT_FALSE(connack(id, protocol_version::v5)) << "the CONNACK is the session's, after the takeover";
  const auto& e = last_event();
  EXPECT_EQ(e.type, events::event_type::auth_allowed);
  EXPECT_EQ(e.client_id, "dev-1");
  EXPECT_EQ(e.method, "anonymous");
  EXPECT_EQ(e.peer_port, 40000);
}

TEST_F(admission_test, a_connect_that_fails_its_checks_is_refused_and_recorded) {
  const auto id = connect(connect_packet("a-client-id-longer-than-16"));
  EXPECT_FALSE(admitted_.contains(id));
  ASSERT_TRUE(connack(id, protocol_version::v5));
  EXPECT_EQ(connack(id, protocol_version::v5)->reason, reason_code::client_identifier_not_valid);
  EXPECT_TRUE(transport_.closed.at(id)) << "closed after the CONNACK";
  EXPECT_EQ(last_event().type, events::event_type::auth_denied);
  EXPECT_EQ(last_event().reason_code, reason_code::client_identifier_not_valid);
}

TEST_F(admission_test, a_will_the_client_may_not_publish_refuses_the_connect_before_any_claim) {
  auto c = connect_packet("dev-2", protocol_version::v3_1_1);
  mqtt::will w;
  w.topic = "closed/t";
  w.payload = "x";
  c.will_message = w;
  const auto id = connect(c);
  EXPECT_FALSE(admitted_.contains(id));
  EXPECT_EQ(connack(id, protocol_version::v3_1_1)->reason, reason_code::not_authorized); // 3.1.1: 0x05
  const auto& e = last_event();
  EXPECT_EQ(e.type, events::event_type::auth_denied);
  EXPECT_EQ(e.topic, "closed/t");
  EXPECT_EQ(e.reason, "the will is not allowed: no grant (deny by default)");
  EXPECT_EQ(broker_->registry().size(), 0u) << "nothing was claimed";

  c.will_message->topic = "open/t";
  EXPECT_TRUE(admitted_.contains(connect(c)));
}

TEST_F(admission_test, an_assigned_client_id_is_random_and_reported) {
  const auto id = connect(connect_packet(""));
  ASSERT_TRUE(admitted_.contains(id));
  const connection* c = connections_.find(id);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->client_id_assigned);
  EXPECT_EQ(c->connect->client_id.size(), 35u); // "fh-" and 32 hex digits
  EXPECT_EQ(last_event().client_id, c->connect->client_id);
}

TEST_F(admission_test, after_shutdown_every_connect_is_refused_as_unavailable) {
  admit_->shut_down();
  const auto id = connect(connect_packet("dev-3"));
  EXPECT_FALSE(admitted_.contains(id));
  EXPECT_EQ(connack(id, protocol_version::v5)->reason, reason_code::server_unavailable);
}

} // namespace
} // namespace firehook::broker

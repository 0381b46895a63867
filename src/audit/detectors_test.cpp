#include "audit/detectors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace firehook::audit {
namespace {

using ::testing::HasSubstr;
using events::event_type;

struct Detectors : ::testing::Test {
  events::recording_emitter out;
  std::chrono::system_clock::time_point t0 = std::chrono::system_clock::now() - std::chrono::seconds(100);

  events::event ev(event_type type, std::string peer, std::string identity = {}, std::string client = {},
                   std::chrono::seconds at = {}) {
    events::event e;
    e.type = type;
    e.time = t0 + at;
    e.peer = std::move(peer);
    e.identity = std::move(identity);
    e.method = e.identity.empty() ? "" : "password";
    e.username = e.identity;
    e.client_id = std::move(client);
    return e;
  }
  std::vector<std::string> alerts() const {
    std::vector<std::string> out_;
    for (const auto& e : out.events) {
      out_.push_back(e.subject + ": " + e.reason);
    }
    return out_;
  }
};

TEST_F(Detectors, AuthFailuresFromOneAddressRaiseOneAlertPerWindow) {
  detectors d({.auth_failures = 3}, out);
  for (int i = 0; i < 10; ++i) {
    d.consume(ev(event_type::auth_denied, "10.0.0.9", {}, "c", std::chrono::seconds(i)));
  }
  ASSERT_EQ(out.events.size(), 1U) << ::testing::PrintToString(alerts());
  EXPECT_EQ(out.events[0].type, event_type::alert);
  EXPECT_EQ(out.events[0].subject, "auth_failures");
  EXPECT_EQ(out.events[0].peer, "10.0.0.9");
  EXPECT_THAT(out.events[0].reason, HasSubstr("3 refused CONNECTs from 10.0.0.9 within 60 s"));
  // The next window counts afresh.
  for (int i = 0; i < 3; ++i) {
    d.consume(ev(event_type::auth_denied, "10.0.0.9", {}, "c", std::chrono::seconds(61 + i)));
  }
  EXPECT_EQ(out.events.size(), 2U);
}

TEST_F(Detectors, NormalTrafficStaysQuiet) {
  detectors d({}, out);
  for (int i = 0; i < 19; ++i) { // below every threshold, spread over addresses and identities
    d.consume(ev(event_type::auth_denied, "10.0.0." + std::to_string(i % 5), {}, "c"));
    d.consume(ev(event_type::publish_refused, "10.0.1.1", "dev-" + std::to_string(i % 3), "c"));
    d.consume(ev(event_type::auth_allowed, "10.0.1.1", "dev-" + std::to_string(i), "c" + std::to_string(i % 4)));
  }
  d.tick(std::chrono::steady_clock::now());
  EXPECT_TRUE(out.events.empty()) << ::testing::PrintToString(alerts());
}

TEST_F(Detectors, ProbingAndFlapping) {
  detectors d({.probing = 5, .flapping = 4}, out);
  for (int i = 0; i < 5; ++i) {
    d.consume(ev(i % 2 ? event_type::publish_refused : event_type::subscribe_refused, "10.0.0.1", "dev-1", "c1"));
  }
  for (int i = 0; i < 4; ++i) {
    d.consume(ev(event_type::auth_allowed, "10.0.0." + std::to_string(i), "dev-" + std::to_string(i), "same-id"));
    d.consume(ev(event_type::client_disconnected, "10.0.0." + std::to_string(i), "dev-" + std::to_string(i), "same-id"));
  }
  EXPECT_THAT(alerts(), ::testing::ElementsAre(HasSubstr("probing: 5 refused PUBLISH/SUBSCRIBE of identity \"dev-1\""),
                                               HasSubstr("client_id_flapping: client id \"same-id\" connected and lost its connection 4 times")));
}

TEST_F(Detectors, AnIdentityOverItsRateAgainAndAgain) {
  detectors d({.rate_limited = 3}, out);
  auto over = [&](std::string identity, std::string client, std::string subject) {
    auto e = ev(event_type::limit_reached, "10.0.0.1", std::move(identity), std::move(client));
    e.subject = std::move(subject);
    d.consume(e);
  };
  over("dev-1", "c1", "limits.publish_rate");
  over("dev-1", "c2", "limits.subscribe_rate"); // its other connection: the same identity
  over("dev-2", "c3", "limits.publish_rate");
  over("dev-1", "c1", "limits.max_queued_messages"); // another limit: not counted
  EXPECT_TRUE(out.events.empty()) << ::testing::PrintToString(alerts());
  over("dev-1", "c1", "limits.publish_rate");
  over("", "anon-1", "limits.publish_rate"); // anonymous: by client id
  over("", "anon-1", "limits.publish_rate");
  over("", "anon-1", "limits.publish_rate");
  EXPECT_THAT(alerts(),
              ::testing::ElementsAre(
                  HasSubstr("rate_limited: identity \"dev-1\" went over its publish or subscribe rate 3 times within 60 s"),
                  HasSubstr("rate_limited: client id \"anon-1\" went over its publish or subscribe rate 3 times")));
}

TEST_F(Detectors, OneCredentialAtTwoAddressesOnlyWhenItLastsLongerThanATakeover) {
  detectors d({}, out);
  const auto now = std::chrono::system_clock::now();
  auto at = [&](event_type t, std::string peer, std::chrono::seconds ago) {
    auto e = ev(t, std::move(peer), "dev-7", "dev-7");
    e.time = now - ago;
    return e;
  };
  // A device that moved: the new connection replaces the old one at once.
  d.consume(at(event_type::auth_allowed, "10.0.0.1", std::chrono::seconds(10)));
  d.consume(at(event_type::auth_allowed, "10.0.0.2", std::chrono::seconds(9)));
  d.consume(at(event_type::client_disconnected, "10.0.0.1", std::chrono::seconds(9)));
  d.tick(std::chrono::steady_clock::now());
  EXPECT_TRUE(out.events.empty()) << ::testing::PrintToString(alerts());
  // A copy: both stay.
  d.consume(at(event_type::auth_allowed, "10.0.0.3", std::chrono::seconds(5)));
  d.tick(std::chrono::steady_clock::now());
  ASSERT_EQ(out.events.size(), 1U);
  EXPECT_EQ(out.events[0].subject, "shared_credential");
  EXPECT_THAT(out.events[0].reason, HasSubstr("connected from 2 addresses at once: 10.0.0.2, 10.0.0.3"));
  // Anonymous clients are one identity for everybody: never a shared credential.
  detectors quiet({}, out);
  out.events.clear();
  for (const char* peer : {"10.0.0.1", "10.0.0.2"}) {
    auto e = at(event_type::auth_allowed, peer, std::chrono::seconds(5));
    e.method = "anonymous";
    quiet.consume(e);
  }
  quiet.tick(std::chrono::steady_clock::now());
  EXPECT_TRUE(out.events.empty());
}

TEST_F(Detectors, ASecondConnectionRefusedByRefuseNewIsASharedCredentialAtOnce) {
  detectors d({}, out);
  auto refused = ev(event_type::auth_denied, "10.0.0.9", "dev-7", "dev-7", std::chrono::seconds(1));
  refused.subject = "limits.duplicate";
  d.consume(refused);
  ASSERT_EQ(out.events.size(), 1U);
  EXPECT_EQ(out.events[0].subject, "shared_credential");
  EXPECT_THAT(out.events[0].reason, HasSubstr("tried to connect from 10.0.0.9 while it was connected"));
  refused.time += std::chrono::seconds(5); // the clone retries: one alert per window
  d.consume(refused);
  EXPECT_EQ(out.events.size(), 1U);
  auto wrong_password = ev(event_type::auth_denied, "10.0.0.9", "dev-8", "dev-8", std::chrono::seconds(1));
  d.consume(wrong_password);
  EXPECT_EQ(out.events.size(), 1U);
}

TEST_F(Detectors, OneCredentialFromAddressesThatChangeFasterThanADeviceMoves) {
  detectors d({.shared_credential = false, .address_changes = 3}, out);
  auto from = [&](std::string peer, int second, std::string identity = "dev-7") {
    d.consume(ev(event_type::auth_allowed, std::move(peer), std::move(identity), "c", std::chrono::seconds(second)));
  };
  // A device that reconnects from where it is, and moves once: quiet.
  from("10.0.0.1", 0);
  from("10.0.0.1", 5);
  from("10.0.0.2", 10);
  from("10.0.0.2", 20);
  from("10.0.0.1", 30, "dev-8"); // another device at the first address
  EXPECT_TRUE(out.events.empty()) << ::testing::PrintToString(alerts());
  // A third address within the window: one alert, naming the three, and only one per window.
  from("10.0.0.3", 40);
  from("10.0.0.4", 41);
  ASSERT_EQ(out.events.size(), 1U) << ::testing::PrintToString(alerts());
  EXPECT_EQ(out.events[0].subject, "address_hopping");
  EXPECT_EQ(out.events[0].identity, "dev-7");
  EXPECT_THAT(out.events[0].reason,
              HasSubstr("identity \"dev-7\" (password) connected from 3 addresses within 60 s: 10.0.0.1, 10.0.0.2, "
                        "10.0.0.3"));
  // The next window counts afresh: three addresses spread over two windows are quiet.
  from("10.0.0.5", 61);
  from("10.0.0.6", 62);
  from("10.0.0.7", 130);
  EXPECT_EQ(out.events.size(), 1U) << ::testing::PrintToString(alerts());
}

TEST_F(Detectors, MemoryIsBoundedAndAFullDetectorSaysSo) {
  detectors d({.auth_failures = 1000, .max_tracked = 100}, out);
  for (int i = 0; i < 500; ++i) {
    d.consume(ev(event_type::auth_denied, "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250)));
  }
  ASSERT_EQ(out.events.size(), 1U);
  EXPECT_EQ(out.events[0].subject, "detector_full");
}

} // namespace
} // namespace firehook::audit

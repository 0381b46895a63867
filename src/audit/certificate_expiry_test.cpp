#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "audit/alert_outputs.hpp"
#include "audit/certificate_expiry.hpp"

namespace firehook::audit {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

struct CertificateExpiry : ::testing::Test {
  events::recording_emitter out;
  const std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
  std::vector<listener_certificate> certs;
  int reads = 0;

  certificate_expiry make(std::uint32_t days = 30) {
    return certificate_expiry(
        days,
        [this] {
          ++reads;
          return certs;
        },
        out);
  }
};

TEST_F(CertificateExpiry, AlertsForEachCertificateWithinTheDaysAndNotForOthers) {
  certs = {{"devices", "server", "/CN=broker", "server.pem", now + 24h * 10 + 1h},
           {"devices", "ca", "/CN=Device CA", "ca.pem", now + 24h * 400},
           {"devices", "ca", "/CN=Old CA", "ca.pem", now - 24h}};
  auto c = make();
  c.check(now);
  ASSERT_EQ(out.events.size(), 2u);
  const auto& server = out.events[0];
  EXPECT_EQ(server.type, events::event_type::alert);
  EXPECT_EQ(server.subject, "certificate_expiry");
  EXPECT_EQ(server.listener, "devices");
  EXPECT_EQ(server.count, 10u);
  EXPECT_THAT(server.reason,
              HasSubstr("server certificate \"/CN=broker\" of listener \"devices\" (server.pem) expires on"));
  EXPECT_THAT(server.reason, HasSubstr("in 10 days"));
  EXPECT_THAT(out.events[1].reason, HasSubstr("CA certificate \"/CN=Old CA\""));
  EXPECT_THAT(out.events[1].reason, HasSubstr("expired on"));
}

TEST_F(CertificateExpiry, OncePerCertificatePerDay) {
  certs = {{"devices", "server", "/CN=broker", "server.pem", now + 24h * 5}};
  auto c = make();
  c.check(now);
  c.check(now + 1h);
  c.check(now + 23h);
  EXPECT_EQ(out.events.size(), 1u);
  c.check(now + 24h);
  EXPECT_EQ(out.events.size(), 2u);
  // A renewed certificate (another expiry) is another certificate: alerted at once if due.
  certs[0].not_after = now + 24h * 6;
  c.check(now + 25h);
  EXPECT_EQ(out.events.size(), 3u);
}

TEST_F(CertificateExpiry, LooksAtStartUpAfterATlsReloadAndOnceADay) {
  auto c = make();
  const auto t = std::chrono::steady_clock::now();
  c.tick(t);
  EXPECT_EQ(reads, 1);
  c.tick(t + 1h);
  EXPECT_EQ(reads, 1);
  events::event other;
  other.type = events::event_type::reload;
  other.verdict = events::decision::allow;
  other.subject = "topics file topics.toml";
  c.consume(other);
  c.tick(t + 2h);
  EXPECT_EQ(reads, 1) << "not a TLS reload";
  events::event refused = other;
  refused.subject = "TLS certificates, key, CA and CRL of listener devices";
  refused.verdict = events::decision::deny;
  c.consume(refused);
  c.tick(t + 2h);
  EXPECT_EQ(reads, 1) << "the old files stay in force";
  events::event applied = refused;
  applied.verdict = events::decision::allow;
  c.consume(applied);
  c.tick(t + 3h);
  EXPECT_EQ(reads, 2);
  c.tick(t + 3h + 24h);
  EXPECT_EQ(reads, 3);
}

TEST(AlertOutputs, TheJsonCarriesTheDetectorAndWhatTheEventKnows) {
  events::event a;
  a.type = events::event_type::alert;
  a.subject = "auth_failures";
  a.peer = "10.0.0.7";
  a.username = "al\"ice";
  a.reason = "5 refused CONNECTs";
  a.count = 5;
  const auto v = boost::json::parse(alert_json(a)).as_object();
  EXPECT_EQ(v.at("event").as_string(), "alert");
  EXPECT_EQ(v.at("detector").as_string(), "auth_failures");
  EXPECT_EQ(v.at("peer").as_string(), "10.0.0.7");
  EXPECT_EQ(v.at("username").as_string(), "al\"ice");
  EXPECT_EQ(v.at("reason").as_string(), "5 refused CONNECTs");
  EXPECT_EQ(v.at("count").as_int64(), 5);
  EXPECT_TRUE(v.at("time").as_string().ends_with("Z"));
  EXPECT_FALSE(v.contains("client_id"));
  EXPECT_EQ(alert_topic("probing"), "$SYS/broker/alerts/probing");
}

TEST(AlertOutputs, TheForwarderHandsOnAlertsOnly) {
  std::vector<std::pair<std::string, std::string>> got;
  alert_forwarder f([&](const std::string& detector, std::string json) { got.emplace_back(detector, json); });
  events::event other;
  other.type = events::event_type::auth_denied;
  f.consume(other);
  events::event a;
  a.type = events::event_type::alert;
  a.subject = "probing";
  f.consume(a);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "probing");
  EXPECT_EQ(got[0].second, alert_json(a));
}

} // namespace
} // namespace firehook::audit

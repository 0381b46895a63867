#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/temp_dir.hpp"
#include "security/certificate_authenticator.hpp"

namespace firehook::security {
namespace {

using config::certificate_identity;
using config::client_id_binding;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

certificate_info device_cert() {
  certificate_info c;
  c.subject = "CN=dev-42,OU=sensors,OU=floor3,O=Example";
  c.common_name = "dev-42";
  c.organizational_units = {"sensors", "floor3"};
  c.san_dns = {"dev-42.devices.example", "alt.example"};
  c.san_uri = {"urn:dev:42"};
  c.san_email = {};
  c.serial_hex = "0A1B";
  return c;
}

connect_request request_with(const certificate_info* cert, std::string_view client_id) {
  connect_request r;
  r.listener = "tls";
  r.peer_address = "127.0.0.1";
  r.client_id = client_id;
  r.certificate = cert;
  return r;
}

certificate_authenticator make(certificate_identity id, client_id_binding binding) {
  return certificate_authenticator(config::certificate_auth_settings{id, binding});
}

TEST(certificate_authenticator, abstains_without_a_certificate) {
  const auto a = make(certificate_identity::cn, client_id_binding::any);
  auto r = request_with(nullptr, "dev-42");
  r.username = "dev-42";
  r.password = "pw";
  EXPECT_EQ(a.authenticate(r).decision, verdict::abstain);
}

TEST(certificate_authenticator, identity_from_cn_with_ous_as_roles) {
  const auto cert = device_cert();
  const auto r = make(certificate_identity::cn, client_id_binding::must_match)
                     .authenticate(request_with(&cert, "dev-42"));
  ASSERT_EQ(r.decision, verdict::allow) << r.detail;
  EXPECT_EQ(r.method, "certificate");
  EXPECT_EQ(r.who.name, "dev-42");
  EXPECT_EQ(r.who.method, "certificate");
  EXPECT_THAT(r.who.roles, ElementsAre("sensors", "floor3"));
  ASSERT_TRUE(r.who.certificate);
  EXPECT_EQ(r.who.certificate->serial_hex, "0A1B");
  ASSERT_TRUE(r.who.client_id); // must_match: the client id is the identity's own
  EXPECT_EQ(*r.who.client_id, "dev-42");
  EXPECT_FALSE(r.who.assigns_client_id);
}

TEST(certificate_authenticator, identity_from_the_first_san_of_the_configured_kind) {
  const auto cert = device_cert();
  const auto dns =
      make(certificate_identity::san_dns, client_id_binding::any).authenticate(request_with(&cert, "x"));
  ASSERT_EQ(dns.decision, verdict::allow);
  EXPECT_EQ(dns.who.name, "dev-42.devices.example");
  const auto uri =
      make(certificate_identity::san_uri, client_id_binding::any).authenticate(request_with(&cert, "x"));
  ASSERT_EQ(uri.decision, verdict::allow);
  EXPECT_EQ(uri.who.name, "urn:dev:42");
}

TEST(certificate_authenticator, missing_identity_field_is_denied_not_authorized) {
  const auto cert = device_cert();
  const auto r =
      make(certificate_identity::san_email, client_id_binding::any).authenticate(request_with(&cert, "x"));
  EXPECT_EQ(r.decision, verdict::deny);
  EXPECT_EQ(r.reason, mqtt::reason_code::not_authorized);
  EXPECT_THAT(r.detail, HasSubstr("e-mail"));

  auto no_cn = device_cert();
  no_cn.common_name.clear();
  const auto r2 =
      make(certificate_identity::cn, client_id_binding::any).authenticate(request_with(&no_cn, "x"));
  EXPECT_EQ(r2.decision, verdict::deny);
  EXPECT_EQ(r2.reason, mqtt::reason_code::not_authorized);
}

TEST(certificate_authenticator, must_match_refuses_another_client_id_with_0x85) {
  const auto cert = device_cert();
  const auto a = make(certificate_identity::cn, client_id_binding::must_match);
  for (std::string_view id : {"dev-43", "", "DEV-42", "dev-42 "}) {
    const auto r = a.authenticate(request_with(&cert, id));
    EXPECT_EQ(r.decision, verdict::deny) << "client id \"" << id << "\"";
    EXPECT_EQ(r.reason, mqtt::reason_code::client_identifier_not_valid);
  }
}

TEST(certificate_authenticator, any_accepts_every_client_id) {
  const auto cert = device_cert();
  const auto r =
      make(certificate_identity::cn, client_id_binding::any).authenticate(request_with(&cert, "other"));
  EXPECT_EQ(r.decision, verdict::allow);
  EXPECT_FALSE(r.who.client_id); // chosen by the client: bound to nothing
  EXPECT_FALSE(r.who.assigns_client_id);
}

TEST(certificate_authenticator, assign_sets_the_client_id_to_the_identity) {
  const auto cert = device_cert();
  const auto r =
      make(certificate_identity::cn, client_id_binding::assign).authenticate(request_with(&cert, "whatever"));
  ASSERT_EQ(r.decision, verdict::allow);
  ASSERT_TRUE(r.who.client_id);
  EXPECT_EQ(*r.who.client_id, "dev-42");
  EXPECT_TRUE(r.who.assigns_client_id);
}

TEST(certificate_authenticator, in_a_chain_before_password_the_certificate_decides) {
  const auto cert = device_cert();
  auto chain =
      auth_chain({std::make_shared<const certificate_authenticator>(
                     config::certificate_auth_settings{certificate_identity::cn, client_id_binding::any})},
                 false);
  auto req = request_with(&cert, "c1");
  EXPECT_EQ(chain.authenticate(req).who.name, "dev-42");
  req.certificate = nullptr;
  const auto denied = chain.authenticate(req);
  EXPECT_EQ(denied.decision, verdict::deny);
  EXPECT_EQ(denied.reason, mqtt::reason_code::not_authorized);
}

// With the device registry: a certificate whose name is a registered device is that device.
class certificate_with_registry : public ::testing::Test {
protected:
  certificate_authenticator make_with_registry() {
    return certificate_authenticator(
        config::certificate_auth_settings{certificate_identity::cn, client_id_binding::must_match}, devices_);
  }

  base::temp_dir dir_{"firehook-cert-auth"};
  std::shared_ptr<registry::device_registry> devices_ = registry::device_registry::open(dir_ / "firehook.db");
  certificate_info cert_ = [] {
    auto c = device_cert();
    c.fingerprint_sha256 = "f00d";
    return c;
  }();
};

TEST_F(certificate_with_registry, a_registered_device_gets_its_roles_and_attributes) {
  devices_->add({"dev-42",
                 {"thermostat", "sensors"},
                 {{"building", "b1"}, {"room", "r7"}},
                 std::nullopt,
                 std::nullopt});
  const auto a = make_with_registry();
  const auto request = request_with(&cert_, "dev-42");
  EXPECT_FALSE(a.quick(request)); // a registered device: off the shard threads
  EXPECT_TRUE(a.quick(request_with(nullptr, "dev-42")));
  const auto r = a.authenticate(request);
  ASSERT_EQ(r.decision, verdict::allow) << r.detail;
  // The device's roles, then the OU values it lacks.
  EXPECT_THAT(r.who.roles, ElementsAre("thermostat", "sensors", "floor3"));
  EXPECT_EQ(r.who.attributes.at("building"), "b1");
  EXPECT_EQ(r.who.attributes.at("room"), "r7");
  const auto seen = devices_->find("dev-42");
  EXPECT_TRUE(seen->last_seen_at);
  EXPECT_EQ(seen->last_address, "127.0.0.1");
}

TEST_F(certificate_with_registry, an_unknown_name_is_handled_as_without_a_registry) {
  const auto a = make_with_registry();
  EXPECT_TRUE(a.quick(request_with(&cert_, "dev-42"))); // decided on the shard, as before
  const auto r = a.authenticate(request_with(&cert_, "dev-42"));
  ASSERT_EQ(r.decision, verdict::allow) << r.detail;
  EXPECT_THAT(r.who.roles, ElementsAre("sensors", "floor3"));
  EXPECT_TRUE(r.who.attributes.empty());
}

TEST_F(certificate_with_registry, a_disabled_or_revoked_device_is_refused_as_a_wrong_credential) {
  devices_->add({"dev-42", {}, {}, std::nullopt, std::nullopt});
  const auto a = make_with_registry();
  for (const auto state : {registry::device_state::disabled, registry::device_state::revoked}) {
    devices_->set_state("dev-42", state);
    const auto r = a.authenticate(request_with(&cert_, "dev-42"));
    EXPECT_EQ(r.decision, verdict::deny);
    EXPECT_EQ(r.reason, mqtt::reason_code::bad_user_name_or_password);
    EXPECT_THAT(r.detail, HasSubstr(std::string(registry::to_string(state))));
  }
  devices_->set_state("dev-42", registry::device_state::active);
  EXPECT_EQ(a.authenticate(request_with(&cert_, "dev-42")).decision, verdict::allow);
}

TEST_F(certificate_with_registry, a_certificate_retired_by_a_rotation_is_refused_after_its_grace_period) {
  devices_->add({"dev-42", {}, {}, std::nullopt, std::nullopt},
                registry::device_certificate{"0A1B", "f00d", 0, 0, registry::unix_now(), std::nullopt});
  const auto a = make_with_registry();
  devices_->rotate_certificate("dev-42", {"0C1D", "beef", 0, 0, registry::unix_now(), std::nullopt}, 3600);
  EXPECT_EQ(a.authenticate(request_with(&cert_, "dev-42")).decision, verdict::allow); // in its grace period
  devices_->rotate_certificate("dev-42", {"0E1F", "cafe", 0, 0, registry::unix_now(), std::nullopt}, -1);
  // The second rotation retired "beef" at once but left "f00d" at its earlier end: still allowed.
  EXPECT_EQ(a.authenticate(request_with(&cert_, "dev-42")).decision, verdict::allow);
  auto rotated = cert_;
  rotated.fingerprint_sha256 = "beef";
  const auto r = a.authenticate(request_with(&rotated, "dev-42"));
  EXPECT_EQ(r.decision, verdict::deny);
  EXPECT_EQ(r.reason, mqtt::reason_code::bad_user_name_or_password);
  EXPECT_THAT(r.detail, HasSubstr("rotation"));
}

} // namespace
} // namespace firehook::security

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/temp_dir.hpp"
#include "registry/device_registry.hpp"

namespace firehook::registry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

class device_registry_test : public ::testing::Test {
protected:
  base::temp_dir dir_{"firehook-devices"};
  std::shared_ptr<device_registry> devices_ = device_registry::open(dir_ / "firehook.db");
};

device_certificate cert(std::string serial, std::string fingerprint) {
  return {std::move(serial), std::move(fingerprint), 100, 200, unix_now(), std::nullopt};
}

TEST(device_name, letters_digits_dot_underscore_dash_up_to_64) {
  EXPECT_EQ(check_device_name("sensor-1"), "");
  EXPECT_EQ(check_device_name("b1.floor_3-t7"), "");
  EXPECT_EQ(check_device_name(std::string(64, 'a')), "");
  EXPECT_THAT(check_device_name(""), HasSubstr("empty"));
  EXPECT_THAT(check_device_name(std::string(65, 'a')), HasSubstr("longer than 64"));
  EXPECT_THAT(check_device_name("-rm"), HasSubstr("must start with a letter or a digit"));
  EXPECT_THAT(check_device_name(".hidden"), HasSubstr("must start"));
  for (const auto* bad : {"a b", "a/b", "a+b", "a#b", "caf\xc3\xa9", "a,b", "a=b"}) {
    EXPECT_THAT(check_device_name(bad), HasSubstr("may hold only")) << bad;
  }
}

TEST_F(device_registry_test, add_find_and_list) {
  devices_->add({"sensor-1", {"sensors", "readers"}, {{"building", "b1"}}, "sensor-1-user", std::nullopt},
                cert("7F01", "ab01"));
  devices_->add({"gateway", {}, {}, std::nullopt, "gw-subject"});
  const auto d = devices_->find("sensor-1");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->name, "sensor-1");
  EXPECT_EQ(d->state, device_state::active);
  EXPECT_THAT(d->roles, ElementsAre("sensors", "readers"));
  EXPECT_THAT(d->attributes, ElementsAre(Pair("building", "b1")));
  ASSERT_EQ(d->certificates.size(), 1u);
  EXPECT_EQ(d->certificates[0].serial_hex, "7F01");
  EXPECT_EQ(d->certificates[0].fingerprint_sha256, "ab01");
  EXPECT_EQ(d->username, "sensor-1-user");
  EXPECT_FALSE(d->token_subject);
  EXPECT_GT(d->created_at, 0);
  EXPECT_FALSE(d->last_seen_at);
  EXPECT_FALSE(devices_->find("sensor-2"));

  const auto all = devices_->list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "gateway"); // by name
  EXPECT_EQ(all[0].token_subject, "gw-subject");
  EXPECT_TRUE(all[0].certificates.empty());
  EXPECT_EQ(all[1].name, "sensor-1");
}

TEST_F(device_registry_test, refuses_a_duplicate_a_bad_name_and_bad_roles) {
  devices_->add({"sensor-1", {}, {}, std::nullopt, std::nullopt});
  EXPECT_THROW(devices_->add({"sensor-1", {}, {}, std::nullopt, std::nullopt}), device_error);
  EXPECT_THROW(devices_->add({"bad name", {}, {}, std::nullopt, std::nullopt}), device_error);
  EXPECT_THROW(devices_->add({"s2", {"r", "r"}, {}, std::nullopt, std::nullopt}), device_error);
  EXPECT_THROW(devices_->add({"s3", {}, {{"k=x", "v"}}, std::nullopt, std::nullopt}), device_error);
  EXPECT_EQ(devices_->list().size(), 1u);
}

TEST_F(device_registry_test, a_serial_or_fingerprint_belongs_to_one_certificate) {
  devices_->add({"a", {}, {}, std::nullopt, std::nullopt}, cert("01", "f1"));
  // The whole add is one transaction: the device is not left behind without its certificate.
  EXPECT_THROW(devices_->add({"b", {}, {}, std::nullopt, std::nullopt}, cert("01", "f2")), store_error);
  EXPECT_FALSE(devices_->find("b"));
  EXPECT_THROW(devices_->add({"c", {}, {}, std::nullopt, std::nullopt}, cert("02", "f1")), store_error);
}

TEST_F(device_registry_test, disable_enable_and_unknown) {
  devices_->add({"s", {}, {}, std::nullopt, std::nullopt});
  devices_->set_state("s", device_state::disabled);
  EXPECT_EQ(devices_->find("s")->state, device_state::disabled);
  devices_->set_state("s", device_state::active);
  EXPECT_EQ(devices_->find("s")->state, device_state::active);
  EXPECT_THROW(devices_->set_state("nobody", device_state::disabled), device_error);
}

TEST_F(device_registry_test, remove_takes_roles_attributes_and_certificates) {
  devices_->add({"s", {"r"}, {{"k", "v"}}, std::nullopt, std::nullopt}, cert("01", "f1"));
  EXPECT_TRUE(devices_->remove("s"));
  EXPECT_FALSE(devices_->remove("s"));
  EXPECT_FALSE(devices_->find("s"));
  // A new device of the same name starts clean and may get a certificate with the same serial.
  devices_->add({"s", {}, {}, std::nullopt, std::nullopt}, cert("01", "f1"));
  const auto d = devices_->find("s");
  EXPECT_TRUE(d->roles.empty());
  EXPECT_TRUE(d->attributes.empty());
  EXPECT_EQ(d->certificates.size(), 1u);
}

TEST_F(device_registry_test, rotation_retires_the_current_certificates_after_the_grace_period) {
  devices_->add({"s", {}, {}, std::nullopt, std::nullopt}, cert("01", "f1"));
  const auto before = unix_now();
  devices_->rotate_certificate("s", cert("02", "f2"), 3600);
  auto d = devices_->find("s");
  ASSERT_EQ(d->certificates.size(), 2u);
  ASSERT_TRUE(d->certificates[0].retire_at);
  EXPECT_GE(*d->certificates[0].retire_at, before + 3600);
  EXPECT_FALSE(d->certificates[0].retired(before));
  EXPECT_TRUE(d->certificates[0].retired(before + 7200));
  EXPECT_FALSE(d->certificates[1].retire_at);

  // A second rotation leaves the first certificate's earlier end alone.
  const auto first_end = *d->certificates[0].retire_at;
  devices_->rotate_certificate("s", cert("03", "f3"), 86400);
  d = devices_->find("s");
  ASSERT_EQ(d->certificates.size(), 3u);
  EXPECT_EQ(*d->certificates[0].retire_at, first_end);
  EXPECT_TRUE(d->certificates[1].retire_at);
  EXPECT_FALSE(d->certificates[2].retire_at);
  EXPECT_THROW(devices_->rotate_certificate("nobody", cert("04", "f4"), 0), device_error);
}

TEST_F(device_registry_test, touch_records_last_seen_but_not_on_every_connect) {
  devices_->add({"s", {}, {}, std::nullopt, std::nullopt});
  devices_->touch("s", "192.0.2.1", 1000);
  auto d = devices_->find("s");
  EXPECT_EQ(d->last_seen_at, 1000);
  EXPECT_EQ(d->last_address, "192.0.2.1");
  devices_->touch("s", "192.0.2.1", 1030); // within a minute, same address: not written
  EXPECT_EQ(devices_->find("s")->last_seen_at, 1000);
  devices_->touch("s", "192.0.2.9", 1031); // another address: written
  EXPECT_EQ(devices_->find("s")->last_address, "192.0.2.9");
  devices_->touch("s", "192.0.2.9", 1100);
  EXPECT_EQ(devices_->find("s")->last_seen_at, 1100);
  devices_->touch("nobody", "192.0.2.1", 1000); // ignored
}

TEST_F(device_registry_test, shares_the_database_with_the_credential_store) {
  // One file, one set of migrations: a user and a device of the same name do not collide.
  auto creds = credential_store::open(dir_ / "firehook.db");
  creds->add_user("s", "pw", {"users"}, {});
  devices_->add({"s", {"devices"}, {}, std::string("s"), std::nullopt});
  EXPECT_THAT(creds->find_user("s")->roles, ElementsAre("users"));
  EXPECT_THAT(devices_->find("s")->roles, ElementsAre("devices"));
}

} // namespace
} // namespace firehook::registry

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "admin/access.hpp"
#include "admin/metrics.hpp"
#include "admin/tokens.hpp"
#include "base/temp_dir.hpp"

namespace firehook::admin {
namespace {

using ::testing::HasSubstr;

TEST(metrics, every_statistic_and_event_type_is_exposed_with_help_and_type) {
  events::statistics stats;
  stats.add(events::stat::messages_received, 7);
  stats.set(events::stat::clients_connected, 3);
  events::hub hub(1);
  event_counts counts;
  events::event denied;
  denied.type = events::event_type::auth_denied;
  denied.method = "password";
  denied.reason_code = mqtt::reason_code::bad_user_name_or_password;
  counts.consume(denied);
  counts.consume(denied);
  const std::string text = prometheus_text(stats, hub, counts, [](std::string& out) {
    append_metric(out, "firehook_extra", "gauge", "more", 1.5);
  });
  for (const auto& s : events::all_stats()) {
    EXPECT_THAT(text, HasSubstr("\n" + std::string(s.metric) + " ")) << s.metric;
  }
  EXPECT_THAT(text, HasSubstr("# TYPE firehook_messages_received_total counter\nfirehook_messages_received_total 7\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE firehook_clients_connected gauge\nfirehook_clients_connected 3\n"));
  EXPECT_THAT(text, HasSubstr("firehook_events_total{event=\"auth_denied\"} 0\n")); // counted by the hub only
  EXPECT_THAT(text, HasSubstr("firehook_auth_failures_total{method=\"password\",reason_code=\"0x86\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("firehook_extra 1.5\n"));
}

TEST(tokens, only_the_hash_is_kept_and_a_token_names_its_holder) {
  base::temp_dir dir("firehook-admin");
  const auto file = dir / "tokens";
  const std::string token = token_store::add(file, "scraper");
  EXPECT_EQ(token.rfind("fha_", 0), 0U);
  std::ifstream in(file);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find(token.substr(4)), std::string::npos) << "the token itself must not be stored";
  EXPECT_THROW(token_store::add(file, "scraper"), std::runtime_error);
  EXPECT_THROW(token_store::add(file, "bad name"), std::runtime_error);

  token_store store(file);
  EXPECT_EQ(store.who(token), "scraper");
  EXPECT_EQ(store.who(token + "x"), std::nullopt);
  EXPECT_EQ(store.who(""), std::nullopt);

  const std::string second = token_store::add(file, "ops");
  EXPECT_EQ(store.who(second), std::nullopt); // not reloaded yet
  EXPECT_EQ(store.reload(false).what, base::reload_result::outcome::applied);
  EXPECT_EQ(store.who(second), "ops");
  EXPECT_TRUE(token_store::remove(file, "scraper"));
  EXPECT_FALSE(token_store::remove(file, "scraper"));
  (void)store.reload(false);
  EXPECT_EQ(store.who(token), std::nullopt);
  EXPECT_EQ(token_store::names(file), std::vector<std::string>{"ops"});

  std::ofstream(file, std::ios::app) << "broken line\n";
  const auto r = store.reload(false);
  EXPECT_EQ(r.what, base::reload_result::outcome::refused);
  EXPECT_THAT(r.detail, HasSubstr("tokens:2"));
  EXPECT_EQ(store.who(second), "ops"); // the set in force stays
}

TEST(access, a_token_or_a_listed_certificate_and_nothing_else) {
  base::temp_dir dir("firehook-admin");
  const auto file = dir / "tokens";
  const std::string token = token_store::add(file, "scraper");
  const token_store store(file);
  const std::vector<std::string> admins{"CN=ops-1", "CN=ops-2,O=Example"};
  const std::optional<std::string> none;
  const std::optional<std::string> listed = "CN=ops-2,O=Example";
  const std::optional<std::string> stranger = "CN=ops-3,O=Example";

  const access by_token = decide_access("Bearer " + token, none, store, admins);
  EXPECT_EQ(by_token.status, 200U);
  EXPECT_EQ(by_token.who.method(), "admin-token");
  EXPECT_EQ(by_token.who.name, "scraper");
  EXPECT_EQ(decide_access("bearer " + token, none, store, admins).status, 200U); // the scheme's case

  const access by_certificate = decide_access("", listed, store, admins);
  EXPECT_EQ(by_certificate.status, 200U);
  EXPECT_EQ(by_certificate.who.method(), "admin-certificate");
  EXPECT_EQ(by_certificate.who.name, "CN=ops-2,O=Example");

  // A verified certificate whose subject is not listed, even one that differs only in order or case.
  for (const std::string subject : {"CN=ops-3,O=Example", "O=Example,CN=ops-2", "cn=ops-1", "CN=ops-1,O=x"}) {
    const access refused = decide_access("", subject, store, admins);
    EXPECT_EQ(refused.status, 403U) << subject;
    EXPECT_EQ(refused.who.name, subject);
    EXPECT_THAT(refused.why, HasSubstr("admin.client_subjects"));
  }
  EXPECT_EQ(decide_access("", listed, store, {}).status, 403U); // deny by default

  const access nothing = decide_access("", none, store, admins);
  EXPECT_EQ(nothing.status, 401U);
  EXPECT_EQ(nothing.why, "no bearer token");
  EXPECT_EQ(nothing.who.method(), "");
  // What a request sends is what is judged: a wrong token is not rescued by a listed certificate.
  for (const std::string& header : std::vector<std::string>{"Bearer fha_guessed", "Basic b3BzOnB3", "Bearer ", token}) {
    const access wrong = decide_access(header, listed, store, admins);
    EXPECT_EQ(wrong.status, 401U) << header;
    EXPECT_EQ(wrong.why, "not a valid bearer token");
  }
  // And a stranger's certificate does not spoil a good token.
  EXPECT_EQ(decide_access("Bearer " + token, stranger, store, admins).who.name, "scraper");
}

} // namespace
} // namespace firehook::admin

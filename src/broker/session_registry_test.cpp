// The session registry as the one ownership check: who may create, resume or take over a client
// id's session, and the per-identity limits on sessions and connections.
#include <gtest/gtest.h>

#include "broker/session_registry.hpp"

namespace firehook::broker {
namespace {

using status = session_registry::claim_status;
using kind = session_registry::claim_kind;
constexpr session_registry::claim_limits no_limits{};

TEST(session_registry, a_session_belongs_to_the_identity_that_created_it) {
  session_registry r;
  const auto first = r.claim("dev-1", 0, "password:alice", no_limits);
  ASSERT_EQ(first.status, status::ok);
  EXPECT_FALSE(first.previous_shard);

  // Another identity with the same client id: refused, and nothing changes.
  const auto stolen = r.claim("dev-1", 1, "password:mallory", no_limits);
  EXPECT_EQ(stolen.status, status::owned_by_another);
  EXPECT_EQ(r.usage_of("password:mallory").sessions, 0u);
  // The same name by another method is another identity too.
  EXPECT_EQ(r.claim("dev-1", 1, "jwt:alice", no_limits).status, status::owned_by_another);

  // The owner takes it over (or resumes it) from wherever it was.
  const auto again = r.claim("dev-1", 1, "password:alice", no_limits);
  ASSERT_EQ(again.status, status::ok);
  EXPECT_EQ(again.previous_shard, 0u);
  EXPECT_GT(again.epoch, first.epoch);
  EXPECT_EQ(r.usage_of("password:alice").sessions, 1u);
  EXPECT_EQ(r.usage_of("password:alice").connections, 1u);
}

TEST(session_registry, an_ended_session_frees_the_client_id_for_anyone) {
  session_registry r;
  const auto a = r.claim("x", 0, "password:alice", no_limits);
  r.disconnected("x", a.epoch); // offline: still alice's
  EXPECT_EQ(r.claim("x", 0, "password:bob", no_limits).status, status::owned_by_another);
  r.release("x", a.epoch);
  EXPECT_EQ(r.size(), 0u);
  EXPECT_EQ(r.usage_of("password:alice").sessions, 0u);
  EXPECT_EQ(r.claim("x", 0, "password:bob", no_limits).status, status::ok);
}

TEST(session_registry, an_older_claim_neither_releases_nor_disconnects_a_newer_one) {
  session_registry r;
  const auto old_claim = r.claim("x", 0, "password:alice", no_limits);
  const auto new_claim = r.claim("x", 1, "password:alice", no_limits);
  r.disconnected("x", old_claim.epoch); // the taken-over connection goes away
  EXPECT_EQ(r.usage_of("password:alice").connections, 1u);
  r.release("x", old_claim.epoch);
  EXPECT_EQ(r.size(), 1u);
  r.release("x", new_claim.epoch);
  EXPECT_EQ(r.size(), 0u);
}

TEST(session_registry, a_fresh_claim_never_reaches_an_existing_session) {
  session_registry r;
  ASSERT_EQ(r.claim("fh-1", 0, "anonymous:anonymous", no_limits).status, status::ok);
  // The same identity, even: an assigned client id starts a new session or none.
  EXPECT_EQ(r.claim("fh-1", 1, "anonymous:anonymous", no_limits, kind::fresh).status, status::in_use);
  EXPECT_EQ(r.claim("fh-2", 1, "anonymous:anonymous", no_limits, kind::fresh).status, status::ok);
}

TEST(session_registry, an_identity_entitled_to_a_client_id_evicts_a_squatter) {
  session_registry r;
  // A password user takes a device's client id while the device is away...
  const auto squat = r.claim("dev-42", 0, "password:mallory", no_limits);
  ASSERT_EQ(squat.status, status::ok);
  // ... the device (whose certificate fixes the client id) still gets it, and must not resume it.
  const auto device = r.claim("dev-42", 1, "certificate:dev-42", no_limits, kind::entitled);
  ASSERT_EQ(device.status, status::ok);
  EXPECT_TRUE(device.evicted);
  EXPECT_EQ(device.previous_shard, 0u);
  EXPECT_EQ(r.usage_of("password:mallory").sessions, 0u);
  EXPECT_EQ(r.usage_of("certificate:dev-42").sessions, 1u);
  // The squatter's late release changes nothing; it cannot come back either.
  r.release("dev-42", squat.epoch);
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(r.claim("dev-42", 0, "password:mallory", no_limits).status, status::owned_by_another);
  // The device's own session is resumed as usual, not evicted.
  const auto again = r.claim("dev-42", 0, "certificate:dev-42", no_limits, kind::entitled);
  EXPECT_FALSE(again.evicted);
}

TEST(session_registry, sessions_per_identity_are_limited) {
  session_registry r;
  const session_registry::claim_limits limits{2, 0};
  const auto a = r.claim("a", 0, "password:alice", limits);
  ASSERT_EQ(r.claim("b", 0, "password:alice", limits).status, status::ok);
  r.disconnected("a", a.epoch); // offline sessions count too
  EXPECT_EQ(r.claim("c", 0, "password:alice", limits).status, status::too_many_sessions);
  EXPECT_EQ(r.claim("c", 0, "password:bob", limits).status, status::ok); // others are not affected
  // Its own sessions stay reachable at the limit.
  EXPECT_EQ(r.claim("a", 1, "password:alice", limits).status, status::ok);
  r.release("b", r.claim("b", 0, "password:alice", limits).epoch);
  EXPECT_EQ(r.claim("d", 0, "password:alice", limits).status, status::ok);
}

TEST(session_registry, connections_per_identity_are_limited_but_a_takeover_is_not_a_new_one) {
  session_registry r;
  const session_registry::claim_limits limits{0, 2};
  const auto a = r.claim("a", 0, "password:alice", limits);
  ASSERT_EQ(r.claim("b", 0, "password:alice", limits).status, status::ok);
  EXPECT_EQ(r.claim("c", 0, "password:alice", limits).status, status::too_many_connections);
  // Taking over a connected session replaces a connection.
  const auto a2 = r.claim("a", 1, "password:alice", limits);
  ASSERT_EQ(a2.status, status::ok);
  EXPECT_EQ(r.usage_of("password:alice").connections, 2u);
  // One goes offline: room for another; resuming the offline one is a new connection again.
  r.disconnected("a", a2.epoch);
  EXPECT_EQ(r.claim("c", 0, "password:alice", limits).status, status::ok);
  EXPECT_EQ(r.claim("a", 0, "password:alice", limits).status, status::too_many_connections);
  (void)a;
}

TEST(session_registry, refuse_new_gives_a_connected_identity_no_second_connection_not_even_a_takeover) {
  session_registry r;
  session_registry::claim_limits limits;
  limits.refuse_new = true;
  const auto a = r.claim("a", 0, "certificate:dev-1", limits);
  ASSERT_EQ(a.status, status::ok);
  EXPECT_EQ(r.claim("a", 1, "certificate:dev-1", limits).status, status::already_connected);
  EXPECT_EQ(r.claim("b", 1, "certificate:dev-1", limits).status, status::already_connected);
  EXPECT_EQ(r.claim("c", 1, "certificate:dev-2", limits).status, status::ok); // another identity
  // Once its connection has gone, the identity resumes its session.
  r.disconnected("a", a.epoch);
  EXPECT_EQ(r.claim("a", 1, "certificate:dev-1", limits).status, status::ok);
}

} // namespace
} // namespace firehook::broker

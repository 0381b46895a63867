#pragma once
// From CONNECT to a claimed session: the checks a CONNECT passes before a session exists for it
// (session::check_connect), its authentication (on the shard when the listener's chain decides at
// once, otherwise on the authentication pool, cancelled if the connection goes first), the
// client's rights (the topics file), its will checked against them (the same check as a PUBLISH),
// and the claim of its client id in the session registry (the one ownership check, with the
// per-identity limits). Every CONNECT ends in one event, auth_allowed or auth_denied; a refused one
// gets its CONNACK and is closed. An admitted one goes to `next` with its claim: the shard then
// takes the session over.
//
// Threads: the owning shard's only (authentication verdicts are posted back to it).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/authentication.hpp"
#include "broker/broker.hpp"
#include "broker/connection_table.hpp"
#include "events/emitter.hpp"
#include "security/topic_policy.hpp"
#include "session/authorizer.hpp"

namespace firehook::broker {

// A client's rights from the compiled topics file, as the session asks for them.
class topic_rights final : public session::authorizer {
public:
  topic_rights(std::shared_ptr<const security::topic_policy> policy, const security::identity& who,
               std::string_view client_id)
      : access_(std::move(policy), who, client_id) {}

  bool may_publish(std::string_view topic, mqtt::qos qos, bool retain) const override {
    return access_.may_publish(topic, static_cast<std::uint8_t>(qos), retain).allowed();
  }
  bool may_subscribe(std::string_view filter) const override {
    return access_.may_subscribe(filter).allowed();
  }
  bool may_receive(std::string_view topic) const override { return access_.may_receive(topic).allowed(); }
  explanation explain_publish(std::string_view topic, mqtt::qos qos, bool retain) const override {
    return explain(access_.may_publish(topic, static_cast<std::uint8_t>(qos), retain));
  }
  explanation explain_subscribe(std::string_view filter) const override {
    return explain(access_.may_subscribe(filter));
  }
  const security::topic_access& access() const { return access_; }

  // A decision in the words of an event: "no grant (deny by default)", and the rule's place.
  static explanation explain(const security::topic_decision& d);

private:
  security::topic_access access_;
};

class admission {
public:
  using admitted = std::function<void(connection_id, connection&, const session_registry::claim_result&)>;
  // Arms the shard's timer that calls resume(id) at `at` (a CONNECT held for failed logins).
  using hold = std::function<void(connection_id, base::time_point at)>;

  // `b`, `t`, `events` and `connections` must outlive it.
  admission(broker& b, unsigned shard_index, transport& t, events::emitter& events,
            connection_table& connections, admitted next, hold hold_until);

  // A CONNECT held for failed logins has waited: its credentials go to the check now. A connection
  // closed meanwhile is not there any more, and is forgotten.
  void resume(connection_id id);
  // The connection closed: what was held for it goes.
  void forget(connection_id id) { delayed_.erase(id); }

  // The CONNECT of a connection awaiting one.
  void on_connect(connection_id id, connection& c, mqtt::connect&& p);
  // From now on every CONNECT is refused with 0x88 Server unavailable (shutdown).
  void shut_down() { shutting_down_ = true; }

  // The rights of `who` connected as `client_id`; null without a topics file (every topic).
  std::shared_ptr<const topic_rights> rights_for(const security::identity& who,
                                                 std::string_view client_id) const;

private:
  void on_authenticated(connection_id id, security::auth_result&& r);
  // Hands the credentials to the authentication pool.
  void submit(connection_id id, connection& c, credentials&& who);
  // The CONNECT's address, client id or user name is banned: refused with 0x8A (3.1.1: 0x05).
  bool refuse_banned(connection_id id, connection& c, std::string_view client_id);
  // A failed check of credentials: counted; the address may earn a ban.
  void count_failure(const connection& c, const security::auth_result& r);
  void accept(connection_id id, connection& c);
  bool will_permitted(const connection& c); // emits the auth_denied event when not
  // The registry claim of the CONNECT's client id, or nullopt when refused (answered, recorded).
  std::optional<session_registry::claim_result> claim_session(connection_id id, connection& c, bool assigned);
  void refuse(connection_id id, connection& c, mqtt::reason_code rc);
  // The CONNECT's outcome, one event: auth_allowed when `rc` is success, else auth_denied.
  void report(const connection& c, mqtt::reason_code rc, std::string_view method, std::string reason,
              std::string subject = {});
  void send_packet(connection_id id, mqtt::protocol_version v, const mqtt::packet& p);

  broker& broker_;
  const unsigned shard_index_;
  transport& transport_;
  events::emitter& events_;
  connection_table& connections_;
  const session::limits& limits_;
  admitted next_;
  hold hold_until_;
  // The credentials of the CONNECTs held for failed logins, until their timer (a few seconds at
  // most: login_delay_max_ms); kept here rather than in every connection. Ids are never reused.
  std::unordered_map<connection_id, credentials> delayed_;
  bool shutting_down_ = false;
  std::vector<std::byte> wire_; // encode scratch
  // The identity of every anonymous client on this shard (on_authenticated).
  std::shared_ptr<const security::identity> anonymous_;
};

} // namespace firehook::broker

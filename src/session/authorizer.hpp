#pragma once
// Which topics one client may use: the session asks before it routes a PUBLISH or grants a
// SUBSCRIBE filter, and before it takes a delivery. The broker implements it with the compiled
// topics file (security::topic_access); the session knows nothing of how rights are defined.
//
// Lifetime and threads: immutable once made, shared by the session state that holds it (it stays
// with an offline session, so deliveries queued for it are checked too). Called on the owning
// shard's thread only.

#include <string>
#include <string_view>

#include "mqtt/packet.hpp"

namespace firehook::session {

class authorizer {
public:
  // Why a decision went the way it did, for the event that records it: the verdict in a few words
  // ("no grant", "denied") and the rule that decided ("topics.toml:12:3 publish grant of ...").
  struct explanation {
    std::string reason;
    std::string rule;
    bool allowed = false;
  };

  virtual ~authorizer() = default;
  // A PUBLISH of `topic` (a valid topic name) at `qos`, with the retain flag `retain`.
  virtual bool may_publish(std::string_view topic, mqtt::qos qos, bool retain) const = 0;
  // A SUBSCRIBE filter, "$share/group/" prefix included.
  virtual bool may_subscribe(std::string_view filter) const = 0;
  // A message on `topic` is about to be delivered to this client.
  virtual bool may_receive(std::string_view topic) const = 0;

  // The same decisions explained (`allowed` is the decision); for events, never on the delivery path.
  virtual explanation explain_publish(std::string_view topic, mqtt::qos qos, bool retain) const = 0;
  virtual explanation explain_subscribe(std::string_view filter) const = 0;
};

} // namespace firehook::session

#pragma once
// A shard's connections, from accept to close, as the broker sees them: their phase, who they are
// once authenticated, the CONNECT while it is being decided, and the packets that arrived while
// they had to wait (held, in order, with reading paused). One connection's record stays here for
// its whole life; its session (once it has one) is in the shard's session table.
//
// close() is the one way to end a connection that has no session (refused, timed out, malformed,
// shutting down); a connected client's connection ends through its session (session::close, which
// sends what the protocol version allows and publishes the will), carried out by the shard.
//
// Threads: the owning shard's only.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include <boost/container/deque.hpp>

#include "broker/broker.hpp"
#include "broker/transport.hpp"
#include "events/event.hpp"
#include "mqtt/packet.hpp"
#include "router/subscription_index.hpp"
#include "security/rate_limit.hpp"

namespace firehook::broker {

class topic_rights; // a client's rights from the topics file (admission.hpp)

struct connection {
  enum class phase : std::uint8_t { awaiting_connect, authenticating, awaiting_session, connected, closing };
  // Kept for the whole connection, for events (connection_info).
  std::string listener;
  std::string peer_address;
  std::uint16_t peer_port = 0;
  // The client certificate the TLS layer verified, until CONNECT hands it to authentication.
  std::unique_ptr<security::certificate_info> certificate;
  // Who the client is, once the authentication chain allowed it; moves to the session.
  std::shared_ptr<const security::identity> who;

  // Its client certificate's SHA-256 fingerprint (before CONNECT or after authentication); "" without.
  std::string_view certificate_fingerprint() const {
    return certificate ? std::string_view(certificate->fingerprint_sha256)
                       : who && who->certificate ? std::string_view(who->certificate->fingerprint_sha256)
                                                 : std::string_view();
  }
  // The subject of the token it authenticated with; "" for other methods.
  std::string_view token_subject() const {
    return who && who->method == "jwt" ? std::string_view(who->name) : std::string_view();
  }
  // What it may publish and receive (null without a topics file): made once the client id is
  // final, checked against the will, then handed to the session.
  std::shared_ptr<const topic_rights> rights;
  // While its password or token is checked on the authentication pool: the request, which is
  // cancelled if the connection goes first.
  std::uint64_t auth_ticket = 0;
  phase state = phase::awaiting_connect;
  mqtt::protocol_version version = mqtt::protocol_version::v3_1_1;
  router::subscriber_id sid = 0; // while connected
  // While authenticating and awaiting_session: the accepted CONNECT. On the heap: a CONNECT is
  // about 1.2 KB with its properties, and a connected client no longer needs it.
  std::unique_ptr<mqtt::connect> connect;
  // While awaiting_session: the registry claim.
  bool client_id_assigned = false;
  std::uint64_t epoch = 0;
  // Packets that arrived while the session was being fetched or a subscription change was in
  // flight, in order; reading is paused meanwhile. Boost's deque allocates nothing while empty,
  // which it nearly always is (libstdc++'s allocates about 1.2 KB for mqtt::packet).
  boost::container::deque<mqtt::packet> held;
  bool paused = false;
  bool rate_timer = false; // a timer will replay what its rates hold (shard_flow.cpp)
  // How fast it may publish and subscribe (its listener's rates), from CONNACK on.
  security::client_rate rate;

  std::string peer() const { return peer_address + ":" + std::to_string(peer_port); }
};

// An event about connection `c`, with what is known of it (listener, peer, client id, identity).
events::event event_of(events::event_type t, const connection& c);

class connection_table {
public:
  explicit connection_table(transport& t) : transport_(t) {}

  connection& add(connection_id id, connection_info&& info);
  connection* find(connection_id id);
  const connection* find(connection_id id) const;
  // Forgets it (the transport closed it); its record, if it had one.
  std::optional<connection> remove(connection_id id);
  std::size_t size() const { return connections_.size(); }

  // Keeps `p` for later, in order, and stops reading until resume() once `pause_at` packets are
  // held (the first one, by default).
  void hold(connection_id id, connection& c, mqtt::packet&& p, std::size_t pause_at = 1);
  // Stops reading without holding anything (waiting for a session on another shard).
  void pause(connection_id id, connection& c);
  // Reading goes on (nothing is held any more).
  void resume(connection_id id, connection& c);

  // Ends a connection that has no session: no more packets are taken, what is held is dropped,
  // and the transport closes it (after what is queued when `flush`). Closing twice is harmless.
  void close(connection_id id, connection& c, bool flush);

  template <typename F>
  void for_each(F&& f) {
    for (auto& [id, c] : connections_) {
      f(id, c);
    }
  }

private:
  transport& transport_;
  std::unordered_map<connection_id, connection> connections_;
};

} // namespace firehook::broker

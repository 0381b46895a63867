// Enrollment over MQTT (docs/provisioning.md): what a shard does with a claim identity's request.
// The identity's rights (broker::enrollment_policy, through topic_rights like everyone's) let its
// PUBLISH through only on "$enroll/<name>/request"; here it is handed to the enrollment worker
// instead of the router, the outcome comes back on this shard's thread, becomes one event, is
// published on "$enroll/<name>/response" (where the identity may subscribe), and the claim
// connection is closed: one request per connection, whatever its outcome.
#include "broker/enrollment_worker.hpp"
#include "broker/shard.hpp"
#include "security/enrollment_authenticator.hpp"

namespace firehook::broker {

void shard::enrollment_request(subscriber_id sid, session_slot& slot, const mqtt::message_ptr& m, bool will) {
  if (will) {
    return; // a claim identity publishes nothing; its rights allowed only the request topic anyway
  }
  events::event e = session_event(events::event_type::enrollment_refused, slot);
  e.topic = m->topic;
  if (const auto t = slot.who->claims.find("template"); t != slot.who->claims.end()) {
    e.subject = t->second;
  }
  if (m->topic != security::enrollment_request_topic(slot.who->name)) {
    // Not reachable through enrollment_policy(); kept so that a wrong grant fails closed.
    e.verdict = events::decision::deny;
    e.reason = "not the identity's request topic";
    events_.emit(std::move(e));
    return;
  }
  if (slot.enrollment_asked) {
    // The first request's answer closes the connection; anything sent before that is ignored.
    e.verdict = events::decision::deny;
    e.reason = "one request per connection";
    events_.emit(std::move(e));
    return;
  }
  slot.enrollment_asked = true;
  const std::uint64_t epoch = slot.epoch;
  if (m->payload.size() > registry::max_enrollment_request) {
    enrollment_answered(sid, epoch, std::move(e), m,
                        registry::refused_enrollment("request larger than " +
                                                     std::to_string(registry::max_enrollment_request) +
                                                     " bytes"));
    return;
  }
  const auto hash = slot.who->claims.find("token_sha256");
  enrollment_worker* worker = broker_.enrollment();
  if (worker == nullptr || hash == slot.who->claims.end()) {
    enrollment_answered(sid, epoch, std::move(e), m,
                        registry::refused_enrollment("enrollment is not enabled"));
    return;
  }
  auto job = enrollment_job{slot.who->name, hash->second, m->payload};
  // The event and the request travel with the job: the answer is reported even if the
  // connection has gone by then (the device may be registered all the same).
  auto answered = [this, sid, epoch, e, m](registry::enrollment_outcome o) mutable {
    transport_.post_to_shard(shard_index_,
                             [this, sid, epoch, e = std::move(e), m, o = std::move(o)]() mutable {
                               enrollment_answered(sid, epoch, std::move(e), m, std::move(o));
                             });
  };
  if (!worker->submit(std::move(job), std::move(answered))) {
    enrollment_answered(sid, epoch, std::move(e), m,
                        registry::refused_enrollment("server busy, try again later"));
  }
}

void shard::enrollment_answered(subscriber_id sid, std::uint64_t epoch, events::event e,
                                const mqtt::message_ptr& request, registry::enrollment_outcome&& outcome) {
  if (outcome.issued) {
    e.type = events::event_type::enrollment_issued;
    e.verdict = events::decision::allow;
    e.reason = "certificate serial " + outcome.serial_hex;
  } else {
    e.verdict = events::decision::deny;
    e.reason = outcome.reason;
  }
  if (!outcome.template_name.empty()) {
    e.subject = outcome.template_name;
  }
  const std::string device = e.identity;
  events_.emit(std::move(e));

  const auto it = sessions_.find(sid);
  if (it == sessions_.end() || !it->second.conn || it->second.epoch != epoch) {
    return; // the claim connection is gone: nobody to answer
  }
  auto response = std::make_shared<mqtt::message>();
  response->topic = security::enrollment_response_topic(device);
  response->payload = std::move(outcome.response);
  response->qos = mqtt::qos::at_least_once;
  response->props.content_type = "application/json";
  // 5.0 request/response (mosquitto_rr): the answer carries the request's correlation data. Its
  // Response Topic is not followed: the answer goes only to the identity's own response topic.
  response->props.correlation_data = request->props.correlation_data;
  route(response, 0);
  const connection_id conn = *it->second.conn;
  disconnect(conn, mqtt::reason_code::success, outcome.issued ? "enrolled" : "enrollment refused");
}

} // namespace firehook::broker

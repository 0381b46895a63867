#pragma once
// The "enrollment" method: a device that has only a one-time enrollment token connects with user
// name = the device name it wants and password = the token (registry/enrollment.hpp). It gets a
// claim identity that may do one thing: ask for its certificate (docs/provisioning.md).
//
//   password not a token ("fhe1_...")   abstain (a password user or a JWT may apply)
//   token, no user name or a bad name    deny bad_user_name_or_password
//   unknown, used or expired token       deny bad_user_name_or_password (the detail says which)
//   its template is not configured       deny bad_user_name_or_password
//   a device of that name exists         deny bad_user_name_or_password
//   otherwise                            allow: name = the device name, method "enrollment",
//                                        claims "template" and "token_sha256" (never the token),
//                                        client id assigned = the name, expiring with the token
//                                        and at most claim_lifetime after the CONNECT
//
// The token is not consumed here: the request does that (enroll(), atomically), so a claim
// connection that drops before asking loses nothing. Rights: the broker gives method "enrollment"
// only the rights of enrollment_rights() below, whatever the topics file says.
//
// Threading: authenticate() reads SQLite, so it is not quick() for a token: it runs on the
// authentication pool.

#include <chrono>
#include <memory>

#include "config/config.hpp"
#include "registry/enrollment.hpp"
#include "security/authenticator.hpp"
#include "security/topic_policy.hpp"

namespace firehook::security {

// How long a claim connection may stay at most (it needs a few seconds).
constexpr std::chrono::minutes claim_lifetime{5};

class enrollment_authenticator final : public authenticator {
public:
  enrollment_authenticator(std::shared_ptr<registry::enrollment_tokens> tokens,
                           std::shared_ptr<registry::device_registry> devices,
                           config::enrollment_settings templates)
      : tokens_(std::move(tokens)), devices_(std::move(devices)), templates_(std::move(templates)) {}

  std::string_view method() const override { return "enrollment"; }
  auth_result authenticate(const connect_request& request) const override;
  bool quick(const connect_request& request) const override { return !is_token(request); }

  // Whether the CONNECT's password has the shape of an enrollment token.
  static bool is_token(const connect_request& request);

private:
  std::shared_ptr<registry::enrollment_tokens> tokens_;
  std::shared_ptr<registry::device_registry> devices_;
  config::enrollment_settings templates_;
};

// The request and response topics of device `name`: "$enroll/<name>/request", "$enroll/<name>/response".
std::string enrollment_request_topic(std::string_view name);
std::string enrollment_response_topic(std::string_view name);

// The rights of every claim identity, as a topics file compiled once: role "enrollment" may
// publish (QoS 0 or 1, no retain) only "$enroll/{client_id}/request" and subscribe only
// "$enroll/{client_id}/response", where {client_id} is the name the identity was assigned. The
// broker uses it through the same topic_rights as any other client, so a claim identity's
// PUBLISH and SUBSCRIBE go through the one authorization check.
std::shared_ptr<const topic_policy> enrollment_policy();

} // namespace firehook::security

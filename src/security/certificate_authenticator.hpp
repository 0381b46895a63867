#pragma once
// The "certificate" method: a client certificate the TLS layer has already verified (chain to the
// listener's CA bundle, validity dates, CRL) becomes an identity. This method does no
// cryptography; it only reads the verified certificate's fields.
//
//   no verified client certificate      abstain
//   the configured field is empty       deny not_authorized ("certificate has no CN" etc.)
//   client_id = "must_match" and the    deny client_identifier_not_valid (0x85; the broker sends
//   client id differs from the identity      0x02 in 3.1.1), so no device can take over another's
//                                            session. An empty client id differs too.
//   otherwise                           allow
//
// The identity: name = the subject CN, or the first SAN of the configured kind (DNS, URI or
// e-mail); method "certificate"; the certificate's fields; roles = the subject's OU values, in
// certificate order (so a CA that puts a device's role in OU, e.g. OU=sensors, hands it to the
// topics file's role rules); no attributes. With client_id = "must_match" or "assign" the identity
// is bound to the client id equal to its name (identity::client_id), which the topics file's
// {client_id} placeholder may then bind; with "assign" the broker also uses it in place of the
// client's (5.0: Assigned Client Identifier). With "any" no client id is bound.
//
// Threading: immutable after construction; authenticate() may run on any number of threads.

#include "config/config.hpp"
#include "security/authenticator.hpp"

namespace firehook::security {

class certificate_authenticator final : public authenticator {
public:
  explicit certificate_authenticator(config::certificate_auth_settings settings) : settings_(settings) {}

  std::string_view method() const override { return "certificate"; }
  auth_result authenticate(const connect_request& request) const override;
  bool quick(const connect_request&) const override { return true; } // reads the verified certificate only

private:
  config::certificate_auth_settings settings_;
};

} // namespace firehook::security

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
// With a device registry (registry/device_registry.hpp), an identity whose name is a registered
// device is that device:
//   the device is disabled or revoked      deny bad_user_name_or_password (0x86 / 3.1.1 0x04), the
//                                          code of a wrong credential, so a client cannot tell a
//                                          disabled device from an unknown one
//   the certificate is one the registry    deny bad_user_name_or_password: a rotation replaced it
//   retired (its grace period is over)     and its grace period has passed
//   the registry cannot be read            deny bad_user_name_or_password (fail closed)
//   otherwise                              allow, with the device's roles (then the OU values it
//                                          lacks) and attributes; last seen and address recorded
// A name the registry does not know is handled as without a registry, so certificates of an
// external CA keep working, and are still decided on the shard thread (quick()). A registered
// device is not quick(): its entry is read, and its last-seen time written (a synchronous SQLite
// write), on the authentication pool. quick() itself asks only whether the name is registered,
// through a connection of its own (`lookup`), so that it never waits behind the pool's writes.
//
// Threading: immutable after construction; authenticate() may run on any number of threads
// (device_registry is thread safe).

#include <memory>

#include "config/config.hpp"
#include "registry/device_registry.hpp"
#include "security/authenticator.hpp"

namespace firehook::security {

class certificate_authenticator final : public authenticator {
public:
  // `devices` and `lookup`: two connections to the same registry (see above), or both null.
  explicit certificate_authenticator(config::certificate_auth_settings settings,
                                     std::shared_ptr<registry::device_registry> devices = nullptr,
                                     std::shared_ptr<registry::device_registry> lookup = nullptr)
      : settings_(settings), devices_(std::move(devices)), lookup_(lookup ? std::move(lookup) : devices_) {}

  std::string_view method() const override { return "certificate"; }
  auth_result authenticate(const connect_request& request) const override;
  // True unless the certificate names a registered device (or the registry cannot say).
  bool quick(const connect_request& request) const override;

private:
  // Applies the registry's entry for `who` (see above); a deny, or nullopt to go on.
  std::optional<auth_result> apply_device(identity& who, const connect_request& request) const;

  config::certificate_auth_settings settings_;
  std::shared_ptr<registry::device_registry> devices_; // may be null
  std::shared_ptr<registry::device_registry> lookup_;  // null exactly when devices_ is
};

} // namespace firehook::security

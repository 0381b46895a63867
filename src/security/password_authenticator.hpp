#pragma once
// The "password" method: the CONNECT user name and password, checked against the credential store
// (registry/credential_store.hpp, the SQLite database `firehook user` edits).
//
//   no user name                     abstain (not mine; a certificate or anonymous access may apply)
//   user name, no password           deny bad_user_name_or_password, detail "no password"
//   unknown user                     deny bad_user_name_or_password, detail "unknown user"
//   wrong password                   deny bad_user_name_or_password, detail "wrong password"
//   store error (file gone, corrupt) deny bad_user_name_or_password, detail says what failed
//   right password                   allow: name = user name, method "password", the user's roles
//                                    and attributes from the store
//   right password, but the user is  deny bad_user_name_or_password, as a wrong password (no
//   linked to a device that is       oracle); the detail names the device
//   disabled or revoked (`firehook
//   device add --username`)
//
// A client sees the same reason code (0x86 / 3.1.1 0x04) and about the same delay for an unknown
// user and a wrong password; only the detail, which goes to the log, differs.
//
// With both "jwt" and "password" in a chain, the order decides: this method denies any user
// name it does not know, so a token in the password field reaches the jwt method only when "jwt"
// comes first (the jwt method abstains on a password that is not a token). Examples put "jwt"
// before "password".
//
// Threading: authenticate() may run on several threads at once (credential_store is thread safe).
// It is slow on purpose (one Argon2id verification, about 0.1 s and 64 MiB): the broker runs it
// off the shard threads.

#include <memory>

#include "config/config.hpp"
#include "registry/credential_store.hpp"
#include "registry/device_registry.hpp"
#include "security/authenticator.hpp"

namespace firehook::security {

class password_authenticator final : public authenticator {
public:
  // `devices` (may be null): the device registry, for users linked to a device.
  explicit password_authenticator(std::shared_ptr<registry::credential_store> store,
                                  std::shared_ptr<registry::device_registry> devices = nullptr)
      : store_(std::move(store)), devices_(std::move(devices)) {}

  std::string_view method() const override { return "password"; }
  auth_result authenticate(const connect_request& request) const override;
  // Without a user name it abstains at once; with one it hashes (Argon2id), which is slow on purpose.
  bool quick(const connect_request& request) const override { return !request.username; }

private:
  std::shared_ptr<registry::credential_store> store_;
  std::shared_ptr<registry::device_registry> devices_;
};

// Opens the credential store of `cfg` ([auth.password] database, or <broker.state_dir>/firehook.db
// when that is empty), creating an empty one when missing, and the device registry in it.
// Start-up and reload only: throws registry::store_error or registry::credential_error naming the
// file when it cannot be opened.
std::shared_ptr<const password_authenticator> make_password_authenticator(const config::config& cfg);

} // namespace firehook::security

#pragma once
// The "jwt" authentication method: a JSON Web Token (RFC 7519) in JWS compact serialization
// (RFC 7515 section 7.1) carried in the CONNECT password field.
//
// Answers:
//   abstain  no password, or a password that is not JWS compact form: three base64url segments
//            separated by dots whose first decodes to a JSON object ('{'), so that a password
//            which merely contains two dots is left to the next method.
//   deny     (bad_user_name_or_password: CONNACK 0x86, 3.1.1 0x04) for every token that is not
//            good: malformed; "alg" none, unknown or not in [auth.jwt] algorithms; a "crit"
//            header; a "kid" no key has; no key for the alg; a bad signature; exp passed; nbf or
//            iat in the future (each with the configured leeway); iss or aud not the configured
//            one (a token with "aud" is refused when no audience is configured, RFC 7519 section
//            4.1.3); a required claim missing; exp further ahead than max_lifetime (plus leeway),
//            or no exp while max_lifetime bounds it; no usable identity claim; a roles claim that is
//            neither a string nor an array of strings. `detail` says which, for the log only.
//   allow    with identity {name: the identity claim, method "jwt", claims: every top-level
//            claim whose value is a string or a number, as text; roles: the roles claim;
//            expires_at: exp + leeway, the same instant at which this token would no longer be
//            accepted by a new CONNECT, so that the broker closes the connection then;
//            client_id: the client_id claim, when the token has one}; with a device registry,
//            a good token of a device that is not active is denied too (0x86, as a bad token).
//   deny     (client_identifier_not_valid: 0x85, 3.1.1 0x02) for a good token whose client_id
//            claim is not the CONNECT's client id (an empty one is assigned the claim's).
//
// Keys: verification_key (security/jwk.hpp) decides which key verifies which alg; an
// HS* token is checked with hmac_secret_file only, never with a public key (algorithm
// confusion). A token's "kid" must name a key: a JWK's "kid", or a PEM or secret file's name
// without its extension. A token without "kid" is tried against every key that can verify its
// alg. Header parameters that point at keys ("jwk", "jku", "x5u", "x5c") are ignored: keys come
// from the configuration only.
//
// Key reload: the key files (public_keys, jwks, hmac_secret_file) are a base::reloadable: the
// broker's reload mechanism looks at them every second and on SIGHUP, and when one changed every
// key file is read again. A set that cannot be loaded (a broken file, no usable key) leaves the
// previous keys in use, and the reload result says why.
//
// Threading: authenticate() and reload() may be called from any number of threads at once. The
// current key set is an immutable snapshot behind keys_mutex_, swapped whole. The clock is called
// from those threads.
//
// Errors: the constructor throws std::runtime_error (key_error or
// std::invalid_argument) naming the file or setting when the keys cannot be loaded: start-up only.
// authenticate() and reload() do not throw.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/reload.hpp"
#include "registry/device_registry.hpp"
#include "config/config.hpp"
#include "security/authenticator.hpp"
#include "security/jwk.hpp"

namespace firehook::security {

struct jwt_options {
  // The wall clock tokens are checked against. Empty: std::chrono::system_clock::now.
  std::function<std::chrono::system_clock::time_point()> now;
  // The device registry: a good token whose subject is the token subject of a device that is not
  // active (disabled, revoked) is refused like a bad token. Null: no such check.
  std::shared_ptr<registry::device_registry> devices;
};

class jwt_authenticator final : public authenticator, public base::reloadable {
public:
  explicit jwt_authenticator(config::jwt_auth_settings settings, jwt_options options = {});
  ~jwt_authenticator() override;
  jwt_authenticator(const jwt_authenticator&) = delete;
  jwt_authenticator& operator=(const jwt_authenticator&) = delete;

  std::string_view method() const override { return "jwt"; }
  auth_result authenticate(const connect_request& request) const override;
  // Without a password (where a token travels) it abstains at once; with one it verifies a
  // signature, which is left to the authentication workers.
  bool quick(const connect_request& request) const override { return !request.password; }

  // How many keys are in use now (for the start-up log and tests).
  std::size_t key_count() const;

private:
  struct key_set;

  std::vector<std::filesystem::path> watched_files() const override;
  std::string load() override;            // reads every key file, then swaps the new set in
  std::shared_ptr<const key_set> read_keys(std::string& skipped) const; // throws
  std::shared_ptr<const key_set> current_keys() const;

  const config::jwt_auth_settings settings_;
  const jwt_options options_;
  std::vector<jws_alg> algorithms_; // allowed "alg" values

  mutable std::mutex keys_mutex_; // guards keys_
  std::shared_ptr<const key_set> keys_;
};

} // namespace firehook::security

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
//            4.1.3); a required claim missing; no usable identity claim; a roles claim that is
//            neither a string nor an array of strings. `detail` says which, for the log only.
//   allow    with identity {name: the identity claim, method "jwt", claims: every top-level
//            claim whose value is a string or a number, as text; roles: the roles claim;
//            expires_at: exp + leeway, the same instant at which this token would no longer be
//            accepted by a new CONNECT, so that the broker closes the connection then}.
//
// Keys: verification_key (security/jwk.hpp) decides which key verifies which alg; an
// HS* token is checked with hmac_secret_file only, never with a public key (algorithm
// confusion). A token's "kid" must name a key: a JWK's "kid", or a PEM or secret file's name
// without its extension. A token without "kid" is tried against every key that can verify its
// alg. Header parameters that point at keys ("jwk", "jku", "x5u", "x5c") are ignored: keys come
// from the configuration only.
//
// Key reload: authenticate() looks at the JWKS file's modification time and size at most once
// per jwks_check_interval; when they changed, every key file is read again. reload() does the
// same at once, for SIGHUP. A set that cannot be loaded (a broken file, no usable key) leaves the
// previous keys in use; reload() returns why and the log callback is told.
//
// Threading: authenticate() and reload() may be called from any number of threads at once. The
// current key set is an immutable snapshot behind keys_mutex_, swapped whole; reload_mutex_
// makes reloads take turns. The log callback and clock are called from those threads.
//
// Errors: the constructor throws std::runtime_error (key_error or
// std::invalid_argument) naming the file or setting when the keys cannot be loaded: start-up only.
// authenticate() and reload() do not throw.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "security/authenticator.hpp"
#include "security/jwk.hpp"

namespace firehook::security {

struct jwt_options {
  // One line for the log: keys reloaded, a reload refused, JWKS entries skipped. Empty: silent.
  std::function<void(std::string_view)> log;
  // The wall clock tokens are checked against. Empty: std::chrono::system_clock::now.
  std::function<std::chrono::system_clock::time_point()> now;
  // How often authenticate() may look at the JWKS file; 0 = on every call (tests).
  std::chrono::milliseconds jwks_check_interval{1000};
};

class jwt_authenticator final : public authenticator {
public:
  explicit jwt_authenticator(config::jwt_auth_settings settings, jwt_options options = {});
  ~jwt_authenticator() override;
  jwt_authenticator(const jwt_authenticator&) = delete;
  jwt_authenticator& operator=(const jwt_authenticator&) = delete;

  std::string_view method() const override { return "jwt"; }
  auth_result authenticate(const connect_request& request) const override;
  // Without a password (where a token travels) it abstains at once; with one it may read key files.
  bool quick(const connect_request& request) const override { return !request.password; }

  // Reads every key file again now. nullopt when the new keys are in use; otherwise why not
  // (the previous keys stay). Const because it changes no configuration, only the key cache.
  std::optional<std::string> reload() const;

  // How many keys are in use now (for the start-up log and tests).
  std::size_t key_count() const;

private:
  struct key_set;
  // What tells a changed file: a new inode (the file was replaced by a rename, as key
  // rotation should do it), or a new modification time or size (edited in place; an edit that
  // keeps the size within the file system's timestamp granularity, a few ms, goes unseen until
  // the next change or reload()).
  struct file_stamp {
    bool exists = false;
    std::uint64_t device = 0, inode = 0, size = 0;
    std::int64_t mtime_ns = 0;
    bool operator==(const file_stamp&) const = default;
  };

  std::shared_ptr<const key_set> load() const; // throws
  std::shared_ptr<const key_set> current_keys() const;
  void check_jwks_file() const;
  std::optional<std::string> reload_locked() const; // with reload_mutex_ held
  void log(std::string_view line) const;
  static file_stamp stamp_of(const std::filesystem::path& file);

  const config::jwt_auth_settings settings_;
  const jwt_options options_;
  std::vector<jws_alg> algorithms_; // allowed "alg" values

  mutable std::mutex keys_mutex_; // guards keys_
  mutable std::shared_ptr<const key_set> keys_;

  mutable std::mutex reload_mutex_;                 // one reload at a time; guards failed_stamp_
  mutable std::optional<file_stamp> failed_stamp_;  // the JWKS file as it was when its reload last failed
  mutable std::atomic<std::int64_t> next_check_{0}; // steady_clock ticks of the next JWKS look
};

} // namespace firehook::security

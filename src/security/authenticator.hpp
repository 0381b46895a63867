#pragma once
// Authentication: who is connecting. Each configured method is an authenticator that answers
// allow (with an identity), deny (with the reason code for CONNACK) or abstain (not mine: no
// credentials of my kind). An auth_chain asks them in the listener's configured order; the first
// allow or deny decides; when all abstain the client is anonymous, admitted only where the
// listener allows anonymous access. Fail closed: an error inside a method is a deny.
//
// Threading: authenticate() may be called from several threads at once (the broker runs it off the
// shard threads because password hashing is slow on purpose); implementations are thread safe.

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mqtt/reason_code.hpp"

namespace firehook::security {

// What the TLS layer learnt about a verified client certificate.
struct certificate_info {
  std::string subject;                           // one-line RFC 2253 form
  std::string common_name;                       // subject CN ("" when absent)
  std::vector<std::string> organizational_units; // subject OU values
  std::vector<std::string> san_dns, san_uri, san_email;
  std::string serial_hex;         // upper-case hex, no separators
  std::string issuer;             // one-line RFC 2253 form
  std::string fingerprint_sha256; // lower-case hex of the DER
  std::chrono::system_clock::time_point not_after;
};

struct connect_request {
  std::string_view listener;
  std::string_view peer_address;
  std::string_view client_id; // as sent; may be empty
  std::optional<std::string_view> username;
  std::optional<std::string_view> password;      // binary
  const certificate_info* certificate = nullptr; // null without a verified client certificate
};

// The authenticated identity, attached to the session for authorization.
struct identity {
  std::string name;   // the identity's name: certificate CN/SAN, user name, token subject
  std::string method; // "certificate", "password", "jwt" or "anonymous"
  std::optional<certificate_info> certificate;
  std::map<std::string, std::string, std::less<>> claims;     // token claims with string or number values
  std::map<std::string, std::string, std::less<>> attributes; // attributes stored with the credential
  std::vector<std::string> roles; // from the credential store or claims; the topics file uses them
  // When the credential stops being valid (token exp): the broker disconnects then (5.0: 0xA0).
  std::optional<std::chrono::system_clock::time_point> expires_at;
  // The client id this identity is entitled to, when its method binds one (a certificate with
  // client_id = "must_match" or "assign"). The topics file's {client_id} placeholder binds only to
  // it: a client id the client merely chose proves nothing.
  std::optional<std::string> client_id;
  // The method fixes the client id (certificate with client_id = "assign"): the broker replaces
  // whatever the client sent with `client_id` (5.0: sent back as Assigned Client Identifier).
  bool assigns_client_id = false;

  // Names the identity across methods ("password:alice", "certificate:dev-42"): a session belongs
  // to the identity that created it. Unambiguous, since no method name contains ':'.
  std::string key() const { return method + ":" + name; }
};

enum class verdict : std::uint8_t { allow, deny, abstain };

struct auth_result {
  verdict decision = verdict::abstain;
  identity who; // when allow
  // When deny: bad_user_name_or_password (0x86 / 3.1.1 0x04) or not_authorized (0x87 / 0x05).
  mqtt::reason_code reason = mqtt::reason_code::not_authorized;
  std::string method; // the method that decided ("" when all abstained)
  std::string detail; // why, for the log and audit event; never sent to the client

  static auth_result abstain() { return {}; }
  static auth_result deny(std::string method, mqtt::reason_code rc, std::string detail);
  static auth_result allow(identity who);
};

class authenticator {
public:
  virtual ~authenticator() = default;
  virtual std::string_view method() const = 0;
  virtual auth_result authenticate(const connect_request& request) const = 0;
  // Whether authenticate(request) answers in microseconds without I/O or deliberately slow work,
  // so that it may run on a shard thread instead of the authentication pool: a certificate check
  // always does; an Argon2id hash or a token signature check does not, but a method also answers
  // at once when the request carries nothing of its kind (it abstains), so that a client without
  // credentials never waits behind password hashing.
  virtual bool quick(const connect_request& request) const = 0;
};

class auth_chain {
public:
  auth_chain(std::vector<std::shared_ptr<const authenticator>> methods, bool allow_anonymous)
      : methods_(std::move(methods)), allow_anonymous_(allow_anonymous) {}

  // First allow or deny wins. All abstain: an anonymous identity when allowed; otherwise deny with
  // not_authorized when no credentials were given and bad_user_name_or_password when some were.
  auth_result authenticate(const connect_request& request) const;

  // The same, using only the methods before the first one that is not quick(request): their verdict, or
  // nullopt when the request reaches a slow method (then authenticate() must run off the shard).
  std::optional<auth_result> authenticate_quick(const connect_request& request) const;

private:
  // The chain, stopping with nullopt at the first method that is not quick(request) when `quick_only`.
  std::optional<auth_result> run(const connect_request& request, bool quick_only) const;
  // When every method abstained: anonymous access or a deny.
  auth_result fallback(const connect_request& request) const;

  std::vector<std::shared_ptr<const authenticator>> methods_;
  bool allow_anonymous_;
};

} // namespace firehook::security

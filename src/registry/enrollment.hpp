#pragma once

// Fleet enrollment (docs/provisioning.md, "Enrollment over MQTT"): a device that ships with only a
// one-time enrollment token connects with user name = the device name it wants and password = the
// token, publishes a certificate signing request, and gets its certificate back. Two parts here:
//
//  - enrollment_tokens: the tokens `firehook device enroll-token` makes. A token is
//    "fhe1_" + 32 lower-case hex digits (128 random bits); only its SHA-256 is stored (migration 3
//    of store.cpp), with the template it enrols into and its expiry. redeem() consumes a token and
//    adds the device in ONE transaction (BEGIN IMMEDIATE, and an UPDATE ... WHERE used_at IS NULL
//    whose change count is checked), so a second use of a token, even concurrent or from another
//    process, fails.
//  - enroll(): one request: parse, check against the token's template, sign with the CA, redeem.
//    Its outcome carries the JSON response the broker publishes and the reason of a refusal.
//
// Threads: as registry::store (one mutex; any thread). enroll() writes SQLite and signs: the
// broker runs it on its enrollment worker, never on a shard thread.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "registry/certificate_authority.hpp"
#include "registry/device_registry.hpp"
#include "registry/store.hpp"

namespace firehook::registry {

// The largest request payload the broker reads: a PEM CSR of an RSA 4096 key is about 1.7 KB, so
// 4 KiB with its JSON around it is plenty, and a client cannot make the worker parse megabytes.
constexpr std::size_t max_enrollment_request = 4096;

// Lower-case hex SHA-256 of `token`: what the database keeps.
std::string hash_enrollment_token(std::string_view token);

enum class token_status : std::uint8_t { valid, unknown, used, expired };
// "valid", "unknown token", "token already used", "token expired".
std::string_view to_string(token_status s);

struct token_check {
  token_status status = token_status::unknown;
  std::string template_name; // when known
  std::int64_t expires_at = 0;
};

class enrollment_tokens {
public:
  // Uses `db`, which must have run registry_migrations() (the credential database).
  explicit enrollment_tokens(std::shared_ptr<store> db) : db_(std::move(db)) {}
  static std::shared_ptr<enrollment_tokens> open(const std::filesystem::path& path);

  // Makes `count` tokens for `template_name` that expire at `expires_at` (Unix seconds) and returns
  // them: the only time they exist in clear. All or none are stored.
  std::vector<std::string> create(std::string_view template_name, unsigned count, std::int64_t expires_at);

  // A token's state, by its hash (hash_enrollment_token). Read only: for authentication.
  token_check check(std::string_view token_hash, std::int64_t now);

  // In one transaction: marks the token used by `device.name` and adds the device with `cert`.
  // Returns valid when both happened; otherwise why the token cannot be used (nothing changed).
  // Throws device_error when the device cannot be added (name exists, bad role), then the token
  // is left unused; store_error when SQLite fails.
  token_status redeem(std::string_view token_hash, std::int64_t now, const new_device& device,
                      const device_certificate& cert);

private:
  std::shared_ptr<store> db_;
};

// What one enrollment request asks for. Payload: a JSON object
//   {"csr": "<PEM>", "template": "thermostat", "roles": [...], "attributes": {...}}
// where only "csr" is required; the others, when given, must equal the token's template (a device
// cannot ask for more than its token grants; saying what it expects makes a wrong token visible).
// A bare PEM request is accepted too.
struct enrollment_request {
  std::string csr_pem;
  std::optional<std::string> template_name;
  std::optional<std::vector<std::string>> roles;
  std::optional<attribute_map> attributes;
};

// nullopt and `why` when the payload is neither.
std::optional<enrollment_request> parse_enrollment_request(std::string_view payload, std::string& why);

struct enrollment_outcome {
  bool issued = false;
  std::string reason;        // why refused (for the response and the event); empty when issued
  std::string template_name; // the token's template, when known
  std::string serial_hex;    // of the issued certificate
  std::string response;      // the JSON payload published on the response topic
};

// A refusal: `reason`, and the JSON response {"status":"refused","reason":...} that carries it.
// For refusals the broker makes itself (too large, server busy) as well as enroll()'s.
enrollment_outcome refused_enrollment(std::string reason);

// The whole request of device `name`, who authenticated with the token whose hash is `token_hash`:
// parse `payload`, check it against the token's template of `templates`, sign its CSR with the CA
// of `ca` (CN = `name`, never the CSR's; the template's lifetime), then redeem the token and
// register the device. Never throws: every failure is a refusal with its reason (an internal
// error's detail is not sent to the device, only "internal error").
enrollment_outcome enroll(enrollment_tokens& tokens, const config::enrollment_settings& templates,
                          const ca_files& ca, std::string_view name, std::string_view token_hash,
                          std::string_view payload, std::int64_t now);

} // namespace firehook::registry

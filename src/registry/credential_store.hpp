#pragma once

// The credential store: users who log in with a user name and password, kept in the embedded
// store (tables from migration 1 in store.cpp). Each user has a unique name, one password hash,
// roles (ordered, no duplicates) and attributes (a string map the topics file reads as
// placeholders, e.g. building=b1).
//
// Hashes. New passwords are hashed with Argon2id (libsodium crypto_pwhash_str) at the
// INTERACTIVE limits: 64 MiB of memory and 2 passes, about 50-100 ms on one core. MODERATE
// (256 MiB, 3 passes, about 0.5-1 s) would make every login of a fleet cost a quarter of a
// gigabyte while it runs, so a reconnect storm of a few dozen devices, or an attacker guessing
// on many connections, could exhaust the broker's memory; INTERACTIVE still makes an offline
// guess cost 64 MiB of memory-hard work. A hash made with other limits (an older firehook, or
// different ones chosen later) still verifies, and is re-hashed at the current limits on the
// next successful login.
//
// Imported Mosquitto hashes (`firehook user import-mosquitto`) are stored as they were and
// verified the way Mosquitto 2.0 does (see password_mosq.c):
//   $6$<base64 salt>$<base64 hash>               hash = SHA-512(password || salt)
//   $7$<iterations>$<base64 salt>$<base64 hash>  hash = PBKDF2-HMAC-SHA512(password, salt,
//                                                       iterations, 64 bytes)
// (base64 with padding, RFC 4648 section 4; mosquitto_passwd writes a 12-byte salt and 101
// iterations). After a successful login with such a hash, the password is re-hashed with
// Argon2id in place, so imported users move to the strong hash as they log in.
//
// Timing: check() takes about the same time whichever part is wrong. An unknown user is
// verified against a dummy Argon2id hash made when the store opens; a failed check of a
// (fast) Mosquitto hash is followed by the same dummy verification. Comparisons are constant
// time (crypto_pwhash_str_verify, CRYPTO_memcmp).
//
// Thread safety: every member may be called from any thread at once. Hashing and verification
// run without the store's lock; only the SQL holds it. A password upgrade after login writes the
// new hash only if the row still holds the hash that was verified, so it never overwrites a
// password changed meanwhile by `firehook user passwd`.
//
// Errors: a user-facing mistake (user exists, unknown user, bad name, bad hash line) throws
// credential_error; an SQLite failure throws store_error; libsodium running out of memory while
// hashing throws credential_error. check() reports a wrong password or unknown user in its
// result and throws only for failures (store errors, a stored hash it cannot read), which the
// caller turns into a denial.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "registry/store.hpp"

namespace firehook::registry {

class credential_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

enum class hash_kind : std::uint8_t {
  argon2id,         // $argon2id$...: written by firehook
  mosquitto_sha512, // $6$: imported
  mosquitto_pbkdf2, // $7$: imported
};

// "argon2id", "mosquitto-sha512", "mosquitto-pbkdf2-sha512".
std::string_view to_string(hash_kind kind);

// The kind of an encoded hash, or nullopt when it is none of the above.
std::optional<hash_kind> kind_of_hash(std::string_view encoded);

using attribute_map = std::map<std::string, std::string, std::less<>>;

// A user as stored, without the hash itself.
struct user_record {
  std::string name;
  hash_kind kind = hash_kind::argon2id;
  std::vector<std::string> roles;
  attribute_map attributes;
  std::chrono::system_clock::time_point created_at;
  std::chrono::system_clock::time_point updated_at;
};

// Validation shared with the command line. Each returns "" when the value is acceptable and
// otherwise why not. Names, roles and attribute keys and values are not empty (values may be),
// at most 65535 bytes (the MQTT string limit) and hold no control characters, so `firehook user
// list` prints one line per user; an attribute key holds no '='.
std::string check_user_name(std::string_view name);
std::string check_role(std::string_view role);
std::string check_attribute(std::string_view key, std::string_view value);
// Every role and attribute is acceptable and no role is given twice (for devices too).
std::string check_roles_and_attributes(const std::vector<std::string>& roles,
                                       const attribute_map& attributes);

// A Mosquitto hash is well formed: $6$ or $7$ with a valid iteration count (1..10'000'000),
// base64 salt of 1..64 bytes and a 64-byte hash. Returns "" or why not.
std::string check_mosquitto_hash(std::string_view encoded);

// The credential database of a configuration: [auth.password] database, or
// <broker.state_dir>/firehook.db when that is empty.
std::filesystem::path credential_database_path(const config::config& cfg);

struct check_result {
  enum class outcome : std::uint8_t { ok, unknown_user, wrong_password };
  outcome result = outcome::unknown_user;
  user_record user;          // when ok
  bool upgraded = false;     // when ok: the stored hash was replaced by a new Argon2id hash
  std::string upgrade_error; // when ok: why a due upgrade failed (the login still succeeds)
};

// One line of a Mosquitto password file, parsed.
struct mosquitto_entry {
  unsigned line = 0; // 1-based
  std::string name;
  std::string hash;
};

struct mosquitto_file_error {
  unsigned line = 0;
  std::string message;
};

struct mosquitto_file {
  std::vector<mosquitto_entry> entries;
  std::vector<mosquitto_file_error> errors; // every bad line, in file order
};

// Parses the text of a Mosquitto password file: `name:$6$...` or `name:$7$...` per line. Empty
// lines and lines starting with '#' are skipped, a trailing '\r' is ignored; a line without ':',
// with a bad name, a plain-text password or a malformed hash, or a name seen before, is an error.
mosquitto_file parse_mosquitto_file(std::string_view text);

class credential_store {
public:
  // Uses `db`, which must have run registry_migrations(). Makes the dummy hash (one Argon2id
  // hash, so about 0.1 s). Throws credential_error when libsodium cannot start or hash.
  explicit credential_store(std::shared_ptr<store> db);

  // Opens (creating when missing) the database file and builds the store on it.
  static std::shared_ptr<credential_store> open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return db_->path(); }

  // Adds a user with an Argon2id hash of `password`. Throws credential_error when the name,
  // a role or an attribute is invalid, a role is given twice, the password is empty, or the
  // user exists.
  void add_user(std::string_view name, std::string_view password, const std::vector<std::string>& roles,
                const attribute_map& attributes);

  // Replaces a user's password (whatever its hash kind) with an Argon2id hash. Throws
  // credential_error when the user does not exist or the password is empty.
  void set_password(std::string_view name, std::string_view password);

  // False when there was no such user.
  bool remove_user(std::string_view name);

  std::optional<user_record> find_user(std::string_view name);
  // Every user, by name.
  std::vector<user_record> list_users();
  // Users whose stored hashes are the same string, by name, one list per hash (for the posture
  // report). Every hash has a random salt of its own, so equal hashes were copied: one password
  // shared by several accounts, which revoking one of them does not take away from the others.
  std::vector<std::vector<std::string>> users_sharing_a_hash();

  // Imports Mosquitto entries in one transaction: all or nothing. A user that exists is an
  // error unless `replace`, which then replaces only its hash (roles and attributes stay).
  // New users get `roles` and `attributes`. Throws credential_error naming the line of the
  // first entry that cannot be imported, and imports nothing then.
  void import_mosquitto(const std::vector<mosquitto_entry>& entries, bool replace,
                        const std::vector<std::string>& roles, const attribute_map& attributes);

  // Checks a login. See "Timing" above. Throws store_error or credential_error on failures.
  check_result check(std::string_view name, std::string_view password);

private:
  std::shared_ptr<store> db_;
  std::string dummy_hash_; // Argon2id hash of a random password nobody knows
};

} // namespace firehook::registry

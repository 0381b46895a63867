#include "registry/credential_store.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <set>

#include "mqtt/topic.hpp"

namespace firehook::registry {
namespace {

constexpr unsigned long long argon2_ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
constexpr std::size_t argon2_mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;

constexpr std::size_t max_string = 65535;        // the MQTT string limit
constexpr std::size_t mosquitto_hash_bytes = 64; // SHA-512
constexpr std::size_t max_salt_bytes = 64;
// mosquitto_passwd writes 101; a file with a huge count would make every login slow.
constexpr long max_iterations = 10'000'000;

void init_sodium() {
  // Thread safe and idempotent: 0 the first time, 1 afterwards, -1 on failure.
  if (sodium_init() < 0) {
    throw credential_error("libsodium cannot start");
  }
}

// A pointer that is not null even for an empty view: libsodium and OpenSSL read `len` bytes.
const char* data_of(std::string_view s) {
  static constexpr char empty[] = "";
  return s.empty() ? empty : s.data();
}

std::string hash_password(std::string_view password) {
  std::array<char, crypto_pwhash_STRBYTES> out{};
  if (crypto_pwhash_str_alg(out.data(), data_of(password), password.size(), argon2_ops, argon2_mem,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw credential_error("out of memory while hashing a password");
  }
  return std::string(out.data());
}

bool verify_argon2(const std::string& encoded, std::string_view password) {
  return crypto_pwhash_str_verify(encoded.c_str(), data_of(password), password.size()) == 0;
}

std::optional<std::string> decode_base64(std::string_view text, std::size_t max_bytes) {
  std::string out(max_bytes, '\0');
  std::size_t length = 0;
  const char* end = nullptr;
  // ORIGINAL: the standard alphabet with padding, as Mosquitto writes (OpenSSL's BIO_f_base64).
  if (text.empty() ||
      sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(),
                        nullptr, &length, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(length);
  return out;
}

struct mosquitto_hash {
  hash_kind kind = hash_kind::mosquitto_sha512;
  int iterations = 0;
  std::string salt;
  std::string hash;
};

// Parses $6$<salt>$<hash> or $7$<iterations>$<salt>$<hash>; on failure says why in `error`.
std::optional<mosquitto_hash> parse_mosquitto_hash(std::string_view encoded, std::string& error) {
  mosquitto_hash h;
  std::string_view rest;
  if (encoded.starts_with("$6$")) {
    h.kind = hash_kind::mosquitto_sha512;
    rest = encoded.substr(3);
  } else if (encoded.starts_with("$7$")) {
    h.kind = hash_kind::mosquitto_pbkdf2;
    rest = encoded.substr(3);
    const auto dollar = rest.find('$');
    const std::string_view digits = rest.substr(0, dollar);
    long iterations = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), iterations);
    if (dollar == std::string_view::npos || digits.empty() || ec != std::errc() ||
        ptr != digits.data() + digits.size() || iterations < 1 || iterations > max_iterations) {
      error = "$7$ hash needs an iteration count between 1 and " + std::to_string(max_iterations);
      return std::nullopt;
    }
    h.iterations = static_cast<int>(iterations);
    rest = rest.substr(dollar + 1);
  } else {
    error = "not a Mosquitto $6$ or $7$ hash";
    return std::nullopt;
  }
  const auto dollar = rest.find('$');
  if (dollar == std::string_view::npos) {
    error = "hash has no '$' between salt and hash";
    return std::nullopt;
  }
  auto salt = decode_base64(rest.substr(0, dollar), max_salt_bytes);
  if (!salt) {
    error = "salt is not base64 of 1 to " + std::to_string(max_salt_bytes) + " bytes";
    return std::nullopt;
  }
  auto hash = decode_base64(rest.substr(dollar + 1), mosquitto_hash_bytes);
  if (!hash || hash->size() != mosquitto_hash_bytes) {
    error = "hash is not base64 of a 64-byte SHA-512 value";
    return std::nullopt;
  }
  h.salt = std::move(*salt);
  h.hash = std::move(*hash);
  return h;
}

// Verifies as Mosquitto 2.0 does; throws credential_error for a stored value it cannot read.
bool verify_mosquitto(std::string_view encoded, std::string_view password) {
  std::string error;
  const auto h = parse_mosquitto_hash(encoded, error);
  if (!h) {
    throw credential_error("stored hash cannot be read: " + error);
  }
  std::array<unsigned char, mosquitto_hash_bytes> computed{};
  bool done = false;
  if (h->kind == hash_kind::mosquitto_sha512) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    unsigned int length = 0;
    done = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha512(), nullptr) == 1 &&
           EVP_DigestUpdate(ctx, data_of(password), password.size()) == 1 &&
           EVP_DigestUpdate(ctx, h->salt.data(), h->salt.size()) == 1 &&
           EVP_DigestFinal_ex(ctx, computed.data(), &length) == 1 && length == computed.size();
    EVP_MD_CTX_free(ctx);
  } else {
    done = PKCS5_PBKDF2_HMAC(data_of(password), static_cast<int>(password.size()),
                             reinterpret_cast<const unsigned char*>(h->salt.data()),
                             static_cast<int>(h->salt.size()), h->iterations, EVP_sha512(),
                             static_cast<int>(computed.size()), computed.data()) == 1;
  }
  if (!done) {
    ERR_clear_error(); // leave this thread's OpenSSL error queue empty for whoever uses it next
    throw credential_error("OpenSSL failed to compute a SHA-512 hash");
  }
  const bool equal = CRYPTO_memcmp(computed.data(), h->hash.data(), computed.size()) == 0;
  OPENSSL_cleanse(computed.data(), computed.size());
  return equal;
}

std::string check_text(std::string_view what, std::string_view text, bool may_be_empty) {
  if (text.empty() && !may_be_empty) {
    return std::string(what) + " is empty";
  }
  if (text.size() > max_string) {
    return std::string(what) + " is longer than 65535 bytes";
  }
  if (!mqtt::is_valid_utf8(text)) {
    return std::string(what) + " is not valid UTF-8";
  }
  if (std::any_of(text.begin(), text.end(), [](char ch) {
        const auto u = static_cast<unsigned char>(ch);
        return u < 0x20 || u == 0x7f;
      })) {
    return std::string(what) + " contains a control character";
  }
  return {};
}

std::int64_t to_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::chrono::system_clock::time_point from_seconds(std::int64_t s) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(s));
}

std::int64_t now_seconds() {
  return to_seconds(std::chrono::system_clock::now());
}

void validate_roles_and_attributes(const std::vector<std::string>& roles, const attribute_map& attributes) {
  if (auto why = check_roles_and_attributes(roles, attributes); !why.empty()) {
    throw credential_error(why);
  }
}

struct stored_user {
  std::string hash;
  user_record user;
};

std::optional<stored_user> load_user(connection& c, std::string_view name) {
  statement s = c.prepare("SELECT name, hash, created_at, updated_at FROM users WHERE name = ?1");
  s.bind(1, name);
  if (!s.step()) {
    return std::nullopt;
  }
  stored_user u;
  u.user.name = s.column_text(0);
  u.hash = s.column_text(1);
  u.user.created_at = from_seconds(s.column_int(2));
  u.user.updated_at = from_seconds(s.column_int(3));
  const auto kind = kind_of_hash(u.hash);
  if (!kind) {
    throw credential_error("stored hash of user \"" + u.user.name + "\" is in an unknown format");
  }
  u.user.kind = *kind;
  statement roles = c.prepare("SELECT role FROM user_roles WHERE user_name = ?1 ORDER BY position");
  roles.bind(1, name);
  while (roles.step()) {
    u.user.roles.push_back(roles.column_text(0));
  }
  statement attributes = c.prepare("SELECT key, value FROM user_attributes WHERE user_name = ?1");
  attributes.bind(1, name);
  while (attributes.step()) {
    u.user.attributes.emplace(attributes.column_text(0), attributes.column_text(1));
  }
  return u;
}

bool user_exists(connection& c, std::string_view name) {
  statement s = c.prepare("SELECT 1 FROM users WHERE name = ?1");
  s.bind(1, name);
  return s.step();
}

void insert_user(connection& c, std::string_view name, const std::string& hash,
                 const std::vector<std::string>& roles, const attribute_map& attributes) {
  const std::int64_t now = now_seconds();
  c.prepare("INSERT INTO users (name, hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)")
      .bind(1, name)
      .bind(2, hash)
      .bind(3, now)
      .run();
  statement role = c.prepare("INSERT INTO user_roles (user_name, position, role) VALUES (?1, ?2, ?3)");
  std::int64_t position = 0;
  for (const auto& r : roles) {
    role.bind(1, name).bind(2, position++).bind(3, r).run();
    role.reset();
  }
  statement attribute = c.prepare("INSERT INTO user_attributes (user_name, key, value) VALUES (?1, ?2, ?3)");
  for (const auto& [key, value] : attributes) {
    attribute.bind(1, name).bind(2, key).bind(3, value).run();
    attribute.reset();
  }
}

} // namespace

std::string_view to_string(hash_kind kind) {
  switch (kind) {
  case hash_kind::argon2id:
    return "argon2id";
  case hash_kind::mosquitto_sha512:
    return "mosquitto-sha512";
  case hash_kind::mosquitto_pbkdf2:
    return "mosquitto-pbkdf2-sha512";
  }
  return "unknown";
}

std::optional<hash_kind> kind_of_hash(std::string_view encoded) {
  if (encoded.starts_with("$argon2id$")) {
    return hash_kind::argon2id;
  }
  if (encoded.starts_with("$6$")) {
    return hash_kind::mosquitto_sha512;
  }
  if (encoded.starts_with("$7$")) {
    return hash_kind::mosquitto_pbkdf2;
  }
  return std::nullopt;
}

std::string check_user_name(std::string_view name) {
  return check_text("user name", name, false);
}

std::string check_role(std::string_view role) {
  return check_text("role", role, false);
}

std::string check_attribute(std::string_view key, std::string_view value) {
  if (auto why = check_text("attribute name", key, false); !why.empty()) {
    return why;
  }
  if (key.find('=') != std::string_view::npos) {
    return "attribute name \"" + std::string(key) + "\" contains '='";
  }
  if (auto why = check_text("attribute value", value, true); !why.empty()) {
    return why + " (attribute \"" + std::string(key) + "\")";
  }
  return {};
}

std::string check_roles_and_attributes(const std::vector<std::string>& roles,
                                       const attribute_map& attributes) {
  std::set<std::string_view> seen;
  for (const auto& role : roles) {
    if (auto why = check_role(role); !why.empty()) {
      return why;
    }
    if (!seen.insert(role).second) {
      return "role \"" + role + "\" is given twice";
    }
  }
  for (const auto& [key, value] : attributes) {
    if (auto why = check_attribute(key, value); !why.empty()) {
      return why;
    }
  }
  return {};
}

std::string check_mosquitto_hash(std::string_view encoded) {
  std::string error;
  return parse_mosquitto_hash(encoded, error) ? std::string() : error;
}

std::filesystem::path credential_database_path(const config::config& cfg) {
  if (!cfg.auth.password.database.empty()) {
    return cfg.auth.password.database;
  }
  return cfg.broker.state_dir / "firehook.db";
}

mosquitto_file parse_mosquitto_file(std::string_view text) {
  mosquitto_file out;
  std::map<std::string, unsigned, std::less<>> first_line;
  unsigned number = 0;
  while (!text.empty()) {
    ++number;
    const auto newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    if (line.ends_with('\r')) {
      line.remove_suffix(1);
    }
    if (line.empty() || line.front() == '#') {
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      out.errors.push_back({number, "expected name:hash"});
      continue;
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view hash = line.substr(colon + 1);
    if (auto why = check_user_name(name); !why.empty()) {
      out.errors.push_back({number, why});
      continue;
    }
    if (!kind_of_hash(hash) || hash.starts_with("$argon2id$")) {
      // Never echo the text: it may be a plain-text password.
      out.errors.push_back(
          {number, "user \"" + std::string(name) +
                       "\": not a Mosquitto $6$ or $7$ hash (a plain-text password file must "
                       "first be hashed with mosquitto_passwd -U)"});
      continue;
    }
    if (auto why = check_mosquitto_hash(hash); !why.empty()) {
      out.errors.push_back({number, "user \"" + std::string(name) + "\": " + why});
      continue;
    }
    if (auto [it, inserted] = first_line.emplace(std::string(name), number); !inserted) {
      out.errors.push_back({number, "user \"" + std::string(name) + "\" appears again (first on line " +
                                        std::to_string(it->second) + ")"});
      continue;
    }
    out.entries.push_back({number, std::string(name), std::string(hash)});
  }
  return out;
}

credential_store::credential_store(std::shared_ptr<store> db) : db_(std::move(db)) {
  init_sodium();
  std::array<unsigned char, 32> secret{};
  randombytes_buf(secret.data(), secret.size());
  dummy_hash_ = hash_password(std::string_view(reinterpret_cast<const char*>(secret.data()), secret.size()));
  sodium_memzero(secret.data(), secret.size());
}

std::shared_ptr<credential_store> credential_store::open(const std::filesystem::path& path) {
  return std::make_shared<credential_store>(std::make_shared<store>(path));
}

void credential_store::add_user(std::string_view name, std::string_view password,
                                const std::vector<std::string>& roles, const attribute_map& attributes) {
  if (auto why = check_user_name(name); !why.empty()) {
    throw credential_error(why);
  }
  validate_roles_and_attributes(roles, attributes);
  if (password.empty()) {
    throw credential_error("the password is empty");
  }
  const std::string hash = hash_password(password); // slow: before the lock
  db_->transaction([&](connection& c) {
    if (user_exists(c, name)) {
      throw credential_error("user \"" + std::string(name) + "\" exists");
    }
    insert_user(c, name, hash, roles, attributes);
  });
}

void credential_store::set_password(std::string_view name, std::string_view password) {
  if (password.empty()) {
    throw credential_error("the password is empty");
  }
  const std::string hash = hash_password(password);
  db_->transaction([&](connection& c) {
    c.prepare("UPDATE users SET hash = ?1, updated_at = ?2 WHERE name = ?3")
        .bind(1, hash)
        .bind(2, now_seconds())
        .bind(3, name)
        .run();
    if (c.changes() == 0) {
      throw credential_error("no user \"" + std::string(name) + "\"");
    }
  });
}

bool credential_store::remove_user(std::string_view name) {
  return db_->transaction([&](connection& c) {
    // Roles and attributes go with it (ON DELETE CASCADE).
    c.prepare("DELETE FROM users WHERE name = ?1").bind(1, name).run();
    return c.changes() > 0;
  });
}

std::optional<user_record> credential_store::find_user(std::string_view name) {
  connection c = db_->lock();
  auto u = load_user(c, name);
  if (!u) {
    return std::nullopt;
  }
  return std::move(u->user);
}

std::vector<user_record> credential_store::list_users() {
  connection c = db_->lock();
  std::vector<std::string> names;
  {
    statement s = c.prepare("SELECT name FROM users ORDER BY name");
    while (s.step()) {
      names.push_back(s.column_text(0));
    }
  }
  std::vector<user_record> users;
  users.reserve(names.size());
  for (const auto& name : names) {
    if (auto u = load_user(c, name)) {
      users.push_back(std::move(u->user));
    }
  }
  return users;
}

std::vector<std::vector<std::string>> credential_store::users_sharing_a_hash() {
  connection c = db_->lock();
  statement s = c.prepare("SELECT hash, name FROM users WHERE hash IN "
                          "(SELECT hash FROM users GROUP BY hash HAVING count(*) > 1) ORDER BY hash, name");
  std::vector<std::vector<std::string>> groups;
  std::string last;
  while (s.step()) {
    std::string hash = s.column_text(0);
    if (groups.empty() || hash != last) {
      groups.emplace_back();
      last = std::move(hash);
    }
    groups.back().push_back(s.column_text(1));
  }
  return groups;
}

void credential_store::import_mosquitto(const std::vector<mosquitto_entry>& entries, bool replace,
                                        const std::vector<std::string>& roles,
                                        const attribute_map& attributes) {
  validate_roles_and_attributes(roles, attributes);
  for (const auto& e : entries) {
    if (auto why = check_user_name(e.name); !why.empty()) {
      throw credential_error("line " + std::to_string(e.line) + ": " + why);
    }
    if (auto why = check_mosquitto_hash(e.hash); !why.empty()) {
      throw credential_error("line " + std::to_string(e.line) + ": user \"" + e.name + "\": " + why);
    }
  }
  db_->transaction([&](connection& c) {
    for (const auto& e : entries) {
      if (!user_exists(c, e.name)) {
        insert_user(c, e.name, e.hash, roles, attributes);
      } else if (replace) {
        c.prepare("UPDATE users SET hash = ?1, updated_at = ?2 WHERE name = ?3")
            .bind(1, e.hash)
            .bind(2, now_seconds())
            .bind(3, e.name)
            .run();
      } else {
        throw credential_error("line " + std::to_string(e.line) + ": user \"" + e.name + "\" exists");
      }
    }
  });
}

check_result credential_store::check(std::string_view name, std::string_view password) {
  std::optional<stored_user> found;
  {
    connection c = db_->lock();
    found = load_user(c, name);
  }
  check_result r;
  if (!found) {
    // The same work as a wrong password, so the time taken does not tell which it was.
    verify_argon2(dummy_hash_, password);
    r.result = check_result::outcome::unknown_user;
    return r;
  }
  bool ok = false;
  bool rehash = false;
  if (found->user.kind == hash_kind::argon2id) {
    ok = verify_argon2(found->hash, password);
    rehash = ok && crypto_pwhash_str_needs_rehash(found->hash.c_str(), argon2_ops, argon2_mem) != 0;
  } else {
    ok = verify_mosquitto(found->hash, password);
    if (!ok) {
      verify_argon2(dummy_hash_, password); // a Mosquitto hash is fast: pad to Argon2id's time
    }
    rehash = ok;
  }
  if (!ok) {
    r.result = check_result::outcome::wrong_password;
    return r;
  }
  r.result = check_result::outcome::ok;
  if (rehash) {
    // The password was right, so a failed upgrade (database read-only or busy, no memory) does
    // not refuse the login; the next login tries again.
    try {
      const std::string upgraded = hash_password(password);
      db_->transaction([&](connection& c) {
        // Only if the hash is still the one verified: a `firehook user passwd` that ran meanwhile wins.
        c.prepare("UPDATE users SET hash = ?1, updated_at = ?2 WHERE name = ?3 AND hash = ?4")
            .bind(1, upgraded)
            .bind(2, now_seconds())
            .bind(3, name)
            .bind(4, found->hash)
            .run();
        r.upgraded = c.changes() > 0;
      });
    } catch (const std::exception& e) {
      r.upgrade_error = e.what();
    }
    if (r.upgraded) {
      found->user.kind = hash_kind::argon2id;
    }
  }
  r.user = std::move(found->user);
  return r;
}

} // namespace firehook::registry

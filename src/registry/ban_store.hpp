#pragma once
// Bans as stored: `<state_dir>/bans.db`, an SQLite database of its own (registry::store, its own
// migrations), so that `firehook ban ...` and the admin endpoint can change it while a broker
// runs, and bans survive a restart. A ban names an address or network (CIDR), a client id or a
// user name, says why, who or what made it ("login failures", "flapping", "manual", "admin
// <token name>"), when, and until when (or for ever). There is at most one ban per kind and
// subject: a new one replaces it.
//
// The broker reads it at start and again whenever another process has changed it
// (data_version(): SQLite's PRAGMA data_version changes when another connection commits), and
// writes its automatic bans and forgets expired ones off the shard threads (broker::ban_list).
//
// Times are Unix seconds (bans outlive the process, so not the steady clock).
// Thread safety and errors: as registry::store (one mutex; store_error for SQLite failures).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "registry/store.hpp"

namespace firehook::registry {

// certificate: a client certificate, by the SHA-256 fingerprint of its DER form; token_subject:
// the tokens (JWT) of one subject, whenever they were issued.
enum class ban_kind : std::uint8_t { address, client_id, username, certificate, token_subject };

// "address", "client_id", "username", "certificate", "token_subject".
std::string_view to_string(ban_kind k);
std::optional<ban_kind> ban_kind_of(std::string_view text);

struct ban {
  ban_kind kind = ban_kind::address;
  std::string subject; // "192.0.2.7", "2001:db8::/64", a client id, a user name, a fingerprint
  std::string reason;
  std::string source; // who or what made it
  std::int64_t created = 0;
  std::optional<std::int64_t> expires; // nullopt: permanent

  bool expired(std::int64_t now) const { return expires && *expires <= now; }
  bool operator==(const ban&) const = default;
};

// The subject in its stored form, or nullopt with `error` set: an address ban's subject must be an
// IPv4 or IPv6 address or network (CIDR), and is stored as written; a certificate's is 64 hex digits,
// with or without ':' between pairs (as `openssl x509 -fingerprint -sha256` prints it), stored in
// lower case without separators; a client id or user name must not be empty nor hold a NUL.
std::optional<std::string> check_subject(ban_kind kind, std::string_view subject, std::string& error);

class ban_store {
public:
  // Opens or creates the database (mode 0600, as registry::store). Throws store_error.
  explicit ban_store(const std::filesystem::path& path);

  // Adds the ban, replacing one of the same kind and subject.
  void put(const ban& b);
  // False when there was none.
  bool remove(ban_kind kind, std::string_view subject);
  // Every ban, expired ones included, by kind and subject.
  std::vector<ban> list();
  // Removes the bans expired at `now`; returns them.
  std::vector<ban> remove_expired(std::int64_t now);
  // Changes when another connection (another process) has committed a change since the last call.
  std::int64_t data_version();

  const std::filesystem::path& path() const { return db_.path(); }

private:
  store db_;
};

} // namespace firehook::registry

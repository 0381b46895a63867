#pragma once

// The device registry: every device the operator has provisioned, kept in the embedded store
// (tables from migration 2 in store.cpp, in the same database as the credential store). A device
// is named by its identity (the CN of the certificates issued to it), has roles and attributes
// that the topics file reads as it reads a password user's, a state, the certificates issued to it
// (serial and SHA-256 fingerprint), optionally the password user and token subject of the same
// device, and when it was created and last seen from which address.
//
// States: active (may connect), disabled (refused, may be enabled again), revoked (refused for
// good; set by the revocation work, which is not built yet). The broker refuses a device that is
// not active with the same reason code as a wrong credential, so a client cannot learn which
// devices exist or are disabled.
//
// Rotation: rotate_certificate() records a new certificate and sets `retire_at` = now + grace on
// the ones it replaces; the broker accepts a retired certificate until then and refuses it after.
//
// Times are Unix seconds (they outlive the process). Thread safety: as registry::store (one mutex;
// every member may be called from any thread).
//
// Errors: a user-facing mistake (bad name, device exists, no such device) throws device_error; an
// SQLite failure throws store_error.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "registry/credential_store.hpp"
#include "registry/store.hpp"

namespace firehook::registry {

class device_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

enum class device_state : std::uint8_t { active, disabled, revoked };

// "active", "disabled", "revoked".
std::string_view to_string(device_state s);
std::optional<device_state> device_state_of(std::string_view text);

// A certificate issued to a device.
struct device_certificate {
  std::string serial_hex;         // upper-case hex of whole bytes (BN_bn2hex, as the TLS layer reports it)
  std::string fingerprint_sha256; // lower-case hex of the DER
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
  std::int64_t issued_at = 0;
  std::optional<std::int64_t> retire_at; // set by a rotation: refused from then on

  bool retired(std::int64_t now) const { return retire_at && *retire_at <= now; }
  bool operator==(const device_certificate&) const = default;
};

struct device_record {
  std::string name;
  device_state state = device_state::active;
  std::vector<std::string> roles; // in the order given
  attribute_map attributes;
  std::vector<device_certificate> certificates; // oldest first
  std::optional<std::string> username;          // the password user of this device, if linked
  std::optional<std::string> token_subject;     // the token subject of this device, if linked
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
  std::optional<std::int64_t> last_seen_at;
  std::optional<std::string> last_address;
};

// What a device gets when it is added.
struct new_device {
  std::string name;
  std::vector<std::string> roles;
  attribute_map attributes;
  std::optional<std::string> username;
  std::optional<std::string> token_subject;
};

// A device name is its identity: the CN of its certificates, its client id by default, and a file
// name in a provisioning bundle. So it is 1 to 64 characters (the X.509 upper bound of a CN) of
// A-Z a-z 0-9 '.' '_' '-', starting with a letter or a digit. Returns "" or why not.
std::string check_device_name(std::string_view name);

// Unix seconds now.
std::int64_t unix_now();

// The insertion of device_registry::add, for a caller that adds a device inside a transaction of
// its own (enrollment.cpp: the token is consumed in the same one). Throws as add() does.
void insert_device(connection& c, const new_device& device, const std::optional<device_certificate>& first);

class device_registry {
public:
  // Uses `db`, which must have run registry_migrations().
  explicit device_registry(std::shared_ptr<store> db) : db_(std::move(db)) {}

  // Opens (creating when missing) the database file and builds the registry on it.
  static std::shared_ptr<device_registry> open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return db_->path(); }
  const std::shared_ptr<store>& database() const { return db_; }

  // Adds an active device, with `first` as its first certificate when given, in one transaction.
  // Throws device_error when the name, a role or an attribute is invalid, a role is given twice,
  // or the device exists.
  void add(const new_device& device, const std::optional<device_certificate>& first = std::nullopt);

  // False when there was no such device. Its certificates go with it.
  bool remove(std::string_view name);

  std::optional<device_record> find(std::string_view name);
  // Whether a device of that name exists: one indexed read, for the broker's shard threads.
  bool contains(std::string_view name);
  // The name and state of the device linked to the password user `username`, if any.
  std::optional<std::pair<std::string, device_state>> linked_to_user(std::string_view username);
  // The same for the device whose tokens have the subject `subject`.
  std::optional<std::pair<std::string, device_state>> linked_to_token_subject(std::string_view subject);
  // Every device, by name.
  std::vector<device_record> list();

  // Sets the state. Throws device_error when there is no such device.
  void set_state(std::string_view name, device_state state);

  // Records `issued` and retires every current certificate of the device at now + grace_seconds.
  // Throws device_error when there is no such device.
  void rotate_certificate(std::string_view name, const device_certificate& issued,
                          std::int64_t grace_seconds);

  // Records a connection: last seen now from `address`. Written only when the stored time is at
  // least `min_interval` seconds old or the address changed, so a reconnecting device does not
  // cost a synchronous write per CONNECT. A missing device is ignored.
  void touch(std::string_view name, std::string_view address, std::int64_t now,
             std::int64_t min_interval = 60);

private:
  // The name and state of the device the query `sql` (one parameter: `value`) finds, if any.
  std::optional<std::pair<std::string, device_state>> linked(std::string_view sql, std::string_view value);

  std::shared_ptr<store> db_;
};

} // namespace firehook::registry

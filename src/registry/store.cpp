#include "registry/store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>

namespace firehook::registry {
namespace {

// Credentials (schema version 1). Names are the primary key: a user is renamed by removing
// and adding it. Roles keep the order they were given in; attributes are a key=value map.
// STRICT tables make SQLite refuse a value of the wrong type instead of converting it.
//
// Devices (schema version 2, registry/device_registry.hpp): one row per device, named by its
// identity; roles and attributes as users have them; the certificates issued to it, by serial
// (upper-case hex of whole bytes, as the TLS layer reports it) and SHA-256 fingerprint of the DER (lower-case
// hex). `retire_at` is set when a rotation replaces a certificate: the broker refuses it from then
// on. `username` and `token_subject` link the password user and the token subject of the same
// device, so that the later revocation work can block every credential of it.
// Migration 3: one-time enrollment tokens (enrollment.hpp). Only the SHA-256 of a token is kept,
// so a copy of the database does not enrol devices; `used_by` names the device it enrolled.
constexpr std::array<migration, 3> migrations{{
    {"credentials: users, their roles and attributes", R"sql(
CREATE TABLE users (
  name TEXT PRIMARY KEY NOT NULL,
  hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE user_roles (
  user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  role TEXT NOT NULL,
  PRIMARY KEY (user_name, role)
) STRICT;
CREATE TABLE user_attributes (
  user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (user_name, key)
) STRICT;
)sql"},
    {"devices: the device registry and the certificates issued to devices", R"sql(
CREATE TABLE devices (
  name TEXT PRIMARY KEY NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('active', 'disabled', 'revoked')),
  username TEXT,
  token_subject TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  last_seen_at INTEGER,
  last_address TEXT
) STRICT;
CREATE TABLE device_roles (
  device_name TEXT NOT NULL REFERENCES devices(name) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  role TEXT NOT NULL,
  PRIMARY KEY (device_name, role)
) STRICT;
CREATE TABLE device_attributes (
  device_name TEXT NOT NULL REFERENCES devices(name) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (device_name, key)
) STRICT;
CREATE TABLE device_certificates (
  serial TEXT PRIMARY KEY NOT NULL,
  device_name TEXT NOT NULL REFERENCES devices(name) ON DELETE CASCADE,
  fingerprint_sha256 TEXT NOT NULL UNIQUE,
  not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL,
  issued_at INTEGER NOT NULL,
  retire_at INTEGER
) STRICT;
CREATE INDEX device_certificates_by_device ON device_certificates (device_name);
CREATE INDEX devices_by_username ON devices (username);
)sql"},
    {"enrollment tokens: hashes of one-time tokens, their template and expiry", R"sql(
CREATE TABLE enrollment_tokens (
  hash TEXT PRIMARY KEY NOT NULL,
  template TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  used_by TEXT
) STRICT;
)sql"},
}};

[[noreturn]] void fail(sqlite3* db, std::string_view what) {
  const char* message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
  const char* file = db != nullptr ? sqlite3_db_filename(db, "main") : nullptr;
  throw store_error(std::string(what) + ": " + message +
                    (file != nullptr && *file != '\0' ? " (" + std::string(file) + ")" : std::string()));
}

} // namespace

void create_private_folders(const std::filesystem::path& folder) {
  if (folder.empty()) {
    return;
  }
  std::filesystem::path partial;
  for (const auto& part : folder) {
    partial /= part;
    if (::mkdir(partial.c_str(), 0700) == 0 || errno == EEXIST) {
      continue;
    }
    const int error = errno;
    // mkdir may report EACCES or EROFS for a folder that exists (e.g. "/" or a read-only
    // mount): only a folder that is really missing is an error.
    struct stat st {};
    if (::stat(partial.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      continue;
    }
    throw store_error("cannot create folder " + partial.string() + ": " +
                      std::generic_category().message(error));
  }
}

namespace {

// Creates the database file with mode 0600 before SQLite sees it, so it never exists with
// wider permissions; SQLite then gives its -wal and -shm files the same mode.
void create_private_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    return;
  }
  if (errno != EEXIST) {
    throw store_error("cannot create " + path.string() + ": " + std::generic_category().message(errno));
  }
}

} // namespace

std::span<const migration> registry_migrations() {
  return migrations;
}

statement::statement(sqlite3* db, std::string_view sql) : db_(db) {
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) != SQLITE_OK) {
    fail(db_, "cannot prepare statement");
  }
}

statement::~statement() {
  sqlite3_finalize(stmt_);
}

statement::statement(statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

void statement::check(int rc, std::string_view what) const {
  if (rc != SQLITE_OK) {
    fail(db_, what);
  }
}

statement& statement::bind(int index, std::string_view text) {
  // A non-null pointer even for "", or SQLite would bind NULL.
  static constexpr char empty[] = "";
  check(sqlite3_bind_text64(stmt_, index, text.empty() ? empty : text.data(), text.size(), SQLITE_TRANSIENT,
                            SQLITE_UTF8),
        "cannot bind");
  return *this;
}

statement& statement::bind(int index, std::int64_t value) {
  check(sqlite3_bind_int64(stmt_, index, value), "cannot bind");
  return *this;
}

statement& statement::bind_null(int index) {
  check(sqlite3_bind_null(stmt_, index), "cannot bind");
  return *this;
}

bool statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  fail(db_, "statement failed");
}

void statement::run() {
  while (step()) {
  }
}

void statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string statement::column_text(int index) const {
  const auto* text = sqlite3_column_text(stmt_, index);
  if (text == nullptr) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, index)));
}

std::int64_t statement::column_int(int index) const {
  return sqlite3_column_int64(stmt_, index);
}

bool statement::column_is_null(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

void connection::exec(std::string_view sql) {
  const std::string text(sql); // sqlite3_exec reads a C string
  char* message = nullptr;
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string reason = message != nullptr ? message : sqlite3_errmsg(db_);
    sqlite3_free(message);
    throw store_error("SQL failed: " + reason + " (" + sqlite3_db_filename(db_, "main") + ")");
  }
}

std::int64_t connection::changes() const {
  return sqlite3_changes64(db_);
}

store::store(const std::filesystem::path& path, std::span<const migration> migrations) : path_(path) {
  create_private_folders(path_.parent_path()); // it holds password hashes
  create_private_file(path_);
  // NOMUTEX: the store's own mutex serialises every use of the connection. NOFOLLOW: a
  // symbolic link planted in place of the database is refused, not followed.
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
  if (sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw store_error("cannot open " + path_.string() + ": " + message);
  }
  sqlite3_extended_result_codes(db_, 1);
  try {
    connection c = lock();
    // Waits up to 5 s for another process (`firehook user ...`) to finish writing.
    c.exec("PRAGMA busy_timeout = 5000");
    // Reading the journal mode also proves that the file is a database at all.
    c.exec("PRAGMA journal_mode = WAL");
    // FULL: a credential change is on disk when the command says it is done. Writes are rare.
    c.exec("PRAGMA synchronous = FULL");
    c.exec("PRAGMA foreign_keys = ON");
    // Removed rows (old password hashes) are overwritten, not left in free pages.
    c.exec("PRAGMA secure_delete = ON");
    // The schema is ours: SQL functions in it must not run with the broker's rights.
    c.exec("PRAGMA trusted_schema = OFF");
  } catch (...) {
    sqlite3_close(db_);
    throw;
  }
  try {
    migrate(migrations);
  } catch (...) {
    sqlite3_close(db_);
    throw;
  }
}

store::~store() {
  // Every statement is finalised by its owner before the store goes, so this closes at once.
  sqlite3_close(db_);
}

connection store::lock() {
  return connection(std::unique_lock(mutex_), db_);
}

int store::schema_version() {
  connection c = lock();
  statement s = c.prepare("PRAGMA user_version");
  s.step();
  return static_cast<int>(s.column_int(0));
}

void store::rollback(connection& c) noexcept {
  try {
    c.exec("ROLLBACK");
  } catch (const store_error&) {
    // SQLite may have rolled back already (e.g. after SQLITE_FULL); nothing is left to undo.
  }
}

void store::migrate(std::span<const migration> migrations) {
  transaction([&](connection& c) {
    std::int64_t current = 0;
    {
      // Finished before the migrations run: DDL beside a pending statement can fail with
      // SQLITE_LOCKED ("database table is locked").
      statement version = c.prepare("PRAGMA user_version");
      version.step();
      current = version.column_int(0);
    }
    const auto known = static_cast<std::int64_t>(migrations.size());
    if (current > known) {
      throw store_error(path_.string() + ": schema version " + std::to_string(current) +
                        " is newer than this firehook knows (" + std::to_string(known) +
                        "); use the firehook that wrote it");
    }
    if (current < 0) {
      throw store_error(path_.string() + ": invalid schema version " + std::to_string(current));
    }
    for (auto i = static_cast<std::size_t>(current); i < migrations.size(); ++i) {
      try {
        c.exec(migrations[i].sql);
      } catch (const store_error& e) {
        throw store_error("migration " + std::to_string(i + 1) + " (" +
                          std::string(migrations[i].description) + ") failed: " + e.what());
      }
    }
    // PRAGMA takes no bound parameters; the value is our own integer.
    c.exec("PRAGMA user_version = " + std::to_string(known));
  });
}

} // namespace firehook::registry

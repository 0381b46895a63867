#pragma once

// The embedded store: one SQLite database file holding the registry's tables (credentials
// today; devices and keys as they arrive). Every table the registry owns is created by a
// numbered migration; `PRAGMA user_version` records how many have run, so an older database
// is brought forward when it is opened and a newer one (written by a later firehook) is
// refused rather than misread.
//
// Files: the database is created with mode 0600 (SQLite gives its -wal and -shm files the
// same mode), and missing parent folders with mode 0700: it holds password hashes. Opened in
// WAL mode with a busy timeout, so `firehook user ...` can change it while a broker reads it.
//
// Thread safety: one connection guarded by one mutex. `lock()` and `transaction()` hold that
// mutex until the returned connection (or the callback) is done, so statements from several
// threads never interleave on the connection. Hold it only around SQL, never around slow work
// such as password hashing.
//
// Errors: every SQLite failure (cannot open, disk full, corrupt file, constraint violated,
// schema too new) throws store_error with SQLite's message and the file name. Callers on the
// connection path catch it and fail closed.

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

struct sqlite3;
struct sqlite3_stmt;

namespace firehook::registry {

class store_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// One step of the schema: SQL run once, inside the transaction that also raises user_version.
// Migration i (0-based) takes the schema from version i to version i + 1. Never edit a
// migration that has shipped; append a new one.
struct migration {
  std::string_view description;
  std::string_view sql; // one or more statements
};

// Creates `folder` and each missing folder above it with mode 0700; folders that exist are left as
// they are. For the folders of secrets: the database (password hashes), the CA key, device bundles.
// Throws store_error naming the folder that cannot be created.
void create_private_folders(const std::filesystem::path& folder);

// The registry's migrations, oldest first.
std::span<const migration> registry_migrations();

// A prepared statement. Bind indexes are 1-based, as in SQLite. Bound text and blobs are
// copied (SQLITE_TRANSIENT), so the arguments need not outlive the call. Owned by the
// connection it came from and valid only while that connection is held.
class statement {
public:
  statement(sqlite3* db, std::string_view sql);
  ~statement();
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
  statement(statement&& other) noexcept;
  statement& operator=(statement&&) = delete;

  statement& bind(int index, std::string_view text);
  statement& bind(int index, std::int64_t value);
  statement& bind_null(int index);

  // True when a row is ready to read; false when the statement has finished.
  bool step();
  // Runs a statement that returns no rows to the end.
  void run();
  // Ready to run again with new bindings.
  void reset();

  std::string column_text(int index) const;
  std::int64_t column_int(int index) const;
  bool column_is_null(int index) const;

private:
  void check(int rc, std::string_view what) const;

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Access to the connection while the store's mutex is held.
class connection {
public:
  connection(std::unique_lock<std::mutex> lock, sqlite3* db) : lock_(std::move(lock)), db_(db) {}

  statement prepare(std::string_view sql) { return statement(db_, sql); }
  // Runs one or more statements without results.
  void exec(std::string_view sql);
  // Rows changed by the last INSERT, UPDATE or DELETE.
  std::int64_t changes() const;

private:
  std::unique_lock<std::mutex> lock_;
  sqlite3* db_;
};

class store {
public:
  // Opens (creating when missing) the database at `path` and runs the migrations it lacks.
  // Throws store_error when the file cannot be opened or created, is not a database, has a
  // schema newer than `migrations`, or a migration fails (which leaves the file unchanged).
  explicit store(const std::filesystem::path& path,
                 std::span<const migration> migrations = registry_migrations());
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // The schema version now in the file (the number of migrations applied).
  int schema_version();

  // The connection, held until the returned object is destroyed.
  connection lock();

  // Runs fn(connection&) inside BEGIN IMMEDIATE ... COMMIT, holding the mutex throughout;
  // an exception from fn (or from COMMIT) rolls back and propagates.
  template <class F>
  auto transaction(F&& fn) {
    connection c = lock();
    c.exec("BEGIN IMMEDIATE");
    try {
      if constexpr (std::is_void_v<decltype(fn(c))>) {
        fn(c);
        c.exec("COMMIT");
      } else {
        auto result = fn(c);
        c.exec("COMMIT");
        return result;
      }
    } catch (...) {
      rollback(c);
      throw;
    }
  }

private:
  static void rollback(connection& c) noexcept;
  void migrate(std::span<const migration> migrations);

  std::filesystem::path path_;
  std::mutex mutex_; // guards db_: every use of the connection
  sqlite3* db_ = nullptr;
};

} // namespace firehook::registry

// The SQLite engine: one database file, store.db, in WAL mode with synchronous=FULL (the write-
// ahead log is fsync'ed at every commit), held with an exclusive lock while the store is open.
//
// Tables (STRICT, WITHOUT ROWID: each record is one entry of its primary key's b-tree):
//   meta(key, value), retained(topic, value), sessions(client_id, value),
//   session_messages(client_id, seq, value) with primary key (client_id, seq).
// Keys are BLOBs, compared bytewise. SQLite integers are signed, so a sequence number is stored
// with its top bit flipped: the order of the stored values is the order of the uint64 values.
//
// PRAGMA application_id marks the file as a firehook store, user_version is the format version.

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <utility>
#include <vector>

#include "store/engine.hpp"

namespace firehook::store::detail {
namespace {

constexpr std::int64_t application_id = 0x46485354; // "FHST"
constexpr std::int64_t format_version = 1;
constexpr const char* file_name = "store.db";

constexpr const char* schema = R"sql(
CREATE TABLE meta (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) STRICT, WITHOUT ROWID;
CREATE TABLE retained (topic BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) STRICT, WITHOUT ROWID;
CREATE TABLE sessions (client_id BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) STRICT, WITHOUT ROWID;
CREATE TABLE session_messages (
  client_id BLOB NOT NULL,
  seq INTEGER NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (client_id, seq)
) STRICT, WITHOUT ROWID;
)sql";

std::int64_t to_stored(std::uint64_t seq) {
  return static_cast<std::int64_t>(seq ^ (std::uint64_t{1} << 63));
}

std::uint64_t from_stored(std::int64_t value) {
  return static_cast<std::uint64_t>(value) ^ (std::uint64_t{1} << 63);
}

// What a failed call means for the caller. ENOSPC and EDQUOT surface as SQLITE_FULL from a write,
// but as SQLITE_IOERR from an fsync or a file extension: the errno tells.
std::error_code to_error(sqlite3* db, int rc) {
  const int system_errno = db != nullptr ? sqlite3_system_errno(db) : 0;
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_DONE:
  case SQLITE_ROW:
    return {};
  case SQLITE_FULL:
    return store_errc::disk_full;
  case SQLITE_IOERR:
    if (rc == SQLITE_IOERR_NOMEM) {
      return store_errc::internal;
    }
    return system_errno == ENOSPC || system_errno == EDQUOT ? store_errc::disk_full : store_errc::io_error;
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
    return store_errc::corrupt;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return store_errc::locked;
  case SQLITE_CANTOPEN:
  case SQLITE_PERM:
  case SQLITE_READONLY:
  case SQLITE_AUTH:
    return store_errc::cannot_open;
  default:
    return store_errc::internal;
  }
}

class statement {
public:
  statement() = default;
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
  ~statement() { sqlite3_finalize(stmt_); }

  int prepare(sqlite3* db, const char* sql) {
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  }

  void bind(int index, std::string_view bytes) {
    // A non-null pointer even for an empty blob, or SQLite would bind NULL.
    static constexpr char empty[] = "";
    sqlite3_bind_blob64(stmt_, index, bytes.empty() ? empty : bytes.data(), bytes.size(), SQLITE_STATIC);
  }
  void bind(int index, std::int64_t value) { sqlite3_bind_int64(stmt_, index, value); }

  // Runs a statement without results; returns SQLite's code (SQLITE_DONE on success).
  int run() {
    const int rc = sqlite3_step(stmt_);
    sqlite3_reset(stmt_);
    return rc;
  }
  int step() { return sqlite3_step(stmt_); }
  void reset() { sqlite3_reset(stmt_); }

  std::string_view blob(int column) const {
    const void* data = sqlite3_column_blob(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    return data == nullptr ? std::string_view()
                           : std::string_view(static_cast<const char*>(data), static_cast<std::size_t>(size));
  }
  std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }

private:
  sqlite3_stmt* stmt_ = nullptr;
};

// The frames of the write-ahead log that belong to its current generation (their salts match the
// header's), before SQLite looks at it: after recovery, SQLite keeps only those up to the last
// intact commit, so the difference is what a crash or damage cost.
struct wal_survey {
  std::uint64_t frames = 0;           // complete frames of this generation
  std::uint64_t partial_bytes = 0;    // bytes of a frame cut short at the end of the file
  std::vector<std::uint64_t> commits; // the frame count at the end of each commit, in order
};

std::uint32_t read_be32(const unsigned char* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 |
         std::uint32_t{p[3]};
}

std::optional<wal_survey> survey_wal(const std::filesystem::path& wal) {
  std::ifstream in(wal, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  std::array<unsigned char, 32> header{};
  if (!in.read(reinterpret_cast<char*>(header.data()), header.size())) {
    return std::nullopt;
  }
  const std::uint32_t magic = read_be32(header.data());
  const std::uint32_t page_size = read_be32(header.data() + 8);
  if ((magic & 0xfffffffe) != 0x377f0682 || page_size < 512 || page_size > 65536) {
    return std::nullopt;
  }
  wal_survey survey;
  std::vector<char> page(page_size);
  std::array<unsigned char, 24> frame{};
  for (;;) {
    if (!in.read(reinterpret_cast<char*>(frame.data()), frame.size())) {
      survey.partial_bytes = static_cast<std::uint64_t>(in.gcount());
      break;
    }
    if (std::memcmp(frame.data() + 8, header.data() + 16, 8) != 0) {
      break; // a frame of an earlier generation: not part of this log
    }
    if (!in.read(page.data(), page_size)) {
      survey.partial_bytes = frame.size() + static_cast<std::uint64_t>(in.gcount());
      break;
    }
    ++survey.frames;
    if (read_be32(frame.data() + 4) != 0) { // a commit frame carries the database size
      survey.commits.push_back(survey.frames);
    }
  }
  return survey;
}

// What recovery dropped, given the survey taken before it and the frames SQLite kept. Frames
// after the last intact commit that hold no commit of their own were an unfinished commit (its
// completions never ran); dropped commits mean the log was damaged, and their batches had been
// acknowledged.
std::string recovery_message(const std::filesystem::path& wal, const wal_survey& survey, std::uint64_t kept) {
  const std::uint64_t dropped = survey.frames - std::min(kept, survey.frames);
  std::uint64_t lost_commits = 0;
  for (std::uint64_t end : survey.commits) {
    lost_commits += end > kept ? 1 : 0;
  }
  const std::string pages = std::to_string(dropped) + " page(s)" +
                            (survey.partial_bytes > 0 ? " and a cut-short frame of " +
                                                            std::to_string(survey.partial_bytes) + " bytes"
                                                      : "");
  if (lost_commits == 0) {
    return wal.string() + ": dropped an unfinished commit at its end (" + pages +
           "); its batches had not been acknowledged";
  }
  return wal.string() + ": damaged: recovered to the last intact commit and dropped " + pages +
         " after it, holding " + std::to_string(lost_commits) +
         " commit(s) whose batches had been acknowledged and are lost";
}

class sqlite_engine final : public engine {
public:
  // close_v2: the connection closes once the member statements are finalised, after this body;
  // closing checkpoints the write-ahead log into store.db and removes it.
  ~sqlite_engine() override { sqlite3_close_v2(db_); }

  // Opens and checks; on failure fills `result` and returns false.
  bool open(const std::filesystem::path& dir, const options& opts, engine_open& result);

  std::error_code apply(std::span<const batch* const> batches) override;
  std::error_code load(record_visitor& visitor) override;

private:
  int exec(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }
  int apply_one(const batch::operation& op);
  // "store.db: <SQLite's message>"
  std::string describe(std::string_view what) const;
  bool fail(engine_open& result, std::error_code error, std::string message);
  std::optional<std::int64_t> pragma_int(const char* sql);

  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  statement put_meta_, erase_meta_, put_retained_, erase_retained_, put_session_, erase_session_;
  statement put_message_, erase_message_, erase_messages_, begin_, commit_;
};

std::string sqlite_engine::describe(std::string_view what) const {
  return path_.string() + ": " + std::string(what) + ": " +
         (db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory");
}

bool sqlite_engine::fail(engine_open& result, std::error_code error, std::string message) {
  result.error = error;
  result.message = std::move(message);
  return false;
}

std::optional<std::int64_t> sqlite_engine::pragma_int(const char* sql) {
  statement s;
  if (s.prepare(db_, sql) != SQLITE_OK || s.step() != SQLITE_ROW) {
    return std::nullopt;
  }
  return s.integer(0);
}

bool sqlite_engine::open(const std::filesystem::path& dir, const options& opts, engine_open& result) {
  path_ = dir / file_name;
  const std::filesystem::path wal = path_.string() + "-wal";
  const std::optional<wal_survey> survey = survey_wal(wal);

  // Created with mode 0600 before SQLite sees it (SQLite gives the -wal file the same mode), and
  // its folder synced so that the new file survives a power loss.
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    if (auto error = sync_dir(dir); !error.empty()) {
      return fail(result, store_errc::io_error, std::move(error));
    }
  } else if (errno != EEXIST) {
    return fail(result, store_errc::cannot_open,
                "cannot create " + path_.string() + ": " + std::generic_category().message(errno));
  }

  // NOMUTEX: the store serialises every call. NOFOLLOW: a symbolic link in place of the file is
  // refused, not followed.
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
  if (const int rc = sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr); rc != SQLITE_OK) {
    return fail(result, to_error(db_, rc), describe("cannot open"));
  }
  sqlite3_extended_result_codes(db_, 1);

  // EXCLUSIVE before WAL: the lock is taken at the first read and kept until close, so a second
  // broker on the same folder is refused, and the WAL index lives in memory (no -shm file).
  // synchronous=FULL: the WAL is fsync'ed at every commit, so a commit survives a power loss.
  // cell_size_check: a damaged page is reported as corrupt rather than misread.
  // journal_size_limit: the WAL is cut back to 64 MiB after a checkpoint.
  for (const char* sql : {"PRAGMA locking_mode = EXCLUSIVE", "PRAGMA journal_mode = WAL",
                          "PRAGMA synchronous = FULL", "PRAGMA cell_size_check = ON",
                          "PRAGMA trusted_schema = OFF", "PRAGMA journal_size_limit = 67108864"}) {
    if (const int rc = exec(sql); rc != SQLITE_OK) {
      return fail(result, to_error(db_, rc), describe("cannot open"));
    }
  }

  // Recovery has run (journal_mode read the file): the WAL now holds its intact commits. A
  // PASSIVE checkpoint says how many frames that is (TRUNCATE reports 0, having emptied it); then
  // fold them into store.db and empty the WAL, reporting what recovery dropped.
  for (const bool passive : {true, false}) {
    statement checkpoint;
    int rc = checkpoint.prepare(db_, passive ? "PRAGMA wal_checkpoint(PASSIVE)"
                                             : "PRAGMA wal_checkpoint(TRUNCATE)");
    if (rc == SQLITE_OK) {
      rc = checkpoint.step();
    }
    if (rc != SQLITE_ROW) {
      return fail(result, to_error(db_, rc), describe("cannot recover the write-ahead log"));
    }
    const auto kept = static_cast<std::uint64_t>(std::max<std::int64_t>(checkpoint.integer(1), 0));
    if (passive && survey && (survey->frames > kept || survey->partial_bytes > 0)) {
      result.message = recovery_message(wal, *survey, kept);
    }
  }

  // The whole file's structure, once: a damaged page fails here, naming the file, and not later
  // in the middle of a commit. Costs a read of the file (see docs/store.md for the time).
  {
    statement check;
    int rc = check.prepare(db_, "PRAGMA quick_check(5)");
    std::string problems;
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
      if ((rc = check.step()) != SQLITE_ROW) {
        break;
      }
      const std::string_view line = check.blob(0);
      if (line != "ok") {
        problems += problems.empty() ? "" : "; ";
        problems += line;
      }
    }
    if (rc != SQLITE_DONE) {
      return fail(result, to_error(db_, rc), describe("damaged, or not a database"));
    }
    if (!problems.empty()) {
      return fail(result, store_errc::corrupt,
                  path_.string() + ": damaged: " + problems +
                      " (move the file away to start empty, or try `sqlite3 " + path_.string() +
                      " .recover`)");
    }
  }

  const std::optional<std::int64_t> app = pragma_int("PRAGMA application_id");
  const std::optional<std::int64_t> version = pragma_int("PRAGMA user_version");
  const std::optional<std::int64_t> tables = pragma_int("SELECT count(*) FROM sqlite_schema");
  if (!app || !version || !tables) {
    return fail(result, store_errc::corrupt, describe("cannot read the format"));
  }
  if (*tables == 0 && *app == 0) {
    if (exec("BEGIN IMMEDIATE") != SQLITE_OK || exec(schema) != SQLITE_OK ||
        exec(("PRAGMA application_id = " + std::to_string(application_id)).c_str()) != SQLITE_OK ||
        exec(("PRAGMA user_version = " + std::to_string(format_version)).c_str()) != SQLITE_OK ||
        exec("COMMIT") != SQLITE_OK) {
      const int rc = sqlite3_extended_errcode(db_);
      std::string message = describe("cannot create the tables");
      exec("ROLLBACK");
      return fail(result, to_error(db_, rc), std::move(message));
    }
  } else if (*app != application_id) {
    return fail(result, store_errc::corrupt,
                path_.string() + ": not a firehook store (another application's database)");
  } else if (*version > format_version) {
    return fail(result, store_errc::too_new,
                path_.string() + ": format version " + std::to_string(*version) +
                    " is newer than this firehook knows (" + std::to_string(format_version) +
                    "); use the firehook that wrote it");
  }

  if (opts.max_bytes > 0) {
    const std::int64_t page_size = pragma_int("PRAGMA page_size").value_or(4096);
    const auto pages = static_cast<std::int64_t>(opts.max_bytes / static_cast<std::uint64_t>(page_size));
    if (exec(("PRAGMA max_page_count = " + std::to_string(std::max<std::int64_t>(pages, 1))).c_str()) !=
        SQLITE_OK) {
      return fail(result, store_errc::internal, describe("cannot set the size limit"));
    }
  }

  const std::pair<statement*, const char*> statements[] = {
      {&put_meta_, "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)"},
      {&erase_meta_, "DELETE FROM meta WHERE key = ?1"},
      {&put_retained_, "INSERT OR REPLACE INTO retained (topic, value) VALUES (?1, ?2)"},
      {&erase_retained_, "DELETE FROM retained WHERE topic = ?1"},
      {&put_session_, "INSERT OR REPLACE INTO sessions (client_id, value) VALUES (?1, ?2)"},
      {&erase_session_, "DELETE FROM sessions WHERE client_id = ?1"},
      {&put_message_, "INSERT OR REPLACE INTO session_messages (client_id, seq, value) VALUES (?1, ?3, ?2)"},
      {&erase_message_, "DELETE FROM session_messages WHERE client_id = ?1 AND seq = ?3"},
      {&erase_messages_, "DELETE FROM session_messages WHERE client_id = ?1"},
      {&begin_, "BEGIN IMMEDIATE"},
      {&commit_, "COMMIT"},
  };
  for (const auto& [s, sql] : statements) {
    if (const int rc = s->prepare(db_, sql); rc != SQLITE_OK) {
      return fail(result, to_error(db_, rc), describe("cannot prepare statements"));
    }
  }
  return true;
}

int sqlite_engine::apply_one(const batch::operation& op) {
  using op_type = batch::op_type;
  statement* s = nullptr;
  switch (op.type) {
  case op_type::put_meta:
    s = &put_meta_;
    break;
  case op_type::erase_meta:
    s = &erase_meta_;
    break;
  case op_type::put_retained:
    s = &put_retained_;
    break;
  case op_type::erase_retained:
    s = &erase_retained_;
    break;
  case op_type::put_session:
    s = &put_session_;
    break;
  case op_type::erase_session:
    s = &erase_session_;
    break;
  case op_type::put_session_message:
    s = &put_message_;
    break;
  case op_type::erase_session_message:
    s = &erase_message_;
    break;
  case op_type::erase_session_and_messages:
    erase_session_.bind(1, op.key);
    if (const int rc = erase_session_.run(); rc != SQLITE_DONE) {
      return rc;
    }
    s = &erase_messages_;
    break;
  }
  // Parameters a statement lacks are ignored by name: ?1 key, ?2 value, ?3 sequence number.
  s->bind(1, op.key);
  if (op.type == op_type::put_meta || op.type == op_type::put_retained || op.type == op_type::put_session ||
      op.type == op_type::put_session_message) {
    s->bind(2, op.value);
  }
  if (op.type == op_type::put_session_message || op.type == op_type::erase_session_message) {
    s->bind(3, to_stored(op.seq));
  }
  return s->run();
}

std::error_code sqlite_engine::apply(std::span<const batch* const> batches) {
  int rc = begin_.run();
  for (std::size_t i = 0; rc == SQLITE_DONE && i < batches.size(); ++i) {
    for (const batch::operation& op : batches[i]->operations()) {
      if (rc = apply_one(op); rc != SQLITE_DONE) {
        break;
      }
    }
  }
  if (rc == SQLITE_DONE) {
    rc = commit_.run();
  }
  if (rc == SQLITE_DONE) {
    return {};
  }
  const std::error_code error = to_error(db_, rc);
  // SQLite may have rolled back already (it does on some SQLITE_FULL and SQLITE_IOERR).
  if (sqlite3_get_autocommit(db_) == 0) {
    exec("ROLLBACK");
  }
  return error;
}

std::error_code sqlite_engine::load(record_visitor& visitor) {
  statement meta, retained, sessions, messages;
  int rc = SQLITE_OK;
  for (const auto& [s, sql] :
       {std::pair{&meta, "SELECT key, value FROM meta ORDER BY key"},
        std::pair{&retained, "SELECT topic, value FROM retained ORDER BY topic"},
        std::pair{&sessions, "SELECT client_id, value FROM sessions ORDER BY client_id"},
        std::pair{&messages, "SELECT client_id, value, seq FROM session_messages "
                             "ORDER BY client_id, seq"}}) {
    if (rc = s->prepare(db_, sql); rc != SQLITE_OK) {
      return to_error(db_, rc);
    }
  }
  // One read transaction: the four scans see the same commit.
  if (rc = exec("BEGIN"); rc != SQLITE_OK) {
    return to_error(db_, rc);
  }
  auto finish = [&](int last) {
    const std::error_code error = last == SQLITE_DONE ? std::error_code() : to_error(db_, last);
    for (statement* s : {&meta, &retained, &sessions, &messages}) {
      s->reset();
    }
    exec("COMMIT");
    return error;
  };
  while ((rc = meta.step()) == SQLITE_ROW) {
    visitor.meta(meta.blob(0), meta.blob(1));
  }
  if (rc != SQLITE_DONE) {
    return finish(rc);
  }
  while ((rc = retained.step()) == SQLITE_ROW) {
    visitor.retained(retained.blob(0), retained.blob(1));
  }
  if (rc != SQLITE_DONE) {
    return finish(rc);
  }
  // Merge of two scans ordered by client id: each session, then its messages.
  int session_rc = sessions.step();
  int message_rc = messages.step();
  while (session_rc == SQLITE_ROW || message_rc == SQLITE_ROW) {
    if (session_rc == SQLITE_ROW && (message_rc != SQLITE_ROW || sessions.blob(0) <= messages.blob(0))) {
      visitor.session(sessions.blob(0), sessions.blob(1));
      session_rc = sessions.step();
    } else {
      visitor.session_message(messages.blob(0), from_stored(messages.integer(2)), messages.blob(1));
      message_rc = messages.step();
    }
  }
  return finish(session_rc != SQLITE_DONE ? session_rc : message_rc);
}

} // namespace

engine_open open_sqlite(const std::filesystem::path& state_dir, const options& opts) {
  auto e = std::make_unique<sqlite_engine>();
  engine_open result;
  if (e->open(state_dir, opts, result)) {
    result.opened = std::move(e);
  }
  return result;
}

} // namespace firehook::store::detail

// The LMDB engine: one memory-mapped file, store.mdb (and its lock file store.mdb-lock), with
// four named databases. A commit writes the changed pages, fdatasync's them, then writes and
// syncs the new meta page: durable when mdb_txn_commit() returns.
//
// Keys: meta, retained and sessions by their key's bytes; session messages by client id followed
// by the sequence number (8 bytes, big-endian), with a comparison that orders by client id first,
// so each session's messages are one range, in sequence order. LMDB limits a key to 511 bytes:
// longer topics and client ids are refused (store_errc::internal).

#include <lmdb.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include "store/engine.hpp"

namespace firehook::store::detail {
namespace {

constexpr const char* file_name = "store.mdb";
constexpr std::uint64_t default_map_size = std::uint64_t{64} << 30; // address space, not disk

std::error_code to_error(int rc) {
  switch (rc) {
  case MDB_SUCCESS:
    return {};
  case MDB_MAP_FULL:
  case ENOSPC:
  case EDQUOT:
    return store_errc::disk_full;
  case EIO:
  case MDB_PANIC:
    return store_errc::io_error;
  case MDB_CORRUPTED:
  case MDB_PAGE_NOTFOUND:
  case MDB_INVALID:
  case MDB_VERSION_MISMATCH:
    return store_errc::corrupt;
  case EACCES:
  case ENOENT:
  case EROFS:
  case EPERM:
    return store_errc::cannot_open;
  case EAGAIN:
  case EBUSY:
    return store_errc::locked;
  default:
    return store_errc::internal;
  }
}

MDB_val val(std::string_view bytes) {
  return MDB_val{bytes.size(), const_cast<char*>(bytes.data())};
}

std::string_view view(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// LMDB refuses an empty key: every key gets one leading byte, the same for all, so the order
// stays the order of the keys.
std::string prefixed(std::string_view key) {
  std::string k;
  k.reserve(key.size() + 9);
  k.push_back('k');
  k.append(key);
  return k;
}

std::string message_key(std::string_view client_id, std::uint64_t seq) {
  std::string key = prefixed(client_id);
  for (int shift = 56; shift >= 0; shift -= 8) {
    key.push_back(static_cast<char>(seq >> shift & 0xff));
  }
  return key;
}

std::string_view message_client(std::string_view key) {
  return key.substr(1, key.size() - 9);
}

std::uint64_t message_seq(std::string_view key) {
  std::uint64_t seq = 0;
  for (std::size_t i = key.size() - 8; i < key.size(); ++i) {
    seq = seq << 8 | static_cast<unsigned char>(key[i]);
  }
  return seq;
}

// Client id first, then the sequence number: each session's messages are one range.
int compare_messages(const MDB_val* a, const MDB_val* b) {
  const std::string_view ka = view(*a), kb = view(*b);
  if (const int c = message_client(ka).compare(message_client(kb)); c != 0) {
    return c;
  }
  const std::uint64_t sa = message_seq(ka), sb = message_seq(kb);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

class lmdb_engine final : public engine {
public:
  ~lmdb_engine() override {
    if (env_ != nullptr) {
      mdb_env_close(env_);
    }
  }

  bool open(const std::filesystem::path& dir, const options& opts, engine_open& result);
  std::error_code apply(std::span<const batch* const> batches) override;
  std::error_code load(record_visitor& visitor) override;

private:
  int apply_one(MDB_txn* txn, const batch::operation& op);
  bool fail(engine_open& result, int rc, const std::string& what) {
    result.error = to_error(rc);
    result.message = path_.string() + ": " + what + ": " + mdb_strerror(rc);
    return false;
  }

  std::filesystem::path path_;
  MDB_env* env_ = nullptr;
  MDB_dbi meta_ = 0, retained_ = 0, sessions_ = 0, messages_ = 0;
  std::size_t max_key_ = 511;
};

bool lmdb_engine::open(const std::filesystem::path& dir, const options& opts, engine_open& result) {
  path_ = dir / file_name;
  int rc = mdb_env_create(&env_);
  if (rc == MDB_SUCCESS) {
    rc = mdb_env_set_maxdbs(env_, 4);
  }
  if (rc == MDB_SUCCESS) {
    rc = mdb_env_set_mapsize(env_, opts.max_bytes > 0 ? opts.max_bytes : default_map_size);
  }
  if (rc == MDB_SUCCESS) {
    // NOTLS: the writer thread and the loading thread use transactions one after the other.
    rc = mdb_env_open(env_, path_.c_str(), MDB_NOSUBDIR | MDB_NOTLS, 0600);
  }
  if (rc != MDB_SUCCESS) {
    return fail(result, rc, "cannot open");
  }
  if (auto error = sync_dir(dir); !error.empty()) {
    result.error = store_errc::io_error;
    result.message = std::move(error);
    return false;
  }
  max_key_ = static_cast<std::size_t>(mdb_env_get_maxkeysize(env_));

  // A file shorter than its last page would fault (SIGBUS) when that page is read.
  MDB_envinfo info{};
  MDB_stat stat{};
  mdb_env_info(env_, &info);
  mdb_env_stat(env_, &stat);
  struct ::stat st {};
  if (::stat(path_.c_str(), &st) == 0 &&
      static_cast<std::uint64_t>(st.st_size) < (info.me_last_pgno + 1) * std::uint64_t{stat.ms_psize}) {
    result.error = store_errc::corrupt;
    result.message = path_.string() + ": damaged: the file is shorter than its last page (truncated)";
    return false;
  }

  MDB_txn* txn = nullptr;
  if (rc = mdb_txn_begin(env_, nullptr, 0, &txn); rc != MDB_SUCCESS) {
    return fail(result, rc, "cannot begin");
  }
  const std::pair<MDB_dbi*, const char*> dbs[] = {
      {&meta_, "meta"}, {&retained_, "retained"}, {&sessions_, "sessions"}, {&messages_, "session_messages"}};
  for (const auto& [dbi, name] : dbs) {
    if (rc = mdb_dbi_open(txn, name, MDB_CREATE, dbi); rc != MDB_SUCCESS) {
      mdb_txn_abort(txn);
      return fail(result, rc, std::string("cannot open table ") + name);
    }
  }
  mdb_set_compare(txn, messages_, compare_messages);
  if (rc = mdb_txn_commit(txn); rc != MDB_SUCCESS) {
    return fail(result, rc, "cannot create the tables");
  }
  return true;
}

int lmdb_engine::apply_one(MDB_txn* txn, const batch::operation& op) {
  using op_type = batch::op_type;
  auto put = [&](MDB_dbi dbi, std::string_view key) {
    if (key.size() > max_key_) {
      return MDB_BAD_VALSIZE;
    }
    MDB_val k = val(key), v = val(op.value);
    return mdb_put(txn, dbi, &k, &v, 0);
  };
  auto erase = [&](MDB_dbi dbi, std::string_view key) {
    if (key.size() > max_key_) {
      return MDB_SUCCESS; // cannot be there
    }
    MDB_val k = val(key);
    const int rc = mdb_del(txn, dbi, &k, nullptr);
    return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
  };
  switch (op.type) {
  case op_type::put_meta:
    return put(meta_, prefixed(op.key));
  case op_type::erase_meta:
    return erase(meta_, prefixed(op.key));
  case op_type::put_retained:
    return put(retained_, prefixed(op.key));
  case op_type::erase_retained:
    return erase(retained_, prefixed(op.key));
  case op_type::put_session:
    return put(sessions_, prefixed(op.key));
  case op_type::erase_session:
    return erase(sessions_, prefixed(op.key));
  case op_type::put_session_message:
    return put(messages_, message_key(op.key, op.seq));
  case op_type::erase_session_message:
    return erase(messages_, message_key(op.key, op.seq));
  case op_type::erase_session_and_messages:
    break;
  }
  if (const int rc = erase(sessions_, prefixed(op.key)); rc != MDB_SUCCESS) {
    return rc;
  }
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn, messages_, &cursor);
  if (rc != MDB_SUCCESS) {
    return rc;
  }
  const std::string first = message_key(op.key, 0);
  MDB_val k = val(first), v{};
  rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS && message_client(view(k)) == op.key) {
    if (rc = mdb_cursor_del(cursor, 0); rc == MDB_SUCCESS) {
      k = val(first);
      rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
    }
  }
  mdb_cursor_close(cursor);
  return rc == MDB_NOTFOUND || rc == MDB_SUCCESS ? MDB_SUCCESS : rc;
}

std::error_code lmdb_engine::apply(std::span<const batch* const> batches) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc != MDB_SUCCESS) {
    return to_error(rc);
  }
  for (const batch* b : batches) {
    for (const batch::operation& op : b->operations()) {
      if (rc = apply_one(txn, op); rc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        return to_error(rc);
      }
    }
  }
  return to_error(mdb_txn_commit(txn)); // frees the transaction, committed or not
}

std::error_code lmdb_engine::load(record_visitor& visitor) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != MDB_SUCCESS) {
    return to_error(rc);
  }
  std::array<MDB_cursor*, 4> cursors{};
  const std::array<MDB_dbi, 4> dbis{meta_, retained_, sessions_, messages_};
  for (std::size_t i = 0; rc == MDB_SUCCESS && i < cursors.size(); ++i) {
    rc = mdb_cursor_open(txn, dbis[i], &cursors[i]);
  }
  auto scan = [&](MDB_cursor* c, auto&& each) {
    MDB_val k{}, v{};
    int r = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (r == MDB_SUCCESS) {
      each(view(k), view(v));
      r = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    return r == MDB_NOTFOUND ? MDB_SUCCESS : r;
  };
  if (rc == MDB_SUCCESS) {
    rc = scan(cursors[0], [&](std::string_view k, std::string_view v) { visitor.meta(k.substr(1), v); });
  }
  if (rc == MDB_SUCCESS) {
    rc = scan(cursors[1], [&](std::string_view k, std::string_view v) { visitor.retained(k.substr(1), v); });
  }
  if (rc == MDB_SUCCESS) {
    MDB_val sk{}, sv{}, mk{}, mv{};
    int src = mdb_cursor_get(cursors[2], &sk, &sv, MDB_FIRST);
    int mrc = mdb_cursor_get(cursors[3], &mk, &mv, MDB_FIRST);
    while (src == MDB_SUCCESS || mrc == MDB_SUCCESS) {
      if (src == MDB_SUCCESS && (mrc != MDB_SUCCESS || view(sk).substr(1) <= message_client(view(mk)))) {
        visitor.session(view(sk).substr(1), view(sv));
        src = mdb_cursor_get(cursors[2], &sk, &sv, MDB_NEXT);
      } else {
        visitor.session_message(message_client(view(mk)), message_seq(view(mk)), view(mv));
        mrc = mdb_cursor_get(cursors[3], &mk, &mv, MDB_NEXT);
      }
    }
    rc = src != MDB_NOTFOUND ? src : mrc != MDB_NOTFOUND ? mrc : MDB_SUCCESS;
  }
  for (MDB_cursor* c : cursors) {
    if (c != nullptr) {
      mdb_cursor_close(c);
    }
  }
  mdb_txn_abort(txn);
  return to_error(rc);
}

} // namespace

engine_open open_lmdb(const std::filesystem::path& state_dir, const options& opts) {
  auto e = std::make_unique<lmdb_engine>();
  engine_open result;
  if (e->open(state_dir, opts, result)) {
    result.opened = std::move(e);
  }
  return result;
}

} // namespace firehook::store::detail

#pragma once
// The storage engine behind the store: one small interface between the writer thread and the
// embedded database (SQLite, sqlite_engine.cpp; LMDB was measured against it, docs/store.md).
// Internal to store/.
//
// Thread safety: none; the store serialises every call.

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <system_error>

#include "store/batch.hpp"
#include "store/record_visitor.hpp"
#include "store/store.hpp"

namespace firehook::store::detail {

class engine {
public:
  virtual ~engine() = default;
  // Applies every batch, in order, in one transaction that is durable when this returns {}.
  // On an error nothing of them was applied and the engine is ready for the next call.
  virtual std::error_code apply(std::span<const batch* const> batches) = 0;
  virtual std::error_code load(record_visitor& visitor) = 0;
};

struct engine_open {
  std::unique_ptr<engine> opened;
  std::error_code error;
  std::string message; // as open_result::message
};

// `opts` is already validated.
engine_open open_sqlite(const std::filesystem::path& state_dir, const options& opts);

// Creates `dir` and its missing parents with mode 0700, and syncs the parent of each folder it
// made so that the new folder survives a power loss. Returns an error message, or "".
std::string create_private_dir(const std::filesystem::path& dir);
// fsync(2) of a folder, so a file created in it survives a power loss. Returns an error message.
std::string sync_dir(const std::filesystem::path& dir);

} // namespace firehook::store::detail

#pragma once
// Errors of the durable store (category "firehook.store"). A completion, load() and open() report
// one of these; the engine's own code and message (SQLite's, LMDB's) are folded into them, and
// open() adds the message naming the file.

#include <system_error>

namespace firehook::store {

enum class store_errc {
  // 0 is reserved for "no error"
  disk_full = 1,   // the file system or the store's size limit is full: the batch was not applied
  io_error,        // reading or writing the file failed (EIO, a failed fsync): not applied
  corrupt,         // the file is damaged or is not a store
  cannot_open,     // the folder or file cannot be created or opened (permissions, missing folder)
  locked,          // another process has the store open
  too_new,         // written by a later firehook: its format is unknown here
  invalid_options, // an option out of range (open() names it)
  closed,          // submit() after close(): nothing was queued
  internal,        // any other engine failure (a bug here, or out of memory)
};

const std::error_category& store_category();

inline std::error_code make_error_code(store_errc e) {
  return {static_cast<int>(e), store_category()};
}

} // namespace firehook::store

template <>
struct std::is_error_code_enum<firehook::store::store_errc> : std::true_type {};

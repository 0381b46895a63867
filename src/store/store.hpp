#pragma once
// The durable store: the broker's state that must survive a restart or a crash (retained messages,
// sessions, their queued and in-flight QoS 1/2 messages), as the records of batch.hpp, in one
// folder (`state_dir`). See docs/store.md.
//
// Writing: any thread builds a `batch` and hands it to submit(), which only takes a short lock to
// queue it and never waits for the disk. One writer thread, owned by the store, takes everything
// queued since its last commit and applies it in one transaction, made durable (fsync) before it
// returns: group commit. Then it calls each batch's completion, in submit order, with {} or the
// error. A completion called with {} means the batch is on disk; with an error, that none of it was
// applied. A failed commit fails every batch of its group; later commits are tried afresh, so once
// a full disk has room again the store carries on, and nothing committed before is lost.
//
// Completions run on the writer thread. They must be short and must not throw (post to your own
// thread and return); they may call submit(), but not close() or the destructor.
//
// Reading: load() visits every record (record_visitor.hpp); it is meant for start-up, before the
// first submit (it holds the engine while it reads, so commits wait for it).
//
// Thread safety: submit() from any number of threads; load() from any one thread; close() and the
// destructor from a thread that is not the writer.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "store/batch.hpp"
#include "store/error.hpp"
#include "store/record_visitor.hpp"

namespace firehook::store {

namespace detail {
class engine;
}

enum class durability : std::uint8_t {
  // Commit as soon as something is queued: the writer commits, then takes what arrived meanwhile.
  // Latency of one fsync; batches share an fsync as load rises.
  sync,
  // Commit at most once every `options::interval`: fewer, larger commits, each still durable
  // before its completions run. Completions wait up to one interval longer.
  interval,
};

struct options {
  durability mode = durability::sync;
  std::chrono::milliseconds interval{10}; // interval mode only; must be > 0
  // The most store.db may grow to, in bytes (the write-ahead log is not counted); 0: as far as
  // the disk allows. Reaching it fails a commit with store_errc::disk_full, as a full disk does.
  std::uint64_t max_bytes = 0;
};

class store;

struct open_result {
  std::unique_ptr<store> opened; // null on error
  std::error_code error;
  // On error: what failed, naming the file. On success: what recovery did ("" when nothing),
  // e.g. an unfinished commit dropped from the end of the write-ahead log.
  std::string message;
};

class store {
public:
  using completion = std::function<void(std::error_code)>;

  // Opens the store in `state_dir`, creating the folder (mode 0700) and files (0600) when missing,
  // and starts the writer thread. A file that is damaged either recovers to its last consistent
  // commit (open_result::message says what was dropped) or fails with store_errc::corrupt and a
  // message naming the file; another process holding the store fails with store_errc::locked.
  static open_result open(const std::filesystem::path& state_dir, const options& opts = {});

  // close()
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  // Queues `b`; `done` (which may be empty) is called once, on the writer thread, after the
  // commit that carries it. Returns store_errc::closed, and then never calls `done`, when close()
  // has begun.
  std::error_code submit(batch b, completion done);

  // Visits every record (order: record_visitor.hpp). Errors: corrupt, io_error.
  std::error_code load(record_visitor& visitor);

  // Commits what is queued, runs its completions, stops the writer and closes the files.
  // Idempotent.
  void close();

  struct counters {
    std::uint64_t commits = 0;        // transactions tried
    std::uint64_t batches = 0;        // batches in them
    std::uint64_t failed_commits = 0; // transactions that failed (their batches were told)
  };
  // A snapshot; safe from any thread.
  counters stats() const;

private:
  struct pending {
    batch what;
    completion done;
  };

  store(std::unique_ptr<detail::engine> engine, const options& opts);
  void run();
  void commit(std::vector<pending>& group);

  const options options_;
  std::unique_ptr<detail::engine> engine_;
  std::mutex engine_mutex_; // guards engine_: held by the writer while it commits, by load()

  mutable std::mutex queue_mutex_; // guards queue_, stopping_, stats_
  std::condition_variable queue_changed_;
  std::vector<pending> queue_; // submitted, not yet taken by the writer; in submit order
  bool stopping_ = false;
  counters stats_;

  std::thread writer_;
};

} // namespace firehook::store

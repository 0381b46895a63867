#pragma once
// The audit log's writer: appends records to the current file with the chain of record.hpp, signs
// a checkpoint at an interval, rotates by size and by age (the chain goes on in the next file,
// whose file_start names the previous one), and keeps at most `keep_files` rotated files.
//
// Files: `file` is the current one ("audit.log"); a rotated file is renamed beside it to
// "audit-<UTC time>-<first seq>.log". On start the chain resumes from the last record of `file`
// (its seq and hash): a restart does not begin a new chain. A current file whose last line is not
// a complete record (a crash in the middle of a write) is rotated away as it is, so that
// `firehook audit verify` reports the damage instead of the broker hiding it.
//
// Durability: append() only buffers; write() hands the buffer to the kernel in one write(2) (the
// sink calls it every hub interval, ~20 ms), and checkpoints are followed by fdatasync. A failed
// write (disk full, I/O error) keeps the records, up to `max_pending_bytes`, and is tried again
// at the next write(); failing() says so meanwhile (audit.on_failure = "refuse" makes the broker
// refuse new connections then). Records over the bound are counted in lost() and recorded, with
// their count, once writing works again.
//
// Threads: one (the event hub's thread); failing() and lost() may be read from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "audit/record.hpp"

namespace firehook::audit {

struct log_options {
  std::filesystem::path file;                  // the current file
  std::uint64_t max_file_bytes = 64ULL << 20;  // rotate when the current file reaches it
  std::chrono::seconds max_file_age{86'400};   // ... or when it is this old; 0: never by age
  std::uint32_t keep_files = 30;               // rotated files kept (the oldest are removed)
  std::uint64_t max_pending_bytes = 16ULL << 20;
};

class audit_log {
public:
  // Opens (or creates) the file and resumes its chain. Throws std::runtime_error naming the file
  // when it cannot be opened or read.
  audit_log(log_options opts, signing_key key, std::chrono::system_clock::time_point now);
  ~audit_log();
  audit_log(const audit_log&) = delete;
  audit_log& operator=(const audit_log&) = delete;

  // One record with these JSON members (without braces).
  void append(std::string_view members, std::chrono::system_clock::time_point t);
  // A signed checkpoint, when records were added since the last one; then the file is synced.
  void checkpoint(std::chrono::system_clock::time_point now);
  // Hands what is buffered to the kernel; rotates when the file is full or old.
  void write(std::chrono::system_clock::time_point now);
  // At shutdown: a signed "stop" record, written and synced.
  void close(std::chrono::system_clock::time_point now);

  bool failing() const { return failing_.load(std::memory_order_relaxed); }
  // The same, as a flag other threads may hold on to (audit.on_failure = "refuse").
  const std::atomic<bool>& failing_flag() const { return failing_; }
  // Why the last write failed ("No space left on device"); the writer's thread only.
  const std::string& last_error() const { return last_error_; }
  std::uint64_t lost() const { return lost_.load(std::memory_order_relaxed); }
  std::uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  std::uint64_t next_seq() const { return seq_ + 1; }

private:
  void open_file(std::chrono::system_clock::time_point now, const std::string& previous_file);
  void add(std::string line);
  void add_signed(std::string_view members, std::chrono::system_clock::time_point now);
  bool flush_pending();
  void rotate(std::chrono::system_clock::time_point now);
  void remove_old_files();
  void report_lost(std::chrono::system_clock::time_point now);

  const log_options opts_;
  const signing_key key_;
  int fd_ = -1;
  std::uint64_t seq_ = 0;
  std::string prev_{genesis_hash};
  std::string pending_;
  std::uint64_t file_bytes_ = 0;
  std::chrono::system_clock::time_point file_started_;
  std::uint64_t file_first_seq_ = 1;
  std::uint64_t since_checkpoint_ = 0; // unsigned records since the last signed one
  std::uint64_t pending_records_ = 0;
  std::uint64_t lost_unreported_ = 0;
  std::string last_error_;
  std::atomic<bool> failing_{false};
  std::atomic<std::uint64_t> lost_{0};
  std::atomic<std::uint64_t> written_{0};
};

} // namespace firehook::audit

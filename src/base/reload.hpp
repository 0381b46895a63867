#pragma once
// One mechanism for everything the broker reads from files and can read again without a restart
// (TLS material and CRLs, token keys and JWKS, the topics file): change detection, validation,
// atomic swap, and one result type, which the broker turns into one `reload` event.
//
// A `reloadable` names the files it reads and knows how to load them; reload() decides whether
// to: when one of the files looks different from the last look (a new inode, size or
// modification time), or always when forced (SIGHUP, later the admin API). The new version is
// loaded and validated in full before it replaces the one in force; a version that fails keeps
// the old one and says why. The files are looked at before they are read, so a change made while
// reading is seen at the next look, and a broken version is reported once, not at every look.
//
// Thread safety: reload() may be called from any thread; one reload of an object runs at a time
// (a mutex guards the stamps). What the derived class swaps in is guarded by its own means.

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

namespace firehook::base {

// How a file looked: what tells a changed file. A new inode (replaced by a rename, as key and
// certificate rotation should do it), or a new size or modification time (edited in place; an edit
// that keeps the size within the file system's timestamp granularity, a few ms, goes unseen until
// the next change or a forced reload). A missing file is a stamp too (exists = false).
struct file_stamp {
  bool exists = false;
  std::uint64_t device = 0, inode = 0, size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const file_stamp&) const = default;

  static file_stamp of(const std::filesystem::path& file);
};

struct reload_result {
  enum class outcome : std::uint8_t {
    unchanged, // no file changed and the reload was not forced: nothing was read
    applied,   // the new version is in force
    refused,   // the new version is unusable; the previous one stays in force
  };
  outcome what = outcome::unchanged;
  std::string subject; // what was reloaded: "topics file /etc/firehook/topics.toml"
  std::string detail;  // applied: what is in force now ("12 verification keys"); refused: why
  std::vector<std::filesystem::path> changed; // the files that changed since the last look
};

class reloadable {
public:
  explicit reloadable(std::string subject) : subject_(std::move(subject)) {}
  virtual ~reloadable() = default;
  reloadable(const reloadable&) = delete;
  reloadable& operator=(const reloadable&) = delete;

  // Loads the files again when one changed since the last look, or always when `force`.
  reload_result reload(bool force);

  const std::string& subject() const { return subject_; }
  // What the version in force holds, as reload() said when it was applied (or the first load).
  std::string in_force() const;

protected:
  // The first load, from the derived class's constructor (where its load() is callable): stamps
  // the files, then loads. Exceptions from load() pass through: at start-up a file that cannot be
  // used is an error, not a refused reload.
  void load_first();

  // The files whose change means a reload. Must not change over the object's life.
  virtual std::vector<std::filesystem::path> watched_files() const = 0;
  // Reads and validates every file, then swaps the new version in. Throws std::exception with the
  // reason (naming the file) when anything is unusable, and then changes nothing. Returns what is
  // in force now, for the event.
  virtual std::string load() = 0;

private:
  std::vector<file_stamp> stamps() const;

  const std::string subject_;
  mutable std::mutex mutex_;      // one reload at a time; guards seen_ and in_force_
  std::vector<file_stamp> seen_;  // the files as they were at the last look
  std::string in_force_;
};

} // namespace firehook::base

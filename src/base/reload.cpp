#include "base/reload.hpp"

#include <sys/stat.h>

#include <exception>

namespace firehook::base {

file_stamp file_stamp::of(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return {};
  }
  file_stamp s;
  s.exists = true;
  s.device = static_cast<std::uint64_t>(st.st_dev);
  s.inode = static_cast<std::uint64_t>(st.st_ino);
  s.size = static_cast<std::uint64_t>(st.st_size);
  s.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  return s;
}

std::vector<file_stamp> reloadable::stamps() const {
  std::vector<file_stamp> out;
  for (const auto& file : watched_files()) {
    out.push_back(file_stamp::of(file));
  }
  return out;
}

void reloadable::load_first() {
  const std::lock_guard lock(mutex_);
  seen_ = stamps();
  in_force_ = load();
}

reload_result reloadable::reload(bool force) {
  const std::lock_guard lock(mutex_);
  reload_result r{reload_result::outcome::unchanged, subject_, {}, {}};
  auto now = stamps();
  if (!force && now == seen_) {
    return r;
  }
  const auto files = watched_files();
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (i >= seen_.size() || now[i] != seen_[i]) {
      r.changed.push_back(files[i]);
    }
  }
  seen_ = std::move(now); // a broken version is reported once, not at every look
  try {
    in_force_ = load();
    r.what = reload_result::outcome::applied;
    r.detail = in_force_;
  } catch (const std::exception& e) {
    r.what = reload_result::outcome::refused;
    r.detail = e.what();
  }
  return r;
}

std::string reloadable::in_force() const {
  const std::lock_guard lock(mutex_);
  return in_force_;
}

} // namespace firehook::base

// Folder helpers shared by the engines (declared in engine.hpp).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "store/engine.hpp"

namespace firehook::store::detail {

std::string sync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return "cannot open folder " + dir.string() + ": " + std::generic_category().message(errno);
  }
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (rc != 0) {
    return "cannot sync folder " + dir.string() + ": " + std::generic_category().message(error);
  }
  return {};
}

std::string create_private_dir(const std::filesystem::path& dir) {
  std::filesystem::path partial;
  for (const auto& part : dir) {
    partial /= part;
    if (::mkdir(partial.c_str(), 0700) == 0) {
      const std::filesystem::path parent = partial.has_relative_path() ? partial.parent_path() : partial;
      if (auto error = sync_dir(parent.empty() ? "." : parent); !error.empty()) {
        return error;
      }
      continue;
    }
    const int error = errno;
    // mkdir may report EACCES or EROFS for a folder that exists ("/", a read-only mount): only a
    // folder that is really missing is an error.
    struct stat st {};
    if (::stat(partial.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      continue;
    }
    return "cannot create folder " + partial.string() + ": " + std::generic_category().message(error);
  }
  return {};
}

} // namespace firehook::store::detail

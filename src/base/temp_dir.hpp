#pragma once
// A temporary folder for tests: made with mkdtemp(3) under the system's temporary directory and
// removed, with everything in it, when the object goes. Not copyable; the constructor throws
// std::runtime_error when the folder cannot be made.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace firehook::base {

class temp_dir {
public:
  // `prefix` names the folder (e.g. "firehook-store"), so leftovers of a crashed test say whose they are.
  explicit temp_dir(std::string_view prefix) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp " + pattern + ": " + std::generic_category().message(errno));
    }
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::filesystem::path& name) const { return path_ / name; }

  // Writes `content` to the file `name` in the folder, replacing it; returns its path.
  std::filesystem::path write(const std::filesystem::path& name, std::string_view content) const {
    const auto file = path_ / name;
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out.flush()) {
      throw std::runtime_error("cannot write " + file.string());
    }
    return file;
  }

private:
  std::filesystem::path path_;
};

} // namespace firehook::base

#pragma once
// The admin endpoint's bearer tokens: a file of "NAME SHA256-HEX" lines (mode 0600), one per
// token, written by `firehook admin token add|remove` and read by the endpoint. Only the SHA-256
// of a token is stored: tokens are 256 random bits, so a fast hash is enough (no password
// stretching needed), and the file alone does not let anyone in.
//
// The file is a base::reloadable: the broker's reload mechanism picks up a token added or removed
// while it runs (within a second, or on SIGHUP). A missing file is an empty set.
//
// Threads: who() from any thread (the set is swapped whole under a mutex); the file functions are
// for the command line.

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/reload.hpp"

namespace firehook::admin {

class token_store final : public base::reloadable {
public:
  // Throws std::runtime_error naming the file and line when it exists but cannot be used.
  explicit token_store(std::filesystem::path file);

  // The name of the token `bearer`, or nullopt when it is none of them (compared in constant time).
  std::optional<std::string> who(std::string_view bearer) const;

  // Command line: a new random token named `name` (a name already there is an error), appended to
  // the file; returns the token, which is shown once and never stored.
  static std::string add(const std::filesystem::path& file, const std::string& name);
  // Removes the token named `name`; false when there is none.
  static bool remove(const std::filesystem::path& file, const std::string& name);
  static std::vector<std::string> names(const std::filesystem::path& file);

private:
  using table = std::map<std::string, std::string>; // hash hex -> name
  std::vector<std::filesystem::path> watched_files() const override { return {file_}; }
  std::string load() override;
  static table read(const std::filesystem::path& file); // throws

  const std::filesystem::path file_;
  mutable std::mutex mutex_; // guards tokens_
  std::shared_ptr<const table> tokens_;
};

} // namespace firehook::admin

#pragma once
// The topics file as the running broker uses it: compiled into a topic_policy, watched, and
// swapped for a new one when a reload brings a valid version (base/reload.hpp). A file with
// errors never replaces the policy in force.
//
// Thread safety: current() from any thread; the pointer is swapped under a mutex, a policy is
// never changed in place, so a session keeps using the one it got until it asks again.

#include <filesystem>
#include <memory>
#include <mutex>

#include "base/reload.hpp"
#include "security/topic_policy.hpp"

namespace firehook::security {

class policy_file final : public base::reloadable {
public:
  // Loads and compiles the file. Throws std::runtime_error with every error, each naming the file,
  // line and key, when it is not usable.
  explicit policy_file(std::filesystem::path path);

  std::shared_ptr<const topic_policy> current() const;

private:
  std::vector<std::filesystem::path> watched_files() const override { return {path_}; }
  std::string load() override;

  const std::filesystem::path path_;
  mutable std::mutex mutex_; // guards policy_
  std::shared_ptr<const topic_policy> policy_;
};

} // namespace firehook::security

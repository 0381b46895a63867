#include "security/policy_file.hpp"

#include <stdexcept>

#include "config/topics.hpp"

namespace firehook::security {

policy_file::policy_file(std::filesystem::path path)
    : reloadable("topics file " + path.string()), path_(std::move(path)) {
  load_first();
}

std::shared_ptr<const topic_policy> policy_file::current() const {
  const std::lock_guard lock(mutex_);
  return policy_;
}

std::string policy_file::load() {
  const auto loaded = config::load_topics_file(path_);
  if (!loaded.ok()) {
    std::string error = "topics file " + path_.string() + " not loaded:";
    for (const auto& d : loaded.diagnostics) {
      if (!d.warning) {
        error += "\n  " + d.to_string();
      }
    }
    throw std::runtime_error(error);
  }
  auto compiled = topic_policy::compile(loaded.topics);
  {
    const std::lock_guard lock(mutex_);
    policy_ = std::move(compiled);
  }
  return std::to_string(loaded.topics->topics.size()) + " topics, " +
         std::to_string(loaded.topics->roles.size()) + " roles, " +
         std::to_string(loaded.topics->denies.size()) + " deny rules";
}

} // namespace firehook::security

#include "security/auth_factory.hpp"

#include <vector>

namespace firehook::security {

std::map<std::string, std::shared_ptr<const auth_chain>, std::less<>>
make_auth_chains(const config::config& cfg) {
  std::map<std::string, std::shared_ptr<const auth_chain>, std::less<>> chains;
  for (const auto& l : cfg.listeners) {
    std::vector<std::shared_ptr<const authenticator>> methods;
    chains.emplace(l.name, std::make_shared<const auth_chain>(std::move(methods), l.allow_anonymous));
  }
  return chains;
}

} // namespace firehook::security

#pragma once
// Builds each listener's authentication chain from the configuration: the methods the listener's
// `auth` list names, in that order, with its allow_anonymous switch. One instance of each method
// is shared by every listener that names it (one credential store connection, one key set), and a
// method no listener names is not started at all.
//
// Start-up only: throws std::runtime_error (or a registry error, derived from it) naming the file
// when a method cannot start (the credential store cannot be opened, a key file cannot be read).

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "security/authenticator.hpp"

namespace firehook::security {

class jwt_authenticator;

struct auth_methods {
  std::map<std::string, std::shared_ptr<const auth_chain>, std::less<>> by_listener;
  // Set when a listener uses tokens: its keys are reloaded on SIGHUP (reload()).
  std::shared_ptr<const jwt_authenticator> jwt;

  // Rereads what the methods read from files (token keys). nullopt when all went well, otherwise
  // why not; the previous keys stay in use.
  std::optional<std::string> reload() const;
};

// `log` receives one line per notable event of a method (keys reloaded, a reload refused).
auth_methods make_auth_methods(const config::config& cfg, std::function<void(std::string_view)> log);

} // namespace firehook::security

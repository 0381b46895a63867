#pragma once
// Builds each listener's authentication chain from the configuration: the methods the listener's
// `auth` list names, in that order, with its allow_anonymous switch. One instance of each method
// is shared by every listener that names it (one credential store connection, one key set), and a
// method no listener names is not started at all.
//
// Start-up only: throws std::runtime_error (or a registry error, derived from it) naming the file
// when a method cannot start (the credential store cannot be opened, a key file cannot be read).

#include <map>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "security/authenticator.hpp"

namespace firehook::security {

class jwt_authenticator;

struct auth_methods {
  std::map<std::string, std::shared_ptr<const auth_chain>, std::less<>> by_listener;
  // Set when a listener uses tokens: its key files are watched and reloaded (base::reloadable).
  std::shared_ptr<jwt_authenticator> jwt;
};

auth_methods make_auth_methods(const config::config& cfg);

} // namespace firehook::security

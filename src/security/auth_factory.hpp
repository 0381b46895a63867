#pragma once
// Builds each listener's authentication chain from the configuration: the methods the listener's
// `auth` list names, in that order, with its allow_anonymous switch. One instance of each method
// is shared by every listener that names it (one credential store connection, one key set).
//
// Start-up and reload only: throws std::runtime_error naming the file when a method cannot start
// (the credential store cannot be opened, a key file cannot be read).

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "security/authenticator.hpp"

namespace firehook::security {

std::map<std::string, std::shared_ptr<const auth_chain>, std::less<>>
make_auth_chains(const config::config& cfg);

} // namespace firehook::security

#pragma once
// The configuration a command-line tool works on: the file -c names, or the defaults without one.

#include <iosfwd>
#include <memory>
#include <string>

#include "config/config.hpp"

namespace firehook::app {

// Null after printing the file's diagnostics to `err` when it has errors.
std::shared_ptr<const config::config> command_config(const std::string& path, std::ostream& err);

} // namespace firehook::app

#pragma once
// `firehook audit -c firehook.toml`: the security posture report. Reads a configuration, its
// topics file and the certificates it names, and lists the risks the setup leaves open, each with
// its severity, where it is (file:line:column and key where there is one) and the fix. The threat
// model it checks against opens docs/security.md; docs/audit.md lists every check.
//
// Exit status (audit_command): 1 when a risk of high severity is found, so that it can gate a
// deployment; 0 otherwise (medium and low risks are printed).

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace firehook::app {

enum class severity : std::uint8_t { low, medium, high };

struct risk {
  severity level = severity::medium;
  config::diagnostic where; // file, line, column, key; message = what is wrong
  std::string fix;
};

// `now` decides what expires soon (30 days).
std::vector<risk> assess(const config::config& cfg, const std::filesystem::path& config_path,
                         std::chrono::system_clock::time_point now);

// "HIGH  firehook.toml:12:3: listener[1].allow_anonymous: ...\n      fix: ...".
std::string to_string(const risk& r);

} // namespace firehook::app

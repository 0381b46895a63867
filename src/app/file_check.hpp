#pragma once
// `firehook check` beyond the configuration's syntax: opens every file the configuration names,
// as `serve` would, and reports what it cannot read or use, each at the key that names the file
// (file:line:column: key: problem). Nothing is created or changed: a file that `serve` would
// create (the credential store, the audit log and its key, state_dir) is checked for a folder it
// could be created in.
//
//   listener[i].tls.cert/key/ca/crl   loaded into a TLS context, as the listener would
//   auth.jwt.public_keys/jwks/hmac_secret_file   loaded as the token method would
//   broker.state_dir, auth.password.database, audit.file, audit.key_file

#include <filesystem>
#include <vector>

#include "config/config.hpp"

namespace firehook::app {

std::vector<config::diagnostic> check_files(const config::config& cfg, const std::filesystem::path& config_path);

} // namespace firehook::app

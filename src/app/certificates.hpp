#pragma once
// The TLS certificates the broker serves with, as the files are now.

#include <vector>

#include "audit/certificate_expiry.hpp"
#include "config/config.hpp"

namespace firehook::app {

// The server certificate (the first of its chain file) and every certificate of the CA bundle of
// each TLS listener of `cfg`, and of the admin endpoint (listener "admin"), read from the files as
// they are now (they may have been replaced since the start): for the expiry metric and the
// certificate_expiry alert. A file that cannot be read now is left out (the reload event and
// `firehook check` say why).
std::vector<audit::listener_certificate> listener_certificates(const config::config& cfg);

} // namespace firehook::app

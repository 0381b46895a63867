#pragma once
// The audit log in the application: opening it for `serve`, `firehook audit verify|query`, and
// the security posture report (`firehook audit -c FILE`, posture.hpp).
//
//   firehook audit [-c FILE]                       # the posture report; exit 1 on a high risk
//   firehook audit verify [-c FILE] [--public-key FILE] [AUDIT_FILE...]
//   firehook audit query  [-c FILE] [--since T] [--until T] [--event E] [--client-id C]
//                         [--identity I] [--peer ADDR] [AUDIT_FILE...]
//
// Without AUDIT_FILE: every file of the audit log the configuration -c names (the current one and
// the rotated ones beside it; default state/audit/). verify checks against --public-key, else the
// `.pub` beside the configured signing key when there is one. Exit codes: verify 0 when the chain
// and every signature are intact, 1 with the first bad record named; query 0 (1 on an unreadable
// file or configuration).

#include <chrono>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "audit/audit_sink.hpp"

namespace firehook::config {
struct audit_settings;
struct config;
}
namespace firehook::broker {
class broker;
}

namespace firehook::app {

// The sinks `serve` adds to the event stream of `b` for [audit] and [alerts]: the audit log (also
// the broker's refusal of connections while it cannot be written, with on_failure = "refuse"),
// the detectors (certificate expiry included), and the alerts' $SYS topic and webhook. Returns the
// audit log's sink, null when it is off. Throws std::runtime_error naming the file when the key,
// the log, the webhook's token file or its CA bundle cannot be opened.
std::shared_ptr<audit::audit_sink> add_audit_sinks(const config::config& cfg, broker::broker& b);

class audit_command {
public:
  // Adds the `audit` subcommand to `app`, which must outlive this object (it must not move).
  explicit audit_command(CLI::App& app);
  audit_command(const audit_command&) = delete;
  audit_command& operator=(const audit_command&) = delete;

  bool parsed() const;
  int run(std::ostream& out, std::ostream& err);

private:
  int posture(const config::config& cfg, std::ostream& out) const;

  CLI::App* audit_ = nullptr;
  CLI::App* verify_ = nullptr;
  CLI::App* query_ = nullptr;
  std::string config_path_;
  std::string public_key_;
  std::vector<std::string> files_;
  std::string since_, until_, event_, client_id_, identity_, peer_;
};

} // namespace firehook::app

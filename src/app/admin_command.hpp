#pragma once
// The admin endpoint in the application: starting it for `serve`, and its tokens on the command line.
//
//   firehook admin [-c FILE] token add NAME      # prints a new token once; only its hash is kept
//   firehook admin [-c FILE] token remove NAME
//   firehook admin [-c FILE] token list
//
// The tokens file is [admin] tokens_file of the configuration -c (default <state_dir>/admin-tokens).
// A running broker picks up added and removed tokens within a second. Exit codes: 0 done, 1 error.

#include <iosfwd>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

namespace firehook::broker {
class broker;
}
namespace firehook::config {
struct config;
}
namespace firehook::audit {
class audit_sink;
}
namespace firehook::admin {
class token_store;
class event_counts;
class admin_server;
}

namespace firehook::app {

// The endpoint of cfg.admin (which must be set). Construct before the event hub starts (its counts
// are a sink of the event stream) and before the server runs (its token store joins the broker's
// reloads, and so does its TLS material); start() once the MQTT listeners are bound. Throws
// std::runtime_error naming the tokens file or a TLS file, or (start) the address.
class admin_endpoint {
public:
  admin_endpoint(const config::config& cfg, broker::broker& b, std::shared_ptr<const audit::audit_sink> audit_log);
  ~admin_endpoint(); // stops it
  admin_endpoint(const admin_endpoint&) = delete;
  admin_endpoint& operator=(const admin_endpoint&) = delete;

  // Binds and serves; prints the "firehook: listener "admin" http on ADDR:PORT" line (https with
  // [admin.tls]).
  void start();

private:
  std::string address_;
  const char* scheme_ = "http";
  std::shared_ptr<admin::token_store> tokens_;
  std::shared_ptr<admin::event_counts> counts_;
  std::unique_ptr<admin::admin_server> server_;
};

class admin_command {
public:
  explicit admin_command(CLI::App& app);
  admin_command(const admin_command&) = delete;
  admin_command& operator=(const admin_command&) = delete;

  bool parsed() const;
  int run(std::ostream& out, std::ostream& err);

private:
  CLI::App* admin_ = nullptr;
  CLI::App* add_ = nullptr;
  CLI::App* remove_ = nullptr;
  CLI::App* list_ = nullptr;
  std::string config_path_;
  std::string name_;
};

} // namespace firehook::app

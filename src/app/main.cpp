// firehook: the command line. `serve` runs the broker, `check` validates a configuration.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "app/admin_command.hpp"
#include "app/audit_command.hpp"
#include "app/ban_command.hpp"
#include "app/ca_command.hpp"
#include "app/device_command.hpp"
#include "app/file_check.hpp"
#include "app/logging.hpp"
#include "app/topics_command.hpp"
#include "app/user_command.hpp"
#include "base/clock.hpp"
#include "broker/broker.hpp"
#include "config/config.hpp"
#include "net/server.hpp"

namespace {

using namespace firehook;

// Prints every diagnostic; true when none of them is an error.
bool report(const config::load_result& r) {
  for (const auto& d : r.diagnostics) {
    std::cerr << d.to_string() << '\n';
  }
  return r.ok();
}

config::load_result load(const std::string& path) {
  if (path.empty()) {
    // No configuration at all: the documented defaults, which listen on loopback only.
    config::load_result r;
    r.cfg = std::make_shared<const config::config>(config::defaults());
    return r;
  }
  return config::load_file(path);
}

// Diagnostics printed by `report`, as log lines: in JSON mode they must be JSON too.
void log_lines(const std::string& text) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    spdlog::log(line.find(": warning: ") != std::string::npos ? spdlog::level::warn : spdlog::level::err,
                "{}", line);
  }
}

void add_log_sink(const config::config& cfg, broker::broker& b, audit::log_sink::writer write_event) {
  audit::log_sink::options o;
  o.fmt = cfg.log.format == config::log_format::json ? audit::log_sink::format::json
                                                     : audit::log_sink::format::text;
  o.window = cfg.log.repeat_window;
  o.min_level = app::event_level(cfg.log.level);
  o.max_lines_per_second = cfg.log.max_event_lines_per_second;
  b.events().add_sink(std::make_shared<audit::log_sink>(o, std::move(write_event)));
}

// Scripts and tests read these lines to learn the ports (a configured port 0 becomes a real one).
void print_listeners(const std::vector<net::bound_listener>& bound) {
  for (const auto& l : bound) {
    const bool v6 = l.address.find(':') != std::string::npos;
    std::printf("firehook: listener \"%s\" %s on %s%s%s:%u\n", l.name.c_str(), l.protocol.c_str(),
                v6 ? "[" : "", l.address.c_str(), v6 ? "]" : "", static_cast<unsigned>(l.port));
  }
  std::fflush(stdout);
}

int serve(const std::string& path) {
  auto loaded = load(path);
  if (!loaded.ok()) {
    report(loaded); // the log's format is not known: plain lines
    return 1;
  }
  const auto& cfg = loaded.cfg;
  auto write_event = app::setup_logging(cfg->log);
  for (const auto& d : loaded.diagnostics) {
    spdlog::warn("{}", d.to_string());
  }
  unsigned shards = cfg->broker.shards;
  if (shards == 0) {
    shards = std::max(1u, std::thread::hardware_concurrency());
  }
  if (cfg->topics.empty()) {
    spdlog::warn("no topics file (`topics` in the configuration): every client may publish and subscribe to "
                 "every topic");
  } else {
    std::ostringstream diagnostics;
    const bool ok = firehook::app::report_topics_file(*cfg, diagnostics);
    log_lines(diagnostics.str());
    if (!ok) {
      return 1;
    }
  }
  base::steady_clock clock;
  std::unique_ptr<broker::broker> owner;
  try {
    owner = std::make_unique<broker::broker>(cfg, shards, clock);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  broker::broker& b = *owner;
  try {
    b.bans().open(cfg->broker.state_dir / "bans.db");
  } catch (const std::exception& e) {
    spdlog::error("bans: {}", e.what());
    return 1;
  }
  add_log_sink(*cfg, b, std::move(write_event));
  std::shared_ptr<audit::audit_sink> audit_log;
  try {
    audit_log = app::add_audit_sinks(*cfg, b);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  std::unique_ptr<app::admin_endpoint> admin;
  if (cfg->admin) {
    try {
      admin = std::make_unique<app::admin_endpoint>(*cfg, b, audit_log);
    } catch (const std::exception& e) {
      spdlog::error("admin endpoint: {}", e.what());
      return 1;
    }
  }
  b.events().start();
  net::server server(cfg, b, shards);
  std::vector<net::bound_listener> bound;
  try {
    const auto restored = b.restore();
    if (b.durable() != nullptr) {
      spdlog::info(
          "durable store {}: {} retained message(s), {} session(s) with {} queued message(s) "
          "restored{}",
          (cfg->broker.state_dir / "store").string(), restored.retained, restored.sessions, restored.messages,
          restored.unreadable == 0 ? std::string()
                                   : fmt::format("; {} unreadable record(s) left out", restored.unreadable));
    }
    bound = server.start();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  print_listeners(bound);
  if (admin) {
    try {
      admin->start();
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      return 1;
    }
  }
  spdlog::info("firehook {} started with {} shard(s)", FIREHOOK_VERSION, shards);
  server.run();
  b.close_store();   // what the shards wrote last is on disk before the process ends
  admin.reset();     // no admin_request after the event stream stops
  b.events().stop(); // what the shards emitted last reaches the log before the line below
  spdlog::info("stopped");
  return 0;
}

int check(const std::string& path) {
  auto loaded = config::load_file(path);
  if (!report(loaded)) {
    return 1;
  }
  if (loaded.cfg->topics.empty()) {
    std::cerr << path
              << ": warning: topics: no topics file, so every client may publish and subscribe to every "
                 "topic\n";
  } else if (!firehook::app::report_topics_file(*loaded.cfg, std::cerr)) {
    return 1;
  }
  // The files it names, opened as `serve` would: a missing certificate is found here, not at start.
  const auto problems = firehook::app::check_files(*loaded.cfg, path);
  for (const auto& d : problems) {
    std::cerr << d.to_string() << '\n';
  }
  if (!problems.empty()) {
    return 1;
  }
  std::cout << path << ": ok\n";
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"Firehook, a secure-by-default MQTT broker"};
  app.require_subcommand(1);
  std::string config_path;

  auto* serve_cmd = app.add_subcommand("serve", "run the broker");
  serve_cmd->add_option("-c,--config", config_path, "configuration file (TOML); without one, the defaults")
      ->check(CLI::ExistingFile);

  std::string check_path;
  auto* check_cmd =
      app.add_subcommand("check", "validate a configuration file and report errors with file:line");
  check_cmd->add_option("-c,--config", check_path, "configuration file (TOML)")->required();

  app.add_subcommand("version", "print the version");
  firehook::app::user_command user_cmd(app);
  firehook::app::topics_command topics_cmd(app);
  firehook::app::audit_command audit_cmd(app);
  firehook::app::admin_command admin_cmd(app);
  firehook::app::ban_command ban_cmd(app);
  firehook::app::ca_command ca_cmd(app);
  firehook::app::device_command device_cmd(app);

  CLI11_PARSE(app, argc, argv);
  if (serve_cmd->parsed()) {
    return serve(config_path);
  }
  if (check_cmd->parsed()) {
    return check(check_path);
  }
  if (user_cmd.parsed()) {
    return user_cmd.run(std::cin, std::cout, std::cerr);
  }
  if (ban_cmd.parsed()) {
    return ban_cmd.run(std::cout, std::cerr);
  }
  if (ca_cmd.parsed()) {
    return ca_cmd.run(std::cout, std::cerr);
  }
  if (device_cmd.parsed()) {
    return device_cmd.run(std::cout, std::cerr);
  }
  if (admin_cmd.parsed()) {
    return admin_cmd.run(std::cout, std::cerr);
  }
  if (audit_cmd.parsed()) {
    return audit_cmd.run(std::cout, std::cerr);
  }
  if (topics_cmd.parsed()) {
    return topics_cmd.run();
  }
  std::cout << "firehook " << FIREHOOK_VERSION << '\n';
  return 0;
}

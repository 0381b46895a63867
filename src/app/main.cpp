// firehook: the command line. `serve` runs the broker, `check` validates a configuration.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>

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

// Every authentication decision, one line each with key=value fields (the audit log builds on
// these events). Client-chosen text is quoted and escaped ({:?}) so it cannot forge a log line.
// Denials are warnings: operators watch them for stolen or guessed credentials.
void log_auth_event(const broker::auth_event& e) {
  const auto level = e.allowed ? spdlog::level::info : spdlog::level::warn;
  spdlog::log(level,
              "auth: {} listener={} peer={} client_id={:?} username={:?} method={} identity={:?} "
              "reason=0x{:02X} detail={:?}",
              e.allowed ? "allow" : "deny", e.listener, e.peer_address, e.client_id, e.username,
              e.method.empty() ? "-" : e.method, e.identity, static_cast<unsigned>(e.reason), e.detail);
}

void setup_logging(const config::log_settings& log) {
  auto logger = spdlog::stderr_color_mt("firehook");
  spdlog::set_default_logger(logger);
  if (log.format == config::log_format::json) {
    spdlog::set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","thread":%t,"message":"%v"})");
  } else {
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  }
  static constexpr spdlog::level::level_enum levels[] = {spdlog::level::trace, spdlog::level::debug,
                                                         spdlog::level::info,  spdlog::level::warn,
                                                         spdlog::level::err,   spdlog::level::off};
  spdlog::set_level(levels[static_cast<int>(log.level)]);
}

int serve(const std::string& path) {
  auto loaded = load(path);
  if (!report(loaded)) {
    return 1;
  }
  const auto& cfg = loaded.cfg;
  setup_logging(cfg->log);
  unsigned shards = cfg->broker.shards;
  if (shards == 0) {
    shards = std::max(1u, std::thread::hardware_concurrency());
  }
  if (cfg->topics.empty()) {
    spdlog::warn("no topics file (`topics` in the configuration): every client may publish and subscribe to "
                 "every topic");
  } else if (!firehook::app::report_topics_file(*cfg, std::cerr)) {
    return 1;
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
  b.set_auth_hook(log_auth_event);
  // Dropped messages (rate-limited by the shards), token keys reloaded or refused.
  b.set_log_hook([](std::string_view line, bool warning) {
    spdlog::log(warning ? spdlog::level::warn : spdlog::level::info, "{}", line);
  });
  net::server server(cfg, b, shards);
  std::vector<net::bound_listener> bound;
  try {
    bound = server.start();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  for (const auto& l : bound) {
    bool v6 = l.address.find(':') != std::string::npos;
    // Scripts and tests read this line to learn the port (a configured port 0 becomes a real one).
    std::printf("firehook: listener \"%s\" %s on %s%s%s:%u\n", l.name.c_str(), l.protocol.c_str(),
                v6 ? "[" : "", l.address.c_str(), v6 ? "]" : "", static_cast<unsigned>(l.port));
  }
  std::fflush(stdout);
  spdlog::info("firehook {} started with {} shard(s)", FIREHOOK_VERSION, shards);
  server.run();
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
  if (topics_cmd.parsed()) {
    return topics_cmd.run();
  }
  std::cout << "firehook " << FIREHOOK_VERSION << '\n';
  return 0;
}

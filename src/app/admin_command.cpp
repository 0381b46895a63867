#include "app/admin_command.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include "admin/metrics.hpp"
#include "admin/server.hpp"
#include "admin/tokens.hpp"
#include "app/ban_command.hpp"
#include "app/device_command.hpp"
#include "app/certificates.hpp"
#include "app/command_config.hpp"
#include "audit/audit_sink.hpp"
#include "broker/broker.hpp"
#include "config/config.hpp"
#include "tls/tls.hpp"

namespace firehook::app {

namespace {

// What the process holds: resident memory and open descriptors (Linux /proc).
void append_process_metrics(std::string& out) {
  long pages = 0, resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) {
      resident = 0;
    }
    std::fclose(f);
  }
  admin::append_metric(out, "firehook_process_resident_bytes", "gauge",
                       "resident memory of the broker process",
                       static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)));
  // Since Linux 6.2 the size of /proc/self/fd is the number of open descriptors: one stat. Listing
  // the folder (older kernels) costs about 2 µs per descriptor, 20 ms with 10,000 clients.
  std::size_t fds = 0;
  struct stat st {};
  if (::stat("/proc/self/fd", &st) == 0 && st.st_size > 0) {
    fds = static_cast<std::size_t>(st.st_size);
  } else {
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      ++fds;
    }
  }
  admin::append_metric(out, "firehook_process_open_fds", "gauge",
                       "open file descriptors of the broker process", static_cast<double>(fds));
}

// When each server and CA certificate of the TLS listeners (the admin endpoint's too, as listener
// "admin") expires, read from the files at each scrape (they may have been replaced since the
// start), for an alert well before it happens.
void append_certificate_expiry(std::string& out, const config::config& cfg) {
  out +=
      "# HELP firehook_certificate_expiry_timestamp_seconds when a TLS listener's certificate or CA expires "
      "(Unix time)\n# TYPE firehook_certificate_expiry_timestamp_seconds gauge\n";
  for (const auto& c : listener_certificates(cfg)) {
    out += "firehook_certificate_expiry_timestamp_seconds{listener=\"";
    admin::append_label_value(out, c.listener);
    out += "\",kind=\"";
    out += c.kind;
    out += "\",subject=\"";
    admin::append_label_value(out, c.subject);
    out += "\"} " +
           std::to_string(
               std::chrono::duration_cast<std::chrono::seconds>(c.not_after.time_since_epoch()).count()) +
           "\n";
  }
}

} // namespace

admin_endpoint::admin_endpoint(const config::config& cfg, broker::broker& b,
                               std::shared_ptr<const audit::audit_sink> audit_log)
    : address_(cfg.admin->address), tokens_(std::make_shared<admin::token_store>(cfg.admin->tokens_file)),
      counts_(std::make_shared<admin::event_counts>()) {
  b.reloads().watch(tokens_);
  std::shared_ptr<tls::material> material;
  if (cfg.admin->tls) {
    try {
      material = std::make_shared<tls::material>(*cfg.admin->tls, "admin", tls::alpn::http1);
    } catch (const std::exception& e) {
      throw std::runtime_error("TLS: " + std::string(e.what()));
    }
    // Certificates, key, client CA and CRL replaced on disk are in force for the next connection.
    b.reloads().watch(material);
  }
  b.events().add_sink(counts_);
  admin::endpoints handlers;
  handlers.metrics = [&b, &cfg, counts = counts_, audit_log] {
    b.refresh_statistics();
    return admin::prometheus_text(b.stats(), b.events(), *counts, [&b, &cfg, &audit_log](std::string& out) {
      admin::append_metric(out, "firehook_uptime_seconds", "gauge", "seconds since the broker started",
                           static_cast<double>(b.uptime_seconds()));
      append_process_metrics(out);
      std::vector<std::pair<std::string, double>> by_listener;
      for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
        by_listener.emplace_back(cfg.listeners[i].name, static_cast<double>(b.clients_on(i)));
      }
      admin::append_gauges(out, "firehook_listener_clients_connected", "connected clients, by listener",
                           "listener", by_listener);
      append_certificate_expiry(out, cfg);
      if (audit_log) {
        const auto& log = audit_log->log();
        admin::append_metric(out, "firehook_audit_records_written_total", "counter",
                             "records written to the audit log", static_cast<double>(log.written()));
        admin::append_metric(out, "firehook_audit_records_lost_total", "counter",
                             "audit records lost while the audit log could not be written",
                             static_cast<double>(log.lost()));
        admin::append_metric(out, "firehook_audit_failing", "gauge",
                             "1 while the audit log cannot be written", log.failing() ? 1 : 0);
      }
    });
  };
  handlers.resources.emplace_back("/bans", [&b](std::string_view method, std::string_view target,
                                                 std::string_view body, std::string_view who) {
    const auto a = ban_http(b.bans(), method, target, body, who);
    return admin::endpoints::answer{a.status, a.body};
  });
  // A revocation's bans go straight into the running broker's list: in force at once, stored by
  // the next poll.
  handlers.resources.emplace_back("/devices", [&b, &cfg](std::string_view method, std::string_view target,
                                                         std::string_view body, std::string_view who) {
    const auto a =
        device_http(cfg, method, target, body, who, [&b](const registry::ban& ban) { b.bans().add_stored(ban); });
    return admin::endpoints::answer{a.status, a.body};
  });
  handlers.not_ready = [&b]() -> std::optional<std::string> {
    if (const std::string* why = b.refusing_connections()) {
      return *why;
    }
    return std::nullopt;
  };
  server_ = std::make_unique<admin::admin_server>(*cfg.admin, *tokens_, std::move(handlers),
                                                  b.shared_events(), std::move(material));
  scheme_ = cfg.admin->tls ? "https" : "http";
}

admin_endpoint::~admin_endpoint() {
  server_->stop();
}

void admin_endpoint::start() {
  const auto port = server_->start();
  const bool v6 = address_.find(':') != std::string::npos;
  std::printf("firehook: listener \"admin\" %s on %s%s%s:%u\n", scheme_, v6 ? "[" : "", address_.c_str(),
              v6 ? "]" : "", static_cast<unsigned>(port));
  std::fflush(stdout);
}

admin_command::admin_command(CLI::App& app) {
  admin_ = app.add_subcommand("admin", "the admin endpoint's bearer tokens");
  admin_->require_subcommand(1);
  admin_->add_option("-c,--config", config_path_, "configuration file: its [admin] tokens_file")
      ->check(CLI::ExistingFile);
  auto* token = admin_->add_subcommand("token", "add, remove or list bearer tokens");
  token->require_subcommand(1);
  add_ = token->add_subcommand("add", "make a token NAME; prints it once (only its SHA-256 is kept)");
  remove_ = token->add_subcommand("remove", "remove the token NAME");
  list_ = token->add_subcommand("list", "list the token names");
  for (auto* sub : {add_, remove_}) {
    sub->add_option("name", name_, "the token's name: who or what uses it")->required();
  }
  for (auto* sub : {add_, remove_, list_}) {
    sub->add_option("-c,--config", config_path_, "configuration file: its [admin] tokens_file")
        ->check(CLI::ExistingFile);
  }
}

bool admin_command::parsed() const {
  return admin_->parsed();
}

int admin_command::run(std::ostream& out, std::ostream& err) {
  const auto cfg = command_config(config_path_, err);
  if (!cfg) {
    return 1;
  }
  const std::filesystem::path file =
      cfg->admin ? cfg->admin->tokens_file : cfg->broker.state_dir / "admin-tokens";
  try {
    if (add_->parsed()) {
      out << admin::token_store::add(file, name_) << '\n';
      err << "token \"" << name_ << "\" added to " << file.string()
          << "; this is the only time it is shown (send it as \"Authorization: Bearer TOKEN\")\n";
    } else if (remove_->parsed()) {
      if (!admin::token_store::remove(file, name_)) {
        err << "admin: no token named \"" << name_ << "\" in " << file.string() << '\n';
        return 1;
      }
    } else {
      for (const auto& n : admin::token_store::names(file)) {
        out << n << '\n';
      }
    }
    return 0;
  } catch (const std::exception& e) {
    err << "admin: " << e.what() << '\n';
    return 1;
  }
}

} // namespace firehook::app

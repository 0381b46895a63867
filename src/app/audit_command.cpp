#include "app/audit_command.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include "app/command_config.hpp"
#include "app/posture.hpp"
#include "audit/alert_outputs.hpp"
#include "audit/baselines.hpp"
#include "audit/certificate_expiry.hpp"
#include "audit/detectors.hpp"
#include "audit/reader.hpp"
#include "broker/broker.hpp"
#include "config/config.hpp"
#include "mqtt/message.hpp"
#include "net/alert_webhook.hpp"
#include "app/certificates.hpp"

namespace firehook::app {

namespace fs = std::filesystem;

namespace {
void report_unwritable(const std::string& file, const std::string& why, bool refuse) {
  spdlog::error("audit log {} cannot be written: {}; {}", file, why,
                refuse ? "new connections are refused until it can (audit.on_failure = \"refuse\")"
                       : "records are kept in memory meanwhile");
}

std::shared_ptr<audit::audit_sink> open_audit_log(const config::audit_settings& s) {
  audit::log_options o;
  o.file = s.file;
  o.max_file_bytes = s.max_file_bytes;
  o.max_file_age = s.max_file_age;
  o.keep_files = s.keep_files;
  auto log = std::make_unique<audit::audit_log>(o, audit::signing_key::load_or_create(s.key_file),
                                                std::chrono::system_clock::now());
  const bool refuse = s.on_failure == config::audit_failure::refuse;
  if (log->failing()) {
    report_unwritable(s.file.string(), log->last_error(), refuse);
  }
  spdlog::info("audit log {}, signed with the key {} (public key in {}.pub)", s.file.string(),
               s.key_file.string(), s.key_file.string());
  return std::make_shared<audit::audit_sink>(
      std::move(log), s.checkpoint_interval,
      [file = s.file.string(), refuse](bool failing, const std::string& why) {
        if (failing) {
          report_unwritable(file, why, refuse);
        } else {
          spdlog::info("audit log {} is written again", file);
        }
      });
}

// The detectors of [alerts] and where their alerts go besides the log, the audit log and the
// metrics: the $SYS topic and, when configured, the webhook.
void add_alert_sinks(const config::config& cfg, broker::broker& b) {
  const auto& a = cfg.alerts;
  b.events().add_sink(std::make_shared<audit::detectors>(
      audit::detector_settings{a.auth_failures, a.probing, a.flapping, a.shared_credential, a.window,
                               a.max_tracked, a.rate_limited, a.address_changes},
      b.shared_events()));
  if (a.baseline_factor > 0 || a.fleet_publish_ceiling > 0) {
    b.events().add_sink(std::make_shared<audit::baselines>(
        audit::baseline_settings{a.baseline_interval, a.baseline_warmup, a.baseline_factor,
                                 a.baseline_min_rate, a.fleet_publish_ceiling, a.window, a.max_tracked},
        b.rate_samples(), b.stats(), b.shared_events()));
  }
  if (a.certificate_expiry_days > 0) {
    b.events().add_sink(std::make_shared<audit::certificate_expiry>(
        a.certificate_expiry_days, [&cfg] { return listener_certificates(cfg); }, b.shared_events()));
  }
  b.events().add_sink(
      std::make_shared<audit::alert_forwarder>([&b](const std::string& detector, std::string json) {
        auto m = std::make_shared<mqtt::message>();
        m->topic = audit::alert_topic(detector);
        m->payload = std::move(json);
        m->props.payload_format_indicator = 1; // UTF-8
        m->props.content_type = "application/json";
        b.publish(std::move(m));
      }));
  if (a.webhook) {
    // Stopped with the event hub (its flush), while the statistics it counts in are still there.
    b.events().add_sink(
        std::make_shared<net::alert_webhook>(net::alert_webhook::options{*a.webhook}, b.stats()));
    spdlog::info("alerts are POSTed to {}", a.webhook->url.text);
  }
}

} // namespace

std::shared_ptr<audit::audit_sink> add_audit_sinks(const config::config& cfg, broker::broker& b) {
  if (cfg.alerts.enabled) {
    add_alert_sinks(cfg, b);
  }
  if (!cfg.audit.enabled) {
    spdlog::warn("the audit log is off ([audit] enabled = false): security decisions are only in this log");
    return nullptr;
  }
  std::shared_ptr<audit::audit_sink> sink;
  try {
    sink = open_audit_log(cfg.audit);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("audit log: ") + e.what());
  }
  b.events().add_sink(sink);
  if (cfg.audit.on_failure == config::audit_failure::refuse) {
    b.refuse_connections_while(sink->log().failing_flag(),
                               "the audit log cannot be written (audit.on_failure = \"refuse\")");
  }
  return sink;
}

audit_command::audit_command(CLI::App& app) {
  audit_ =
      app.add_subcommand("audit", "the security posture report of a configuration (without a subcommand); "
                                  "check and search the audit log (verify, query)");
  audit_->require_subcommand(0, 1);
  audit_->add_option("-c,--config", config_path_, "configuration file: its audit log and key")
      ->check(CLI::ExistingFile);
  verify_ = audit_->add_subcommand("verify", "check the chain and signatures; names the first bad record");
  verify_
      ->add_option("--public-key", public_key_,
                   "the audit key's .pub file (default: beside the configured key)")
      ->check(CLI::ExistingFile);
  query_ = audit_->add_subcommand("query", "print the records that match every given filter");
  query_->add_option("--since", since_, "UTC time, e.g. 2026-12-07T10:00:00 (a prefix is enough)");
  query_->add_option("--until", until_, "UTC time, inclusive of a prefix: 2026-12-07 is the whole day");
  query_->add_option("--event", event_,
                     "event type (auth_denied, publish_refused, ...) or record kind (checkpoint)");
  query_->add_option("--client-id", client_id_);
  query_->add_option("--identity", identity_);
  query_->add_option("--peer", peer_, "peer address");
  for (auto* sub : {verify_, query_}) {
    sub->add_option("files", files_, "audit files (default: every file of the configured audit log)")
        ->check(CLI::ExistingFile);
    sub->add_option("-c,--config", config_path_, "configuration file: its audit log and key")
        ->check(CLI::ExistingFile);
  }
}

int audit_command::posture(const config::config& cfg, std::ostream& out) const {
  auto risks = assess(cfg, config_path_.empty() ? fs::path("(defaults)") : fs::path(config_path_),
                      std::chrono::system_clock::now());
  std::stable_sort(risks.begin(), risks.end(),
                   [](const risk& a, const risk& b) { return a.level > b.level; });
  std::size_t count[3] = {0, 0, 0};
  for (const auto& r : risks) {
    out << to_string(r) << '\n';
    ++count[static_cast<int>(r.level)];
  }
  out << (config_path_.empty() ? "the default configuration" : config_path_) << ": " << count[2] << " high, "
      << count[1] << " medium, " << count[0] << " low\n";
  return count[2] > 0 ? 1 : 0;
}

bool audit_command::parsed() const {
  return audit_->parsed();
}

int audit_command::run(std::ostream& out, std::ostream& err) {
  const auto cfg = command_config(config_path_, err);
  if (!cfg) {
    return 1;
  }
  if (!verify_->parsed() && !query_->parsed()) {
    return posture(*cfg, out);
  }
  const config::audit_settings& settings = cfg->audit;
  std::vector<fs::path> files(files_.begin(), files_.end());
  if (files.empty()) {
    // The current file and the rotated ones beside it: <stem>-*<ext>.
    const fs::path dir = settings.file.parent_path().empty() ? fs::path(".") : settings.file.parent_path();
    const std::string stem = settings.file.stem().string();
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (e.path().extension() == settings.file.extension() &&
          (name == settings.file.filename().string() || name.rfind(stem + "-", 0) == 0)) {
        files.push_back(e.path());
      }
    }
    if (files.empty()) {
      err << "audit: no audit files in " << dir.string() << '\n';
      return 1;
    }
  }
  try {
    if (query_->parsed()) {
      audit::query_filter f{since_, until_, event_, client_id_, identity_, peer_};
      audit::query(files, f, out);
      return 0;
    }
    std::optional<std::string> key;
    fs::path key_file =
        public_key_.empty() ? fs::path(settings.key_file.string() + ".pub") : fs::path(public_key_);
    if (std::error_code ec; fs::exists(key_file, ec)) {
      std::ifstream in(key_file);
      std::string text;
      in >> text;
      key = text;
    }
    const auto r = audit::verify(files, key);
    for (const auto& note : r.notes) {
      out << "note: " << note << '\n';
    }
    if (!r.intact) {
      err << "audit verify: " << r.problem << '\n';
      return 1;
    }
    out << "intact: " << r.records << " records in " << files.size() << " file(s), " << r.signed_records
        << " signed" << (key ? " with the key in " + key_file.string() : std::string()) << '\n';
    return 0;
  } catch (const std::exception& e) {
    err << "audit: " << e.what() << '\n';
    return 1;
  }
}

} // namespace firehook::app

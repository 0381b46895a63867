#include "app/file_check.hpp"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "audit/record.hpp"
#include "net/alert_webhook.hpp"
#include "security/jwt_authenticator.hpp"
#include "tls/tls.hpp"

namespace firehook::app {

namespace fs = std::filesystem;

namespace {

// The key among `candidates` (key, path) whose file the error message names; `fallback` otherwise.
std::string key_named_in(const std::string& message,
                         const std::vector<std::pair<std::string, fs::path>>& candidates,
                         const std::string& fallback) {
  for (const auto& [key, path] : candidates) {
    if (!path.empty() && message.find(path.string()) != std::string::npos) {
      return key;
    }
  }
  return fallback;
}

// Why a file could not be made at `path` by `serve` (its folder, or the nearest existing one,
// must be a writable folder); empty when it could.
std::string not_creatable(const fs::path& path) {
  std::error_code ec;
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  while (!fs::exists(dir, ec) && dir.has_parent_path() && dir != dir.parent_path()) {
    dir = dir.parent_path();
  }
  if (!fs::is_directory(dir, ec)) {
    return dir.string() + " is not a folder";
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return "the folder " + dir.string() + " is not writable";
  }
  return {};
}

// Why an existing file cannot be read and written (empty when it can).
std::string not_usable(const fs::path& path, bool write) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return path.string() + " is a folder";
  }
  if (::access(path.c_str(), write ? (R_OK | W_OK) : R_OK) != 0) {
    return path.string() + ": not " + (write ? "readable and writable" : "readable");
  }
  return {};
}

// Each group of files the configuration names, as `serve` opens it.
class file_checker {
public:
  file_checker(const config::config& cfg, const fs::path& config_path) : cfg_(cfg), path_(config_path) {}

  std::vector<config::diagnostic> run() {
    tls_listeners();
    token_keys();
    state_dir();
    credential_store();
    audit_files();
    webhook();
    return std::move(out_);
  }

private:
  void problem(const std::string& key, std::string message) {
    out_.push_back(config::diagnostic_at(path_, key, std::move(message)));
  }

  void tls_listeners() {
    for (std::size_t i = 0; i < cfg_.listeners.size(); ++i) {
      if (const auto& l = cfg_.listeners[i]; l.tls) {
        tls_files("listener[" + std::to_string(i) + "].tls", "ca", *l.tls, tls::alpn::mqtt);
      }
    }
    if (cfg_.admin && cfg_.admin->tls) {
      tls_files("admin.tls", "client_ca", *cfg_.admin->tls, tls::alpn::http1);
    }
  }

  // The files of one TLS table (`base`), loaded as the listener loads them. `ca_key`: the key the
  // table names its client CA with.
  void tls_files(const std::string& base, const std::string& ca_key, const config::tls_settings& settings,
                 tls::alpn protocol) {
    try {
      (void)tls::make_server_context(settings, protocol);
    } catch (const std::exception& e) {
      problem(key_named_in(e.what(),
                           {{base + ".cert", settings.cert},
                            {base + ".key", settings.key},
                            {base + "." + ca_key, settings.ca},
                            {base + ".crl", settings.crl}},
                           base),
              e.what());
    }
  }

  void webhook() {
    if (!cfg_.alerts.webhook) {
      return;
    }
    const auto& w = *cfg_.alerts.webhook;
    try {
      net::alert_webhook::check_files(w);
    } catch (const std::exception& e) {
      problem(key_named_in(e.what(),
                           {{"alerts.webhook_token_file", w.token_file}, {"alerts.webhook_ca", w.ca}},
                           "alerts.webhook"),
              e.what());
    }
  }

  void token_keys() {
    if (!cfg_.auth.jwt) {
      return;
    }
    const auto& j = *cfg_.auth.jwt;
    try {
      (void)security::jwt_authenticator(j);
    } catch (const std::exception& e) {
      std::vector<std::pair<std::string, fs::path>> candidates{
          {"auth.jwt.jwks", j.jwks}, {"auth.jwt.hmac_secret_file", j.hmac_secret_file}};
      for (const auto& k : j.public_keys) {
        candidates.emplace_back("auth.jwt.public_keys", k);
      }
      problem(key_named_in(e.what(), candidates, "auth.jwt"), e.what());
    }
  }

  void state_dir() {
    std::error_code ec;
    const auto& state = cfg_.broker.state_dir;
    if (fs::exists(state, ec)) {
      if (!fs::is_directory(state, ec)) {
        problem("broker.state_dir", state.string() + " is not a folder");
      } else if (::access(state.c_str(), W_OK | X_OK) != 0) {
        problem("broker.state_dir", "the folder " + state.string() + " is not writable");
      }
    } else if (auto why = not_creatable(state / "x"); !why.empty()) {
      problem("broker.state_dir", state.string() + " cannot be created: " + why);
    }
  }

  void credential_store() {
    const bool used = std::any_of(cfg_.listeners.begin(), cfg_.listeners.end(), [](const auto& l) {
      return std::find(l.auth.begin(), l.auth.end(), config::auth_method::password) != l.auth.end();
    });
    if (!used) {
      return;
    }
    std::error_code ec;
    const auto& db = cfg_.auth.password.database;
    if (!fs::exists(db, ec)) {
      if (auto why = not_creatable(db); !why.empty()) {
        problem("auth.password.database", db.string() + " cannot be created: " + why);
      }
    } else if (auto why = not_usable(db, true); !why.empty()) {
      problem("auth.password.database", why);
    } else {
      std::ifstream in(db, std::ios::binary);
      std::string head(16, '\0');
      in.read(head.data(), 16);
      if (in.gcount() != 16 || head != std::string("SQLite format 3\0", 16)) {
        problem("auth.password.database", db.string() + " is not an SQLite database");
      }
    }
  }

  void audit_files() {
    if (!cfg_.audit.enabled) {
      return;
    }
    std::error_code ec;
    const auto& a = cfg_.audit;
    if (fs::exists(a.key_file, ec)) {
      try {
        (void)audit::signing_key::load_or_create(a.key_file); // exists: only read
      } catch (const std::exception& e) {
        problem("audit.key_file", e.what());
      }
    } else if (auto why = not_creatable(a.key_file); !why.empty()) {
      problem("audit.key_file", a.key_file.string() + " cannot be created: " + why);
    }
    if (!fs::exists(a.file, ec)) {
      if (auto why = not_creatable(a.file); !why.empty()) {
        problem("audit.file", a.file.string() + " cannot be created: " + why);
      }
    } else if (fs::is_regular_file(a.file, ec)) {
      if (auto why = not_usable(a.file, true); !why.empty()) {
        problem("audit.file", why);
      }
    }
  }

  const config::config& cfg_;
  const fs::path& path_;
  std::vector<config::diagnostic> out_;
};

} // namespace

std::vector<config::diagnostic> check_files(const config::config& cfg, const fs::path& config_path) {
  return file_checker(cfg, config_path).run();
}

} // namespace firehook::app

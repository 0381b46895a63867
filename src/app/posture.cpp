#include "app/posture.hpp"

#include <algorithm>

#include "config/topics.hpp"
#include "registry/credential_store.hpp"
#include "tls/tls.hpp"

namespace firehook::app {

namespace {

constexpr auto soon = std::chrono::hours(24 * 30);

std::string days(std::chrono::system_clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::hours>(d).count() / 24);
}

class report {
public:
  report(const std::filesystem::path& config_path, std::chrono::system_clock::time_point now)
      : path_(config_path), now_(now) {}

  void add(severity s, const std::string& key, std::string what, std::string fix) {
    risks_.push_back({s, config::diagnostic_at(path_, key, std::move(what)), std::move(fix)});
  }
  void add(severity s, config::diagnostic where, std::string fix) {
    risks_.push_back({s, std::move(where), std::move(fix)});
  }

  // Key strength and expiry of every certificate in `file` (a chain or a CA bundle).
  void certificates(const std::string& key, const std::filesystem::path& file, bool ca_bundle) {
    std::vector<tls::certificate_summary> certs;
    try {
      certs = tls::read_certificates(file);
    } catch (const std::exception& e) {
      add(severity::high, key, e.what(), "give a readable PEM file (firehook check says more)");
      return;
    }
    for (const auto& c : certs) {
      const std::string who = file.string() + ": " + c.subject;
      const bool weak =
          (c.key_type == "RSA" && c.key_bits < 2048) || (c.key_type == "EC" && c.key_bits < 256);
      if (weak) {
        add(severity::high, key,
            who + ": weak key (" + c.key_type + " " + std::to_string(c.key_bits) + " bits)",
            "issue a new certificate with an RSA key of at least 2048 bits or an EC P-256/P-384 key");
      }
      if (c.not_after <= now_) {
        add(severity::high, key, who + ": expired",
            ca_bundle ? "replace the CA certificate" : "renew the certificate");
      } else if (c.not_after - now_ <= soon) {
        add(severity::medium, key, who + ": expires in " + days(c.not_after - now_) + " days",
            ca_bundle ? "plan the CA's replacement now: every device certificate it signed goes with it"
                      : "renew the certificate (the broker reloads it without a restart)");
      }
    }
  }

  std::vector<risk> take() { return std::move(risks_); }

private:
  std::filesystem::path path_;
  std::chrono::system_clock::time_point now_;
  std::vector<risk> risks_;
};

// Several users with one stored hash: the hash was copied, so they share one password.
void shared_passwords(const config::config& cfg, report& r) {
  const std::filesystem::path db = registry::credential_database_path(cfg);
  std::error_code ec;
  if (!std::filesystem::exists(db, ec)) {
    return; // nothing to read (firehook check reports a state_dir it cannot use)
  }
  std::vector<std::vector<std::string>> groups;
  try {
    groups = registry::credential_store::open(db)->users_sharing_a_hash();
  } catch (const std::exception& e) {
    r.add(severity::high, config::diagnostic{db.string(), 0, 0, "auth.password", e.what()},
          "firehook check says more; restore the credential database from a backup");
    return;
  }
  for (const auto& names : groups) {
    std::string list;
    for (const auto& n : names) {
      list += (list.empty() ? "" : ", ") + n;
    }
    r.add(severity::medium, config::diagnostic{db.string(), 0, 0, "users", std::to_string(names.size()) +
                                                  " users share one password hash (" + list + ")"},
          "give each its own password (firehook user passwd NAME): a shared password cannot be revoked for one");
  }
}

} // namespace

std::vector<risk> assess(const config::config& cfg, const std::filesystem::path& config_path,
                         std::chrono::system_clock::time_point now) {
  report r(config_path, now);
  for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
    const auto& l = cfg.listeners[i];
    const std::string at = "listener[" + std::to_string(i) + "]";
    const bool loopback = config::is_loopback(l.address);
    if (!l.tls && !loopback) {
      r.add(severity::high, at + ".protocol",
            "plaintext MQTT on " + l.address + ": passwords, tokens and messages cross the network readable",
            "use protocol = \"mqtts\" with [" + at + ".tls], or listen on a loopback address only");
    }
    if (l.allow_anonymous) {
      r.add(loopback ? severity::medium : severity::high, at + ".allow_anonymous",
            "anonymous clients are admitted on listener \"" + l.name + "\"",
            "set allow_anonymous = false and give each device its own credential");
    }
    if (l.tls) {
      r.certificates(at + ".tls.cert", l.tls->cert, false);
      if (!l.tls->ca.empty()) {
        r.certificates(at + ".tls.ca", l.tls->ca, true);
      }
      if (l.tls->client_certs != config::client_certificates::none && l.tls->crl.empty()) {
        r.add(severity::medium, at + ".tls.ca",
              "client certificates are accepted without a CRL: a revoked or stolen device certificate still "
              "gets in",
              "publish a CRL from your CA and set crl = \"...\" (it is reloaded when it changes)");
      }
    }
  }

  if (cfg.topics.empty()) {
    r.add(severity::high, "topics",
          "no topics file: every connected client may publish and subscribe to every topic",
          "write a topics file (docs/topics.md) and set topics = \"topics.toml\"");
  } else {
    const auto loaded = config::load_topics_file(cfg.topics);
    for (const auto& d : loaded.diagnostics) {
      r.add(d.warning ? severity::medium : severity::high, d,
            d.warning ? "narrow the grant, or mark the role as a service when it is one"
                      : "fix the topics file");
    }
    if (loaded.topics) {
      for (auto d : config::client_id_grant_warnings(cfg, *loaded.topics)) {
        r.add(severity::medium, std::move(d),
              "bind client ids to identities (auth.certificate.client_id = \"must_match\")");
      }
      for (auto d : config::idle_deny_warnings(*loaded.topics)) {
        r.add(severity::low, std::move(d),
              "correct the pattern or roles to what the rule was meant to deny (topics explain shows what a "
              "client may do), or remove it");
      }
    }
  }

  if (cfg.auth.jwt) {
    const auto& claims = cfg.auth.jwt->required_claims;
    const auto lifetime = cfg.auth.jwt->max_lifetime;
    if (lifetime.count() == 0 && std::find(claims.begin(), claims.end(), "exp") == claims.end()) {
      r.add(severity::high, "auth.jwt.required_claims",
            "a token without \"exp\" is accepted and never expires",
            "keep max_lifetime (default one day), or add \"exp\" to required_claims, and issue short-lived "
            "tokens");
    } else if (lifetime.count() == 0) {
      r.add(severity::medium, "auth.jwt.max_lifetime",
            "no bound on token lifetimes: a token issued for years is accepted, and a stolen one stays usable",
            "keep the default (86400, one day) or less");
    } else if (lifetime > std::chrono::days(7)) {
      r.add(severity::low, "auth.jwt.max_lifetime",
            "tokens valid for up to " + days(lifetime) + " days are accepted: a stolen one stays usable that long",
            "issue tokens for a day or less and lower max_lifetime to match");
    }
    if (cfg.auth.jwt->audience.empty()) {
      r.add(severity::medium, "auth.jwt.audience",
            "tokens are not checked for an audience: one issued for another "
            "service is accepted here",
            "set audience to the value your issuer puts in \"aud\" for this broker");
    }
  }

  if (cfg.auth.certificate.client_id == config::client_id_binding::any) {
    bool certs = false;
    for (const auto& l : cfg.listeners) {
      certs = certs || (l.tls && l.tls->client_certs != config::client_certificates::none);
    }
    if (certs) {
      r.add(severity::medium, "auth.certificate.client_id",
            "a device with a certificate may use any client id, another device's too",
            "set auth.certificate.client_id = \"must_match\" (or \"assign\")");
    }
  }

  const auto& lim = cfg.limits;
  if (lim.max_sessions_per_identity == 0 || lim.max_connections_per_identity == 0) {
    r.add(severity::medium,
          lim.max_sessions_per_identity == 0 ? "limits.max_sessions_per_identity"
                                             : "limits.max_connections_per_identity",
          "no limit per identity: one stolen credential can open connections and sessions until memory runs "
          "out",
          "keep the default (100) or set a number a real device needs");
  }
  // Rates: [limits] for everybody; a listener that lifts them (for gateways) is a smaller risk.
  const std::string unlimited =
      "no publish rate: one client (a stolen credential, a firmware loop) can publish as fast as its link allows";
  const std::string keep_a_rate =
      "keep a rate; give gateways and services more on a listener or a role of their own (docs/hardening.md)";
  if (lim.rates.publish_rate == 0) {
    r.add(severity::medium, "limits.publish_rate", unlimited, keep_a_rate);
  }
  for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
    if (cfg.listeners[i].rates.publish_rate == 0 && lim.rates.publish_rate != 0) {
      r.add(severity::low, "listener[" + std::to_string(i) + "].rate_limits.publish_rate",
            unlimited + ", on this listener", keep_a_rate);
    }
  }
  for (const auto& range : cfg.abuse.allowlist.ranges()) {
    if (range.prefix_length() < (range.ipv4() ? 8U : 16U)) {
      r.add(severity::medium, "abuse.allowlist",
            "the allowlist holds " + range.to_string() +
                ": its addresses are held to no per-address or per-network budget",
            "list only the gateways and NAT addresses that many devices share");
    }
  }
  if (cfg.log.max_event_lines_per_second == 0) {
    r.add(severity::low, "log.max_event_lines_per_second",
          "the log has no line cap: a flood of refusals fills the disk", "keep the default (1000)");
  }
  if (!cfg.audit.enabled) {
    r.add(severity::high, "audit.enabled",
          "the audit log is off: security decisions cannot be proven afterwards",
          "remove enabled = false from [audit]");
  }
  shared_passwords(cfg, r);
  // Plain HTTP is refused beyond loopback at start-up, so what is left is local: any process of the
  // host may connect, and its token crosses the loopback interface readable.
  if (cfg.admin && !cfg.admin->tls) {
    r.add(severity::low, "admin", "the admin endpoint serves plain HTTP (on loopback)",
          "add [admin.tls] (cert, key; client_ca for client certificates) to serve HTTPS; keep its tokens to "
          "the few that need them");
  } else if (cfg.admin) {
    r.certificates("admin.tls.cert", cfg.admin->tls->cert, false);
    if (!cfg.admin->tls->ca.empty()) {
      r.certificates("admin.tls.client_ca", cfg.admin->tls->ca, true);
    }
  }
  return r.take();
}

std::string to_string(const risk& r) {
  static constexpr const char* names[] = {"LOW   ", "MEDIUM", "HIGH  "};
  return std::string(names[static_cast<int>(r.level)]) + " " + r.where.to_string() + "\n       fix: " + r.fix;
}

} // namespace firehook::app

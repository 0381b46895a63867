#include "security/auth_factory.hpp"

#include <vector>

#include "security/certificate_authenticator.hpp"
#include "security/enrollment_authenticator.hpp"
#include "security/jwt_authenticator.hpp"
#include "security/password_authenticator.hpp"

namespace firehook::security {

auth_methods make_auth_methods(const config::config& cfg) {
  auth_methods m;
  std::shared_ptr<const authenticator> certificate;
  std::shared_ptr<const authenticator> password;
  std::shared_ptr<const authenticator> enrollment;
  for (const auto& l : cfg.listeners) {
    std::vector<std::shared_ptr<const authenticator>> chain;
    for (const config::auth_method method : l.auth) {
      switch (method) {
      case config::auth_method::certificate:
        if (!certificate) {
          // Registered devices live beside the password users (registry/device_registry.hpp); two
          // connections: the shards' quick lookups never wait behind the pool's writes.
          const auto path = registry::credential_database_path(cfg);
          certificate = std::make_shared<const certificate_authenticator>(
              cfg.auth.certificate, registry::device_registry::open(path),
              registry::device_registry::open(path));
        }
        chain.push_back(certificate);
        break;
      case config::auth_method::password:
        if (!password) {
          password = make_password_authenticator(cfg);
        }
        chain.push_back(password);
        break;
      case config::auth_method::jwt:
        if (!m.jwt) {
          // The loader refuses "jwt" in a listener's chain without [auth.jwt].
          // A disabled device's token subject is refused (registry/device_registry.hpp).
          m.jwt = std::make_shared<jwt_authenticator>(
              *cfg.auth.jwt, jwt_options{{}, registry::device_registry::open(registry::credential_database_path(cfg))});
        }
        chain.push_back(m.jwt);
        break;
      case config::auth_method::enrollment:
        if (!enrollment) {
          // The loader refuses "enrollment" without a template.
          const auto path = registry::credential_database_path(cfg);
          auto devices = registry::device_registry::open(path);
          enrollment = std::make_shared<const enrollment_authenticator>(
              std::make_shared<registry::enrollment_tokens>(devices->database()), devices, cfg.enrollment);
        }
        chain.push_back(enrollment);
        break;
      }
    }
    m.by_listener.emplace(l.name, std::make_shared<const auth_chain>(std::move(chain), l.allow_anonymous));
  }
  return m;
}

} // namespace firehook::security

#include "app/certificates.hpp"

#include <string_view>
#include <utility>

#include "tls/tls.hpp"

namespace firehook::app {

std::vector<audit::listener_certificate> listener_certificates(const config::config& cfg) {
  std::vector<std::pair<std::string_view, const config::tls_settings*>> secured;
  for (const auto& l : cfg.listeners) {
    if (l.tls) {
      secured.emplace_back(l.name, &*l.tls);
    }
  }
  if (cfg.admin && cfg.admin->tls) {
    secured.emplace_back("admin", &*cfg.admin->tls);
  }
  std::vector<audit::listener_certificate> out;
  for (const auto& [listener, settings] : secured) {
    for (const auto& [kind, file] :
         {std::pair<std::string_view, const std::filesystem::path&>{"server", settings->cert},
          std::pair<std::string_view, const std::filesystem::path&>{"ca", settings->ca}}) {
      if (file.empty()) {
        continue;
      }
      std::vector<tls::certificate_summary> certs;
      try {
        certs = tls::read_certificates(file);
      } catch (const std::exception&) {
        continue; // unreadable now: the reload event and `firehook check` say why
      }
      // The first certificate of a chain file is the server's; every one of a CA bundle counts.
      const std::size_t n = kind == "server" ? 1 : certs.size();
      for (std::size_t i = 0; i < n && i < certs.size(); ++i) {
        out.push_back({std::string(listener), std::string(kind), certs[i].subject, file, certs[i].not_after});
      }
    }
  }
  return out;
}

} // namespace firehook::app

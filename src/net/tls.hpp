#pragma once
// Server-side TLS material for one listener: the certificate chain, key, client CA bundle and CRL,
// built into an OpenSSL context with Firehook's secure defaults (TLS 1.2+ or 1.3 only, ECDHE+AEAD
// ciphers, ALPN "mqtt", session tickets, released idle buffers).
//
// Reload: the files are a base::reloadable (the broker's one reload mechanism reads them again when
// one changed on disk, or on SIGHUP). A file that fails to load keeps the old material in use and
// the reload result says why. Connections keep the context they were accepted with (a
// shared_ptr), so a reload never disturbs them.
//
// Threading: current() and reload() may be called from any thread; a mutex guards `current_`.

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "audit/certificate_expiry.hpp"
#include "base/reload.hpp"
#include "config/config.hpp"
#include "security/authenticator.hpp"

namespace firehook::net {

class tls_material final : public base::reloadable {
public:
  // Loads the files; throws std::runtime_error naming the file and OpenSSL's reason. `listener`
  // names the material in reload events.
  tls_material(config::tls_settings settings, const std::string& listener);

  std::shared_ptr<boost::asio::ssl::context> current() const;

  const config::tls_settings& settings() const { return settings_; }

private:
  std::vector<std::filesystem::path> watched_files() const override;
  std::string load() override;

  const config::tls_settings settings_;
  mutable std::mutex mutex_; // guards current_
  std::shared_ptr<boost::asio::ssl::context> current_;
};

// Builds a context from the settings. Throws std::runtime_error("<file>: <reason>").
std::shared_ptr<boost::asio::ssl::context> make_server_context(const config::tls_settings& s);

// The verified client certificate of a finished handshake; nullopt when the client sent none.
std::optional<security::certificate_info> peer_certificate(const SSL* ssl);

// What `firehook audit` (the posture report) looks at in a PEM file of certificates: each one's
// subject, key type and strength, expiry, and whether it is a CA. Throws std::runtime_error naming
// the file when it cannot be read or holds no certificate.
struct certificate_summary {
  std::string subject;
  std::string key_type; // "RSA", "EC", "ED25519", ...
  int key_bits = 0;     // RSA modulus, EC curve size
  std::chrono::system_clock::time_point not_after;
  bool is_ca = false;
};
std::vector<certificate_summary> read_certificates(const std::filesystem::path& pem);

// The server certificate (the first of its chain file) and every certificate of the CA bundle of
// each TLS listener of `cfg`, read from the files as they are now (they may have been replaced
// since the start): for the expiry metric and the certificate_expiry alert. A file that cannot be
// read now is left out (the reload event and `firehook check` say why).
std::vector<audit::listener_certificate> listener_certificates(const config::config& cfg);

// Whether the peer certificate of `ssl` is revoked according to the CRLs of `ctx` (used after a
// CRL reload to drop live clients whose certificate was just revoked).
bool peer_revoked(const SSL* ssl, boost::asio::ssl::context& ctx);

} // namespace firehook::net

#pragma once
// Server-side TLS material for one listener: the certificate chain, key, client CA bundle and CRL,
// built into an OpenSSL context with Firehook's secure defaults (TLS 1.2+ or 1.3 only, ECDHE+AEAD
// ciphers, ALPN "mqtt" or "http/1.1", session tickets, released idle buffers).
//
// Shared by the MQTT listeners (net/) and the admin endpoint (admin/), so both get one set of
// defaults and one reload; with registry/, the only folder that calls OpenSSL directly.
//
// Reload: the files are a base::reloadable (the broker's one reload mechanism reads them again when
// one changed on disk, or on SIGHUP). A file that fails to load keeps the old material in use and
// the reload result says why. Connections keep the context they were accepted with (a
// shared_ptr), so a reload never disturbs them.
//
// Threading: current() and reload() may be called from any thread; a mutex guards `current_`.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

#include "base/reload.hpp"
#include "config/config.hpp"
#include "security/authenticator.hpp"

namespace firehook::tls {

// The application protocol a listener speaks, offered by ALPN: a client that offers ALPN but not
// this protocol is refused in the handshake; one that offers no ALPN at all is served.
enum class alpn : std::uint8_t { mqtt, http1 };

class material final : public base::reloadable {
public:
  // Loads the files; throws std::runtime_error naming the file and OpenSSL's reason. `listener`
  // names the material in reload events.
  material(config::tls_settings settings, const std::string& listener, alpn protocol);

  std::shared_ptr<boost::asio::ssl::context> current() const;

  const config::tls_settings& settings() const { return settings_; }

private:
  std::vector<std::filesystem::path> watched_files() const override;
  std::string load() override;

  const config::tls_settings settings_;
  const alpn protocol_;
  mutable std::mutex mutex_; // guards current_
  std::shared_ptr<boost::asio::ssl::context> current_;
};

// Builds a context from the settings. Throws std::runtime_error("<file>: <reason>").
std::shared_ptr<boost::asio::ssl::context> make_server_context(const config::tls_settings& s, alpn protocol);

// The verified client certificate of a finished handshake; nullopt when the client sent none.
std::optional<security::certificate_info> peer_certificate(const SSL* ssl);

// Why a server handshake failed, for its event: "TLS handshake failed: " and OpenSSL's reason (`ec`
// set), with the check that refused the client certificate when one did ("certificate verify
// failed" alone does not tell an operator which).
std::string handshake_failure(const SSL* ssl, const boost::system::error_code& ec);

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

// Whether the peer certificate of `ssl` is revoked according to the CRLs of `ctx` (used after a
// CRL reload to drop live clients whose certificate was just revoked).
bool peer_revoked(const SSL* ssl, boost::asio::ssl::context& ctx);

} // namespace firehook::tls

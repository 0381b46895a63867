#pragma once
// Server-side TLS material for one listener: the certificate chain, key, client CA bundle and CRL,
// built into an OpenSSL context with Firehook's secure defaults (TLS 1.2+ or 1.3 only, ECDHE+AEAD
// ciphers, ALPN "mqtt", session tickets, released idle buffers).
//
// Reload: reload() re-reads the files when they changed on disk (or always, on SIGHUP). A file that
// fails to load keeps the old material in use and returns why. Connections keep the context they
// were accepted with (a shared_ptr), so a reload never disturbs them.
//
// Threading: current() and reload() may be called from any thread; a mutex guards `current_` and
// the file signatures.

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "config/config.hpp"
#include "security/authenticator.hpp"

namespace firehook::net {

class tls_material {
public:
  // Loads the files; throws std::runtime_error naming the file and OpenSSL's reason.
  explicit tls_material(config::tls_settings settings);

  std::shared_ptr<boost::asio::ssl::context> current() const;

  enum class reload_result : std::uint8_t { unchanged, reloaded, failed };
  // Re-reads the files if any changed since the last load (or if `force`). On failure `error`
  // says which file and why, and the old material stays in use.
  reload_result reload(bool force, std::string& error);

  const config::tls_settings& settings() const { return settings_; }

private:
  struct file_signature {
    std::filesystem::path path;
    std::filesystem::file_time_type mtime{};
    std::uintmax_t size = 0;
    bool operator==(const file_signature&) const = default;
  };
  std::vector<file_signature> signatures() const;

  config::tls_settings settings_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> current_;
  std::vector<file_signature> loaded_;
};

// Builds a context from the settings. Throws std::runtime_error("<file>: <reason>").
std::shared_ptr<boost::asio::ssl::context> make_server_context(const config::tls_settings& s);

// The verified client certificate of a finished handshake; nullopt when the client sent none.
std::optional<security::certificate_info> peer_certificate(const SSL* ssl);

// Whether the peer certificate of `ssl` is revoked according to the CRLs of `ctx` (used after a
// CRL reload to drop live clients whose certificate was just revoked).
bool peer_revoked(const SSL* ssl, boost::asio::ssl::context& ctx);

} // namespace firehook::net

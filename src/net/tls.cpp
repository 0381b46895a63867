#include "net/tls.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <cstring>
#include <stdexcept>

namespace firehook::net {

namespace ssl = boost::asio::ssl;

namespace {

std::string openssl_reason() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) {
    return "unknown OpenSSL error";
  }
  std::array<char, 256> buf{};
  ERR_error_string_n(e, buf.data(), buf.size());
  return buf.data();
}

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& what) {
  throw std::runtime_error(file.string() + ": " + what + ": " + openssl_reason());
}

// ALPN: answer "mqtt" when the client offers it. A client that offers only other protocols is
// refused; one that offers no ALPN at all is served (most MQTT clients send none).
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned inlen, void*) {
  static constexpr unsigned char mqtt[] = {4, 'm', 'q', 't', 't'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, mqtt, sizeof(mqtt), in, inlen) == OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

void load_crls(X509_STORE* store, const std::filesystem::path& file) {
  BIO* bio = BIO_new_file(file.c_str(), "r");
  if (!bio) {
    fail(file, "cannot open CRL file");
  }
  int count = 0;
  while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio, nullptr, nullptr, nullptr)) {
    X509_STORE_add_crl(store, crl);
    X509_CRL_free(crl);
    ++count;
  }
  BIO_free(bio);
  ERR_clear_error(); // the loop ends on "no start line"
  if (count == 0) {
    throw std::runtime_error(file.string() + ": no CRL found in the file");
  }
}

std::string name_oneline(const X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string s(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return s;
}

std::vector<std::string> name_entries(const X509_NAME* name, int nid) {
  std::vector<std::string> out;
  int pos = -1;
  while ((pos = X509_NAME_get_index_by_NID(name, nid, pos)) >= 0) {
    const ASN1_STRING* v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, pos));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, v);
    if (n >= 0) {
      out.emplace_back(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
      OPENSSL_free(utf8);
    }
  }
  return out;
}

std::string hex(const unsigned char* p, std::size_t n, bool upper) {
  static constexpr char lower_digits[] = "0123456789abcdef";
  static constexpr char upper_digits[] = "0123456789ABCDEF";
  const char* digits = upper ? upper_digits : lower_digits;
  std::string s;
  s.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    s.push_back(digits[p[i] >> 4]);
    s.push_back(digits[p[i] & 0xF]);
  }
  return s;
}

} // namespace

std::shared_ptr<ssl::context> make_server_context(const config::tls_settings& s) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  int min_version = s.min_version == config::tls_version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
  SSL_CTX_set_min_proto_version(native, min_version);
  SSL_CTX_set_options(native,
                      SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle connections give their read and write buffers back (a broker holds many idle ones).
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(native, s.ciphers.c_str()) != 1) {
    throw std::runtime_error("tls.ciphers: no usable cipher in \"" + s.ciphers + "\": " + openssl_reason());
  }
  if (SSL_CTX_set_ciphersuites(native, s.ciphersuites.c_str()) != 1) {
    throw std::runtime_error("tls.ciphersuites: no usable suite in \"" + s.ciphersuites +
                             "\": " + openssl_reason());
  }
  SSL_CTX_set1_groups_list(native, "X25519:P-256:P-384");
  if (SSL_CTX_use_certificate_chain_file(native, s.cert.c_str()) != 1) {
    fail(s.cert, "cannot load the certificate chain");
  }
  if (SSL_CTX_use_PrivateKey_file(native, s.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    fail(s.key, "cannot load the private key");
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    fail(s.key, "the private key does not match the certificate " + s.cert.string());
  }
  SSL_CTX_set_alpn_select_cb(native, select_alpn, nullptr);
  // Session resumption with tickets (OpenSSL's default, kept on); resumed sessions of clients
  // with certificates need a session id context.
  static constexpr unsigned char sid_ctx[] = "firehook";
  SSL_CTX_set_session_id_context(native, sid_ctx, sizeof(sid_ctx) - 1);
  // TLS 1.3: one ticket per handshake, not OpenSSL's two. An MQTT client holds one connection at a
  // time and resumes with its latest ticket; each ticket costs the server a session copy and an
  // encryption (8% of the CPU of a full handshake, measured with firehook-bench conn --tls).
  SSL_CTX_set_num_tickets(native, 1);

  if (s.client_certs != config::client_certificates::none) {
    if (SSL_CTX_load_verify_locations(native, s.ca.c_str(), nullptr) != 1) {
      fail(s.ca, "cannot load the CA bundle");
    }
    int mode = SSL_VERIFY_PEER;
    if (s.client_certs == config::client_certificates::required) {
      mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(native, mode, nullptr);
    SSL_CTX_set_verify_depth(native, 8);
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(s.ca.c_str());
    if (names) {
      SSL_CTX_set_client_CA_list(native, names);
    }
    if (!s.crl.empty()) {
      X509_STORE* store = SSL_CTX_get_cert_store(native);
      load_crls(store, s.crl);
      X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
  }
  return ctx;
}

std::optional<security::certificate_info> peer_certificate(const SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (!cert || SSL_get_verify_result(ssl) != X509_V_OK) {
    return std::nullopt;
  }
  security::certificate_info info;
  const X509_NAME* subject = X509_get_subject_name(cert);
  info.subject = name_oneline(subject);
  info.issuer = name_oneline(X509_get_issuer_name(cert));
  auto cns = name_entries(subject, NID_commonName);
  if (!cns.empty()) {
    info.common_name = cns.back(); // the most specific CN
  }
  info.organizational_units = name_entries(subject, NID_organizationalUnitName);
  if (auto* sans =
          static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      const ASN1_IA5STRING* v = nullptr;
      std::vector<std::string>* into = nullptr;
      if (gn->type == GEN_DNS) {
        v = gn->d.dNSName;
        into = &info.san_dns;
      } else if (gn->type == GEN_URI) {
        v = gn->d.uniformResourceIdentifier;
        into = &info.san_uri;
      } else if (gn->type == GEN_EMAIL) {
        v = gn->d.rfc822Name;
        into = &info.san_email;
      }
      if (v && into) {
        into->emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)),
                           static_cast<std::size_t>(ASN1_STRING_length(v)));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  if (const ASN1_INTEGER* serial = X509_get0_serialNumber(cert)) {
    BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr);
    char* h = BN_bn2hex(bn);
    info.serial_hex = h;
    OPENSSL_free(h);
    BN_free(bn);
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int md_len = 0;
  X509_digest(cert, EVP_sha256(), md.data(), &md_len);
  info.fingerprint_sha256 = hex(md.data(), md_len, false);
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) {
    info.not_after = std::chrono::system_clock::from_time_t(timegm(&tm));
  }
  return info;
}

bool peer_revoked(const SSL* ssl, ssl::context& ctx) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (!cert) {
    return false;
  }
  X509_STORE* store = SSL_CTX_get_cert_store(ctx.native_handle());
  X509_STORE_CTX* verify = X509_STORE_CTX_new();
  bool revoked = false;
  if (verify && X509_STORE_CTX_init(verify, store, cert, SSL_get_peer_cert_chain(ssl)) == 1) {
    if (X509_verify_cert(verify) != 1) {
      revoked = X509_STORE_CTX_get_error(verify) == X509_V_ERR_CERT_REVOKED;
    }
  }
  X509_STORE_CTX_free(verify);
  ERR_clear_error();
  return revoked;
}

std::vector<certificate_summary> read_certificates(const std::filesystem::path& pem) {
  BIO* bio = BIO_new_file(pem.c_str(), "r");
  if (bio == nullptr) {
    ERR_clear_error();
    throw std::runtime_error(pem.string() + ": cannot be read: " + std::strerror(errno));
  }
  std::vector<certificate_summary> out;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    certificate_summary c;
    char name[256];
    X509_NAME_oneline(X509_get_subject_name(cert), name, sizeof name);
    c.subject = name;
    if (EVP_PKEY* key = X509_get0_pubkey(cert)) {
      c.key_bits = EVP_PKEY_get_bits(key);
      const char* type = EVP_PKEY_get0_type_name(key);
      c.key_type = type != nullptr ? type : "unknown";
    }
    struct tm tm {};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) {
      c.not_after = std::chrono::system_clock::from_time_t(timegm(&tm));
    }
    c.is_ca = X509_check_ca(cert) != 0;
    out.push_back(std::move(c));
    X509_free(cert);
  }
  ERR_clear_error(); // the end of the file reads as an error
  BIO_free(bio);
  if (out.empty()) {
    throw std::runtime_error(pem.string() + ": no PEM certificate in it");
  }
  return out;
}

std::vector<audit::listener_certificate> listener_certificates(const config::config& cfg) {
  std::vector<audit::listener_certificate> out;
  for (const auto& l : cfg.listeners) {
    if (!l.tls) {
      continue;
    }
    for (const auto& [kind, file] :
         {std::pair<std::string_view, const std::filesystem::path&>{"server", l.tls->cert},
          std::pair<std::string_view, const std::filesystem::path&>{"ca", l.tls->ca}}) {
      if (file.empty()) {
        continue;
      }
      std::vector<certificate_summary> certs;
      try {
        certs = read_certificates(file);
      } catch (const std::exception&) {
        continue;
      }
      const std::size_t n = kind == "server" ? 1 : certs.size();
      for (std::size_t i = 0; i < n; ++i) {
        out.push_back({l.name, std::string(kind), certs[i].subject, file, certs[i].not_after});
      }
    }
  }
  return out;
}

tls_material::tls_material(config::tls_settings settings, const std::string& listener)
    : reloadable("TLS certificates, key, CA and CRL of listener " + listener), settings_(std::move(settings)) {
  load_first();
}

std::shared_ptr<ssl::context> tls_material::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

std::vector<std::filesystem::path> tls_material::watched_files() const {
  std::vector<std::filesystem::path> out;
  for (const auto* p : {&settings_.cert, &settings_.key, &settings_.ca, &settings_.crl}) {
    if (!p->empty()) {
      out.push_back(*p);
    }
  }
  return out;
}

std::string tls_material::load() {
  auto ctx = make_server_context(settings_);
  std::lock_guard lock(mutex_);
  current_ = std::move(ctx);
  std::string files;
  for (const auto& f : watched_files()) {
    files += (files.empty() ? "" : ", ") + f.string();
  }
  return files;
}

} // namespace firehook::net

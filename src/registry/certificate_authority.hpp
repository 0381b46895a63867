#pragma once

// The certificate authority that issues device certificates: a key and a certificate in two PEM
// files, by default <state_dir>/ca/ca.key (mode 0600, in a folder of mode 0700) and
// <state_dir>/ca/ca.crt. `firehook ca init` makes a new one (EC P-256, self-signed, CA:TRUE with
// pathlen 0, keyCertSign and cRLSign, valid from 5 minutes ago) or imports an existing CA
// certificate and key, which may be an intermediate: its file may then hold the chain above it
// after the CA certificate itself.
//
// Issued certificates (RFC 5280):
//   subject             CN = the device name; nothing else
//   subjectAltName      URI, only when asked for
//   serial              16 random bytes, positive (CA/Browser Forum: at least 64 random bits)
//   validity            from 5 minutes ago (clocks of devices drift) for `lifetime_days`
//   basicConstraints    critical, CA:FALSE
//   keyUsage            critical, digitalSignature
//   extendedKeyUsage    clientAuth
//   subject/authority key identifiers
//   signature           SHA-256 with the CA's key (ECDSA for an EC CA, RSA PKCS#1 for an RSA one)
//
// A certificate signing request is used only for its public key, once its self-signature is
// verified (it proves the requester holds the private key): its subject, extensions and any other
// attribute are ignored, so a device cannot ask for another name or for CA rights.
//
// OpenSSL stays inside the .cpp (STYLE.md: only net/ and registry/ touch it). Thread safety: a
// loaded certificate_authority is immutable; its members may be called from any thread.
// Errors: every failure throws ca_error with a one-line message naming the file and the problem.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace firehook::registry {

class ca_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct ca_files {
  std::filesystem::path certificate; // PEM: the CA certificate, then its chain when an intermediate
  std::filesystem::path key;         // PEM private key, mode 0600
  std::filesystem::path crl;         // PEM CRL of the revoked devices' certificates (write_crl)

  // <state_dir>/ca/ca.crt, <state_dir>/ca/ca.key and <state_dir>/ca/crl.pem.
  static ca_files in(const std::filesystem::path& state_dir);
};

struct issue_options {
  std::string common_name; // the device name
  std::string san_uri;     // a URI subject alternative name; none when empty
  std::uint32_t lifetime_days = 365;
};

struct issued_certificate {
  std::string certificate_pem;
  std::string private_key_pem;    // only when the key was made here (issue_with_new_key)
  std::string serial_hex;         // upper-case hex of whole bytes (BN_bn2hex), as the TLS layer reports it
  std::string fingerprint_sha256; // lower-case hex of the DER
  std::int64_t not_before = 0;    // Unix seconds
  std::int64_t not_after = 0;
};

// "" when the first certificate of `certificate_pem` (the others: its chain) chains to a certificate
// of `ca_pem`, is valid now and may be used for client authentication; otherwise why not.
std::string verify_certificate(std::string_view certificate_pem, std::string_view ca_pem);

class certificate_authority {
public:
  // Makes a new EC P-256 CA named `common_name`, valid for `lifetime_days`, and writes its files
  // (missing folders mode 0700, key 0600, certificate 0644). Refuses to replace a file that exists.
  static certificate_authority create(const ca_files& files, std::string_view common_name,
                                      std::uint32_t lifetime_days);
  // Checks that `certificate_file` starts with a CA certificate (basicConstraints CA:TRUE, and
  // keyCertSign when it has a keyUsage) that `key_file` is the key of, then copies both to `files`
  // as create() writes them. Refuses to replace a file that exists.
  static certificate_authority import(const ca_files& files, const std::filesystem::path& certificate_file,
                                      const std::filesystem::path& key_file);
  // Reads the CA's files. Throws ca_error when they are missing ("no CA yet") or do not match.
  static certificate_authority load(const ca_files& files);

  // Signs the public key of the PEM request `csr_pem` (`source` names it in errors) after checking
  // its self-signature. Throws ca_error when it is not a PEM request, the signature is wrong, or
  // the key is not an EC key of at least 256 bits or an RSA key of at least 2048 bits.
  issued_certificate sign_request(std::string_view csr_pem, std::string_view source,
                                  const issue_options& options) const;
  // Makes an EC P-256 key and a certificate for it.
  issued_certificate issue_with_new_key(const issue_options& options) const;

  // The CA certificate file's text (with the chain above it when an intermediate).
  const std::string& certificate_pem() const;
  // The CA's subject in one-line RFC 2253 form.
  std::string subject() const;
  std::int64_t not_after() const;
  // A CRL (v2, signed with the CA's key) listing `serials_hex` (upper-case hex, as
  // issued_certificate::serial_hex), this update now and the next at the CA's own end: the broker
  // is its only reader and it is signed again at every change, so it never goes stale while the
  // CA is valid. Written to files.crl through a temporary file and a rename, so that a broker
  // watching it never reads half of it. Throws ca_error.
  void write_crl(const std::vector<std::string>& serials_hex) const;
  // True when the CA certificate is not self-signed (an imported intermediate): a device then
  // presents it after its own certificate, so that a broker trusting only the root can build the chain.
  bool intermediate() const;

private:
  struct impl;
  explicit certificate_authority(std::shared_ptr<const impl> p) : impl_(std::move(p)) {}
  std::shared_ptr<const impl> impl_;
};

// The first of `bundles` (PEM texts of one or more certificates) against which the leaf
// certificate of the PEM chain `server_chain_pem` verifies, ignoring dates, or -1: for the CA file
// that a device needs to check the broker's certificate.
int bundle_verifying(std::string_view server_chain_pem, const std::vector<std::string>& bundles);

} // namespace firehook::registry

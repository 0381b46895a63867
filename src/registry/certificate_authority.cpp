#include "registry/certificate_authority.hpp"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring> // strstr, in OpenSSL 3.0's EVP_EC_gen macro
#include <ctime>
#include <fstream>
#include <sstream>
#include <system_error>

#include "registry/store.hpp"

namespace firehook::registry {
namespace {

namespace fs = std::filesystem;

template <auto Free>
struct deleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509_free>>;
using req_ptr = std::unique_ptr<X509_REQ, deleter<X509_REQ_free>>;
using bio_ptr = std::unique_ptr<BIO, deleter<BIO_free_all>>;
using bn_ptr = std::unique_ptr<BIGNUM, deleter<BN_free>>;
using store_ptr = std::unique_ptr<X509_STORE, deleter<X509_STORE_free>>;
using store_ctx_ptr = std::unique_ptr<X509_STORE_CTX, deleter<X509_STORE_CTX_free>>;
using ext_ptr = std::unique_ptr<X509_EXTENSION, deleter<X509_EXTENSION_free>>;
using crl_ptr = std::unique_ptr<X509_CRL, deleter<X509_CRL_free>>;
using revoked_ptr = std::unique_ptr<X509_REVOKED, deleter<X509_REVOKED_free>>;
using time_ptr = std::unique_ptr<ASN1_TIME, deleter<ASN1_TIME_free>>;
using integer_ptr = std::unique_ptr<ASN1_INTEGER, deleter<ASN1_INTEGER_free>>;
void free_chain(STACK_OF(X509) * chain) {
  sk_X509_pop_free(chain, X509_free);
}
using chain_ptr = std::unique_ptr<STACK_OF(X509), deleter<free_chain>>;

// Certificates start this far in the past: the clocks of devices drift.
constexpr long backdate_seconds = 300;
constexpr std::size_t serial_bytes = 16;

// OpenSSL's reason for the last failure on this thread, and an empty error queue afterwards.
std::string openssl_reason() {
  const unsigned long e = ERR_peek_last_error();
  std::string why;
  if (e != 0) {
    std::array<char, 256> text{};
    ERR_error_string_n(e, text.data(), text.size());
    why = text.data();
  }
  ERR_clear_error();
  return why.empty() ? "OpenSSL failed" : why;
}

[[noreturn]] void fail(const std::string& what) {
  ERR_clear_error();
  throw ca_error(what);
}

[[noreturn]] void fail_openssl(const std::string& what) {
  throw ca_error(what + ": " + openssl_reason());
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fail(path.string() + ": cannot read: " + std::generic_category().message(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes a new file with `mode`; never replaces one (O_EXCL), never follows a planted link.
void write_new_file(const fs::path& path, std::string_view text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    fail(path.string() + (errno == EEXIST ? ": exists; refusing to replace it"
                                          : ": cannot create: " + std::generic_category().message(errno)));
  }
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      fail(path.string() + ": cannot write: " + std::generic_category().message(error));
    }
    done += static_cast<std::size_t>(n);
  }
  // On disk before the command says it is done: losing a CA key to a crash loses the fleet.
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) {
    fail(path.string() + ": cannot write: " + std::generic_category().message(errno));
  }
}

// The folder of `file`, made with mode 0700 when missing: it holds the CA key.
void make_private_folder(const fs::path& file) {
  try {
    create_private_folders(file.parent_path());
  } catch (const store_error& e) {
    fail(e.what());
  }
}

bio_ptr memory_bio(std::string_view text) {
  bio_ptr b(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!b) {
    fail_openssl("out of memory");
  }
  return b;
}

std::string bio_text(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

// Every certificate of a PEM text, in order; empty when there is none.
std::vector<x509_ptr> read_certificates(std::string_view pem) {
  std::vector<x509_ptr> out;
  auto b = memory_bio(pem);
  while (X509* x = PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(x);
  }
  ERR_clear_error(); // the end of the text reads as an error
  return out;
}

// Never asks for a pass phrase on the terminal: an encrypted key is refused instead.
int no_pass_phrase(char*, int, int, void*) {
  return 0;
}

pkey_ptr read_private_key(std::string_view pem, const fs::path& source) {
  auto b = memory_bio(pem);
  pkey_ptr key(PEM_read_bio_PrivateKey(b.get(), nullptr, no_pass_phrase, nullptr));
  if (!key) {
    fail(source.string() + ": not a PEM private key, or an encrypted one (decrypt it first: openssl pkey)");
  }
  return key;
}

std::string private_key_pem(EVP_PKEY* key) {
  bio_ptr b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_PrivateKey(b.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    fail_openssl("cannot encode a private key");
  }
  return bio_text(b.get());
}

std::string certificate_text(X509* x) {
  bio_ptr b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_X509(b.get(), x) != 1) {
    fail_openssl("cannot encode a certificate");
  }
  return bio_text(b.get());
}

pkey_ptr new_p256_key() {
  pkey_ptr key(EVP_EC_gen("P-256"));
  if (!key) {
    fail_openssl("cannot make an EC P-256 key");
  }
  return key;
}

std::string hex(const unsigned char* data, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0x0f];
  }
  return out;
}

std::int64_t unix_time(const ASN1_TIME* t) {
  struct tm parts {};
  if (ASN1_TIME_to_tm(t, &parts) != 1) {
    return 0;
  }
  return static_cast<std::int64_t>(::timegm(&parts));
}

std::string name_text(const X509_NAME* name) {
  bio_ptr b(BIO_new(BIO_s_mem()));
  if (!b || X509_NAME_print_ex(b.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    return {};
  }
  return bio_text(b.get());
}

// As the TLS layer reports them (tls.cpp): upper-case hex serial, lower-case hex SHA-256 of the DER.
void describe(X509* x, issued_certificate& out) {
  bn_ptr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr));
  char* h = bn ? BN_bn2hex(bn.get()) : nullptr;
  if (h == nullptr) {
    fail_openssl("cannot read a serial number");
  }
  out.serial_hex = h;
  OPENSSL_free(h);
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int length = 0;
  if (X509_digest(x, EVP_sha256(), md.data(), &length) != 1) {
    fail_openssl("cannot hash a certificate");
  }
  out.fingerprint_sha256 = hex(md.data(), length);
  out.not_before = unix_time(X509_get0_notBefore(x));
  out.not_after = unix_time(X509_get0_notAfter(x));
  out.certificate_pem = certificate_text(x);
}

void add_extension(X509* x, X509V3_CTX* ctx, int nid, const char* value) {
  ext_ptr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(x, ext.get(), -1) != 1) {
    fail_openssl(std::string("cannot add extension ") + OBJ_nid2sn(nid));
  }
}

void add_san_uri(X509* x, const std::string& uri) {
  // Built as a value, not through the "URI:..." configuration syntax, which would read a ',' in
  // the URI as the start of another name.
  GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
  GENERAL_NAME* name = GENERAL_NAME_new();
  ASN1_IA5STRING* text = ASN1_IA5STRING_new();
  bool ok = names != nullptr && name != nullptr && text != nullptr &&
            ASN1_STRING_set(text, uri.data(), static_cast<int>(uri.size())) == 1;
  if (ok) {
    GENERAL_NAME_set0_value(name, GEN_URI, text);
    text = nullptr;
    ok = sk_GENERAL_NAME_push(names, name) > 0;
    if (ok) {
      name = nullptr;
      ok = X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1;
    }
  }
  ASN1_IA5STRING_free(text);
  GENERAL_NAME_free(name);
  GENERAL_NAMES_free(names);
  if (!ok) {
    fail_openssl("cannot add the URI subject alternative name");
  }
}

void set_random_serial(X509* x) {
  std::array<unsigned char, serial_bytes> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    fail_openssl("cannot make a random serial number");
  }
  // Positive (DER INTEGER), and 16 bytes long whatever the draw: the first byte is 0x01..0x7f.
  bytes[0] = static_cast<unsigned char>(bytes[0] & 0x7f);
  if (bytes[0] == 0) {
    bytes[0] = 0x01;
  }
  bn_ptr bn(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x)) == nullptr) {
    fail_openssl("cannot set a serial number");
  }
}

// Ed25519 and Ed448 sign the whole message: no separate digest.
const EVP_MD* digest_for(EVP_PKEY* key) {
  const int id = EVP_PKEY_get_base_id(key);
  return id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448 ? nullptr : EVP_sha256();
}

struct certificate_request {
  X509_NAME* subject = nullptr;
  EVP_PKEY* subject_key = nullptr;
  X509* issuer = nullptr; // null: self-signed
  EVP_PKEY* issuer_key = nullptr;
  long backdate = 0;
  std::uint32_t days = 0;
  bool ca = false;
  std::string san_uri;
};

x509_ptr make_certificate(const certificate_request& r) {
  x509_ptr x(X509_new());
  if (!x || X509_set_version(x.get(), X509_VERSION_3) != 1) {
    fail_openssl("cannot make a certificate");
  }
  set_random_serial(x.get());
  if (X509_gmtime_adj(X509_getm_notBefore(x.get()), -r.backdate) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(x.get()), static_cast<int>(r.days), 0, nullptr) == nullptr ||
      X509_set_subject_name(x.get(), r.subject) != 1 ||
      X509_set_issuer_name(x.get(), r.issuer != nullptr ? X509_get_subject_name(r.issuer) : r.subject) != 1 ||
      X509_set_pubkey(x.get(), r.subject_key) != 1) {
    fail_openssl("cannot fill in a certificate");
  }
  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, r.issuer != nullptr ? r.issuer : x.get(), x.get(), nullptr, nullptr, 0);
  X509V3_set_ctx_nodb(&ctx);
  if (r.ca) {
    add_extension(x.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    add_extension(x.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(x.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(x.get(), &ctx, NID_key_usage, "critical,digitalSignature");
    add_extension(x.get(), &ctx, NID_ext_key_usage, "clientAuth");
  }
  add_extension(x.get(), &ctx, NID_subject_key_identifier, "hash");
  // keyid from the issuer's subject key identifier; issuer name and serial only when it has none
  // (an imported CA may lack it).
  add_extension(x.get(), &ctx, NID_authority_key_identifier,
                r.issuer != nullptr ? "keyid,issuer" : "keyid:always");
  if (!r.san_uri.empty()) {
    add_san_uri(x.get(), r.san_uri);
  }
  if (X509_sign(x.get(), r.issuer_key, digest_for(r.issuer_key)) <= 0) {
    fail_openssl("cannot sign a certificate");
  }
  return x;
}

using name_ptr = std::unique_ptr<X509_NAME, deleter<X509_NAME_free>>;

name_ptr common_name(std::string_view cn) {
  name_ptr name(X509_NAME_new());
  if (!name || X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                          reinterpret_cast<const unsigned char*>(cn.data()),
                                          static_cast<int>(cn.size()), -1, 0) != 1) {
    fail_openssl("cannot make the name CN=" + std::string(cn));
  }
  return name;
}

// A key a device may use: EC of 256 bits or more, RSA of 2048 or more, Ed25519.
void check_key_strength(EVP_PKEY* key, std::string_view source) {
  const int id = EVP_PKEY_get_base_id(key);
  const int bits = EVP_PKEY_get_bits(key);
  if ((id == EVP_PKEY_EC && bits >= 256) || (id == EVP_PKEY_RSA && bits >= 2048) || id == EVP_PKEY_ED25519) {
    return;
  }
  fail(std::string(source) + ": the request's key is too weak or of an unknown kind (" +
       std::to_string(bits) + " bits); use EC P-256, RSA 2048 or stronger, or Ed25519");
}

store_ptr store_of(const std::vector<x509_ptr>& trusted, unsigned long flags) {
  store_ptr s(X509_STORE_new());
  if (!s) {
    fail_openssl("out of memory");
  }
  for (const auto& c : trusted) {
    X509_STORE_add_cert(s.get(), c.get());
  }
  // A bundle may hold an intermediate without its root: trust it as an anchor.
  X509_STORE_set_flags(s.get(), X509_V_FLAG_PARTIAL_CHAIN | flags);
  return s;
}

// 0 when `leaf` verifies against `trusted` with `untrusted` as intermediates; else OpenSSL's code.
int verify_against(X509* leaf, const std::vector<x509_ptr>& untrusted, const std::vector<x509_ptr>& trusted,
                   unsigned long flags, int purpose) {
  auto s = store_of(trusted, flags);
  chain_ptr chain(sk_X509_new_null());
  for (const auto& c : untrusted) {
    sk_X509_push(chain.get(), c.get());
    X509_up_ref(c.get());
  }
  store_ctx_ptr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), s.get(), leaf, chain.get()) != 1) {
    fail_openssl("cannot verify a certificate");
  }
  if (purpose != 0) {
    X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  }
  const int ok = X509_verify_cert(ctx.get());
  const int code = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  return code == X509_V_OK && ok != 1 ? X509_V_ERR_UNSPECIFIED : code;
}

} // namespace

struct certificate_authority::impl {
  ca_files files;
  std::string certificate_pem;
  x509_ptr certificate;
  pkey_ptr key;
};

ca_files ca_files::in(const fs::path& state_dir) {
  return {state_dir / "ca" / "ca.crt", state_dir / "ca" / "ca.key", state_dir / "ca" / "crl.pem"};
}

std::string verify_certificate(std::string_view certificate_pem, std::string_view ca_pem) {
  auto chain = read_certificates(certificate_pem);
  const auto trusted = read_certificates(ca_pem);
  if (chain.empty() || trusted.empty()) {
    return "no certificate to verify";
  }
  // What follows the leaf (an intermediate CA) is offered as the device would present it.
  const x509_ptr leaf = std::move(chain.front());
  chain.erase(chain.begin());
  const int code = verify_against(leaf.get(), chain, trusted, 0, X509_PURPOSE_SSL_CLIENT);
  return code == X509_V_OK ? std::string() : X509_verify_cert_error_string(code);
}

int bundle_verifying(std::string_view server_chain_pem, const std::vector<std::string>& bundles) {
  auto chain = read_certificates(server_chain_pem);
  if (chain.empty()) {
    return -1;
  }
  x509_ptr leaf = std::move(chain.front());
  chain.erase(chain.begin());
  for (std::size_t i = 0; i < bundles.size(); ++i) {
    const auto trusted = read_certificates(bundles[i]);
    // Dates are not the question here (the expiry alert watches them); the issuer is.
    if (!trusted.empty() &&
        verify_against(leaf.get(), chain, trusted, X509_V_FLAG_NO_CHECK_TIME, 0) == X509_V_OK) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

certificate_authority certificate_authority::create(const ca_files& files, std::string_view name,
                                                    std::uint32_t lifetime_days) {
  for (const auto& p : {files.key, files.certificate}) {
    if (fs::exists(fs::symlink_status(p))) {
      fail(p.string() + ": exists; refusing to replace it (a CA is made once)");
    }
  }
  auto p = std::make_shared<impl>();
  p->files = files;
  p->key = new_p256_key();
  const auto subject = common_name(name);
  certificate_request r;
  r.subject = subject.get();
  r.subject_key = p->key.get();
  r.issuer_key = p->key.get();
  r.backdate = backdate_seconds;
  r.days = lifetime_days;
  r.ca = true;
  p->certificate = make_certificate(r);
  p->certificate_pem = certificate_text(p->certificate.get());
  make_private_folder(files.key);
  make_private_folder(files.certificate);
  // The key first: a certificate without its key would look like a CA that cannot sign.
  write_new_file(files.key, private_key_pem(p->key.get()), 0600);
  write_new_file(files.certificate, p->certificate_pem, 0644);
  return certificate_authority(std::move(p));
}

namespace {

// The CA certificate (the first of `certificate_pem`) and its key, checked to belong together.
void check_pair(const std::string& certificate_pem, const fs::path& certificate_file, X509*& out_cert,
                std::vector<x509_ptr>& holder, EVP_PKEY* key, const fs::path& key_file) {
  holder = read_certificates(certificate_pem);
  if (holder.empty()) {
    fail(certificate_file.string() + ": no PEM certificate in it");
  }
  out_cert = holder.front().get();
  if (X509_check_ca(out_cert) == 0) {
    fail(certificate_file.string() + ": the first certificate is not a CA certificate (no basicConstraints "
                                     "CA:TRUE, or keyUsage without keyCertSign)");
  }
  if (X509_check_private_key(out_cert, key) != 1) {
    fail(key_file.string() + ": is not the key of the certificate in " + certificate_file.string());
  }
}

} // namespace

certificate_authority certificate_authority::import(const ca_files& files, const fs::path& certificate_file,
                                                    const fs::path& key_file) {
  for (const auto& p : {files.key, files.certificate}) {
    if (fs::exists(fs::symlink_status(p))) {
      fail(p.string() + ": exists; refusing to replace it (a CA is made once)");
    }
  }
  auto p = std::make_shared<impl>();
  p->files = files;
  const std::string key_text = read_text(key_file);
  p->key = read_private_key(key_text, key_file);
  p->certificate_pem = read_text(certificate_file);
  X509* cert = nullptr;
  std::vector<x509_ptr> holder;
  check_pair(p->certificate_pem, certificate_file, cert, holder, p->key.get(), key_file);
  p->certificate = std::move(holder.front());
  make_private_folder(files.key);
  make_private_folder(files.certificate);
  // Re-encoded, so that what is stored is the key alone (no other PEM blocks of the source file).
  write_new_file(files.key, private_key_pem(p->key.get()), 0600);
  write_new_file(files.certificate, p->certificate_pem, 0644);
  return certificate_authority(std::move(p));
}

certificate_authority certificate_authority::load(const ca_files& files) {
  if (!fs::exists(files.certificate) || !fs::exists(files.key)) {
    fail("no CA yet (" + files.certificate.string() + " and " + files.key.string() +
         "): run `firehook ca init` first");
  }
  auto p = std::make_shared<impl>();
  p->files = files;
  p->key = read_private_key(read_text(files.key), files.key);
  p->certificate_pem = read_text(files.certificate);
  X509* cert = nullptr;
  std::vector<x509_ptr> holder;
  check_pair(p->certificate_pem, files.certificate, cert, holder, p->key.get(), files.key);
  p->certificate = std::move(holder.front());
  return certificate_authority(std::move(p));
}

namespace {

issued_certificate issue(const certificate_authority& ca, X509* ca_cert, EVP_PKEY* ca_key,
                         EVP_PKEY* subject_key, const issue_options& options) {
  if (options.common_name.empty()) {
    fail("a certificate needs a name");
  }
  if (options.lifetime_days == 0) {
    fail("a certificate must be valid for at least one day");
  }
  const std::int64_t end =
      static_cast<std::int64_t>(::time(nullptr)) + static_cast<std::int64_t>(options.lifetime_days) * 86'400;
  if (end > ca.not_after()) {
    // Validated, not clamped: a certificate that outlives its CA stops working before its date.
    fail("the certificate would outlive the CA (" + ca.subject() + " expires earlier): use fewer days");
  }
  const auto subject = common_name(options.common_name);
  certificate_request r;
  r.subject = subject.get();
  r.subject_key = subject_key;
  r.issuer = ca_cert;
  r.issuer_key = ca_key;
  r.backdate = backdate_seconds;
  r.days = options.lifetime_days;
  r.san_uri = options.san_uri;
  x509_ptr x = make_certificate(r);
  issued_certificate out;
  describe(x.get(), out);
  return out;
}

} // namespace

issued_certificate certificate_authority::sign_request(std::string_view csr_pem, std::string_view source,
                                                       const issue_options& options) const {
  auto b = memory_bio(csr_pem);
  req_ptr req(PEM_read_bio_X509_REQ(b.get(), nullptr, nullptr, nullptr));
  if (!req) {
    fail(std::string(source) + ": not a PEM certificate signing request");
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr) {
    fail(std::string(source) + ": the request's public key cannot be read");
  }
  // The self-signature proves that whoever made the request holds the private key.
  if (X509_REQ_verify(req.get(), key) != 1) {
    fail(std::string(source) + ": the request's signature is wrong (was it altered?)");
  }
  check_key_strength(key, source);
  return issue(*this, impl_->certificate.get(), impl_->key.get(), key, options);
}

issued_certificate certificate_authority::issue_with_new_key(const issue_options& options) const {
  auto key = new_p256_key();
  auto out = issue(*this, impl_->certificate.get(), impl_->key.get(), key.get(), options);
  out.private_key_pem = private_key_pem(key.get());
  return out;
}

const std::string& certificate_authority::certificate_pem() const {
  return impl_->certificate_pem;
}

std::string certificate_authority::subject() const {
  return name_text(X509_get_subject_name(impl_->certificate.get()));
}

bool certificate_authority::intermediate() const {
  X509* cert = impl_->certificate.get();
  const bool self_signed = X509_check_issued(cert, cert) == X509_V_OK;
  ERR_clear_error();
  return !self_signed;
}

std::int64_t certificate_authority::not_after() const {
  return unix_time(X509_get0_notAfter(impl_->certificate.get()));
}

void certificate_authority::write_crl(const std::vector<std::string>& serials_hex) const {
  const impl& p = *impl_;
  crl_ptr crl(X509_CRL_new());
  const std::time_t now = ::time(nullptr);
  time_ptr this_update(ASN1_TIME_adj(nullptr, now, 0, -backdate_seconds));
  time_ptr next_update(ASN1_TIME_set(nullptr, static_cast<std::time_t>(not_after())));
  if (!crl || !this_update || !next_update || X509_CRL_set_version(crl.get(), 1) != 1 || // v2
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(p.certificate.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1) {
    fail_openssl("cannot make a CRL");
  }
  for (const auto& serial : serials_hex) {
    BIGNUM* raw = nullptr;
    if (serial.empty() || BN_hex2bn(&raw, serial.c_str()) != static_cast<int>(serial.size())) {
      BN_free(raw);
      fail("cannot revoke serial \"" + serial + "\": not a hex number");
    }
    bn_ptr bn(raw);
    integer_ptr number(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    revoked_ptr r(X509_REVOKED_new());
    if (!number || !r || X509_REVOKED_set_serialNumber(r.get(), number.get()) != 1 ||
        X509_REVOKED_set_revocationDate(r.get(), this_update.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), r.get()) != 1) {
      fail_openssl("cannot add a serial to the CRL");
    }
    (void)r.release(); // the CRL owns it now
  }
  X509_CRL_sort(crl.get());
  if (X509_CRL_sign(crl.get(), p.key.get(), digest_for(p.key.get())) == 0) {
    fail_openssl("cannot sign the CRL");
  }
  bio_ptr out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509_CRL(out.get(), crl.get()) != 1) {
    fail_openssl("cannot write the CRL");
  }
  const fs::path temporary = p.files.crl.string() + ".new";
  std::error_code ec;
  fs::remove(temporary, ec);
  make_private_folder(p.files.crl);
  write_new_file(temporary, bio_text(out.get()), 0644);
  fs::rename(temporary, p.files.crl, ec);
  if (ec) {
    fail(p.files.crl.string() + ": cannot be replaced: " + ec.message());
  }
}

} // namespace firehook::registry

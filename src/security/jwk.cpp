#include "security/jwk.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <array>
#include <fstream>
#include <sstream>

#include <boost/json.hpp>

namespace firehook::security {

// What a key holds. HMAC keys keep the secret's bytes; the others an EVP_PKEY (public or private).
struct verification_key::material {
  std::shared_ptr<EVP_PKEY> pkey;
  std::string secret;
};

struct signing_key::material {
  std::shared_ptr<EVP_PKEY> pkey;
  std::string secret;
};

// Builds verification keys; a friend so that the constructor stays private.
struct key_factory {
  static verification_key make(std::shared_ptr<EVP_PKEY> pkey, std::string secret, key_type type,
                               std::string kid, std::optional<jws_alg> alg) {
    auto m = std::make_shared<verification_key::material>();
    m->pkey = std::move(pkey);
    m->secret = std::move(secret);
    return verification_key(std::move(m), type, std::move(kid), alg);
  }
};

namespace {

// Empties the thread's OpenSSL error queue when it goes out of scope (the header's promise).
struct error_queue_guard {
  error_queue_guard() = default;
  error_queue_guard(const error_queue_guard&) = delete;
  error_queue_guard& operator=(const error_queue_guard&) = delete;
  ~error_queue_guard() { ERR_clear_error(); }
};

// The reason of the oldest error OpenSSL queued, for a message; "" when none.
std::string openssl_reason() {
  const unsigned long code = ERR_peek_error();
  if (code == 0) {
    return {};
  }
  std::array<char, 256> text{};
  ERR_error_string_n(code, text.data(), text.size());
  return std::string(": ") + text.data();
}

struct pkey_deleter {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
};
struct pkey_ctx_deleter {
  void operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
};
struct bio_deleter {
  void operator()(BIO* p) const noexcept { BIO_free(p); }
};
struct bn_deleter {
  void operator()(BIGNUM* p) const noexcept { BN_free(p); }
};
struct ecdsa_sig_deleter {
  void operator()(ECDSA_SIG* p) const noexcept { ECDSA_SIG_free(p); }
};
struct param_bld_deleter {
  void operator()(OSSL_PARAM_BLD* p) const noexcept { OSSL_PARAM_BLD_free(p); }
};
struct params_deleter {
  void operator()(OSSL_PARAM* p) const noexcept { OSSL_PARAM_free(p); }
};
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, md_ctx_deleter>;
using pkey_ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_deleter>;
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;
using bn_ptr = std::unique_ptr<BIGNUM, bn_deleter>;
using ecdsa_sig_ptr = std::unique_ptr<ECDSA_SIG, ecdsa_sig_deleter>;

std::shared_ptr<EVP_PKEY> share(EVP_PKEY* p) {
  return {p, pkey_deleter{}};
}

constexpr std::size_t min_rsa_bits = 2048;
constexpr std::size_t min_hmac_secret = 32;
constexpr std::size_t max_key_file = 1 << 20;

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
const unsigned char* bytes_of(std::span<const std::byte> s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

const EVP_MD* digest_of(jws_alg alg) noexcept {
  switch (alg) {
  case jws_alg::hs256:
  case jws_alg::rs256:
  case jws_alg::ps256:
  case jws_alg::es256:
    return EVP_sha256();
  case jws_alg::hs384:
  case jws_alg::rs384:
  case jws_alg::ps384:
  case jws_alg::es384:
    return EVP_sha384();
  case jws_alg::hs512:
  case jws_alg::rs512:
  case jws_alg::ps512:
    return EVP_sha512();
  case jws_alg::eddsa:
    return nullptr; // Ed25519 hashes internally (RFC 8032)
  }
  return nullptr;
}

bool is_hmac(jws_alg a) {
  return a == jws_alg::hs256 || a == jws_alg::hs384 || a == jws_alg::hs512;
}
bool is_rsa_pkcs1(jws_alg a) {
  return a == jws_alg::rs256 || a == jws_alg::rs384 || a == jws_alg::rs512;
}
bool is_rsa_pss(jws_alg a) {
  return a == jws_alg::ps256 || a == jws_alg::ps384 || a == jws_alg::ps512;
}
bool is_ecdsa(jws_alg a) {
  return a == jws_alg::es256 || a == jws_alg::es384;
}

// The size of one ECDSA coordinate (R or S) in a JWS signature, RFC 7518 section 3.4.
std::size_t ecdsa_half(key_type type) {
  return type == key_type::ec_p384 ? 48 : 32;
}

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw key_error(file.string() + ": cannot be read");
  }
  std::string text;
  std::array<char, 8192> chunk{};
  while (in.read(chunk.data(), chunk.size()) || in.gcount() > 0) {
    text.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_key_file) {
      throw key_error(file.string() + ": larger than 1 MiB, not a key file");
    }
  }
  if (in.bad()) {
    throw key_error(file.string() + ": read error");
  }
  return text;
}

// Which of our key types an EVP_PKEY is; nullopt for anything else (DSA, X25519, P-521, ...).
std::optional<key_type> type_of(EVP_PKEY* pkey) {
  switch (EVP_PKEY_get_base_id(pkey)) {
  case EVP_PKEY_RSA:
    return key_type::rsa;
  case EVP_PKEY_ED25519:
    return key_type::ed25519;
  case EVP_PKEY_EC: {
    std::array<char, 64> group{};
    std::size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group.data(), group.size(), &len) !=
        1) {
      return std::nullopt;
    }
    const std::string_view name(group.data(), len);
    if (name == "prime256v1" || name == "P-256") {
      return key_type::ec_p256;
    }
    if (name == "secp384r1" || name == "P-384") {
      return key_type::ec_p384;
    }
    return std::nullopt;
  }
  default:
    return std::nullopt;
  }
}

// The checks every public key passes, whatever it came from.
void check_public_key(EVP_PKEY* pkey, key_type type, const std::string& what) {
  if (type == key_type::rsa && EVP_PKEY_get_bits(pkey) < static_cast<int>(min_rsa_bits)) {
    throw key_error(what + ": RSA key of " + std::to_string(EVP_PKEY_get_bits(pkey)) +
                    " bits; at least 2048 are required");
  }
  if (type == key_type::ec_p256 || type == key_type::ec_p384) {
    // A point off the curve would make ECDSA verification meaningless (invalid-curve attacks).
    pkey_ctx_ptr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
    if (!ctx || EVP_PKEY_public_check(ctx.get()) != 1) {
      throw key_error(what + ": EC public key is not a valid point on its curve" + openssl_reason());
    }
  }
}

std::string stem_of(const std::filesystem::path& file) {
  return file.stem().string();
}

// ---------------------------------------------------------------------------------------------
// JWK (RFC 7517, RFC 7518 section 6, RFC 8037 section 2)

const boost::json::string* string_member(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  return v == nullptr ? nullptr : v->if_string();
}

std::string_view sv(const boost::json::string& s) {
  return {s.data(), s.size()};
}

// A required base64url member, decoded; `size` when given is the exact length it must have.
std::string b64_member(const boost::json::object& o, std::string_view name, const std::string& what,
                       std::optional<std::size_t> size = std::nullopt) {
  const auto* v = o.if_contains(name);
  if (v == nullptr) {
    throw key_error(what + ": \"" + std::string(name) + "\" is missing");
  }
  const auto* s = v->if_string();
  if (s == nullptr) {
    throw key_error(what + ": \"" + std::string(name) + "\" is not a string");
  }
  auto bytes = base64url_decode(sv(*s));
  if (!bytes || bytes->empty()) {
    throw key_error(what + ": \"" + std::string(name) + "\" is not base64url");
  }
  if (size && bytes->size() != *size) {
    throw key_error(what + ": \"" + std::string(name) + "\" must be " + std::to_string(*size) +
                    " bytes (got " + std::to_string(bytes->size()) + ")");
  }
  return *bytes;
}

std::shared_ptr<EVP_PKEY> pkey_from_params(const char* type_name, OSSL_PARAM_BLD* bld,
                                           const std::string& what) {
  std::unique_ptr<OSSL_PARAM, params_deleter> params(OSSL_PARAM_BLD_to_param(bld));
  pkey_ctx_ptr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type_name, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    throw key_error(what + ": not a valid key" + openssl_reason());
  }
  return share(raw);
}

std::shared_ptr<EVP_PKEY> rsa_from_jwk(const boost::json::object& o, const std::string& what) {
  const std::string n = b64_member(o, "n", what);
  const std::string e = b64_member(o, "e", what);
  bn_ptr bn_n(BN_bin2bn(bytes_of(n), static_cast<int>(n.size()), nullptr));
  bn_ptr bn_e(BN_bin2bn(bytes_of(e), static_cast<int>(e.size()), nullptr));
  std::unique_ptr<OSSL_PARAM_BLD, param_bld_deleter> bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    throw key_error(what + ": out of memory");
  }
  return pkey_from_params("RSA", bld.get(), what);
}

std::shared_ptr<EVP_PKEY> ec_from_jwk(const boost::json::object& o, key_type type, const std::string& what) {
  // RFC 7518 section 6.2.1.2/3: x and y are the full coordinate length, leading zeros kept.
  const std::size_t size = ecdsa_half(type);
  // Built by append: `"\x04" + std::string` trips GCC 12's -Wrestrict false positive at -O3.
  std::string point(1, '\x04');
  point += b64_member(o, "x", what, size);
  point += b64_member(o, "y", what, size);
  std::unique_ptr<OSSL_PARAM_BLD, param_bld_deleter> bld(OSSL_PARAM_BLD_new());
  const char* group = type == key_type::ec_p256 ? "prime256v1" : "secp384r1";
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    throw key_error(what + ": out of memory");
  }
  return pkey_from_params("EC", bld.get(), what);
}

std::shared_ptr<EVP_PKEY> ed25519_from_jwk(const boost::json::object& o, const std::string& what) {
  const std::string x = b64_member(o, "x", what, 32);
  EVP_PKEY* raw = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes_of(x), x.size());
  if (raw == nullptr) {
    throw key_error(what + ": not a valid Ed25519 key" + openssl_reason());
  }
  return share(raw);
}

// Whether `alg` belongs to the family `type` verifies (the table in the header), ignoring HMAC
// key lengths.
bool fits(key_type type, jws_alg alg) {
  switch (type) {
  case key_type::hmac:
    return is_hmac(alg);
  case key_type::rsa:
    return is_rsa_pkcs1(alg) || is_rsa_pss(alg);
  case key_type::ec_p256:
    return alg == jws_alg::es256;
  case key_type::ec_p384:
    return alg == jws_alg::es384;
  case key_type::ed25519:
    return alg == jws_alg::eddsa;
  }
  return false;
}

// One JWK: a key, or a reason it is left out (returned in `skipped`). Throws for a broken one.
std::optional<verification_key> parse_jwk(const boost::json::value& v, std::size_t index,
                                          std::string& skipped) {
  std::string what = "keys[" + std::to_string(index) + "]";
  const auto* o = v.if_object();
  if (o == nullptr) {
    throw key_error(what + ": not a JSON object");
  }
  std::string kid;
  if (const auto* k = o->if_contains("kid")) {
    if (!k->is_string()) {
      throw key_error(what + ": \"kid\" is not a string");
    }
    kid = std::string(sv(k->get_string()));
    what += " (kid \"" + kid + "\")";
  }
  const auto* kty = string_member(*o, "kty");
  if (kty == nullptr) {
    throw key_error(what + ": \"kty\" is missing or not a string");
  }
  if (const auto* use = o->if_contains("use")) {
    if (!use->is_string()) {
      throw key_error(what + ": \"use\" is not a string");
    }
    if (use->get_string() != "sig") {
      skipped = what + ": \"use\" is \"" + std::string(sv(use->get_string())) + "\", not \"sig\"";
      return std::nullopt;
    }
  }
  if (const auto* ops = o->if_contains("key_ops")) {
    const auto* list = ops->if_array();
    if (list == nullptr) {
      throw key_error(what + ": \"key_ops\" is not an array");
    }
    bool verify_op = false;
    for (const auto& op : *list) {
      verify_op = verify_op || (op.is_string() && op.get_string() == "verify");
    }
    if (!verify_op) {
      skipped = what + ": \"key_ops\" does not include \"verify\"";
      return std::nullopt;
    }
  }
  std::optional<jws_alg> alg;
  if (const auto* a = o->if_contains("alg")) {
    if (!a->is_string()) {
      throw key_error(what + ": \"alg\" is not a string");
    }
    alg = parse_jws_alg(sv(a->get_string()));
    if (!alg) {
      skipped = what + ": \"alg\" \"" + std::string(sv(a->get_string())) +
                "\" is not an algorithm Firehook verifies";
      return std::nullopt;
    }
  }

  if (*kty == "oct") {
    // Shared secrets come from hmac_secret_file only: a JWKS is often published, a secret never.
    skipped = what + ": symmetric (\"oct\") keys are taken from hmac_secret_file only";
    return std::nullopt;
  }
  if (*kty != "RSA" && *kty != "EC" && *kty != "OKP") {
    skipped = what + ": key type \"" + std::string(sv(*kty)) + "\" is not supported";
    return std::nullopt;
  }
  // A private key in a file the broker reads for verification is a leak waiting to happen; say so.
  for (const char* priv : {"d", "p", "q", "dp", "dq", "qi", "oth"}) {
    if (o->contains(priv)) {
      throw key_error(what + ": holds the private parameter \"" + priv +
                      "\"; a JWKS for verification must hold public keys only");
    }
  }

  key_type type{};
  std::shared_ptr<EVP_PKEY> pkey;
  if (*kty == "RSA") {
    type = key_type::rsa;
    pkey = rsa_from_jwk(*o, what);
  } else {
    const auto* crv = string_member(*o, "crv");
    if (crv == nullptr) {
      throw key_error(what + ": \"crv\" is missing or not a string");
    }
    if (*kty == "EC" && *crv == "P-256") {
      type = key_type::ec_p256;
      pkey = ec_from_jwk(*o, type, what);
    } else if (*kty == "EC" && *crv == "P-384") {
      type = key_type::ec_p384;
      pkey = ec_from_jwk(*o, type, what);
    } else if (*kty == "OKP" && *crv == "Ed25519") {
      type = key_type::ed25519;
      pkey = ed25519_from_jwk(*o, what);
    } else {
      skipped = what + ": curve \"" + std::string(sv(*crv)) + "\" is not supported";
      return std::nullopt;
    }
  }
  if (alg && !fits(type, *alg)) {
    throw key_error(what + ": \"alg\" " + std::string(to_string(*alg)) + " does not fit a " +
                    std::string(to_string(type)) + " key");
  }
  check_public_key(pkey.get(), type, what);
  return key_factory::make(std::move(pkey), {}, type, std::move(kid), alg);
}

// ---------------------------------------------------------------------------------------------
// Signatures

bool digest_verify(EVP_PKEY* pkey, const EVP_MD* md, bool pss, std::string_view input,
                   std::span<const std::byte> sig) {
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr; // owned by ctx
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, pkey) != 1) {
    return false;
  }
  if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
              EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
              EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1)) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), bytes_of(sig), sig.size(), bytes_of(input), input.size()) == 1;
}

// RFC 7518 section 3.4: R || S, each `half` bytes, big-endian; EVP wants the DER SEQUENCE.
std::optional<std::string> ecdsa_raw_to_der(std::span<const std::byte> sig, std::size_t half) {
  if (sig.size() != 2 * half) {
    return std::nullopt;
  }
  bn_ptr r(BN_bin2bn(bytes_of(sig), static_cast<int>(half), nullptr));
  bn_ptr s(BN_bin2bn(bytes_of(sig) + half, static_cast<int>(half), nullptr));
  ecdsa_sig_ptr es(ECDSA_SIG_new());
  if (!r || !s || !es || ECDSA_SIG_set0(es.get(), r.get(), s.get()) != 1) {
    return std::nullopt;
  }
  (void)r.release(); // owned by es now
  (void)s.release();
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(es.get(), &der);
  if (len <= 0) {
    return std::nullopt;
  }
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::optional<std::string> compute_hmac(const EVP_MD* md, std::string_view key, std::string_view input) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  if (HMAC(md, key.data(), static_cast<int>(key.size()), bytes_of(input), input.size(), mac.data(), &len) ==
      nullptr) {
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char*>(mac.data()), len);
}

constexpr std::string_view b64url_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

} // namespace

// ---------------------------------------------------------------------------------------------

std::optional<jws_alg> parse_jws_alg(std::string_view name) noexcept {
  static constexpr std::array<std::pair<std::string_view, jws_alg>, 12> names{{
      {"HS256", jws_alg::hs256},
      {"HS384", jws_alg::hs384},
      {"HS512", jws_alg::hs512},
      {"RS256", jws_alg::rs256},
      {"RS384", jws_alg::rs384},
      {"RS512", jws_alg::rs512},
      {"PS256", jws_alg::ps256},
      {"PS384", jws_alg::ps384},
      {"PS512", jws_alg::ps512},
      {"ES256", jws_alg::es256},
      {"ES384", jws_alg::es384},
      {"EdDSA", jws_alg::eddsa},
  }};
  for (const auto& [n, a] : names) {
    if (n == name) {
      return a;
    }
  }
  return std::nullopt;
}

std::string_view to_string(jws_alg alg) noexcept {
  switch (alg) {
  case jws_alg::hs256:
    return "HS256";
  case jws_alg::hs384:
    return "HS384";
  case jws_alg::hs512:
    return "HS512";
  case jws_alg::rs256:
    return "RS256";
  case jws_alg::rs384:
    return "RS384";
  case jws_alg::rs512:
    return "RS512";
  case jws_alg::ps256:
    return "PS256";
  case jws_alg::ps384:
    return "PS384";
  case jws_alg::ps512:
    return "PS512";
  case jws_alg::es256:
    return "ES256";
  case jws_alg::es384:
    return "ES384";
  case jws_alg::eddsa:
    return "EdDSA";
  }
  return "?";
}

std::string_view to_string(key_type type) noexcept {
  switch (type) {
  case key_type::hmac:
    return "hmac";
  case key_type::rsa:
    return "rsa";
  case key_type::ec_p256:
    return "ec_p256";
  case key_type::ec_p384:
    return "ec_p384";
  case key_type::ed25519:
    return "ed25519";
  }
  return "?";
}

verification_key::verification_key(std::shared_ptr<const material> m, key_type type, std::string kid,
                                   std::optional<jws_alg> alg)
    : material_(std::move(m)), type_(type), kid_(std::move(kid)), alg_(alg) {}

verification_key verification_key::from_pem(std::string_view pem, std::string kid) {
  error_queue_guard guard;
  const std::string what = kid.empty() ? std::string("PEM key") : "key \"" + kid + "\"";
  // One PUBLIC KEY block and nothing else: a private key next to it would be read past silently
  // by PEM_read_bio_PUBKEY, and a certificate is not a key the issuer of tokens is bound to.
  std::size_t blocks = 0;
  for (std::size_t at = pem.find("-----BEGIN "); at != std::string_view::npos;
       at = pem.find("-----BEGIN ", at + 1)) {
    ++blocks;
  }
  if (pem.find("PRIVATE KEY-----") != std::string_view::npos) {
    throw key_error(what + ": holds a private key; give the broker the public key only "
                           "(openssl pkey -in KEY -pubout)");
  }
  if (pem.find("-----BEGIN CERTIFICATE-----") != std::string_view::npos) {
    throw key_error(what + ": is a certificate; give the broker its public key "
                           "(openssl x509 -in CERT -pubkey -noout)");
  }
  if (blocks != 1 || pem.find("-----BEGIN PUBLIC KEY-----") == std::string_view::npos) {
    throw key_error(what + ": must hold exactly one \"-----BEGIN PUBLIC KEY-----\" block");
  }
  bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* raw = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (raw == nullptr) {
    throw key_error(what + ": not a readable PEM public key" + openssl_reason());
  }
  auto pkey = share(raw);
  const auto type = type_of(pkey.get());
  if (!type) {
    throw key_error(what + ": key type not supported (must be RSA, EC P-256/P-384 or Ed25519)");
  }
  check_public_key(pkey.get(), *type, what);
  return key_factory::make(std::move(pkey), {}, *type, std::move(kid), std::nullopt);
}

verification_key verification_key::from_pem_file(const std::filesystem::path& file) {
  const std::string text = read_file(file);
  try {
    return from_pem(text, stem_of(file));
  } catch (const key_error& e) {
    throw key_error(file.string() + ": " + e.what());
  }
}

verification_key verification_key::from_hmac_secret(std::string_view secret, std::string kid) {
  if (secret.size() < min_hmac_secret) {
    throw key_error("HMAC secret of " + std::to_string(secret.size()) +
                    " bytes; at least 32 are required (RFC 7518 section 3.2)");
  }
  return key_factory::make(nullptr, std::string(secret), key_type::hmac, std::move(kid), std::nullopt);
}

verification_key verification_key::from_hmac_secret_file(const std::filesystem::path& file) {
  const std::string text = read_file(file);
  try {
    return from_hmac_secret(text, stem_of(file));
  } catch (const key_error& e) {
    throw key_error(file.string() + ": " + e.what());
  }
}

bool verification_key::can_verify(jws_alg alg) const noexcept {
  if (!fits(type_, alg) || (alg_ && *alg_ != alg)) {
    return false;
  }
  if (type_ == key_type::hmac) {
    // RFC 7518 section 3.2: a key at least as long as the hash output.
    return material_->secret.size() >= static_cast<std::size_t>(EVP_MD_get_size(digest_of(alg)));
  }
  return true;
}

bool verify(jws_alg alg, const verification_key& key, std::string_view signing_input,
            std::span<const std::byte> signature) noexcept {
  if (!key.can_verify(alg)) {
    return false;
  }
  error_queue_guard guard;
  const auto& m = *key.material_;
  const EVP_MD* md = digest_of(alg);
  if (is_hmac(alg)) {
    const auto mac = compute_hmac(md, m.secret, signing_input);
    return mac && mac->size() == signature.size() &&
           CRYPTO_memcmp(mac->data(), signature.data(), mac->size()) == 0;
  }
  if (is_rsa_pkcs1(alg) || is_rsa_pss(alg)) {
    if (signature.size() != static_cast<std::size_t>(EVP_PKEY_get_size(m.pkey.get()))) {
      return false;
    }
    return digest_verify(m.pkey.get(), md, is_rsa_pss(alg), signing_input, signature);
  }
  if (is_ecdsa(alg)) {
    const auto der = ecdsa_raw_to_der(signature, ecdsa_half(key.type()));
    if (!der) {
      return false;
    }
    return digest_verify(m.pkey.get(), md, false, signing_input,
                         std::as_bytes(std::span<const char>(der->data(), der->size())));
  }
  if (alg == jws_alg::eddsa) {
    return signature.size() == 64 && digest_verify(m.pkey.get(), nullptr, false, signing_input, signature);
  }
  return false;
}

jwk_set parse_jwks(std::string_view json) {
  error_queue_guard guard;
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(json, ec);
  if (ec) {
    throw key_error("not JSON: " + ec.message());
  }
  const auto* root = doc.if_object();
  const auto* keys = root == nullptr ? nullptr : root->if_contains("keys");
  if (keys == nullptr || !keys->is_array()) {
    throw key_error("not a JWK Set: the top level must be an object with a \"keys\" array");
  }
  jwk_set out;
  std::size_t index = 0;
  for (const auto& jwk : keys->get_array()) {
    std::string skipped;
    if (auto key = parse_jwk(jwk, index, skipped)) {
      out.keys.push_back(std::move(*key));
    } else {
      out.skipped.push_back(std::move(skipped));
    }
    ++index;
  }
  return out;
}

jwk_set load_jwks_file(const std::filesystem::path& file) {
  const std::string text = read_file(file);
  try {
    return parse_jwks(text);
  } catch (const key_error& e) {
    throw key_error(file.string() + ": " + e.what());
  }
}

// Hand-written rather than EVP_DecodeBlock: that one reads standard base64 with padding, so the
// text would need translating and padding first, its output length counts the padding's zero
// bytes, and it accepts non-zero trailing bits; strictness is the point here (RFC 7515 section 2
// and appendix C), and the loop is short.
std::optional<std::string> base64url_decode(std::string_view text) {
  static constexpr auto table = [] {
    std::array<std::int8_t, 256> t{};
    t.fill(-1);
    for (std::size_t i = 0; i < b64url_alphabet.size(); ++i) {
      t[static_cast<unsigned char>(b64url_alphabet[i])] = static_cast<std::int8_t>(i);
    }
    return t;
  }();
  if (text.size() % 4 == 1) {
    return std::nullopt; // 6 bits cannot end a byte
  }
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : text) {
    const std::int8_t v = table[static_cast<unsigned char>(c)];
    if (v < 0) {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if ((acc & ((1U << bits) - 1)) != 0) {
    return std::nullopt; // non-zero trailing bits: not the canonical encoding
  }
  return out;
}

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : bytes) {
    acc = (acc << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(b64url_alphabet[(acc >> bits) & 0x3F]);
    }
  }
  if (bits > 0) {
    out.push_back(b64url_alphabet[(acc << (6 - bits)) & 0x3F]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// signing_key

signing_key signing_key::generate(key_type type) {
  error_queue_guard guard;
  EVP_PKEY* raw = nullptr;
  switch (type) {
  case key_type::rsa:
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048));
    break;
  case key_type::ec_p256:
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    break;
  case key_type::ec_p384:
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
    break;
  case key_type::ed25519:
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    break;
  case key_type::hmac:
    throw key_error("signing_key::generate: use signing_key::hmac for HMAC keys");
  }
  if (raw == nullptr) {
    throw key_error("key generation failed" + openssl_reason());
  }
  auto m = std::make_shared<material>();
  m->pkey = share(raw);
  return {std::move(m), type};
}

signing_key signing_key::hmac(std::string_view secret) {
  auto m = std::make_shared<material>();
  m->secret = std::string(secret);
  return {std::move(m), key_type::hmac};
}

std::string signing_key::public_pem() const {
  error_queue_guard guard;
  if (type_ == key_type::hmac) {
    throw key_error("an HMAC key has no public half");
  }
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), material_->pkey.get()) != 1) {
    throw key_error("cannot write the public key" + openssl_reason());
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return {data, static_cast<std::size_t>(len)};
}

std::string signing_key::public_jwk(std::string_view kid, std::optional<jws_alg> alg) const {
  error_queue_guard guard;
  EVP_PKEY* pkey = material_->pkey.get();
  const auto bn_param = [&](const char* name, std::size_t pad) {
    BIGNUM* raw = nullptr;
    if (EVP_PKEY_get_bn_param(pkey, name, &raw) != 1) {
      throw key_error(std::string("cannot read the key parameter ") + name + openssl_reason());
    }
    bn_ptr bn(raw);
    const std::size_t size = pad != 0 ? pad : static_cast<std::size_t>(BN_num_bytes(bn.get()));
    std::string bytes(size, '\0');
    BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(size));
    return base64url_encode(bytes);
  };
  boost::json::object o;
  switch (type_) {
  case key_type::hmac:
    throw key_error("an HMAC key has no public half");
  case key_type::rsa:
    o["kty"] = "RSA";
    o["n"] = bn_param(OSSL_PKEY_PARAM_RSA_N, 0);
    o["e"] = bn_param(OSSL_PKEY_PARAM_RSA_E, 0);
    break;
  case key_type::ec_p256:
  case key_type::ec_p384:
    o["kty"] = "EC";
    o["crv"] = type_ == key_type::ec_p256 ? "P-256" : "P-384";
    o["x"] = bn_param(OSSL_PKEY_PARAM_EC_PUB_X, ecdsa_half(type_));
    o["y"] = bn_param(OSSL_PKEY_PARAM_EC_PUB_Y, ecdsa_half(type_));
    break;
  case key_type::ed25519: {
    std::array<unsigned char, 32> x{};
    std::size_t len = x.size();
    if (EVP_PKEY_get_raw_public_key(pkey, x.data(), &len) != 1) {
      throw key_error("cannot read the Ed25519 key" + openssl_reason());
    }
    o["kty"] = "OKP";
    o["crv"] = "Ed25519";
    o["x"] = base64url_encode(std::string_view(reinterpret_cast<const char*>(x.data()), len));
    break;
  }
  }
  o["kid"] = kid;
  o["use"] = "sig";
  if (alg) {
    o["alg"] = to_string(*alg);
  }
  return boost::json::serialize(o);
}

std::string signing_key::sign(jws_alg alg, std::string_view signing_input) const {
  error_queue_guard guard;
  const EVP_MD* md = digest_of(alg);
  if (is_hmac(alg)) {
    if (type_ != key_type::hmac) {
      throw key_error("HMAC needs an HMAC key");
    }
    auto mac = compute_hmac(md, material_->secret, signing_input);
    if (!mac) {
      throw key_error("HMAC failed" + openssl_reason());
    }
    return *mac;
  }
  if (type_ == key_type::hmac || (type_ == key_type::rsa) != (is_rsa_pkcs1(alg) || is_rsa_pss(alg)) ||
      (type_ == key_type::ed25519) != (alg == jws_alg::eddsa)) {
    throw key_error("a " + std::string(to_string(type_)) + " key cannot make " + std::string(to_string(alg)) +
                    " signatures");
  }
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, material_->pkey.get()) != 1) {
    throw key_error("signing failed" + openssl_reason());
  }
  if (is_rsa_pss(alg) && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                          EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
                          EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1)) {
    throw key_error("PSS set-up failed" + openssl_reason());
  }
  std::size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, bytes_of(signing_input), signing_input.size()) != 1) {
    throw key_error("signing failed" + openssl_reason());
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, bytes_of(signing_input),
                     signing_input.size()) != 1) {
    throw key_error("signing failed" + openssl_reason());
  }
  sig.resize(len);
  if (!is_ecdsa(alg)) {
    return sig;
  }
  // DER to R || S, each as long as the key's coordinates.
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ecdsa_sig_ptr es(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
  if (!es) {
    throw key_error("ECDSA signature not DER" + openssl_reason());
  }
  const std::size_t half = ecdsa_half(type_);
  std::string raw(2 * half, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(es.get()), reinterpret_cast<unsigned char*>(raw.data()),
               static_cast<int>(half));
  BN_bn2binpad(ECDSA_SIG_get0_s(es.get()), reinterpret_cast<unsigned char*>(raw.data()) + half,
               static_cast<int>(half));
  return raw;
}

} // namespace firehook::security
